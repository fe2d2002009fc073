#include "support/test_decoding.h"

#include <algorithm>
#include <stdexcept>

namespace tidemark::test {
namespace {

class LineReader {
 public:
  explicit LineReader(const std::string& line) : s_(line) {}

  bool done() const { return pos_ >= s_.size(); }
  bool consume(const std::string& word) {
    if (s_.compare(pos_, word.size(), word) != 0) return false;
    pos_ += word.size();
    return true;
  }
  void expect(const std::string& word) {
    if (!consume(word)) fail("expected '" + word + "'");
  }
  void skipSpaces() {
    while (pos_ < s_.size() && s_[pos_] == ' ') ++pos_;
  }

  // Text between `quote`s, a doubled quote standing for one; pos_ is on the opening quote.
  std::string quoted(char quote) {
    std::string out;
    ++pos_;
    for (;;) {
      if (pos_ >= s_.size()) fail(std::string("unterminated ") + quote + "-quoted text");
      char c = s_[pos_++];
      if (c == quote) {
        if (pos_ < s_.size() && s_[pos_] == quote) {
          out += quote;
          ++pos_;
          continue;
        }
        return out;
      }
      out += c;
    }
  }

  // A name as quote_identifier prints it: bare, or "..." with "" for a quote.
  std::string identifier(const std::string& stop_chars) {
    if (pos_ < s_.size() && s_[pos_] == '"') return quoted('"');
    std::string out;
    while (pos_ < s_.size() && stop_chars.find(s_[pos_]) == std::string::npos) out += s_[pos_++];
    return out;
  }

  // "schema.table" with either part quoted.
  std::string qualifiedName() {
    std::string schema = identifier(".:");
    expect(".");
    std::string table = identifier(":");
    return schema + "." + table;
  }

  // The type between '[' and "]:" (format_type_be may print brackets, as in integer[]).
  std::string type() {
    expect("[");
    size_t end = s_.find("]:", pos_);
    if (end == std::string::npos) fail("unterminated type");
    std::string t = s_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return t;
  }

  DecodedColumn column() {
    DecodedColumn c;
    c.name = identifier("[");
    c.type = type();
    expect(":");
    if (consume("null")) return c;
    if (consume("unchanged-toast-datum")) {
      c.unchanged_toast = true;
      return c;
    }
    std::string v;
    if (pos_ < s_.size() && s_[pos_] == '\'') {
      v = quoted('\'');
    } else {
      while (pos_ < s_.size() && s_[pos_] != ' ') v += s_[pos_++];
    }
    c.value = v;
    return c;
  }

  // Columns up to the end of the line or the next "new-tuple:" marker.
  std::vector<DecodedColumn> tuple() {
    std::vector<DecodedColumn> out;
    skipSpaces();
    if (consume("(no-tuple-data)")) return out;
    while (!done()) {
      skipSpaces();
      if (done() || s_.compare(pos_, 10, "new-tuple:") == 0) break;
      out.push_back(column());
    }
    return out;
  }

  [[noreturn]] void fail(const std::string& why) const {
    throw std::runtime_error("test_decoding line at byte " + std::to_string(pos_) + ": " + why + ": " + s_);
  }

 private:
  const std::string& s_;
  size_t pos_ = 0;
};

}  // namespace

const DecodedColumn* DecodedChange::find(const std::vector<DecodedColumn>& tuple, const std::string& name) {
  for (const auto& c : tuple) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

std::optional<DecodedChange> parseTestDecodingLine(const std::string& line) {
  if (!line.starts_with("table ")) return std::nullopt;
  LineReader r(line);
  r.expect("table ");
  DecodedChange c;
  c.table = r.qualifiedName();
  r.expect(": ");
  for (const char* op : {"INSERT", "UPDATE", "DELETE", "TRUNCATE"}) {
    if (r.consume(op)) {
      c.op = op;
      break;
    }
  }
  if (c.op.empty()) r.fail("unknown operation");
  r.expect(":");
  if (c.op == "TRUNCATE") return c;
  r.skipSpaces();
  if (r.consume("old-key:")) c.old_tuple = r.tuple();
  r.skipSpaces();
  if (r.consume("new-tuple:")) {
    c.new_tuple = r.tuple();
  } else if (c.op == "INSERT") {
    c.new_tuple = r.tuple();
  } else if (c.op == "UPDATE" && c.old_tuple.empty()) {
    c.new_tuple = r.tuple();
  } else if (c.op == "DELETE" && c.old_tuple.empty()) {
    c.old_tuple = r.tuple();
  }
  return c;
}

std::optional<std::string> eventValueText(const nlohmann::json& value) {
  if (value.is_null()) return std::nullopt;
  if (value.is_string()) return value.get<std::string>();
  if (value.is_boolean()) return value.get<bool>() ? "true" : "false";
  return value.dump();
}

::testing::AssertionResult sameChanges(const std::vector<DecodedChange>& server,
                                       const std::vector<nlohmann::json>& events,
                                       const std::vector<std::string>& key_columns) {
  size_t e = 0;
  auto next = [&](const std::string& op) -> const nlohmann::json* {
    if (e >= events.size()) return nullptr;
    const nlohmann::json& ev = events[e++];
    return ev.value("op", "") == op ? &ev : nullptr;
  };
  auto describe = [&](size_t i) { return "server change " + std::to_string(i) + " (" + server[i].op + " on " + server[i].table + ")"; };
  auto sameValues = [](const std::vector<DecodedColumn>& tuple, const nlohmann::json& row,
                       const std::vector<std::string>* only) -> std::string {
    for (const auto& c : tuple) {
      if (c.unchanged_toast) continue;
      if (only && std::find(only->begin(), only->end(), c.name) == only->end()) continue;
      if (!row.contains(c.name)) return "no column " + c.name + " in " + row.dump();
      if (eventValueText(row[c.name]) != c.value) {
        return "column " + c.name + " is " + row[c.name].dump().substr(0, 80) + ", the server says " +
               (c.value ? "'" + c.value->substr(0, 80) + "'" : "null");
      }
    }
    return {};
  };
  for (size_t i = 0; i < server.size(); ++i) {
    const DecodedChange& c = server[i];
    bool key_changed = false;
    if (c.op == "UPDATE" && !c.old_tuple.empty()) {
      for (const auto& k : key_columns) {
        const DecodedColumn* o = DecodedChange::find(c.old_tuple, k);
        const DecodedColumn* n = DecodedChange::find(c.new_tuple, k);
        if (o && n && !n->unchanged_toast && o->value != n->value) key_changed = true;
      }
    }
    std::vector<std::pair<std::string, const std::vector<DecodedColumn>*>> expected;
    if (c.op == "INSERT") expected = {{"c", &c.new_tuple}};
    if (c.op == "DELETE") expected = {{"d", &c.old_tuple}};
    if (c.op == "UPDATE") {
      expected = key_changed ? decltype(expected){{"d", &c.old_tuple}, {"c", &c.new_tuple}}
                             : decltype(expected){{"u", &c.new_tuple}};
    }
    if (c.op == "TRUNCATE") expected = {{"t", nullptr}};
    for (const auto& [op, tuple] : expected) {
      const size_t at = e;
      const nlohmann::json* ev = next(op);
      if (ev == nullptr) {
        return ::testing::AssertionFailure()
               << describe(i) << ": expected a '" << op << "' event at " << at << " of " << events.size()
               << (at < events.size() ? ", got " + events[at].dump().substr(0, 300) : std::string());
      }
      std::string problem;
      if (op == "c" || op == "u") problem = sameValues(*tuple, (*ev)["after"], nullptr);
      if (op == "d") problem = sameValues(*tuple, (*ev)["before"], &key_columns);
      if (!problem.empty()) return ::testing::AssertionFailure() << describe(i) << ": " << problem;
    }
  }
  if (e != events.size()) {
    return ::testing::AssertionFailure() << events.size() - e << " more events than the server's "
                                         << server.size() << " changes; the first: " << events[e].dump().substr(0, 300);
  }
  return ::testing::AssertionSuccess();
}

TestDecodingSlot::TestDecodingSlot(PgCluster& pg, std::string db, std::string name)
    : pg_(pg), db_(std::move(db)), name_(std::move(name)) {
  pg_.exec(db_, "SELECT pg_create_logical_replication_slot('" + name_ + "', 'test_decoding')");
}

std::vector<DecodedChange> TestDecodingSlot::changes(const std::vector<std::string>& tables) {
  std::vector<DecodedChange> out;
  // The server converts the output to the client's encoding: UTF-8, whatever the database's.
  PgConnection conn = pg_.connect(db_);
  conn.exec("SET client_encoding = 'UTF8'");
  for (const auto& row : conn.exec("SELECT data FROM pg_logical_slot_get_changes('" + name_ +
                                   "', NULL, NULL, 'include-xids', '0', 'skip-empty-xacts', '1')")) {
    if (!row.at(0)) continue;
    std::optional<DecodedChange> c = parseTestDecodingLine(*row[0]);
    if (!c) continue;
    if (!tables.empty() && std::find(tables.begin(), tables.end(), c->table) == tables.end()) continue;
    out.push_back(std::move(*c));
  }
  return out;
}

}  // namespace tidemark::test
