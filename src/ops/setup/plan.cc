#include "ops/setup/plan.h"

#include <libpq-fe.h>

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <memory>

#include "base/error.h"
#include "postgres/connection.h"
#include "source/postgres/source_setup.h"

namespace tidemark::setup {

namespace {

using config::TableName;

std::string ident(std::string_view name) { return pg::quoteIdentifierText(name); }
std::string literal(std::string_view value) { return pg::quoteLiteralText(value); }
std::string table(const TableName& t) { return pg::quoteTableText(t.schema, t.table); }

std::string tableList(const std::vector<TableName>& tables) {
  std::string out;
  for (const auto& t : tables) {
    if (!out.empty()) out += ", ";
    out += table(t);
  }
  return out;
}

// "public.orders" for notes: the configured spelling, not SQL.
std::string shown(const TableName& t) { return t.str(); }

bool heartbeatTableUsed(const config::PipelineConfig& cfg) { return cfg.heartbeat.mode == "table"; }

// The tables the publication must carry: the captured ones, the heartbeat table whose rows
// measure freshness, and the signal table whose rows carry requests to the pipeline.
std::vector<TableName> publishedTables(const config::PipelineConfig& cfg) {
  std::vector<TableName> tables = cfg.source.tables;
  if (heartbeatTableUsed(cfg)) tables.push_back(cfg.heartbeat.table);
  tables.push_back(cfg.signal.table);
  return tables;
}

std::vector<std::string> capturedSchemas(const config::PipelineConfig& cfg) {
  std::vector<std::string> schemas;
  for (const auto& t : cfg.source.tables) {
    if (std::find(schemas.begin(), schemas.end(), t.schema) == schemas.end()) schemas.push_back(t.schema);
  }
  return schemas;
}

// A boolean query that is true when every condition is; conditions that could raise (a
// missing table) are guarded by the ones before them through CASE, whose order is kept.
std::string allOf(const std::vector<std::string>& conditions) {
  std::string expr = "true";
  for (auto it = conditions.rbegin(); it != conditions.rend(); ++it) {
    expr = fmt::format("CASE WHEN {} THEN {} ELSE false END", *it, expr);
  }
  return "SELECT " + expr;
}

std::string hasTablePrivileges(const std::string& role, const TableName& t,
                               const std::vector<std::string_view>& privileges) {
  std::string out;
  for (std::string_view p : privileges) {
    if (!out.empty()) out += " AND ";
    out += fmt::format("has_table_privilege({}, {}, '{}')", literal(role), literal(table(t)), p);
  }
  return out;
}

std::string tableExists(const TableName& t) {
  return fmt::format("to_regclass({}) IS NOT NULL", literal(table(t)));
}

// Durations as current_setting prints them ("1min", "60s", "500ms", "0"), in milliseconds.
std::optional<long long> settingMillis(const std::string& text) {
  size_t i = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
  if (i == 0) return std::nullopt;
  long long n = std::stoll(text.substr(0, i));
  std::string unit = text.substr(i);
  if (unit.empty() || unit == "ms") return n;
  if (unit == "s") return n * 1000;
  if (unit == "min") return n * 60'000;
  if (unit == "h") return n * 3'600'000;
  if (unit == "d") return n * 86'400'000;
  return std::nullopt;
}

std::string humanDuration(std::chrono::milliseconds d) {
  long long ms = d.count();
  if (ms % 3'600'000 == 0) return fmt::format("{}h", ms / 3'600'000);
  if (ms % 60'000 == 0) return fmt::format("{}min", ms / 60'000);
  if (ms % 1000 == 0) return fmt::format("{}s", ms / 1000);
  return fmt::format("{}ms", ms);
}

// One line per parameter: what it should be, and what the server has when it was asked.
struct ParameterCheck {
  ParameterCheck(std::string n, std::string w, std::optional<std::string> c)
      : name(std::move(n)), want(std::move(w)), current(std::move(c)) {}
  std::string name;
  std::string want;
  std::optional<std::string> current;
  bool ok = true;
  std::string why;  // when not ok, or worth saying anyway
};

std::string describe(const ParameterCheck& p, bool checked) {
  std::string line = fmt::format("  {}: {}", p.name, p.want);
  if (checked) {
    line += fmt::format(" -- now: {}{}", p.current.value_or("(not on this server)"),
                        p.ok ? ", ok" : ", CHANGE IT");
  }
  if (!p.why.empty()) line += fmt::format(" ({})", p.why);
  return line;
}

Block parametersBlock(const config::PipelineConfig& cfg, Flavor flavor,
                      const std::optional<ServerFacts>& facts) {
  Block b;
  b.title = "server parameters";
  b.kind = BlockKind::Advice;
  b.notes.push_back(
      "Not run by setup: these need a restart, a reload or the provider's console. Set them "
      "before the first run.");
  switch (flavor) {
    case Flavor::Postgres:
      b.notes.push_back(
          "Self-hosted: ALTER SYSTEM as a superuser (or edit postgresql.conf). wal_level takes "
          "effect only when PostgreSQL restarts (pg_ctl restart, systemctl restart postgresql); "
          "a reload is not enough. max_slot_wal_keep_size takes effect on a reload.");
      b.sql = fmt::format(
          "ALTER SYSTEM SET max_slot_wal_keep_size = '{}GB';\n"
          "SELECT pg_reload_conf();\n"
          "ALTER SYSTEM SET wal_level = logical;  -- then restart PostgreSQL",
          pg::kSuggestedWalKeepSizeGb);
      break;
    case Flavor::Rds:
      b.notes.push_back(
          "RDS and Aurora: in a custom DB parameter group (Aurora: the DB cluster parameter "
          "group; default groups cannot be changed), set rds.logical_replication = 1, which sets "
          "wal_level = logical, attach the group and reboot. Aurora replicas cannot decode: "
          "point source.dsn at the writer (cluster) endpoint.");
      b.notes.push_back(
          "Some guides set wal_sender_timeout = 0 on Aurora for idle databases; tidemark does "
          "not need that (it sends a status update every source.status_interval).");
      break;
    case Flavor::CloudSql:
      b.notes.push_back(
          "Cloud SQL: set the database flag cloudsql.logical_decoding = on (the instance "
          "restarts). Other parameters are database flags too; check your provider's docs for "
          "the ones your version offers.");
      break;
    case Flavor::Azure:
      b.notes.push_back(
          "Azure Database for PostgreSQL flexible server: set the server parameter wal_level = "
          "logical (portal or az postgres flexible-server parameter set) and restart the server.");
      break;
    case Flavor::Supabase:
      b.notes.push_back(
          "Supabase: wal_level is already logical. Connect tidemark directly (db.<project>."
          "supabase.co:5432), not through the pooler, which cannot carry replication; check "
          "your provider's docs for the other settings.");
      break;
    case Flavor::Neon:
      b.notes.push_back(
          "Neon: enable logical replication in the project settings (it sets wal_level = "
          "logical, restarts the computes and cannot be undone). Use the direct host, not the "
          "-pooler one. Neon removes replication slots left inactive for a long time (about 40 "
          "hours): keep the pipeline running. Check your provider's docs.");
      break;
  }

  const bool checked = facts.has_value();
  auto current = [&](const std::string& name) -> std::optional<std::string> {
    return facts ? facts->setting(name) : std::nullopt;
  };
  std::vector<ParameterCheck> checks;
  {
    ParameterCheck p("wal_level", "logical", current("wal_level"));
    p.ok = p.current == "logical";
    checks.push_back(p);
  }
  if (flavor == Flavor::Rds) {
    ParameterCheck p("rds.logical_replication", "1 (on)", current("rds.logical_replication"));
    p.ok = p.current == "on";
    checks.push_back(p);
  }
  if (flavor == Flavor::CloudSql) {
    ParameterCheck p("cloudsql.logical_decoding", "on", current("cloudsql.logical_decoding"));
    p.ok = p.current == "on";
    checks.push_back(p);
  }
  for (const char* name : {"max_replication_slots", "max_wal_senders"}) {
    ParameterCheck p(name, "at least one free for tidemark (default 10)", current(name));
    p.ok = p.current && p.current != "0";
    checks.push_back(p);
  }
  {
    const auto status = cfg.source.status_interval;
    ParameterCheck p("wal_sender_timeout",
                     fmt::format("well above source.status_interval ({}); the default 60s is fine",
                                 humanDuration(status)),
                     current("wal_sender_timeout"));
    std::optional<long long> ms = p.current ? settingMillis(*p.current) : std::nullopt;
    if (!ms) {
      p.ok = false;
    } else if (*ms == 0) {
      p.why = "0 turns the timeout off: tidemark works, but the server never notices a client "
              "that vanished and keeps its slot marked active";
    } else if (*ms < 2 * status.count()) {
      p.ok = false;
      p.why = "the server may end the connection between two status updates; raise it or lower "
              "source.status_interval";
    }
    checks.push_back(p);
  }
  {
    ParameterCheck p("max_slot_wal_keep_size",
                     fmt::format("a cap the WAL disk can hold, e.g. '{}GB' (default -1: no cap)",
                                 pg::kSuggestedWalKeepSizeGb),
                     current("max_slot_wal_keep_size"));
    p.ok = p.current && p.current != "-1";
    p.why = "without a cap a stopped or stuck pipeline keeps WAL until the disk is full; with one "
            "the server invalidates the slot instead, and tidemark stops with exit code 3 and "
            "says how to start over";
    checks.push_back(p);
  }
  b.notes.push_back(checked ? "Wanted, and what the server has now:" : "Wanted:");
  for (const auto& p : checks) b.notes.push_back(describe(p, checked));
  return b;
}

Block databaseBlock(const DsnTarget& target) {
  Block b;
  b.title = "database";
  b.notes.push_back(fmt::format(
      "Publications, slots and grants belong to one database: stop unless connected to {}, the "
      "database of source.dsn.",
      ident(target.database)));
  std::string body = fmt::format(
      "\nBEGIN\n"
      "  IF current_database() <> {0} THEN\n"
      "    RAISE EXCEPTION 'connected to database %, but source.dsn names %', current_database(), {0}\n"
      "      USING HINT = 'connect to the database of source.dsn and run this again';\n"
      "  END IF;\n"
      "END\n",
      literal(target.database));
  b.sql = "DO " + dollarQuote(body, "tidemark") + ";";
  return b;
}

Block roleBlock(const DsnTarget& target) {
  const std::string role = ident(target.user);
  Block b;
  b.title = "role";
  b.notes.push_back(fmt::format(
      "The login role of source.dsn, {}: not a superuser, not the tables' owner; it gets only "
      "what the blocks below grant.",
      role));
  b.notes.push_back(fmt::format(
      "setup never sets a password. Set one yourself: \\password {} in psql, or ALTER ROLE {} "
      "PASSWORD '...'; and give it to tidemark as source.password or source.password_file.",
      role, role));
  std::string body = fmt::format(
      "\nBEGIN\n"
      "  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {0}) THEN\n"
      "    CREATE ROLE {1} LOGIN;\n"
      "  ELSIF NOT (SELECT rolcanlogin FROM pg_roles WHERE rolname = {0}) THEN\n"
      "    ALTER ROLE {1} LOGIN;\n"
      "  END IF;\n"
      "END\n",
      literal(target.user), role);
  b.sql = "DO " + dollarQuote(body, "tidemark") + ";";
  b.present = fmt::format("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {} AND rolcanlogin)",
                          literal(target.user));
  return b;
}

Block replicationBlock(const DsnTarget& target, Flavor flavor) {
  const std::string role = ident(target.user);
  Block b;
  b.title = "replication privilege";
  const std::string alter = fmt::format("ALTER ROLE {} REPLICATION;", role);
  const std::string attribute_present = fmt::format(
      "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {} AND (rolreplication OR rolsuper))",
      literal(target.user));
  switch (flavor) {
    case Flavor::Postgres:
      b.notes.push_back(
          "REPLICATION lets the role open replication connections and read slots; it gives no "
          "access to table data. Only a superuser may grant it.");
      b.notes.push_back(
          "pg_hba.conf: logical replication connections match the lines for the database itself "
          "(the 'replication' keyword is for physical replication only).");
      b.sql = alter;
      b.present = attribute_present;
      break;
    case Flavor::Rds:
      b.notes.push_back(
          "RDS and Aurora do not let anyone grant the REPLICATION attribute; membership in "
          "rds_replication gives the same right (with rds.logical_replication = 1). Run as the "
          "master user (rds_superuser).");
      b.sql = fmt::format("GRANT rds_replication TO {};", role);
      b.present = fmt::format("SELECT pg_has_role({}, 'rds_replication', 'MEMBER')",
                              literal(target.user));
      break;
    case Flavor::CloudSql:
      b.notes.push_back(
          "Cloud SQL: a member of cloudsqlsuperuser (e.g. the postgres user) may grant "
          "REPLICATION once the cloudsql.logical_decoding flag is on.");
      b.sql = alter;
      b.present = attribute_present;
      break;
    case Flavor::Azure:
      b.notes.push_back(
          "Azure flexible server: the server admin, a member of azure_pg_admin, may grant "
          "REPLICATION.");
      b.sql = alter;
      b.present = attribute_present;
      break;
    case Flavor::Supabase:
      b.notes.push_back(
          "Supabase: run as the postgres role (SQL editor or a direct connection), which may "
          "grant REPLICATION.");
      b.sql = alter;
      b.present = attribute_present;
      break;
    case Flavor::Neon:
      b.notes.push_back(
          "Neon: run as a role created in the Neon console, CLI or API (a member of "
          "neon_superuser), which may grant REPLICATION once logical replication is enabled for "
          "the project.");
      b.sql = alter;
      b.present = attribute_present;
      break;
  }
  return b;
}

Block connectBlock(const DsnTarget& target) {
  Block b;
  b.title = "database access";
  b.notes.push_back(
      "CONNECT on the database, granted by name so that the role keeps it if CONNECT is ever "
      "revoked from PUBLIC. GRANT is idempotent.");
  b.sql = fmt::format("GRANT CONNECT ON DATABASE {} TO {};", ident(target.database), ident(target.user));
  return b;
}

Block capturedTablesBlock(const config::PipelineConfig& cfg, const DsnTarget& target) {
  const std::string role = ident(target.user);
  Block b;
  b.title = "captured tables";
  b.notes.push_back(
      "USAGE on the captured schemas and SELECT on the captured tables, for snapshots and "
      "verify, which read them; streaming itself needs no table privilege. Nothing more: no "
      "INSERT, no ownership, no CREATE.");
  std::vector<std::string> conditions;
  for (const auto& schema : capturedSchemas(cfg)) {
    b.sql += fmt::format("GRANT USAGE ON SCHEMA {} TO {};\n", ident(schema), role);
    conditions.push_back(
        fmt::format("has_schema_privilege({}, {}, 'USAGE')", literal(target.user), literal(schema)));
  }
  b.sql += fmt::format("GRANT SELECT ON TABLE {} TO {};", tableList(cfg.source.tables), role);
  for (const auto& t : cfg.source.tables) {
    conditions.push_back(tableExists(t));
    conditions.push_back(hasTablePrivileges(target.user, t, {"SELECT"}));
  }
  b.present = allOf(conditions);
  return b;
}

Block heartbeatBlock(const config::PipelineConfig& cfg, const DsnTarget& target) {
  const TableName& t = cfg.heartbeat.table;
  const std::string role = ident(target.user);
  Block b;
  b.title = "heartbeat table";
  std::vector<std::string_view> privileges = {"SELECT"};
  if (cfg.source.read_only) {
    b.notes.push_back(fmt::format(
        "One row per pipeline, written on the primary by the pg_cron job below (source.read_only: "
        "tidemark writes nothing); its changes come through the slot and measure end-to-end lag. "
        "The role only reads it."));
  } else {
    b.notes.push_back(
        "One row per pipeline, updated every heartbeat.interval while the captured tables are "
        "idle: its changes come through the slot, keep it advancing and measure end-to-end lag.");
    privileges = {"SELECT", "INSERT", "UPDATE"};
  }
  std::string list;
  for (auto p : privileges) list += (list.empty() ? "" : ", ") + std::string(p);
  b.sql = fmt::format("{}\nGRANT USAGE ON SCHEMA {} TO {};\nGRANT {} ON TABLE {} TO {};",
                      pg::heartbeatTableDdl(t), ident(t.schema), role, list, table(t), role);
  b.present = allOf({tableExists(t),
                     fmt::format("has_schema_privilege({}, {}, 'USAGE')", literal(target.user),
                                 literal(t.schema)),
                     hasTablePrivileges(target.user, t, privileges)});
  return b;
}

Block signalBlock(const config::PipelineConfig& cfg, const DsnTarget& target) {
  const TableName& t = cfg.signal.table;
  const std::string role = ident(target.user);
  Block b;
  b.title = "signal table";
  b.notes.push_back(
      "Requests to a running pipeline (incremental snapshots), in Debezium's signal table "
      "layout: a row inserted here comes through the slot. The role inserts signals (tidemark "
      "snapshot) and reads and removes them.");
  b.sql = fmt::format("{}\nGRANT USAGE ON SCHEMA {} TO {};\nGRANT SELECT, INSERT, UPDATE, DELETE ON TABLE {} TO {};",
                      pg::signalTableDdl(t), ident(t.schema), role, table(t), role);
  b.present = allOf({tableExists(t),
                     fmt::format("has_schema_privilege({}, {}, 'USAGE')", literal(target.user),
                                 literal(t.schema)),
                     hasTablePrivileges(target.user, t, {"SELECT", "INSERT", "UPDATE", "DELETE"})});
  return b;
}

// Captured tables whose UPDATE and DELETE PostgreSQL would refuse once they are in a
// publication: no primary key and REPLICA IDENTITY DEFAULT, or REPLICA IDENTITY NOTHING.
std::vector<TableName> withoutReplicaIdentity(const ServerFacts& facts) {
  std::vector<TableName> out;
  for (const auto& t : facts.tables) {
    if (!t.exists) continue;
    if (t.replica_identity == 'n' || (t.replica_identity == 'd' && !t.has_primary_key)) out.push_back(t.name);
  }
  return out;
}

Block publicationBlock(const config::PipelineConfig& cfg, const std::optional<ServerFacts>& facts) {
  const std::string& name = cfg.source.publication;
  const std::vector<TableName> tables = publishedTables(cfg);
  Block b;
  b.title = "publication";
  b.notes.push_back(
      "Selects what the slot decodes: the captured tables, the heartbeat table and the signal "
      "table. Created here by an administrator (it owns it), so tidemark never needs CREATE on "
      "the database or ownership of the tables.");
  b.notes.push_back(
      "An existing publication gets the tables it lacks; one FOR ALL TABLES already has them "
      "and is left as it is.");
  b.notes.push_back(
      "publish_via_partition_root: a partitioned table's rows then arrive under the table's own "
      "name, wherever they are stored; without it they arrive under each partition's name. An "
      "existing publication is switched when a captured table is partitioned.");
  if (facts) {
    for (const auto& t : withoutReplicaIdentity(*facts)) {
      b.notes.push_back(fmt::format(
          "WARNING: {} has no primary key and no replica identity: once it is published, "
          "UPDATE and DELETE on it fail. Set REPLICA IDENTITY first (see the replica identity "
          "block above).",
          shown(t)));
    }
  }
  // Membership as ALTER PUBLICATION ... ADD TABLE sees it: the table itself, every table of
  // a FOR ALL TABLES publication, or a schema's (FOR TABLES IN SCHEMA). pg_publication_tables
  // would not do: without publish_via_partition_root it lists a partitioned table's
  // partitions instead of the table, and ADD TABLE then fails as the table is a member.
  auto member = [&](const TableName& t) {
    return fmt::format(
        "EXISTS (SELECT 1 FROM pg_publication p WHERE p.pubname = {0} AND (p.puballtables OR "
        "EXISTS (SELECT 1 FROM pg_publication_rel r WHERE r.prpubid = p.oid AND r.prrelid = "
        "to_regclass({1})) OR EXISTS (SELECT 1 FROM pg_publication_namespace pn JOIN pg_namespace n "
        "ON n.oid = pn.pnnspid WHERE pn.pnpubid = p.oid AND n.nspname = {2})))",
        literal(name), literal(table(t)), literal(t.schema));
  };
  std::vector<std::string> captured_regclasses;
  for (const auto& t : cfg.source.tables) captured_regclasses.push_back(fmt::format("to_regclass({})", literal(table(t))));
  std::string regclass_list;
  for (const auto& r : captured_regclasses) regclass_list += (regclass_list.empty() ? "" : ", ") + r;
  // A partitioned captured table's rows arrive under its own name only via the partition root.
  const std::string via_root_needed = fmt::format(
      "EXISTS (SELECT 1 FROM pg_class WHERE oid IN ({}) AND relkind = 'p') AND NOT (SELECT "
      "pubviaroot FROM pg_publication WHERE pubname = {})",
      regclass_list, literal(name));

  std::string body = "\nBEGIN\n";
  body += fmt::format("  IF NOT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = {}) THEN\n",
                      literal(name));
  body += fmt::format("    CREATE PUBLICATION {} FOR TABLE {} WITH (publish_via_partition_root = true);\n",
                      ident(name), tableList(tables));
  body += "    RETURN;\n  END IF;\n";
  std::vector<std::string> covered;
  for (const auto& t : tables) {
    std::string present = member(t);
    body += fmt::format("  IF NOT {} THEN\n    ALTER PUBLICATION {} ADD TABLE {};\n  END IF;\n", present,
                        ident(name), table(t));
    covered.push_back(present);
  }
  body += fmt::format("  IF {} THEN\n    ALTER PUBLICATION {} SET (publish_via_partition_root = true);\n  END IF;\n",
                      via_root_needed, ident(name));
  body += "END\n";
  b.sql = "DO " + dollarQuote(body, "tidemark") + ";";
  covered.insert(covered.begin(),
                 fmt::format("EXISTS (SELECT 1 FROM pg_publication WHERE pubname = {})", literal(name)));
  covered.push_back("NOT (" + via_root_needed + ")");
  b.present = allOf(covered);
  return b;
}

Block slotBlock(const config::PipelineConfig& cfg) {
  const std::string& slot = cfg.source.slot;
  Block b;
  b.title = "replication slot";
  b.notes.push_back(
      "The logical slot (pgoutput) that holds tidemark's confirmed position. From now on it keeps "
      "WAL until tidemark confirms it: start the pipeline soon, or drop the slot if it will not "
      "run: SELECT pg_drop_replication_slot(" + literal(slot) + ");");
  b.notes.push_back(
      "Run it on its own, not inside a transaction that has written (so not with psql "
      "--single-transaction). tidemark also creates it on its first run when it is missing and "
      "source.create_slot is true.");
  if (cfg.source.read_only) {
    b.notes.push_back(
        "source.read_only on a standby: the slot must be created on the standby tidemark reads "
        "from (PostgreSQL 16 or later, hot_standby_feedback = on), not on the primary.");
  }
  b.sql = fmt::format(
      "SELECT pg_create_logical_replication_slot({0}, 'pgoutput')\n"
      "  WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = {0});",
      literal(slot));
  b.present = fmt::format("SELECT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = {})",
                          literal(slot));
  return b;
}

Block replicaIdentityBlock(const config::PipelineConfig& cfg, const std::optional<ServerFacts>& facts) {
  Block b;
  b.title = "replica identity";
  b.kind = BlockKind::Advice;
  b.notes.push_back(
      "Not run by setup: changing a table is the owner's decision. UPDATE and DELETE events carry "
      "the replica identity as `before`: the primary key by default. Tables that need complete "
      "before-images (audits, soft deletes) need REPLICA IDENTITY FULL, which logs every column "
      "of each updated or deleted row (more WAL).");
  b.notes.push_back(
      "A table without a primary key and REPLICA IDENTITY DEFAULT has no key at all: once it is "
      "published, PostgreSQL refuses UPDATE and DELETE on it. Give it FULL (or USING INDEX on a "
      "unique index) before the publication block.");
  if (!facts) {
    b.notes.push_back(
        "Could not check the tables (no connection). Captured tables without a primary key:");
    std::string list;
    for (const auto& t : cfg.source.tables) {
      list += fmt::format("{}({}, {})", list.empty() ? "" : ", ", literal(t.schema), literal(t.table));
    }
    b.sql = fmt::format(
        "SELECT n.nspname, c.relname, c.relreplident FROM pg_class c\n"
        "  JOIN pg_namespace n ON n.oid = c.relnamespace\n"
        "  WHERE (n.nspname, c.relname) IN (VALUES {})\n"
        "    AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary);",
        list);
    return b;
  }
  std::vector<TableName> missing;
  for (const auto& t : facts->tables) {
    if (!t.exists) missing.push_back(t.name);
  }
  for (const auto& t : missing) {
    b.notes.push_back(fmt::format("WARNING: table {} does not exist: create it or fix source.tables.", shown(t)));
  }
  std::vector<TableName> advise = withoutReplicaIdentity(*facts);
  if (advise.empty()) {
    b.notes.push_back("Every captured table has a primary key or a replica identity.");
    return b;
  }
  b.notes.push_back("These captured tables have no key for UPDATE and DELETE:");
  for (const auto& t : advise) {
    if (!b.sql.empty()) b.sql += "\n";
    b.sql += fmt::format("ALTER TABLE {} REPLICA IDENTITY FULL;", table(t));
  }
  return b;
}

Block cronBlock(const config::PipelineConfig& cfg, const DsnTarget& target,
                const std::optional<ServerFacts>& facts) {
  const std::string job = "tidemark-heartbeat-" + cfg.name;
  const std::string schedule = pg::heartbeatCronSchedule(cfg.heartbeat.interval);
  const std::string command = pg::heartbeatUpsertSql(cfg.heartbeat.table, cfg.name);
  Block b;
  b.title = "heartbeat job (pg_cron)";
  b.notes.push_back(
      "source.read_only: tidemark writes nothing, so a job on the primary updates the heartbeat "
      "row; the change reaches tidemark through the slot and keeps measuring freshness.");
  b.notes.push_back(
      "Needs pg_cron on the primary: shared_preload_libraries = 'pg_cron' (restart), then CREATE "
      "EXTENSION pg_cron in the database named by cron.database_name. Jobs are scheduled from "
      "that database; scheduling again under the same name replaces the job.");
  if (cfg.heartbeat.interval < std::chrono::minutes(1)) {
    b.notes.push_back(fmt::format(
        "heartbeat.interval is {}: the schedule '{}' needs pg_cron 1.5 or later. With an older "
        "pg_cron, schedule '* * * * *' under the same job name and raise heartbeat.stall_timeout "
        "above a few minutes.",
        humanDuration(cfg.heartbeat.interval), schedule));
  }
  b.notes.push_back(fmt::format(
      "If pg_cron lives in another database, run this there instead (pg_cron 1.4 or later): "
      "SELECT cron.schedule_in_database({}, {}, {}, {});",
      literal(job), literal(schedule), dollarQuote(command, ""), literal(target.database)));
  if (facts && !facts->pg_cron) {
    b.notes.push_back(fmt::format("pg_cron is not installed in database {}.", ident(facts->database)));
  }
  const std::string inner = dollarQuote(command, "hb");
  std::string body = fmt::format(
      "\nBEGIN\n"
      "  IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN\n"
      "    RAISE WARNING 'pg_cron is not installed in this database: the heartbeat job was not "
      "scheduled';\n"
      "    RETURN;\n"
      "  END IF;\n"
      "  PERFORM cron.schedule({}, {}, {});\n"
      "END\n",
      literal(job), literal(schedule), inner);
  b.sql = "DO " + dollarQuote(body, "tidemark") + ";";
  b.precondition = "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron')";
  b.precondition_failed = fmt::format(
      "pg_cron is not installed in this database, so the heartbeat job was not scheduled. "
      "Install pg_cron on the primary and run this there: SELECT cron.schedule({}, {}, {});",
      literal(job), literal(schedule), dollarQuote(command, ""));
  b.present = fmt::format(
      "SELECT EXISTS (SELECT 1 FROM cron.job WHERE jobname = {} AND schedule = {} AND command = {} "
      "AND database = current_database())",
      literal(job), literal(schedule), literal(command));
  return b;
}

// Comment lines: each line of `text` (a name may hold a newline or carriage return, which
// would end a SQL comment) becomes its own "-- " line; with `wrap`, long lines are broken at
// spaces, continuation lines indented like the first.
void appendComment(std::string& out, std::string_view text, std::string_view prefix = "-- ",
                   bool wrap = false) {
  constexpr size_t kWidth = 100;
  size_t start = 0;
  for (;;) {
    size_t end = text.find_first_of("\r\n", start);
    std::string_view line =
        text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    const size_t indent = std::min(line.find_first_not_of(' '), line.size());
    std::string continuation(prefix);
    continuation += std::string(indent + 2, ' ');
    std::string_view lead = prefix;
    while (wrap && lead.size() + line.size() > kWidth) {
      size_t cut = line.rfind(' ', kWidth - lead.size());
      if (cut == std::string_view::npos || cut <= indent) break;
      out += lead;
      out += line.substr(0, cut);
      out += "\n";
      line = line.substr(cut + 1);
      lead = continuation;
    }
    out += lead;
    out += line;
    out += "\n";
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
}

}  // namespace

std::optional<Flavor> parseFlavor(std::string_view text) {
  for (Flavor f : {Flavor::Postgres, Flavor::Rds, Flavor::CloudSql, Flavor::Azure, Flavor::Supabase,
                   Flavor::Neon}) {
    if (flavorName(f) == text) return f;
  }
  return std::nullopt;
}

std::string_view flavorName(Flavor flavor) {
  switch (flavor) {
    case Flavor::Postgres: return "postgres";
    case Flavor::Rds: return "rds";
    case Flavor::CloudSql: return "cloudsql";
    case Flavor::Azure: return "azure";
    case Flavor::Supabase: return "supabase";
    case Flavor::Neon: return "neon";
  }
  return "postgres";
}

DsnTarget dsnTarget(const std::string& dsn) {
  char* err = nullptr;
  std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> options(PQconninfoParse(dsn.c_str(), &err),
                                                                        &PQconninfoFree);
  // libpq's parse message may quote a fragment of the dsn, which may be the password: drop it.
  if (err != nullptr) PQfreemem(err);
  if (!options) {
    throw Error(ErrorClass::Config, "source.dsn is not a connection string libpq can parse",
                "write it as conninfo (host=db dbname=shop user=tidemark) or as a URI "
                "(postgres://tidemark@db/shop)");
  }
  DsnTarget target;
  for (const PQconninfoOption* o = options.get(); o->keyword != nullptr; ++o) {
    if (o->val == nullptr || *o->val == '\0') continue;
    std::string_view key = o->keyword;
    if (key == "user") target.user = o->val;
    if (key == "dbname") target.database = o->val;
  }
  if (target.user.empty()) {
    throw Error(ErrorClass::Config,
                "source.dsn names no user, so setup cannot tell which role to create and grant",
                "add the role tidemark runs as: user=tidemark (conninfo) or postgres://tidemark@host/db "
                "(URI)");
  }
  if (target.database.empty()) {
    const char* env = std::getenv("PGDATABASE");
    target.database = env != nullptr && *env != '\0' ? env : target.user;
  }
  return target;
}

std::optional<std::string> ServerFacts::setting(std::string_view name) const {
  for (const auto& [key, value] : settings) {
    if (key == name) return value;
  }
  return std::nullopt;
}

std::string dollarQuote(std::string_view body, std::string_view tag) {
  // The closing delimiter must be the first one after the opening: not inside the body, and
  // not formed by the body's end running into it ("x$" followed by "$$" reads as "x$$").
  std::string delimiter = fmt::format("${}$", tag);
  for (int i = 1; (std::string(body) + delimiter).find(delimiter) != body.size(); ++i) {
    delimiter = fmt::format("${}{}$", tag.empty() ? "q" : tag, i);
  }
  return fmt::format("{}{}{}", delimiter, body, delimiter);
}

Plan buildPlan(const config::PipelineConfig& cfg, Flavor flavor, const DsnTarget& target,
               const std::optional<ServerFacts>& facts, const std::string& unchecked) {
  Plan plan;
  const std::string database = facts ? facts->database : target.database;
  DsnTarget where = target;
  where.database = database;

  plan.header.push_back(fmt::format("tidemark setup for pipeline \"{}\" (flavor {}): role {}, database {}.",
                                    cfg.name, flavorName(flavor), ident(target.user), ident(database)));
  plan.header.push_back(fmt::format(
      "Run it as an administrator, connected to database {} on the primary, e.g.:", ident(database)));
  plan.header.push_back("  psql -v ON_ERROR_STOP=1 -d <admin connection> -f setup.sql");
  plan.header.push_back(
      "Every block is idempotent: run the script again and it changes only what is missing. Or let "
      "tidemark run it: tidemark setup -c FILE --apply --admin-dsn DSN.");
  if (facts) {
    plan.header.push_back(fmt::format("Checked against the server: PostgreSQL {}, database {}, as {}.",
                                      facts->server_version, ident(facts->database),
                                      ident(facts->connected_as)));
    if (facts->role && facts->role->superuser) {
      plan.header.push_back(fmt::format(
          "WARNING: {} is a superuser. tidemark needs only what this script grants; give the "
          "pipeline a role of its own.",
          ident(target.user)));
    }
    if (facts->in_recovery) {
      plan.header.push_back(
          "WARNING: this server is a standby: run the script on the primary (only the slot "
          "belongs on the standby tidemark reads from).");
    }
  } else {
    plan.header.push_back(fmt::format(
        "Not checked against the server ({}): current parameter values, the tables' replica "
        "identity and pg_cron are not shown.",
        unchecked.empty() ? "no connection" : unchecked));
  }

  plan.blocks.push_back(parametersBlock(cfg, flavor, facts));
  plan.blocks.push_back(databaseBlock(where));
  plan.blocks.push_back(roleBlock(target));
  plan.blocks.push_back(replicationBlock(target, flavor));
  plan.blocks.push_back(connectBlock(where));
  plan.blocks.push_back(capturedTablesBlock(cfg, target));
  if (heartbeatTableUsed(cfg)) plan.blocks.push_back(heartbeatBlock(cfg, target));
  plan.blocks.push_back(signalBlock(cfg, target));
  plan.blocks.push_back(replicaIdentityBlock(cfg, facts));
  plan.blocks.push_back(publicationBlock(cfg, facts));
  plan.blocks.push_back(slotBlock(cfg));
  if (cfg.source.read_only && heartbeatTableUsed(cfg)) plan.blocks.push_back(cronBlock(cfg, where, facts));
  return plan;
}

std::string renderScript(const Plan& plan) {
  std::string out;
  for (const auto& line : plan.header) appendComment(out, line, "-- ", true);
  int n = 0;
  for (const auto& b : plan.blocks) {
    out += "\n";
    appendComment(out, fmt::format("== {}. {}{} ==", ++n, b.title,
                                   b.kind == BlockKind::Advice ? " (advice, not run)" : ""));
    for (const auto& note : b.notes) appendComment(out, note, "-- ", true);
    if (b.sql.empty()) continue;
    if (b.kind == BlockKind::Advice) {
      appendComment(out, b.sql, "--   ");
    } else {
      out += b.sql;
      out += "\n";
    }
  }
  return out;
}

}  // namespace tidemark::setup
