#include "compat/envelope_diff.h"

#include <fstream>
#include <stdexcept>
#include <tuple>

namespace tidemark::test {
namespace {

using nlohmann::json;

std::string excerpt(const json& v) {
  std::string s = v.dump();
  return s.size() > 160 ? s.substr(0, 157) + "..." : s;
}

// The topic without the prefix: "public.types", "message", "__debezium-heartbeat.t1".
std::string topicId(const std::string& topic, const std::string& prefix) {
  if (topic.rfind(prefix + ".", 0) == 0) return topic.substr(prefix.size() + 1);
  return topic;
}

// (lsn, op) of a line's value; events without them (heartbeats) pair by position.
using PairKey = std::tuple<long long, std::string, size_t>;

PairKey pairKey(const json& line, size_t index, bool reads_by_key) {
  const json* value = line.contains("value") ? &line["value"] : nullptr;
  if (reads_by_key && value != nullptr && value->is_object() && value->value("op", "") == "r") {
    const bool keyed = line.contains("key") && !line["key"].is_null();
    return {-2, "r " + (keyed ? line["key"].dump() : (*value)["after"].dump()), 0};
  }
  if (value != nullptr && value->is_object() && value->contains("source") &&
      (*value)["source"].contains("lsn") && (*value)["source"]["lsn"].is_number()) {
    std::string op = value->value("op", "");
    // Two events of one change (a key update's delete and create) differ by op; the index
    // separates nothing else, so it is left at 0 for them.
    return {(*value)["source"]["lsn"].get<long long>(), op, 0};
  }
  return {-1, "", index};
}

// The op of a pair key (a read's key follows it).
std::string opOf(const PairKey& k) { return std::get<1>(k).substr(0, std::get<1>(k).find(' ')); }

class Differ {
 public:
  Differ(const CompareRules& rules, Comparison& out) : rules_(rules), out_(out) {}

  void note(const std::string& id, const std::string& what) {
    out_.differences.emplace(id, what);  // keeps the first case
  }

  // Values of one envelope: row images column by column, the rest member by member.
  void compareValue(const std::string& topic, const json& t, const json& d, const std::string& where) {
    if (t.is_null() || d.is_null() || !t.is_object() || !d.is_object()) {
      if (t != d) note(topic + " value", where + ": tidemark " + excerpt(t) + ", debezium " + excerpt(d));
      return;
    }
    compareMembers(topic, t, d, "", where);
  }

  void compareMembers(const std::string& topic, const json& t, const json& d,
                      const std::string& path, const std::string& where) {
    std::set<std::string> names;
    for (auto it = t.begin(); it != t.end(); ++it) names.insert(it.key());
    for (auto it = d.begin(); it != d.end(); ++it) names.insert(it.key());
    for (const auto& name : names) {
      const std::string p = path.empty() ? name : path + "." + name;
      const bool inT = t.contains(name);
      const bool inD = d.contains(name);
      if (!inT || !inD) {
        note(topic + " " + p, where + ": only " + (inT ? "tidemark" : "debezium") + " writes it (" +
                                  excerpt(inT ? t[name] : d[name]) + ")");
        continue;
      }
      if (rules_.ignoredValuePaths.count(p) != 0) continue;
      const json& a = t[name];
      const json& b = d[name];
      if (path.empty() && (name == "before" || name == "after")) {
        compareRow(topic, a, b, name, where);
      } else if (a.is_object() && b.is_object()) {
        compareMembers(topic, a, b, p, where);
      } else if (a != b) {
        note(topic + " " + p, where + ": tidemark " + excerpt(a) + ", debezium " + excerpt(b));
      }
    }
  }

  void compareRow(const std::string& topic, const json& t, const json& d, const std::string& image,
                  const std::string& where) {
    if (!t.is_object() || !d.is_object()) {
      if (t != d) note(topic + " " + image, where + ": tidemark " + excerpt(t) + ", debezium " + excerpt(d));
      return;
    }
    std::set<std::string> names;
    for (auto it = t.begin(); it != t.end(); ++it) names.insert(it.key());
    for (auto it = d.begin(); it != d.end(); ++it) names.insert(it.key());
    for (const auto& name : names) {
      const std::string id = topic + "." + name;
      if (!t.contains(name) || !d.contains(name)) {
        note(id, where + " " + image + ": only " + (t.contains(name) ? "tidemark" : "debezium") +
                     " has the column");
        continue;
      }
      if (!sameColumnValue(id, t[name], d[name])) {
        note(id, where + " " + image + ": tidemark " + excerpt(t[name]) + ", debezium " +
                     excerpt(d[name]));
      }
    }
  }

  bool sameColumnValue(const std::string& id, const json& a, const json& b) const {
    if (a == b) return true;
    if (rules_.jsonTextColumns.count(id) != 0 && a.is_string() && b.is_string()) {
      try {
        return json::parse(a.get<std::string>()) == json::parse(b.get<std::string>());
      } catch (const json::parse_error&) {
        return false;
      }
    }
    return false;
  }

  void compareShape(const std::string& topic, const json& t, const json& d, const std::string& where) {
    if (t.value("key", json()) != d.value("key", json())) {
      note(topic + " key", where + ": tidemark " + excerpt(t.value("key", json())) + ", debezium " +
                               excerpt(d.value("key", json())));
    }
    std::set<std::string> tn, dn;
    const json tv = t.value("value", json::object());
    const json dv = d.value("value", json::object());
    for (auto it = tv.begin(); it != tv.end(); ++it) tn.insert(it.key());
    for (auto it = dv.begin(); it != dv.end(); ++it) dn.insert(it.key());
    if (tn != dn) note(topic + " value", where + ": tidemark " + excerpt(tv) + ", debezium " + excerpt(dv));
  }

 private:
  const CompareRules& rules_;
  Comparison& out_;
};

}  // namespace

Comparison compareEvents(const TopicLines& tidemark, const TopicLines& debezium,
                         const CompareRules& rules) {
  Comparison out;
  Differ differ(rules, out);
  std::set<std::string> topics;
  for (const auto& [t, _] : tidemark) topics.insert(t);
  for (const auto& [t, _] : debezium) topics.insert(t);
  for (const auto& topic : topics) {
    const std::string id = topicId(topic, rules.prefix);
    const auto ti = tidemark.find(topic);
    const auto di = debezium.find(topic);
    if (ti == tidemark.end() || di == debezium.end()) {
      const bool inT = ti != tidemark.end();
      differ.note("topic " + id + " only in " + (inT ? "tidemark" : "debezium"),
                  std::to_string((inT ? ti : di)->second.size()) + " events, the first " +
                      excerpt((inT ? ti : di)->second.front()));
      continue;
    }
    if (rules.shapeOnlyTopics.count(id) != 0) {
      if (!ti->second.empty() && !di->second.empty()) {
        differ.compareShape(id, ti->second.front(), di->second.front(), "first event");
        ++out.pairs;
      }
      continue;
    }
    std::map<PairKey, const json*> fromDebezium;
    for (size_t i = 0; i < di->second.size(); ++i) fromDebezium.emplace(pairKey(di->second[i], i, rules.pairReadsByKey), &di->second[i]);
    std::set<PairKey> paired;
    for (size_t i = 0; i < ti->second.size(); ++i) {
      const json& t = ti->second[i];
      const PairKey k = pairKey(t, i, rules.pairReadsByKey);
      const std::string where = topic + " event " + std::to_string(i) + " (lsn " +
                                std::to_string(std::get<0>(k)) + ", op " + std::get<1>(k) + ")";
      const auto found = fromDebezium.find(k);
      if (found == fromDebezium.end()) {
        differ.note(id + " op " + opOf(k) + " only in tidemark", where + ": " + excerpt(t));
        continue;
      }
      paired.insert(k);
      ++out.pairs;
      const json& d = *found->second;
      const json tk = t.value("key", json());
      const json dk = d.value("key", json());
      if (tk != dk) differ.note(id + " key", where + ": tidemark " + excerpt(tk) + ", debezium " + excerpt(dk));
      differ.compareValue(id, t.value("value", json()), d.value("value", json()), where);
    }
    for (const auto& [k, d] : fromDebezium) {
      if (paired.count(k) != 0) continue;
      differ.note(id + " op " + opOf(k) + " only in debezium",
                  topic + " (lsn " + std::to_string(std::get<0>(k)) + "): " + excerpt(*d));
    }
  }
  return out;
}

std::set<std::string> documentedDifferences(const std::filesystem::path& markdown) {
  std::ifstream in(markdown);
  if (!in) throw std::runtime_error("cannot read " + markdown.string());
  constexpr std::string_view kColumn = "In the suite";
  std::set<std::string> ids;
  bool anyTable = false;
  constexpr size_t kNone = std::string::npos;
  size_t column = kNone;  // the "In the suite" cell of the current table
  bool header = true;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] != '|') {
      column = kNone;
      header = true;
      continue;
    }
    // Cells between the pipes; a pipe inside backticks is still a separator in GitHub's
    // tables, and the ids have none.
    std::vector<std::string> cells;
    size_t start = 1;
    for (size_t i = 1; i < line.size(); ++i) {
      if (line[i] == '|') {
        cells.push_back(line.substr(start, i - start));
        start = i + 1;
      }
    }
    auto trim = [](std::string s) {
      const size_t a = s.find_first_not_of(' ');
      const size_t b = s.find_last_not_of(' ');
      return a == std::string::npos ? std::string() : s.substr(a, b - a + 1);
    };
    if (header) {
      header = false;
      for (size_t i = 0; i < cells.size(); ++i) {
        if (trim(cells[i]) == kColumn) {
          column = i;
          anyTable = true;
        }
      }
      continue;
    }
    if (column == kNone || column >= cells.size()) continue;
    const std::string& cell = cells[column];
    for (size_t open = cell.find('`'); open != std::string::npos; open = cell.find('`', open)) {
      const size_t close = cell.find('`', open + 1);
      if (close == std::string::npos) break;
      ids.insert(cell.substr(open + 1, close - open - 1));
      open = close + 1;
    }
  }
  if (!anyTable) {
    throw std::runtime_error(markdown.string() + " has no table with an \"" + std::string(kColumn) +
                             "\" column");
  }
  return ids;
}

}  // namespace tidemark::test
