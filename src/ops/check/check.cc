// The checks that read the source: one plain (non-replication) connection as the pipeline's
// user, catalog queries only, nothing written. What each one looks at and why is in
// src/check/README.md; the thresholds live in rules.cc.
#include "ops/check/check.h"

#include <algorithm>
#include <functional>
#include <iostream>
#include <map>

#include <fmt/format.h>

#include "base/error.h"
#include "core/offset_store.h"
#include "ops/check/rules.h"
#include "source/postgres/capture.h"
#include "postgres/connection.h"
#include "source/postgres/position.h"
#include "source/postgres/replication.h"
#include "source/postgres/source_setup.h"
#include "state/sqlite_store.h"

namespace tidemark::check {

namespace {

struct CheckName {
  std::string id;
  std::string title;
};

// The checks that need the source, in the order they are printed.
std::vector<CheckName> sourceCheckNames(const config::PipelineConfig& cfg) {
  return {
      {"server_version", "server version"},
      {"wal_level", "wal_level"},
      {"replication_capacity", "replication slots and WAL senders"},
      {"encoding", "database encoding"},
      {"role_privileges", "role privileges"},
      {"publication", fmt::format("publication \"{}\"", cfg.source.publication)},
      {"captured_tables", "captured tables"},
      {"slot", fmt::format("slot \"{}\"", cfg.source.slot)},
      {"stored_position", "stored position vs slot"},
      {"heartbeat_table", fmt::format("heartbeat table {}", cfg.heartbeat.table.str())},
      {"signal_table", fmt::format("signal table {}", cfg.signal.table.str())},
      {"retention_guard", "WAL retention guard"},
      {"wal_sender_timeout", "wal_sender_timeout"},
      {"replica_identity", "replica identity of the captured tables"},
  };
}

class SourceChecks {
 public:
  SourceChecks(const config::PipelineConfig& cfg, pg::Connection& conn) : cfg_(cfg), conn_(conn) {}

  std::vector<CheckResult> run() {
    user_ = text("SELECT current_user", {}).value_or("");
    database_ = text("SELECT current_database()", {}).value_or("");
    rds_ = text("SELECT current_setting('rds.logical_replication', true)", {}).has_value();
    // The slot is read once, so that every check judges the same moment.
    try {
      slot_ = pg::querySlot(conn_, cfg_.source.slot);
    } catch (const Error&) {
      // Reported by the slot check, which reads it again and shows the error.
    }
    const std::map<std::string, std::function<CheckResult()>> checks = {
        {"server_version", [&] { return serverVersion(); }},
        {"wal_level", [&] { return walLevel(); }},
        {"replication_capacity", [&] { return capacity(); }},
        {"encoding", [&] { return encoding(); }},
        {"role_privileges", [&] { return rolePrivileges(); }},
        {"publication", [&] { return publication(); }},
        {"captured_tables", [&] { return capturedTables(); }},
        {"slot", [&] { return slot(); }},
        {"stored_position", [&] { return storedPosition(); }},
        {"heartbeat_table", [&] { return heartbeatTable(); }},
        {"signal_table", [&] { return signalTable(); }},
        {"retention_guard", [&] { return retentionGuard(); }},
        {"wal_sender_timeout", [&] { return walSenderTimeout(); }},
        {"replica_identity", [&] { return replicaIdentity(); }},
    };
    std::vector<CheckResult> out;
    for (const auto& name : sourceCheckNames(cfg_)) out.push_back(guarded(name, checks.at(name.id)));
    return out;
  }

  std::string publicationTitle() const { return fmt::format("publication \"{}\"", cfg_.source.publication); }
  std::string slotTitle() const { return fmt::format("slot \"{}\"", cfg_.source.slot); }
  std::string heartbeatTitle() const { return fmt::format("heartbeat table {}", cfg_.heartbeat.table.str()); }
  std::string signalTitle() const { return fmt::format("signal table {}", cfg_.signal.table.str()); }

 private:
  using Params = std::vector<std::optional<std::string>>;

  // A query that fails (a missing privilege on a catalog view, an old server without a
  // column) fails its own check, with the server's words, and the other checks still run.
  static CheckResult guarded(const CheckName& name, const std::function<CheckResult()>& fn) {
    CheckResult r;
    try {
      r = fn();
    } catch (const Error& e) {
      r = CheckResult{name.id, name.title, Outcome::Fail, fmt::format("could not check: {}", e.what()),
                      e.hint().empty() ? "the check needs read access to the system catalogs; see "
                                         "the error"
                                       : e.hint()};
    } catch (const std::exception& e) {
      r = CheckResult{name.id, name.title, Outcome::Fail,
                      fmt::format("could not check: unexpected answer from the server: {}", e.what()),
                      "report this as a tidemark bug, with the server version"};
    }
    r.id = name.id;
    r.title = name.title;
    return r;
  }

  static CheckResult make(const char* id, std::string title, Outcome outcome, std::string saw,
                          std::string fix = {}) {
    return CheckResult{id, std::move(title), outcome, std::move(saw), std::move(fix)};
  }

  pg::Result query(const std::string& sql, const Params& params) {
    return conn_.execParams(sql, params, "tidemark check");
  }
  std::optional<std::string> text(const std::string& sql, const Params& params) {
    pg::Result r = query(sql, params);
    if (PQntuples(r.get()) == 0) return std::nullopt;
    return pg::value(r.get(), 0, 0);
  }
  // pg_settings.setting, in the setting's base unit (MB for sizes such as
  // max_slot_wal_keep_size, ms for wal_sender_timeout).
  int64_t settingNumber(const std::string& name) {
    auto v = text("SELECT setting FROM pg_settings WHERE name = $1", {name});
    if (!v) throw Error(ErrorClass::Fatal, fmt::format("the server has no setting {}", name));
    return std::stoll(*v);
  }

  std::string ident(const std::string& name) const { return conn_.quoteIdentifier(name); }
  std::string table(const config::TableName& t) const { return ident(t.schema) + "." + ident(t.table); }
  std::string literal(const std::string& s) const { return conn_.quoteLiteral(s); }

  CheckResult serverVersion() {
    pg::Result r = query("SELECT current_setting('server_version'), pg_is_in_recovery()", {});
    return judgeServerVersion(conn_.serverVersion(), pg::value(r.get(), 0, 0).value_or("?"),
                              pg::value(r.get(), 0, 1) == "t");
  }

  CheckResult walLevel() {
    pg::Result r = query("SELECT setting, pending_restart FROM pg_settings WHERE name = 'wal_level'", {});
    WalLevelFacts f;
    f.wal_level = pg::value(r.get(), 0, 0).value_or("?");
    f.pending_restart = pg::value(r.get(), 0, 1) == "t";
    f.rds = rds_;
    return judgeWalLevel(f);
  }

  CheckResult capacity() {
    pg::Result r = query(
        "SELECT current_setting('max_replication_slots')::int, "
        "(SELECT count(*) FROM pg_replication_slots)::int, "
        "current_setting('max_wal_senders')::int, "
        "(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'walsender')::int",
        {});
    CapacityFacts f;
    f.max_replication_slots = std::stoi(pg::value(r.get(), 0, 0).value_or("0"));
    f.slots_used = std::stoi(pg::value(r.get(), 0, 1).value_or("0"));
    f.max_wal_senders = std::stoi(pg::value(r.get(), 0, 2).value_or("0"));
    f.senders_active = std::stoi(pg::value(r.get(), 0, 3).value_or("0"));
    f.slot_exists = slot_.has_value();
    f.slot_active = slot_ && slot_->active_pid.has_value();
    pg::Result idle = query(
        "SELECT slot_name FROM pg_replication_slots WHERE NOT active AND slot_name <> $1 ORDER BY 1",
        {cfg_.source.slot});
    for (int i = 0; i < PQntuples(idle.get()); ++i) {
      f.inactive_slots.push_back(pg::value(idle.get(), i, 0).value_or(""));
    }
    return judgeCapacity(f);
  }

  CheckResult rolePrivileges() {
    pg::Result r = query(
        "SELECT rolsuper, rolreplication, CASE WHEN EXISTS (SELECT 1 FROM pg_roles WHERE rolname = "
        "'rds_replication') THEN pg_has_role(current_user, 'rds_replication', 'MEMBER') ELSE false "
        "END FROM pg_roles WHERE rolname = current_user",
        {});
    const bool super = pg::value(r.get(), 0, 0) == "t";
    const bool replication = pg::value(r.get(), 0, 1) == "t";
    const bool rds_replication = pg::value(r.get(), 0, 2) == "t";
    std::vector<std::string> problems;
    std::vector<std::string> fixes;
    std::string how = super ? "superuser" : replication ? "REPLICATION" : rds_replication ? "member of rds_replication" : "";
    if (how.empty()) {
      problems.push_back("the role has neither REPLICATION nor superuser, so it cannot open a replication connection");
      fixes.push_back(rds_ ? fmt::format("GRANT rds_replication TO {};", ident(user_))
                           : fmt::format("ALTER ROLE {} WITH REPLICATION;", ident(user_)));
    }
    for (const auto& t : cfg_.source.tables) {
      pg::Result p = query(
          "SELECT n.oid IS NOT NULL, CASE WHEN n.oid IS NOT NULL THEN has_schema_privilege(n.oid, 'USAGE') END, "
          "c.oid IS NOT NULL, CASE WHEN c.oid IS NOT NULL THEN has_table_privilege(c.oid, 'SELECT') END "
          "FROM (SELECT $1::text AS s, $2::text AS t) x "
          "LEFT JOIN pg_namespace n ON n.nspname = x.s "
          "LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = x.t AND c.relkind IN ('r', 'p')",
          {t.schema, t.table});
      if (pg::value(p.get(), 0, 2) != "t") continue;  // the captured_tables check says so
      if (pg::value(p.get(), 0, 1) != "t") {
        problems.push_back(fmt::format("no USAGE on schema {}", t.schema));
        fixes.push_back(fmt::format("GRANT USAGE ON SCHEMA {} TO {};", ident(t.schema), ident(user_)));
      }
      if (pg::value(p.get(), 0, 3) != "t") {
        problems.push_back(fmt::format("no SELECT on {} (snapshots and verify read it)", t.str()));
        fixes.push_back(fmt::format("GRANT SELECT ON {} TO {};", table(t), ident(user_)));
      }
    }
    std::string saw = fmt::format("role \"{}\"{}", user_, how.empty() ? "" : " (" + how + ")");
    if (problems.empty()) {
      return make("role_privileges", "role privileges", Outcome::Pass,
                  fmt::format("{}; USAGE and SELECT on the captured tables that exist", saw));
    }
    return make("role_privileges", "role privileges", Outcome::Fail, saw + ": " + join(problems, "; "),
                "as a superuser: " + join(dedupe(fixes), " "));
  }

  // Whether `t` exists as a table.
  bool tableExists(const config::TableName& t) {
    return text("SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')",
                {t.schema, t.table})
        .has_value();
  }

  CheckResult publication() {
    const auto& src = cfg_.source;
    const std::string title = publicationTitle();
    const std::string pub = ident(src.publication);
    const bool heartbeat_table = cfg_.heartbeat.mode == "table" && tableExists(cfg_.heartbeat.table);
    const bool signal_table = tableExists(cfg_.signal.table);
    pg::Result r = query(
        "SELECT puballtables, pubinsert, pubupdate, pubdelete, pubtruncate, pg_get_userbyid(pubowner) "
        "FROM pg_publication WHERE pubname = $1",
        {src.publication});
    if (PQntuples(r.get()) == 0) {
      std::vector<config::TableName> tables = src.tables;
      if (heartbeat_table) tables.push_back(cfg_.heartbeat.table);
      if (signal_table) tables.push_back(cfg_.signal.table);
      std::string create = fmt::format("CREATE PUBLICATION {} FOR TABLE {};", pub, tableList(tables));
      if (src.create_publication && !src.read_only) {
        return make("publication", title, Outcome::Warn,
                    "does not exist; tidemark run creates it for source.tables, which needs CREATE "
                    "on the database and ownership of the tables",
                    fmt::format("none if the role may create it; otherwise, as the tables' owner: {}", create));
      }
      return make("publication", title, Outcome::Fail,
                  fmt::format("does not exist, and {} forbids creating it",
                              src.read_only ? "source.read_only" : "source.create_publication: false"),
                  fmt::format("as the tables' owner: {}", create));
    }
    const bool all_tables = pg::value(r.get(), 0, 0) == "t";
    const std::string owner = pg::value(r.get(), 0, 5).value_or("?");
    std::vector<std::string> unpublished_ops;
    const char* ops[] = {"insert", "update", "delete", "truncate"};
    for (int i = 0; i < 4; ++i) {
      if (pg::value(r.get(), 0, i + 1) != "t") unpublished_ops.push_back(ops[i]);
    }
    pg::Result covered = query("SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = $1",
                               {src.publication});
    auto isCovered = [&](const config::TableName& t) {
      for (int i = 0; i < PQntuples(covered.get()); ++i) {
        if (pg::value(covered.get(), i, 0) == t.schema && pg::value(covered.get(), i, 1) == t.table) return true;
      }
      return false;
    };
    // Whether it sends the captured tables is the captured_tables check's.
    std::vector<config::TableName> missing_own;  // tidemark's own tables: degrade, not break
    std::vector<std::string> notes;
    if (heartbeat_table && !isCovered(cfg_.heartbeat.table)) {
      missing_own.push_back(cfg_.heartbeat.table);
      notes.push_back(fmt::format("heartbeat table {} is not in it, so its rows never reach tidemark "
                                  "(Layer 2 heartbeats and lag are off)",
                                  cfg_.heartbeat.table.str()));
    }
    if (signal_table && !isCovered(cfg_.signal.table)) {
      missing_own.push_back(cfg_.signal.table);
      notes.push_back(fmt::format("signal table {} is not in it, so signals are never seen",
                                  cfg_.signal.table.str()));
    }
    if (!unpublished_ops.empty()) {
      notes.push_back(fmt::format("it does not publish {}, so those changes are never captured",
                                  join(unpublished_ops, ", ")));
    }
    std::string saw = fmt::format("owner {}, {}", owner,
                                  all_tables ? "FOR ALL TABLES"
                                             : fmt::format("{} tables", PQntuples(covered.get())));
    std::vector<std::string> fixes;
    if (!missing_own.empty()) {
      fixes.push_back(all_tables
                          ? fmt::format("a FOR ALL TABLES publication covers every existing table; "
                                        "create the missing ones: {}",
                                        tableList(missing_own))
                          : fmt::format("ALTER PUBLICATION {} ADD TABLE {};", pub, tableList(missing_own)));
    }
    if (!unpublished_ops.empty()) {
      fixes.push_back(fmt::format("ALTER PUBLICATION {} SET (publish = 'insert, update, delete, truncate');", pub));
    }
    if (!notes.empty()) {
      return make("publication", title, Outcome::Warn, saw + "; " + join(notes, "; "),
                  fmt::format("as the publication's owner ({}): {}", owner, join(fixes, " ")));
    }
    std::string own;
    if (heartbeat_table) own += "; covers the heartbeat table";
    if (signal_table) own += heartbeat_table ? " and the signal table" : "; covers the signal table";
    return make("publication", title, Outcome::Pass, saw + own);
  }

  // The same verdicts as `tidemark run` reaches at start (pipeline/capture.h).
  CheckResult capturedTables() {
    std::vector<state::CapturedTable> stored;
    try {
      stored = state::readCapture(cfg_.state_dir);
    } catch (const Error&) {
      // The stored-position check reports an unreadable store.
    }
    pg::CaptureFacts facts = pg::readCaptureFacts(conn_, cfg_, stored);
    std::vector<pg::CaptureProblem> problems = pg::judgeCapture(facts, cfg_);
    const std::string title = "captured tables";
    if (problems.empty()) {
      size_t partitioned = 0;
      for (const auto& f : facts.tables) partitioned += f.partitioned ? 1 : 0;
      return make("captured_tables", title, Outcome::Pass,
                  fmt::format("publication \"{}\" sends all {} captured tables{}{}", cfg_.source.publication,
                              facts.tables.size(),
                              partitioned > 0 ? fmt::format(" ({} partitioned, via the partition root)", partitioned)
                                              : "",
                              stored.empty() ? "" : "; each is the relation captured before"));
    }
    std::vector<std::string> what, fixes;
    bool lost = false;
    for (const auto& p : problems) {
      what.push_back(p.what);
      fixes.push_back(p.fix);
      lost = lost || p.cls == ErrorClass::PositionLost;
    }
    return make("captured_tables", title, Outcome::Fail,
                join(what, "\n") + (lost ? "\n(tidemark run stops with exit 3)" : "\n(tidemark run refuses to start)"),
                join(dedupe(fixes), "\n"));
  }

  CheckResult encoding() {
    pg::Result r = query("SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = current_database()", {});
    const std::string enc = pg::value(r.get(), 0, 0).value_or("?");
    const std::string title = "database encoding";
    if (enc == "SQL_ASCII") {
      return make("encoding", title, Outcome::Warn,
                  fmt::format("database \"{}\" is SQL_ASCII: the server stores text bytes unchecked "
                              "and cannot convert them to UTF-8, so a value with bytes that are not "
                              "UTF-8 {}",
                              database_,
                              cfg_.source.invalid_utf8 == "escape"
                                  ? "is written with \\udcXX escapes (source.invalid_utf8: escape)"
                                  : "stops the pipeline with an error naming the row"),
                  cfg_.source.invalid_utf8 == "escape"
                      ? "none needed; consumers must read lone surrogates (\\udcXX) as the original bytes"
                      : "if the data is in one known encoding, move it to a database of that encoding; "
                        "or set source.invalid_utf8: escape to pass such bytes on as \\udcXX escapes");
    }
    return make("encoding", title, Outcome::Pass,
                enc == "UTF8" ? std::string("UTF8")
                              : fmt::format("{}; the server converts text to UTF-8 for tidemark", enc));
  }

  CheckResult slot() {
    const auto& src = cfg_.source;
    const std::string title = slotTitle();
    std::optional<pg::Position> stored;
    try {
      if (auto saved = state::readPosition(cfg_.state_dir)) stored = pg::decodePosition(saved->source);
    } catch (const Error&) {
      // The stored-position check reports an unreadable store.
    }
    std::optional<pg::SlotInfo> s = pg::querySlot(conn_, src.slot);
    if (!s) {
      std::string create = fmt::format("SELECT pg_create_logical_replication_slot({}, 'pgoutput');", literal(src.slot));
      if (stored) {
        return make("slot", title, Outcome::Fail,
                    fmt::format("does not exist, but the state directory holds position {} in it "
                                "(see stored position)",
                                stored->lsn.str()),
                    pg::kLostPositionFix);
      }
      if (src.create_slot) {
        return make("slot", title, Outcome::Warn,
                    "does not exist; tidemark run creates it, and captures what is committed from then on",
                    fmt::format("none needed; to start capturing now: {}", create));
      }
      return make("slot", title, Outcome::Fail,
                  "does not exist, and source.create_slot is false",
                  fmt::format("{} or set source.create_slot: true", create));
    }
    pg::Result r = query(
        "SELECT s.safe_wal_size, pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN "
        "pg_last_wal_receive_lsn() ELSE pg_current_wal_lsn() END, s.restart_lsn)::bigint, "
        "a.application_name, a.usename, a.client_addr::text, a.backend_type "
        "FROM pg_replication_slots s LEFT JOIN pg_stat_activity a ON a.pid = s.active_pid "
        "WHERE s.slot_name = $1",
        {src.slot});
    if (PQntuples(r.get()) == 0) {
      return make("slot", title, Outcome::Fail, "was dropped while being checked", "run the check again");
    }
    auto v = [&](int col) { return pg::value(r.get(), 0, col); };
    std::optional<int64_t> safe_wal_size;
    if (auto x = v(0)) safe_wal_size = std::stoll(*x);
    std::optional<int64_t> retained;
    if (auto x = v(1)) retained = std::stoll(*x);

    std::string saw = fmt::format("{} slot, plugin {}, database {}", s->slot_type, s->plugin, s->database);
    saw += fmt::format("; wal_status {}", s->wal_status.value_or("-"));
    saw += fmt::format("; restart_lsn {}, confirmed_flush_lsn {}",
                       s->restart_lsn ? s->restart_lsn->str() : "-",
                       s->confirmed_flush_lsn ? s->confirmed_flush_lsn->str() : "-");
    if (retained) saw += fmt::format("; retains {} of WAL", bytesText(*retained));
    saw += safe_wal_size ? fmt::format("; safe_wal_size {}", bytesText(*safe_wal_size))
                         : "; safe_wal_size unlimited (max_slot_wal_keep_size = -1)";

    if (s->slot_type != "logical" || s->plugin != "pgoutput") {
      return make("slot", title, Outcome::Fail,
                  saw + ": tidemark needs a logical slot with the pgoutput plugin",
                  fmt::format("give source.slot another name, or, if nothing else uses it: "
                              "SELECT pg_drop_replication_slot({});",
                              literal(src.slot)));
    }
    if (s->database != database_) {
      return make("slot", title, Outcome::Fail,
                  saw + fmt::format(": it belongs to database \"{}\", but source.dsn connects to \"{}\"",
                                    s->database, database_),
                  "point source.dsn at the slot's database, or give source.slot another name");
    }
    if (s->wal_status == "lost") {
      return make("slot", title, Outcome::Fail,
                  saw + ": invalidated, the server removed WAL it still needed (max_slot_wal_keep_size)",
                  pg::kLostPositionFix);
    }
    if (s->active_pid) {
      const std::string app = v(2).value_or("");
      const bool own_run = app == "tidemark" && state::readStatus(cfg_.state_dir).running;
      std::string holder = fmt::format("pid {}, application_name \"{}\"", *s->active_pid, app);
      if (auto u = v(3)) holder += fmt::format(", user {}", *u);
      if (auto a = v(4)) holder += fmt::format(", from {}", *a);
      if (own_run) {
        saw += fmt::format("; held by this pipeline's running tidemark ({})", holder);
      } else {
        return make("slot", title, Outcome::Fail,
                    saw + fmt::format("; held by another process ({}): tidemark run is refused "
                                      "with \"replication slot is active\" while it holds it",
                                      holder),
                    fmt::format("stop that client (two consumers of one slot each miss what the "
                                "other confirmed); if it is a leftover: SELECT pg_terminate_backend({});",
                                *s->active_pid));
      }
    } else {
      saw += "; not in use";
    }
    if (s->wal_status == "unreserved") {
      return make("slot", title, Outcome::Warn,
                  saw + ": past max_wal_size and about to be invalidated at a checkpoint",
                  "get the pipeline running so the slot advances (tidemark status -c FILE), or raise "
                  "max_slot_wal_keep_size: ALTER SYSTEM SET max_slot_wal_keep_size = '<larger>'; "
                  "SELECT pg_reload_conf();");
    }
    if (s->wal_status == "extended") {
      return make("slot", title, Outcome::Warn,
                  saw + ": it retains more WAL than max_wal_size",
                  "get the pipeline running so the slot advances (tidemark status -c FILE); if it "
                  "is running, find what holds it back");
    }
    return make("slot", title, Outcome::Pass, saw);
  }

  std::string systemIdentifier() {
    try {
      return text("SELECT system_identifier::text FROM pg_control_system()", {}).value_or("");
    } catch (const pg::ServerError& e) {
      if (e.sqlstate() != "42501") throw;
    }
    // pg_control_system() may be revoked; IDENTIFY_SYSTEM, what tidemark run compares, is not.
    pg::ConnectOptions o = options(cfg_);
    pg::ReplicationStream stream = pg::ReplicationStream::open(o);
    return stream.identifySystem().system_identifier;
  }

  CheckResult storedPosition() {
    std::optional<pg::Position> stored;
    try {
      if (auto saved = state::readPosition(cfg_.state_dir)) stored = pg::decodePosition(saved->source);
    } catch (const Error& e) {
      return make("stored_position", "stored position vs slot", Outcome::Fail,
                  fmt::format("cannot read the state store: {}", e.what()),
                  fmt::format("check that {} is the pipeline's state_dir and readable", cfg_.state_dir.string()));
    }
    std::optional<SlotPosition> slot;
    std::optional<pg::SlotInfo> s = pg::querySlot(conn_, cfg_.source.slot);
    if (s) slot = SlotPosition{s->confirmed_flush_lsn, s->wal_status};
    std::string sysid = stored ? systemIdentifier() : std::string();
    return judgeStoredPosition(stored, cfg_.source.slot, sysid, slot);
  }

  std::string heartbeatGrants(bool write) const {
    const auto& t = cfg_.heartbeat.table;
    return fmt::format("GRANT USAGE ON SCHEMA {} TO {}; GRANT {} ON {} TO {};", ident(t.schema), ident(user_),
                       write ? "SELECT, INSERT, UPDATE" : "SELECT", table(t), ident(user_));
  }

  std::string cronSchedule() const {
    const std::string schedule = pg::heartbeatCronSchedule(cfg_.heartbeat.interval);
    return fmt::format("SELECT cron.schedule_in_database({}, {}, {}, {});",
                       literal("tidemark-heartbeat-" + cfg_.name), literal(schedule),
                       literal(pg::heartbeatUpsertSql(cfg_.heartbeat.table, cfg_.name)),
                       literal(database_));
  }

  CheckResult heartbeatTable() {
    const auto& hb = cfg_.heartbeat;
    const std::string title = heartbeatTitle();
    const bool read_only = cfg_.source.read_only;
    if (hb.mode != "table") {
      return make("heartbeat_table", title, Outcome::Pass,
                  fmt::format("not used: heartbeat.mode is {}", hb.mode));
    }
    const auto& t = hb.table;
    pg::Result r = query(
        "SELECT n.oid IS NOT NULL, c.oid IS NOT NULL, "
        "CASE WHEN n.oid IS NOT NULL THEN has_schema_privilege(n.oid, 'USAGE') END, "
        "CASE WHEN c.oid IS NOT NULL THEN has_table_privilege(c.oid, 'SELECT') END, "
        "CASE WHEN c.oid IS NOT NULL THEN has_table_privilege(c.oid, 'INSERT') END, "
        "CASE WHEN c.oid IS NOT NULL THEN has_table_privilege(c.oid, 'UPDATE') END, "
        "CASE WHEN n.oid IS NOT NULL THEN has_schema_privilege(n.oid, 'CREATE') "
        "ELSE has_database_privilege(current_database(), 'CREATE') END "
        "FROM (SELECT $1::text AS s, $2::text AS t) x "
        "LEFT JOIN pg_namespace n ON n.nspname = x.s "
        "LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = x.t AND c.relkind IN ('r', 'p')",
        {t.schema, t.table});
    auto flag = [&](int col) { return pg::value(r.get(), 0, col) == "t"; };
    const bool exists = flag(1);
    const bool usage = flag(2), select = flag(3), insert = flag(4), update = flag(5), create = flag(6);
    const std::string ddl = pg::heartbeatTableDdl(t);
    const std::string off = "; or set heartbeat.mode: message (no table needed) or off";

    if (!exists) {
      if (read_only) {
        return make("heartbeat_table", title, Outcome::Fail,
                    "does not exist, and source.read_only forbids tidemark to create it: Layer 2 "
                    "heartbeats and the lag measurement are off",
                    fmt::format("on the primary, as an administrator: {} {} ALTER PUBLICATION {} ADD TABLE {}; {}{}",
                                ddl, heartbeatGrants(false), ident(cfg_.source.publication), table(t),
                                cronSchedule(), off));
      }
      if (create) {
        return make("heartbeat_table", title, Outcome::Warn,
                    "does not exist; tidemark run creates it and adds it to the publication",
                    fmt::format("none needed; to create it now: {} {}", ddl, heartbeatGrants(true)));
      }
      return make("heartbeat_table", title, Outcome::Fail,
                  fmt::format("does not exist, and role \"{}\" may not create it (no CREATE on {}): "
                              "tidemark runs without Layer 2 heartbeats",
                              user_, t.schema),
                  fmt::format("as an administrator: {} {}{}", ddl, heartbeatGrants(true), off));
    }

    std::vector<std::string> missing;
    if (!usage) missing.push_back(fmt::format("USAGE on schema {}", t.schema));
    if (!select) missing.push_back("SELECT");
    if (!read_only && !insert) missing.push_back("INSERT");
    if (!read_only && !update) missing.push_back("UPDATE");
    if (!missing.empty()) {
      return make("heartbeat_table", title, Outcome::Fail,
                  fmt::format("exists, but role \"{}\" lacks {} on it, so {}", user_, join(missing, ", "),
                              read_only ? "tidemark cannot read the heartbeat row"
                                        : "tidemark cannot write its heartbeat row (Layer 2 "
                                          "heartbeats and the lag measurement are off)"),
                  fmt::format("as the table's owner: {}{}", heartbeatGrants(!read_only), off));
    }

    std::string saw = fmt::format("exists; role \"{}\" may {}", user_, read_only ? "read it" : "write it");
    pg::Result row = query(fmt::format("SELECT ts::text, (extract(epoch FROM now() - ts) * 1000)::bigint "
                                       "FROM {} WHERE pipeline = $1",
                                       table(t)),
                           {cfg_.name});
    const int64_t interval_ms = hb.interval.count();
    const bool running = state::readStatus(cfg_.state_dir).running;
    std::optional<int64_t> age_ms;
    if (PQntuples(row.get()) == 0) {
      saw += fmt::format("; no row for pipeline \"{}\" yet", cfg_.name);
    } else {
      age_ms = std::stoll(pg::value(row.get(), 0, 1).value_or("0"));
      saw += fmt::format("; row written at {} ({} s ago)", pg::value(row.get(), 0, 0).value_or("?"),
                         *age_ms / 1000);
    }

    if (!read_only) {
      if (running && (!age_ms || *age_ms > 2 * interval_ms)) {
        return make("heartbeat_table", title, Outcome::Warn,
                    saw + fmt::format(": the pipeline is running but the row is not advancing "
                                      "(older than 2 x heartbeat.interval = {} s)",
                                      2 * interval_ms / 1000),
                    "look for heartbeat warnings in tidemark's log and the `heartbeat` section of "
                    "tidemark status -c FILE (with heartbeat.hibernate, writes pause while captured "
                    "tables change)");
      }
      if (!running) saw += "; tidemark run writes it every heartbeat.interval";
      return make("heartbeat_table", title, Outcome::Pass, saw);
    }

    // Read-only: a job on the primary writes the row; it must exist and succeed.
    std::string cron = cronFindings();
    saw += "; " + cron;
    if (!age_ms || *age_ms > 2 * interval_ms) {
      return make("heartbeat_table", title, Outcome::Warn,
                  saw + fmt::format(": the heartbeat is not advancing (no write within 2 x "
                                    "heartbeat.interval = {} s)",
                                    2 * interval_ms / 1000),
                  fmt::format("on the primary, in the pg_cron database, schedule the write: {} and "
                              "check its runs: SELECT status, return_message, start_time FROM "
                              "cron.job_run_details ORDER BY start_time DESC LIMIT 5;",
                              cronSchedule()));
    }
    if (cron_problem_) {
      return make("heartbeat_table", title, Outcome::Warn, saw,
                  fmt::format("check the job: SELECT * FROM cron.job_run_details WHERE jobid = {} "
                              "ORDER BY start_time DESC LIMIT 5;",
                              cron_jobid_.value_or("<jobid>")));
    }
    return make("heartbeat_table", title, Outcome::Pass, saw);
  }

  // What pg_cron says about the job that writes the heartbeat row (read-only pipelines).
  std::string cronFindings() {
    const auto cron_db = text("SELECT current_setting('cron.database_name', true)", {});
    const bool here = text("SELECT to_regclass('cron.job')::text", {}).value_or("").size() > 0;
    if (!here) {
      if (cron_db && *cron_db != database_) {
        return fmt::format("pg_cron runs in database \"{}\"; its jobs are not visible from here "
                           "(check there: SELECT jobid, command FROM cron.job)",
                           *cron_db);
      }
      return "pg_cron is not installed in this database: something else must write the row";
    }
    try {
      pg::Result jobs = query("SELECT jobid::text, schedule, active FROM cron.job WHERE command ILIKE '%' || $1 || '%' "
                              "ORDER BY jobid LIMIT 1",
                              {cfg_.heartbeat.table.table});
      if (PQntuples(jobs.get()) == 0) {
        cron_problem_ = true;
        return "no pg_cron job writing the table is visible to this role (cron.job shows a role its own jobs)";
      }
      cron_jobid_ = pg::value(jobs.get(), 0, 0);
      std::string out = fmt::format("pg_cron job {} ({}{})", cron_jobid_.value_or("?"),
                                    pg::value(jobs.get(), 0, 1).value_or("?"),
                                    pg::value(jobs.get(), 0, 2) == "t" ? "" : ", inactive");
      if (pg::value(jobs.get(), 0, 2) != "t") cron_problem_ = true;
      pg::Result runs = query("SELECT status, coalesce(return_message, '') FROM cron.job_run_details "
                              "WHERE jobid = $1::bigint ORDER BY start_time DESC LIMIT 3",
                              {cron_jobid_});
      int failed = 0;
      std::string last_error;
      for (int i = 0; i < PQntuples(runs.get()); ++i) {
        if (pg::value(runs.get(), i, 0) == "failed") {
          ++failed;
          if (last_error.empty()) last_error = pg::value(runs.get(), i, 1).value_or("");
        }
      }
      if (PQntuples(runs.get()) == 0) return out + ", no runs recorded yet";
      if (failed > 0) {
        cron_problem_ = true;
        return out + fmt::format(", {} of its last {} runs failed: {}", failed, PQntuples(runs.get()), last_error);
      }
      return out + fmt::format(", its last {} runs succeeded", PQntuples(runs.get()));
    } catch (const pg::ServerError& e) {
      cron_problem_ = true;
      return fmt::format("cannot read pg_cron's tables: {}", e.what());
    }
  }

  CheckResult signalTable() {
    const auto& t = cfg_.signal.table;
    const std::string title = signalTitle();
    const bool read_only = cfg_.source.read_only;
    pg::Result r = query(
        "SELECT c.oid IS NOT NULL, "
        "CASE WHEN n.oid IS NOT NULL THEN has_schema_privilege(n.oid, 'USAGE') END, "
        "CASE WHEN c.oid IS NOT NULL THEN has_table_privilege(c.oid, 'SELECT') END, "
        "CASE WHEN c.oid IS NOT NULL THEN has_table_privilege(c.oid, 'INSERT') END, "
        "CASE WHEN c.oid IS NOT NULL THEN has_table_privilege(c.oid, 'UPDATE') END "
        "FROM (SELECT $1::text AS s, $2::text AS t) x "
        "LEFT JOIN pg_namespace n ON n.nspname = x.s "
        "LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = x.t AND c.relkind IN ('r', 'p')",
        {t.schema, t.table});
    auto flag = [&](int col) { return pg::value(r.get(), 0, col) == "t"; };
    const std::string grants =
        fmt::format("GRANT USAGE ON SCHEMA {} TO {}; GRANT {} ON {} TO {};", ident(t.schema), ident(user_),
                    read_only ? "SELECT" : "SELECT, INSERT, UPDATE", table(t), ident(user_));
    if (!flag(0)) {
      return make("signal_table", title, Outcome::Warn,
                  "does not exist: signals (incremental snapshot requests) cannot be sent to this pipeline",
                  fmt::format("as an administrator (tidemark setup prints the same): {} {} ALTER PUBLICATION {} ADD TABLE {};",
                              pg::signalTableDdl(t), grants, ident(cfg_.source.publication), table(t)));
    }
    std::vector<std::string> missing;
    if (!flag(1)) missing.push_back(fmt::format("USAGE on schema {}", t.schema));
    if (!flag(2)) missing.push_back("SELECT");
    if (!read_only && !flag(3)) missing.push_back("INSERT");
    if (!read_only && !flag(4)) missing.push_back("UPDATE");
    if (!missing.empty()) {
      return make("signal_table", title, Outcome::Warn,
                  fmt::format("exists, but role \"{}\" lacks {} on it", user_, join(missing, ", ")),
                  fmt::format("as the table's owner: {}", grants));
    }
    return make("signal_table", title, Outcome::Pass,
                fmt::format("exists; role \"{}\" may {} it", user_, read_only ? "read" : "read and write"));
  }

  CheckResult retentionGuard() {
    RetentionFacts f;
    f.max_slot_wal_keep_size_mb = settingNumber("max_slot_wal_keep_size");
    f.wal_keep_size_mb = settingNumber("wal_keep_size");
    f.rds = rds_;
    if (slot_) {
      auto v = text("SELECT pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() "
                    "ELSE pg_current_wal_lsn() END, restart_lsn)::bigint FROM pg_replication_slots "
                    "WHERE slot_name = $1",
                    {cfg_.source.slot});
      if (v) f.retained_bytes = std::stoll(*v);
    }
    return judgeRetentionGuard(f);
  }

  CheckResult walSenderTimeout() {
    return judgeWalSenderTimeout(settingNumber("wal_sender_timeout"), cfg_.source.status_interval, rds_);
  }

  CheckResult replicaIdentity() {
    std::vector<std::string> problems;
    std::vector<std::string> fixes;
    std::vector<std::string> full;
    for (const auto& t : cfg_.source.tables) {
      // A usable replica identity index: unique, immediate, not partial, no expressions, and
      // every column NOT NULL (PostgreSQL's own rule for REPLICA IDENTITY USING INDEX).
      pg::Result r = query(
          "SELECT c.relreplident, EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary), "
          "(SELECT ic.relname FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid "
          " WHERE i.indrelid = c.oid AND i.indisunique AND i.indimmediate AND i.indpred IS NULL "
          " AND i.indexprs IS NULL AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid "
          " AND a.attnum = ANY (i.indkey) AND NOT a.attnotnull) ORDER BY ic.relname LIMIT 1) "
          "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
          "WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')",
          {t.schema, t.table});
      if (PQntuples(r.get()) == 0) continue;  // missing tables: the role_privileges check
      const std::string ident_kind = pg::value(r.get(), 0, 0).value_or("d");
      const bool pk = pg::value(r.get(), 0, 1) == "t";
      const auto index = pg::value(r.get(), 0, 2);
      if (ident_kind == "f") full.push_back(t.str());
      const bool no_identity = ident_kind == "n" || (ident_kind == "d" && !pk);
      if (!no_identity) continue;
      problems.push_back(fmt::format("{} ({})", t.str(),
                                     ident_kind == "n" ? "REPLICA IDENTITY NOTHING"
                                                       : "no primary key, REPLICA IDENTITY DEFAULT"));
      fixes.push_back(index ? fmt::format("ALTER TABLE {} REPLICA IDENTITY USING INDEX {};", table(t), ident(*index))
                            : fmt::format("ALTER TABLE {} REPLICA IDENTITY FULL;", table(t)));
    }
    const std::string title = "replica identity of the captured tables";
    if (!problems.empty()) {
      return make("replica_identity", title, Outcome::Warn,
                  fmt::format("without a replica identity: {}. Once such a table is in a publication "
                              "that publishes updates and deletes, the server refuses its UPDATEs and "
                              "DELETEs, and delete events could not say which row went",
                              join(problems, ", ")),
                  fmt::format("as the tables' owner: {} (or add a primary key; FULL logs whole old rows)",
                              join(fixes, " ")));
    }
    std::string saw = "every captured table has a primary key or a replica identity";
    if (!full.empty()) saw += fmt::format("; REPLICA IDENTITY FULL (old rows in before): {}", join(full, ", "));
    return make("replica_identity", title, Outcome::Pass, saw);
  }

  std::string tableList(const std::vector<config::TableName>& tables) const {
    std::vector<std::string> names;
    for (const auto& t : tables) names.push_back(table(t));
    return join(names, ", ");
  }

  static std::string join(const std::vector<std::string>& parts, std::string_view sep) {
    std::string out;
    for (const auto& p : parts) {
      if (!out.empty()) out += sep;
      out += p;
    }
    return out;
  }
  static std::vector<std::string> dedupe(const std::vector<std::string>& parts) {
    std::vector<std::string> out;
    for (const auto& p : parts) {
      if (std::find(out.begin(), out.end(), p) == out.end()) out.push_back(p);
    }
    return out;
  }

 public:
  static pg::ConnectOptions options(const config::PipelineConfig& cfg) {
    return pg::sourceOptions(cfg.source, "tidemark-check");
  }

 private:
  const config::PipelineConfig& cfg_;
  pg::Connection& conn_;
  std::string user_;
  std::string database_;
  bool rds_ = false;
  std::optional<pg::SlotInfo> slot_;
  bool cron_problem_ = false;
  std::optional<std::string> cron_jobid_;
};

ConnectionFacts connectionFacts(const pg::Connection& conn) {
  auto str = [](const char* s) { return std::string(s ? s : ""); };
  PGconn* c = conn.raw();
  ConnectionFacts f;
  f.host = str(PQhost(c));
  f.port = str(PQport(c));
  f.user = str(PQuser(c));
  f.database = str(PQdb(c));
  f.tls = PQsslInUse(c) == 1;
  if (f.tls) f.tls_protocol = str(PQsslAttribute(c, "protocol"));
  return f;
}

}  // namespace

std::vector<CheckResult> runChecks(const config::PipelineConfig& cfg) {
  std::vector<CheckResult> results;
  std::optional<pg::Connection> conn;
  try {
    conn.emplace(pg::Connection::open(SourceChecks::options(cfg)));
  } catch (const Error& e) {
    results.push_back(connectionFailed(e.what(), e.hint()));
  }
  if (conn) {
    results.push_back(judgeConnection(connectionFacts(*conn)));
    SourceChecks checks(cfg, *conn);
    for (auto& r : checks.run()) results.push_back(std::move(r));
  } else {
    // Every check keeps its line, so that scripts reading --json find the same ids each time.
    for (const auto& name : sourceCheckNames(cfg)) results.push_back(notChecked(name.id, name.title));
  }
  results.push_back(checkSinks(cfg.sinks));
  return results;
}

int checkCommand(const config::PipelineConfig& cfg, bool json) {
  std::vector<CheckResult> results = runChecks(cfg);
  std::cout << (json ? renderJson(results) : renderText(results)) << std::flush;
  return exitCodeFor(results);
}

}  // namespace tidemark::check
