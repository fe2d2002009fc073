#include "source/postgres/position.h"

#include <charconv>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/error.h"

namespace tidemark::pg {

bool SnapshotCover::covers(uint32_t xid, Lsn commit_lsn) const {
  if (commit_lsn >= through) return false;
  // The stream gives 32-bit ids; xmax is a full one. Within 2^31 of it, as PostgreSQL compares
  // them: at or past xmax, the transaction began after the snapshot.
  const auto distance = static_cast<int32_t>(xid - static_cast<uint32_t>(xmax));
  if (distance >= 0) return false;
  const uint64_t back = static_cast<uint64_t>(-static_cast<int64_t>(distance));
  if (back > xmax) return false;
  const uint64_t full = xmax - back;
  if (full < xmin) return true;
  for (uint64_t running : xip) {
    if (running == full) return false;
  }
  return true;
}

SnapshotCover SnapshotCover::parse(std::string_view text, Lsn through) {
  SnapshotCover c;
  c.through = through;
  auto number = [&](std::string_view s) {
    uint64_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size()) {
      throw Error(ErrorClass::Fatal, fmt::format("unexpected snapshot \"{}\" from pg_current_snapshot()", text));
    }
    return v;
  };
  const size_t a = text.find(':');
  const size_t b = a == std::string_view::npos ? a : text.find(':', a + 1);
  if (b == std::string_view::npos) {
    throw Error(ErrorClass::Fatal, fmt::format("unexpected snapshot \"{}\" from pg_current_snapshot()", text));
  }
  c.xmin = number(text.substr(0, a));
  c.xmax = number(text.substr(a + 1, b - a - 1));
  for (std::string_view rest = text.substr(b + 1); !rest.empty();) {
    const size_t comma = rest.find(',');
    c.xip.push_back(number(rest.substr(0, comma)));
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
  }
  return c;
}

state::SourcePosition encodePosition(const Position& p) {
  nlohmann::ordered_json doc{{"system_identifier", p.system_identifier},
                             {"timeline", p.timeline},
                             {"slot", p.slot},
                             {"lsn", p.lsn.str()}};
  if (p.cover) {
    doc["snapshot_cover"] = {{"xmin", p.cover->xmin},
                             {"xmax", p.cover->xmax},
                             {"xip", p.cover->xip},
                             {"through", p.cover->through.str()}};
  }
  if (p.snapshot_pending) doc["snapshot_pending"] = true;
  if (p.rebuilds > 0) doc["rebuilds"] = p.rebuilds;
  if (p.incremental) {
    auto tables = nlohmann::ordered_json::array();
    for (const IncrementalTable& t : p.incremental->tables) {
      nlohmann::ordered_json entry{{"schema", t.schema}, {"table", t.table}, {"rows", t.rows}};
      if (t.filter) entry["filter"] = *t.filter;
      if (t.surrogate_key) entry["surrogate_key"] = *t.surrogate_key;
      if (t.after) entry["after"] = *t.after;
      if (t.until) entry["until"] = *t.until;
      tables.push_back(std::move(entry));
    }
    doc["incremental"] = {{"id", p.incremental->id},
                          {"paused", p.incremental->paused},
                          {"taken", p.incremental->taken},
                          {"tables", std::move(tables)}};
  }
  if (!p.snapshot_tables.empty()) {
    auto tables = nlohmann::ordered_json::array();
    for (const SnapshotTableState& t : p.snapshot_tables) {
      nlohmann::ordered_json entry{{"schema", t.schema}, {"table", t.table}, {"done", t.done}, {"rows", t.rows}};
      if (t.after) entry["after"] = *t.after;
      if (t.until) entry["until"] = *t.until;
      tables.push_back(std::move(entry));
    }
    doc["snapshot_tables"] = std::move(tables);
  }
  return state::SourcePosition{doc.dump(), p.lsn.str()};
}

Position decodePosition(const state::SourcePosition& stored) {
  Position p;
  try {
    auto doc = nlohmann::json::parse(stored.token);
    p.system_identifier = doc.at("system_identifier").get<std::string>();
    p.timeline = doc.at("timeline").get<uint32_t>();
    p.slot = doc.at("slot").get<std::string>();
    auto lsn = Lsn::parse(doc.at("lsn").get<std::string>());
    if (!lsn) throw std::invalid_argument("lsn is not an LSN");
    p.lsn = *lsn;
    if (doc.contains("snapshot_cover")) {
      const auto& c = doc.at("snapshot_cover");
      SnapshotCover cover;
      cover.xmin = c.at("xmin").get<uint64_t>();
      cover.xmax = c.at("xmax").get<uint64_t>();
      cover.xip = c.at("xip").get<std::vector<uint64_t>>();
      auto through = Lsn::parse(c.at("through").get<std::string>());
      if (!through) throw std::invalid_argument("snapshot_cover.through is not an LSN");
      cover.through = *through;
      p.cover = std::move(cover);
    }
    p.snapshot_pending = doc.value("snapshot_pending", false);
    p.rebuilds = doc.value("rebuilds", 0u);
    if (doc.contains("incremental")) {
      const auto& inc = doc.at("incremental");
      IncrementalState state;
      state.id = inc.at("id").get<std::string>();
      state.paused = inc.at("paused").get<bool>();
      state.taken = inc.value("taken", std::vector<std::string>{});
      for (const auto& entry : inc.at("tables")) {
        IncrementalTable t;
        t.schema = entry.at("schema").get<std::string>();
        t.table = entry.at("table").get<std::string>();
        t.rows = entry.at("rows").get<uint64_t>();
        if (entry.contains("filter")) t.filter = entry.at("filter").get<std::string>();
        if (entry.contains("surrogate_key")) t.surrogate_key = entry.at("surrogate_key").get<std::string>();
        if (entry.contains("after")) t.after = entry.at("after").get<std::vector<std::string>>();
        if (entry.contains("until")) t.until = entry.at("until").get<std::vector<std::string>>();
        state.tables.push_back(std::move(t));
      }
      p.incremental = std::move(state);
    }
    if (doc.contains("snapshot_tables")) {
      for (const auto& entry : doc.at("snapshot_tables")) {
        SnapshotTableState t;
        t.schema = entry.at("schema").get<std::string>();
        t.table = entry.at("table").get<std::string>();
        t.done = entry.at("done").get<bool>();
        t.rows = entry.at("rows").get<uint64_t>();
        if (entry.contains("after")) t.after = entry.at("after").get<std::vector<std::string>>();
        if (entry.contains("until")) t.until = entry.at("until").get<std::vector<std::string>>();
        p.snapshot_tables.push_back(std::move(t));
      }
    }
  } catch (const std::exception& e) {
    throw Error(ErrorClass::Fatal,
                fmt::format("the state store's position \"{}\" is not a PostgreSQL position ({})", stored.token,
                            e.what()),
                "the state directory belongs to another pipeline or was changed by hand; point state_dir at "
                "this pipeline's own, or move it aside and run again, which starts a new slot");
  }
  return p;
}

}  // namespace tidemark::pg
