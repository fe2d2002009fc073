#include "source/postgres/source_setup.h"

#include <fmt/format.h>

#include <algorithm>

#include "base/error.h"
#include "source/postgres/capture.h"

namespace tidemark::pg {

namespace {

std::string quotedTable(pg::Connection& conn, const config::TableName& t) {
  return conn.quoteIdentifier(t.schema) + "." + conn.quoteIdentifier(t.table);
}

std::string tableList(pg::Connection& conn, const std::vector<config::TableName>& tables) {
  std::string out;
  for (const auto& t : tables) {
    if (!out.empty()) out += ", ";
    out += quotedTable(conn, t);
  }
  return out;
}

}  // namespace

std::optional<SlotInfo> querySlot(pg::Connection& conn, const std::string& slot) {
  pg::Result r = conn.execParams(
      "SELECT plugin, slot_type, database, confirmed_flush_lsn::text, restart_lsn::text, "
      "wal_status, active_pid FROM pg_replication_slots WHERE slot_name = $1",
      {slot}, "reading pg_replication_slots");
  if (PQntuples(r.get()) == 0) return std::nullopt;
  SlotInfo info;
  info.plugin = pg::value(r.get(), 0, 0).value_or("");
  info.slot_type = pg::value(r.get(), 0, 1).value_or("");
  info.database = pg::value(r.get(), 0, 2).value_or("");
  if (auto v = pg::value(r.get(), 0, 3)) info.confirmed_flush_lsn = Lsn::parse(*v);
  if (auto v = pg::value(r.get(), 0, 4)) info.restart_lsn = Lsn::parse(*v);
  info.wal_status = pg::value(r.get(), 0, 5);
  if (auto v = pg::value(r.get(), 0, 6)) info.active_pid = std::stoi(*v);
  return info;
}

std::string heartbeatTableDdl(const config::TableName& t) {
  return fmt::format(
      "CREATE SCHEMA IF NOT EXISTS {}; CREATE TABLE IF NOT EXISTS {} (pipeline text PRIMARY KEY, "
      "ts timestamptz NOT NULL);",
      pg::quoteIdentifierText(t.schema), pg::quoteTableText(t.schema, t.table));
}

std::string signalTableDdl(const config::TableName& t) {
  return fmt::format(
      "CREATE SCHEMA IF NOT EXISTS {}; CREATE TABLE IF NOT EXISTS {} (id varchar(42) PRIMARY KEY, "
      "type varchar(32) NOT NULL, data varchar(2048));",
      pg::quoteIdentifierText(t.schema), pg::quoteTableText(t.schema, t.table));
}

std::string heartbeatUpsertSql(const config::TableName& t, std::string_view pipeline) {
  return fmt::format(
      "INSERT INTO {} (pipeline, ts) VALUES ({}, now()) ON CONFLICT (pipeline) DO UPDATE SET ts = "
      "excluded.ts",
      pg::quoteTableText(t.schema, t.table), pg::quoteLiteralText(pipeline));
}

std::string heartbeatCronSchedule(std::chrono::milliseconds interval) {
  const long long seconds = std::max<long long>(1, interval.count() / 1000);
  if (seconds < 60) return fmt::format("{} seconds", seconds);
  const long long minutes = seconds / 60;
  if (minutes <= 1) return "* * * * *";
  if (minutes >= 60) return "0 * * * *";
  return fmt::format("*/{} * * * *", minutes);
}

namespace {

std::string currentUser(pg::Connection& conn) {
  pg::Result r = conn.exec("SELECT current_user", "reading current_user");
  return pg::value(r.get(), 0, 0).value_or("");
}

bool tableExists(pg::Connection& conn, const config::TableName& t) {
  pg::Result r = conn.execParams(
      "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
      "WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')",
      {t.schema, t.table}, "looking up the heartbeat table");
  return PQntuples(r.get()) > 0;
}

}  // namespace

HeartbeatTable ensureHeartbeatTable(pg::Connection& conn, const config::PipelineConfig& cfg,
                                    const Logger& log) {
  HeartbeatTable hb;
  const config::TableName& t = cfg.heartbeat.table;
  hb.exists = tableExists(conn, t);
  if (cfg.heartbeat.mode != "table" || hb.exists) return hb;

  std::string user = conn.quoteIdentifier(currentUser(conn));
  std::string fix = fmt::format(
      "{} GRANT USAGE ON SCHEMA {} TO {}; GRANT SELECT, INSERT, UPDATE ON {} TO {};",
      heartbeatTableDdl(t), conn.quoteIdentifier(t.schema), user, quotedTable(conn, t), user);
  // A role that may not create the table may not add it to an existing publication either:
  // the fix does both, so one run of it makes Layer 2 work.
  pg::Result pub = conn.execParams("SELECT puballtables FROM pg_publication WHERE pubname = $1",
                                   {cfg.source.publication}, "reading pg_publication");
  if (PQntuples(pub.get()) > 0 && pg::value(pub.get(), 0, 0) == "f") {
    fix += fmt::format(" ALTER PUBLICATION {} ADD TABLE {};",
                       conn.quoteIdentifier(cfg.source.publication), quotedTable(conn, t));
  }
  if (cfg.source.read_only) {
    hb.problem = fmt::format(
        "heartbeat table {} does not exist; source.read_only forbids creating it. On the "
        "primary, run: {} and schedule its update (tidemark setup prints the pg_cron job)",
        t.str(), fix);
    log.warn("{}", hb.problem);
    return hb;
  }
  try {
    conn.exec("BEGIN", "creating the heartbeat table");
    conn.exec(heartbeatTableDdl(t), fmt::format("creating heartbeat table {}", t.str()));
    conn.exec("COMMIT", "creating the heartbeat table");
    hb.exists = true;
    log.info("created heartbeat table {}", t.str());
  } catch (const pg::ServerError& e) {
    conn.exec("ROLLBACK", "creating the heartbeat table");
    if (e.sqlstate() != "42501") throw;
    hb.problem = fmt::format(
        "heartbeat table {} does not exist and the user may not create it ({}); running on "
        "Layer 1 heartbeats only. As an administrator, run: {}",
        t.str(), e.what(), fix);
    log.warn("{}", hb.problem);
  }
  return hb;
}

void ensurePublication(pg::Connection& conn, const config::PipelineConfig& cfg,
                       HeartbeatTable& heartbeat, const Logger& log) {
  const config::SourceConfig& source = cfg.source;
  const bool want_heartbeat = cfg.heartbeat.mode == "table" && heartbeat.exists;
  pg::Result exists = conn.execParams("SELECT 1 FROM pg_publication WHERE pubname = $1",
                                      {source.publication}, "reading pg_publication");
  std::string pub = conn.quoteIdentifier(source.publication);
  if (PQntuples(exists.get()) == 0) {
    // A missing table would fail CREATE PUBLICATION, worse: behind a missing privilege, the
    // server reports the privilege. Say which table first.
    CaptureFacts facts = readCaptureFacts(conn, cfg, {});
    std::erase_if(facts.tables, [](const TableFacts& f) { return f.relid.has_value(); });
    if (std::vector<CaptureProblem> missing = judgeCapture(facts, cfg); !missing.empty()) {
      throw captureError(missing);
    }
    std::vector<config::TableName> tables = source.tables;
    if (want_heartbeat) tables.push_back(cfg.heartbeat.table);
    // Via the partition root: a partitioned table's rows then arrive under its own name, as
    // the table that is captured, wherever they are stored.
    std::string sql = fmt::format("CREATE PUBLICATION {} FOR TABLE {} WITH (publish_via_partition_root = true)",
                                  pub, tableList(conn, tables));
    if (!source.create_publication || source.read_only) {
      throw Error(ErrorClass::Config,
                  fmt::format("publication \"{}\" does not exist", source.publication),
                  fmt::format("run as a superuser or the tables' owner: {}{}", sql,
                              source.read_only ? " (source.read_only: tidemark creates nothing)"
                                               : "; or set source.create_publication: true"));
    }
    try {
      conn.exec(sql, fmt::format("creating publication \"{}\"", source.publication));
    } catch (const pg::ServerError& e) {
      if (e.sqlstate() == "42501") {
        throw Error(ErrorClass::Config, e.what(),
                    fmt::format("creating a publication needs CREATE on the database and "
                                "ownership of the tables, which the user in source.dsn lacks; "
                                "run as a superuser or the tables' owner: {}",
                                sql));
      }
      throw;
    }
    log.info("created publication \"{}\" for {}", source.publication, tableList(conn, tables));
    heartbeat.published = want_heartbeat;
    return;
  }
  // Whether the captured tables are in it, and as what, is the capture check's (capture.h).
  pg::Result covered = conn.execParams(
      "SELECT 1 FROM pg_publication_tables WHERE pubname = $1 AND schemaname = $2 AND tablename = $3",
      {source.publication, cfg.heartbeat.table.schema, cfg.heartbeat.table.table},
      "reading pg_publication_tables");
  heartbeat.published = heartbeat.exists && PQntuples(covered.get()) > 0;
  if (!want_heartbeat || heartbeat.published) return;

  std::string add = fmt::format("ALTER PUBLICATION {} ADD TABLE {}", pub,
                                quotedTable(conn, cfg.heartbeat.table));
  if (source.read_only) {
    heartbeat.problem = fmt::format(
        "heartbeat table {} is not in publication \"{}\", so its rows never reach tidemark; "
        "on the primary, run: {}",
        cfg.heartbeat.table.str(), source.publication, add);
    log.warn("{}", heartbeat.problem);
    return;
  }
  try {
    conn.exec(add, fmt::format("adding the heartbeat table to publication \"{}\"", source.publication));
    heartbeat.published = true;
    log.info("added heartbeat table {} to publication \"{}\"", cfg.heartbeat.table.str(),
             source.publication);
  } catch (const pg::ServerError& e) {
    if (e.sqlstate() != "42501") throw;
    heartbeat.problem = fmt::format(
        "heartbeat table {} is not in publication \"{}\" and the user may not add it ({}); "
        "running on Layer 1 heartbeats only. As the publication's owner, run: {}",
        cfg.heartbeat.table.str(), source.publication, e.what(), add);
    log.warn("{}", heartbeat.problem);
  }
}

const char* const kLostPositionFix =
    "the changes in between cannot be read any more: stop tidemark, move the state directory "
    "(state_dir) and the sink output aside, run again (it creates a new slot and captures from "
    "then on), and re-snapshot the captured tables into the destinations to fill the gap";

std::optional<Error> judgeStoredPosition(const std::optional<pg::Position>& stored,
                                         const std::string& config_slot,
                                         const std::string& system_identifier,
                                         const std::optional<SlotInfo>& slot) {
  if (!stored) return std::nullopt;
  const std::string at = stored->lsn.str();
  if (stored->slot != config_slot) {
    return Error(ErrorClass::Config,
                 fmt::format("the state directory belongs to slot \"{}\", but source.slot is \"{}\"",
                             stored->slot, config_slot),
                 "use the slot the state was made with, or give this configuration its own state_dir");
  }
  if (stored->system_identifier != system_identifier) {
    return Error(ErrorClass::PositionLost,
                 fmt::format("the source is a different PostgreSQL cluster: system identifier {} "
                             "(stored: {}); it was re-initialized, restored from a backup or "
                             "replaced, so the stored position {} means nothing there",
                             system_identifier, stored->system_identifier, at),
                 kLostPositionFix);
  }
  if (!slot) {
    return Error(ErrorClass::PositionLost,
                 fmt::format("replication slot \"{}\" does not exist any more (stored position {}): it "
                             "was dropped, or the server failed over to one without it",
                             config_slot, at),
                 kLostPositionFix);
  }
  if (slot->wal_status == "lost") {
    return Error(ErrorClass::PositionLost,
                 fmt::format("replication slot \"{}\" is invalidated (wal_status lost): the server "
                             "removed WAL after the stored position {}, probably because of "
                             "max_slot_wal_keep_size",
                             config_slot, at),
                 kLostPositionFix);
  }
  if (!slot->confirmed_flush_lsn) {
    return Error(ErrorClass::Config,
                 fmt::format("slot \"{}\" has no confirmed_flush_lsn (not a logical slot?)", config_slot),
                 "give source.slot the name of a logical pgoutput slot");
  }
  if (*slot->confirmed_flush_lsn > stored->lsn) {
    return Error(ErrorClass::PositionLost,
                 fmt::format("replication slot \"{}\" is confirmed at {}, beyond the stored position "
                             "{}: it was recreated, or advanced by another client; the changes "
                             "between were never delivered",
                             config_slot, slot->confirmed_flush_lsn->str(), at),
                 kLostPositionFix);
  }
  return std::nullopt;
}

StartPoint resolveStart(pg::Connection& catalog, pg::ReplicationStream& stream,
                        const pg::SystemInfo& system, const config::SourceConfig& source,
                        const std::optional<pg::Position>& stored, const Logger& log) {
  if (stored && stored->timeline != system.timeline) {
    log.warn("the source is on timeline {} (stored: {}): it was promoted or restored", system.timeline,
             stored->timeline);
  }
  std::optional<SlotInfo> slot = querySlot(catalog, source.slot);
  if (slot && (slot->slot_type != "logical" || slot->plugin != "pgoutput")) {
    throw Error(ErrorClass::Config,
                fmt::format("slot \"{}\" is a {} slot with plugin \"{}\"; tidemark needs a logical "
                            "slot with pgoutput",
                            source.slot, slot->slot_type, slot->plugin),
                "give source.slot another name, or drop that slot if nothing else uses it");
  }
  if (slot && slot->database != system.dbname) {
    throw Error(ErrorClass::Config,
                fmt::format("slot \"{}\" belongs to database \"{}\", but source.dsn connects to \"{}\"",
                            source.slot, slot->database, system.dbname),
                "point source.dsn at the slot's database, or use another slot name");
  }
  if (auto problem = judgeStoredPosition(stored, source.slot, system.system_identifier, slot)) throw *problem;
  if (stored) return {stored->lsn, false};

  // Nothing stored: a first run, from the slot's position or a new slot.
  if (!slot) {
    if (!source.create_slot) {
      throw Error(ErrorClass::Config, fmt::format("replication slot \"{}\" does not exist", source.slot),
                  fmt::format("SELECT pg_create_logical_replication_slot('{}', 'pgoutput'); or set "
                              "source.create_slot: true",
                              source.slot));
    }
    Lsn at = stream.createSlot(source.slot);
    log.info("created replication slot \"{}\" at {}", source.slot, at.str());
    return {at, true};
  }
  if (slot->wal_status == "lost") {
    throw Error(ErrorClass::PositionLost,
                fmt::format("replication slot \"{}\" is invalidated (wal_status lost): the server "
                            "removed WAL it still needed, probably because of max_slot_wal_keep_size",
                            source.slot),
                kLostPositionFix);
  }
  if (!slot->confirmed_flush_lsn) {
    throw Error(ErrorClass::Fatal, fmt::format("slot \"{}\" has no confirmed_flush_lsn", source.slot));
  }
  log.info("using existing replication slot \"{}\" from {}", source.slot, slot->confirmed_flush_lsn->str());
  return {*slot->confirmed_flush_lsn, false};
}

void ensureSignalTable(pg::Connection& conn, const config::PipelineConfig& cfg, const Logger& log) {
  if (cfg.source.read_only) return;
  const config::TableName& t = cfg.signal.table;
  const std::string pub = conn.quoteIdentifier(cfg.source.publication);
  // Created by tidemark setup (or by hand), never by run: a pipeline that asks for no
  // heartbeat table writes nothing of its own into the source.
  if (!tableExists(conn, t)) return;
  std::string step = fmt::format("reading publication \"{}\"", cfg.source.publication);
  try {
    pg::Result all = conn.execParams("SELECT puballtables FROM pg_publication WHERE pubname = $1",
                                     {cfg.source.publication}, "reading pg_publication");
    if (PQntuples(all.get()) == 0 || pg::value(all.get(), 0, 0) == "t") return;
    pg::Result covered = conn.execParams(
        "SELECT 1 FROM pg_publication_tables WHERE pubname = $1 AND schemaname = $2 AND tablename = $3",
        {cfg.source.publication, t.schema, t.table}, "reading pg_publication_tables");
    if (PQntuples(covered.get()) > 0) return;
    step = fmt::format("adding signal table {} to publication \"{}\"", t.str(), cfg.source.publication);
    conn.exec(fmt::format("ALTER PUBLICATION {} ADD TABLE {}", pub, quotedTable(conn, t)), step);
    log.info("added signal table {} to publication \"{}\"", t.str(), cfg.source.publication);
  } catch (const pg::ServerError& e) {
    if (e.sqlstate() != "42501") throw;
    log.warn("{} failed ({}): signals through the table are off (tidemark snapshot leaves files instead); as the "
             "publication's owner, run: ALTER PUBLICATION {} ADD TABLE {};",
             step, e.what(), pub, quotedTable(conn, t));
  }
}

void dropInvalidatedSlot(pg::Connection& catalog, const config::SourceConfig& source, const Logger& log) {
  std::optional<SlotInfo> slot = querySlot(catalog, source.slot);
  if (!slot || slot->wal_status != "lost") return;
  catalog.execParams("SELECT pg_drop_replication_slot($1)", {source.slot},
                     fmt::format("dropping the invalidated replication slot \"{}\"", source.slot));
  log.warn("dropped the invalidated replication slot \"{}\"", source.slot);
}

events::Catalog makeCatalog(pg::Connection& conn) {
  events::Catalog catalog;
  catalog.type = [&conn](TypeOid oid) -> std::optional<events::CatalogType> {
    pg::Result r = conn.execParams(
        "SELECT typtype, typelem, typcategory, typbasetype, typdelim, typname FROM pg_type "
        "WHERE oid = $1",
        {std::to_string(oid)}, fmt::format("looking up type {}", oid));
    if (PQntuples(r.get()) == 0) return std::nullopt;  // dropped since
    events::CatalogType t;
    t.typtype = pg::value(r.get(), 0, 0).value_or("b")[0];
    t.element = static_cast<TypeOid>(std::stoul(pg::value(r.get(), 0, 1).value_or("0")));
    t.is_array = pg::value(r.get(), 0, 2) == "A";
    t.base_type = static_cast<TypeOid>(std::stoul(pg::value(r.get(), 0, 3).value_or("0")));
    t.delimiter = pg::value(r.get(), 0, 4).value_or(",")[0];
    t.name = pg::value(r.get(), 0, 5).value_or("");
    return t;
  };
  catalog.attributes = [&conn](RelationId relid) {
    pg::Result r = conn.execParams(
        // The key Debezium gives the table's events: the primary key, or without one the
        // first unique index by name that has no expression columns. A partial or invalid
        // index is no key: it does not keep every row apart.
        "SELECT a.attnum, a.attname, a.atttypid, a.attisdropped, a.attgenerated <> '', "
        "a.attnum = ANY (k.indkey), format_type(a.atttypid, a.atttypmod), a.attnotnull "
        "FROM pg_attribute a LEFT JOIN LATERAL ("
        "  SELECT i.indkey::int2[] AS indkey FROM pg_index i "
        "  JOIN pg_class ic ON ic.oid = i.indexrelid "
        "  WHERE i.indrelid = a.attrelid AND (i.indisprimary OR (i.indisunique AND i.indexprs IS NULL "
        "    AND i.indpred IS NULL AND i.indisvalid "
        "    AND NOT EXISTS (SELECT 1 FROM pg_index p WHERE p.indrelid = i.indrelid AND p.indisprimary))) "
        "  ORDER BY i.indisprimary DESC, ic.relname LIMIT 1) k ON true "
        "WHERE a.attrelid = $1 AND a.attnum > 0 ORDER BY a.attnum",
        {std::to_string(relid.value)}, fmt::format("looking up the columns of relation {}", relid.value));
    std::vector<events::CatalogAttribute> attributes;
    for (int i = 0; i < PQntuples(r.get()); ++i) {
      events::CatalogAttribute a;
      a.attnum = std::stoi(pg::value(r.get(), i, 0).value_or("0"));
      a.name = pg::value(r.get(), i, 1).value_or("");
      a.type = static_cast<TypeOid>(std::stoul(pg::value(r.get(), i, 2).value_or("0")));
      a.dropped = pg::value(r.get(), i, 3) == "t";
      a.generated = pg::value(r.get(), i, 4) == "t";
      a.in_key = pg::value(r.get(), i, 5) == "t";
      a.type_name = pg::value(r.get(), i, 6).value_or("");
      a.not_null = pg::value(r.get(), i, 7) == "t";
      attributes.push_back(std::move(a));
    }
    return attributes;
  };
  return catalog;
}

}  // namespace tidemark::pg
