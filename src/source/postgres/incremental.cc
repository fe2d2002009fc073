#include "source/postgres/incremental.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <random>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/clock.h"
#include "base/error.h"
#include "postgres/connection.h"

namespace tidemark::pg {

namespace {

using nlohmann::json;

// "schema.table" as Debezium names a data collection; a name with a dot in it is written
// with the schema quoted: "my.schema".table is not supported, the first dot splits.
bool splitName(const std::string& name, std::string& schema, std::string& table) {
  const size_t dot = name.find('.');
  if (dot == std::string::npos || dot == 0 || dot + 1 == name.size()) return false;
  schema = name.substr(0, dot);
  table = name.substr(dot + 1);
  return true;
}

std::vector<std::string> collections(const json& data) {
  std::vector<std::string> out;
  if (!data.contains("data-collections")) return out;
  const json& list = data.at("data-collections");
  if (!list.is_array()) throw std::invalid_argument("data-collections is not a list");
  for (const json& name : list) out.push_back(name.get<std::string>());
  return out;
}

// One value of a key in the window's map: length-prefixed, so that no two keys run together.
void appendKeyPart(std::string& key, std::string_view value) {
  key += std::to_string(value.size());
  key += ':';
  key += value;
}

bool plainId(std::string_view id) {
  if (id.empty() || id.size() > 42) return false;
  for (char c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return false;
  }
  return true;
}

}  // namespace

std::filesystem::path signalDirectory(const std::filesystem::path& state_dir) { return state_dir / "signals"; }

std::string newSignalId() {
  std::random_device rd;
  return fmt::format("tm-{}-{:08x}", unixMicrosNow() / 1000, rd());
}

void writeSignalFile(const std::filesystem::path& dir, const Signal& signal) {
  if (!plainId(signal.id)) {
    throw Error(ErrorClass::Config, fmt::format("signal id \"{}\" is not 1 to 42 letters, digits, '-' or '_'", signal.id));
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    throw Error(ErrorClass::Config, fmt::format("cannot create {}: {}", dir.string(), ec.message()),
                "check that state_dir is writable by this user");
  }
  const std::filesystem::path final_path = dir / (signal.id + ".json");
  const std::filesystem::path temp = dir / (signal.id + ".json.tmp");
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    out << json{{"id", signal.id}, {"type", signal.type}, {"data", signal.data}}.dump() << '\n';
    out.flush();
    if (!out) throw Error(ErrorClass::Config, fmt::format("cannot write {}", temp.string()), "check free space in state_dir");
  }
  std::filesystem::rename(temp, final_path, ec);
  if (ec) throw Error(ErrorClass::Config, fmt::format("cannot rename {}: {}", temp.string(), ec.message()));
}

std::vector<Signal> readSignalFiles(const std::filesystem::path& dir, const Logger& log) {
  std::vector<Signal> out;
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return out;
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.path().extension() == ".json") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& path : files) {
    try {
      std::ifstream in(path, std::ios::binary);
      json doc = json::parse(in);
      Signal s{doc.at("id").get<std::string>(), doc.at("type").get<std::string>(), doc.at("data").get<std::string>()};
      if (path.stem().string() != s.id) throw std::invalid_argument("its id is not its file's name");
      out.push_back(std::move(s));
    } catch (const std::exception& e) {
      log.error("signal file {} is not a signal ({}); renamed to .rejected", path.string(), e.what());
      std::filesystem::rename(path, path.string() + ".rejected", ec);
    }
  }
  return out;
}

void removeSignalFile(const std::filesystem::path& dir, const Signal& signal) {
  if (!plainId(signal.id)) return;
  std::error_code ec;
  std::filesystem::remove(dir / (signal.id + ".json"), ec);
}

SignalOutcome applySignal(std::optional<IncrementalState>& state, const Signal& signal,
                          const std::function<bool(const std::string&, const std::string&)>& captured) {
  auto refuse = [&](const std::string& why) {
    return SignalOutcome{false, fmt::format("signal {} ({}) refused: {}", signal.id, signal.type, why)};
  };
  json data;
  try {
    data = signal.data.empty() ? json::object() : json::parse(signal.data);
    if (!data.is_object()) return refuse("its data is not a JSON object");
  } catch (const std::exception& e) {
    return refuse(fmt::format("its data is not JSON ({})", e.what()));
  }
  try {
    const std::string kind = data.value("type", std::string("incremental"));
    if (kind != "incremental" && kind != "INCREMENTAL") {
      return refuse(fmt::format("snapshot type \"{}\": only incremental snapshots are taken while streaming", kind));
    }
    if (signal.type == "execute-snapshot") {
      std::vector<std::string> names = collections(data);
      if (names.empty()) return refuse("data-collections names no table");
      std::map<std::string, std::string> filters;
      if (data.contains("additional-conditions")) {
        for (const json& c : data.at("additional-conditions")) {
          filters[c.at("data-collection").get<std::string>()] = c.at("filter").get<std::string>();
        }
      }
      std::optional<std::string> surrogate;
      if (data.contains("surrogate-key")) surrogate = data.at("surrogate-key").get<std::string>();
      std::vector<IncrementalTable> tables;
      for (const std::string& name : names) {
        IncrementalTable t;
        if (!splitName(name, t.schema, t.table)) return refuse(fmt::format("\"{}\" is not schema.table", name));
        if (!captured(t.schema, t.table)) return refuse(fmt::format("{} is not a captured table", name));
        if (auto f = filters.find(name); f != filters.end()) {
          // The condition is SQL by nature; it runs in a read-only transaction as one statement
          // of the extended protocol, so it cannot end the statement and start another.
          if (f->second.find(';') != std::string::npos) {
            return refuse(fmt::format("the filter of {} has a ';': a condition is one expression", name));
          }
          t.filter = f->second;
          filters.erase(f);
        }
        t.surrogate_key = surrogate;
        tables.push_back(std::move(t));
      }
      if (!filters.empty()) {
        return refuse(fmt::format("additional-conditions names {}, which data-collections does not", filters.begin()->first));
      }
      if (state && std::find(state->taken.begin(), state->taken.end(), signal.id) != state->taken.end()) {
        return {true, fmt::format("signal {} (execute-snapshot) was taken already", signal.id)};
      }
      std::string message;
      if (!state) {
        state.emplace();
        state->id = signal.id;
        message = fmt::format("incremental snapshot {} of {} table(s) begins", signal.id, tables.size());
      } else {
        message = fmt::format("incremental snapshot {}: {} more table(s) queued", state->id, tables.size());
      }
      for (auto& t : tables) state->tables.push_back(std::move(t));
      state->taken.push_back(signal.id);
      if (state->taken.size() > 32) state->taken.erase(state->taken.begin());
      return {true, message};
    }
    if (signal.type == "stop-snapshot") {
      if (!state) return {true, fmt::format("signal {} (stop-snapshot): no incremental snapshot is under way", signal.id)};
      std::vector<std::string> names = collections(data);
      if (names.empty()) {
        state.reset();
        return {true, fmt::format("signal {}: incremental snapshot stopped", signal.id)};
      }
      size_t removed = 0;
      for (const std::string& name : names) {
        removed += std::erase_if(state->tables, [&](const IncrementalTable& t) { return t.schema + "." + t.table == name; });
      }
      if (state->tables.empty()) state.reset();
      return {true, fmt::format("signal {}: {} table(s) taken out of the incremental snapshot", signal.id, removed)};
    }
    if (signal.type == "pause-snapshot" || signal.type == "resume-snapshot") {
      if (!state) return {true, fmt::format("signal {} ({}): no incremental snapshot is under way", signal.id, signal.type)};
      state->paused = signal.type == "pause-snapshot";
      return {true, fmt::format("signal {}: incremental snapshot {}", signal.id, state->paused ? "paused" : "resumed")};
    }
  } catch (const std::exception& e) {
    return refuse(fmt::format("its data is malformed ({})", e.what()));
  }
  return refuse("unknown signal type");
}

IncrementalWindow IncrementalWindow::read(Connection& conn, const IncrementalTable& table,
                                          const state::CapturedTable& captured, uint64_t rows) {
  IncrementalWindow w;
  // Its own transaction: the snapshot the rows are read in, then the insert position after it.
  const SnapshotStart start = beginSnapshot(conn, false);
  try {
    w.cover_ = start.cover;
    w.described_ = describeForSnapshot(conn, captured);
    if (table.surrogate_key && !w.described_.orderBy(*table.surrogate_key)) {
      throw Error(ErrorClass::Config,
                  fmt::format("the incremental snapshot of {}.{} names surrogate-key \"{}\", which is not a column of it",
                              table.schema, table.table, *table.surrogate_key),
                  "name one of its columns, or leave surrogate-key out to use its primary key");
    }
    if (w.described_.key.empty()) {
      throw Error(ErrorClass::Config,
                  fmt::format("{}.{} has no primary key and no replica identity index, so an incremental snapshot "
                              "cannot read it in chunks",
                              table.schema, table.table),
                  "add a primary key, or set REPLICA IDENTITY USING INDEX on a unique index, or give the signal "
                  "a \"surrogate-key\" naming a unique column");
    }
    const size_t width = w.described_.key.size();
    w.until_ = table.until;
    if (!w.until_ || w.until_->size() != width) {
      // The first chunk: where the table ends now.
      Result last = conn.exec(w.described_.lastKeyQuery(), fmt::format("reading the last key of {}.{}", table.schema, table.table));
      if (PQntuples(last.get()) == 0) {
        conn.exec("COMMIT", "ending the chunk's transaction");
        return w;  // empty: done
      }
      std::vector<std::string> until;
      for (size_t i = 0; i < width; ++i) until.emplace_back(PQgetvalue(last.get(), 0, static_cast<int>(i)), PQgetlength(last.get(), 0, static_cast<int>(i)));
      w.until_ = std::move(until);
    }
    std::vector<std::optional<std::string>> params;
    const bool after = table.after && table.after->size() == width;
    if (after) params.assign(table.after->begin(), table.after->end());
    params.insert(params.end(), w.until_->begin(), w.until_->end());
    const std::string sql = w.described_.query(after, true, table.filter, rows);
    Result r = conn.execParams(sql, params, fmt::format("reading a chunk of {}.{}", table.schema, table.table));
    const int n = PQntuples(r.get());
    for (int i = 0; i < n; ++i) {
      SnapshotRow row = snapshotRow(r.get(), i);
      std::string key;
      for (size_t k : w.described_.key) appendKeyPart(key, row[k] ? std::string_view(*row[k]) : std::string_view());
      w.order_.push_back(key);
      if (i + 1 == n) {
        for (size_t k : w.described_.key) w.last_key_.push_back(row[k].value_or(std::string()));
      }
      w.rows_.emplace(std::move(key), std::move(row));
    }
    conn.exec("COMMIT", "ending the chunk's transaction");
  } catch (...) {
    try {
      conn.exec("ROLLBACK", "ending the chunk's transaction");
    } catch (const Error&) {
      // The connection is gone; the transaction with it.
    }
    throw;
  }
  return w;
}

std::optional<std::string> IncrementalWindow::keyOf(const events::Relation& rel, const pgoutput::TupleData& tuple) const {
  std::string key;
  for (size_t k : described_.key) {
    const std::string_view name = described_.message.columns[k].name;
    size_t at = 0;
    while (at < rel.columns.size() && rel.columns[at].name != name) ++at;
    if (at >= rel.columns.size() || at >= tuple.size() || tuple[at].kind != pgoutput::ColumnKind::Text) {
      return std::nullopt;
    }
    appendKeyPart(key, tuple[at].value);
  }
  return key;
}

bool IncrementalWindow::drop(const events::Relation& rel, const pgoutput::TupleData* old_tuple,
                             const pgoutput::TupleData* new_tuple) {
  for (const pgoutput::TupleData* tuple : {old_tuple, new_tuple}) {
    if (tuple == nullptr) continue;
    std::optional<std::string> key = keyOf(rel, *tuple);
    if (!key) return false;
    rows_.erase(*key);
  }
  return true;
}

}  // namespace tidemark::pg
