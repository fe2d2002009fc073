#include "ops/setup/setup.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>

#include "base/error.h"
#include "ops/setup/plan.h"
#include "postgres/connection.h"

namespace tidemark::setup {

namespace {

using config::TableName;

// Parameters the plan reports on; a server without one (rds.* off RDS) reports nothing for it.
constexpr const char* kSettings[] = {
    "wal_level",          "max_replication_slots",   "max_wal_senders",          "wal_sender_timeout",
    "max_slot_wal_keep_size", "rds.logical_replication", "cloudsql.logical_decoding",
};

ServerFacts gatherFacts(pg::Connection& conn, const config::PipelineConfig& cfg, const DsnTarget& target) {
  ServerFacts facts;
  pg::Result r = conn.exec(
      "SELECT current_database(), current_setting('server_version'), current_user, "
      "pg_is_in_recovery()",
      "reading the server's identity");
  facts.database = pg::value(r.get(), 0, 0).value_or("");
  facts.server_version = pg::value(r.get(), 0, 1).value_or("");
  facts.connected_as = pg::value(r.get(), 0, 2).value_or("");
  facts.in_recovery = pg::value(r.get(), 0, 3) == "t";

  for (const char* name : kSettings) {
    pg::Result s = conn.execParams("SELECT current_setting($1, true)", {std::string(name)},
                                   fmt::format("reading parameter {}", name));
    facts.settings.emplace_back(name, pg::value(s.get(), 0, 0));
  }

  pg::Result role = conn.execParams(
      "SELECT rolsuper, rolreplication, rolcanlogin FROM pg_roles WHERE rolname = $1", {target.user},
      "reading pg_roles");
  if (PQntuples(role.get()) > 0) {
    facts.role = RoleFacts{pg::value(role.get(), 0, 0) == "t", pg::value(role.get(), 0, 1) == "t",
                           pg::value(role.get(), 0, 2) == "t"};
  }

  for (const TableName& t : cfg.source.tables) {
    pg::Result tr = conn.execParams(
        "SELECT c.relreplident, EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND "
        "i.indisprimary) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')",
        {t.schema, t.table}, fmt::format("looking up table {}", t.str()));
    TableFacts tf;
    tf.name = t;
    if (PQntuples(tr.get()) > 0) {
      tf.exists = true;
      tf.replica_identity = pg::value(tr.get(), 0, 0).value_or("d")[0];
      tf.has_primary_key = pg::value(tr.get(), 0, 1) == "t";
    }
    facts.tables.push_back(tf);
  }

  pg::Result cron = conn.exec("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron')",
                              "looking for pg_cron");
  facts.pg_cron = pg::value(cron.get(), 0, 0) == "t";
  return facts;
}

bool queryTrue(pg::Connection& conn, const std::string& sql, std::string_view what) {
  pg::Result r = conn.exec(sql, what);
  return PQntuples(r.get()) > 0 && pg::value(r.get(), 0, 0) == "t";
}

// What to do about a block that failed, by SQLSTATE; the blocks already run stay done, and
// running --apply again skips them.
std::string hintFor(const pg::ServerError& e, Flavor flavor) {
  const std::string& state = e.sqlstate();
  std::string hint;
  if (state == "42501") {
    hint = "setup --apply must run as an administrator: a superuser, or on a managed service its "
           "admin user (rds_superuser, cloudsqlsuperuser, azure_pg_admin, Supabase's postgres, "
           "Neon's project owner); pass it with --admin-dsn, or run without --apply and hand the "
           "script to your DBA";
  } else if (state == "42704" && flavor == Flavor::Rds) {
    hint = "--flavor rds grants rds_replication, which only RDS and Aurora have; pick the --flavor "
           "of the server this is";
  } else if (state == "42P01") {
    hint = "check source.tables: every captured table must exist";
  } else if (state == "55000") {
    hint = "logical decoding needs wal_level = logical: see the server parameters block of "
           "`tidemark setup` (without --apply), change it and restart the server";
  } else if (state == "53400") {
    hint = "no free replication slot: raise max_replication_slots, or drop a slot nothing uses";
  } else if (state == "25006") {
    hint = "this server is a standby: run setup --apply against the primary (--admin-dsn)";
  } else {
    hint = "fix the cause and run setup --apply again: blocks already done are skipped";
  }
  if (!e.hint().empty()) hint = e.hint() + "; " + hint;
  return hint;
}

void printIndented(const std::vector<std::string>& lines, std::string_view indent) {
  for (const auto& line : lines) {
    size_t start = 0;
    for (;;) {
      size_t end = line.find('\n', start);
      fmt::print("{}{}\n", indent, line.substr(start, end == std::string::npos ? std::string::npos : end - start));
      if (end == std::string::npos) break;
      start = end + 1;
    }
  }
}

// Before anything runs: the admin connection is the right server and database, and nothing
// in the plan would break the application's writes.
void preflight(const ServerFacts& facts, const DsnTarget& target, bool admin) {
  if (facts.in_recovery) {
    throw Error(ErrorClass::Config,
                "the server setup --apply connected to is a standby (pg_is_in_recovery())",
                "run it against the primary: --admin-dsn pointing at the primary's address");
  }
  if (facts.database != target.database) {
    throw Error(ErrorClass::Config,
                fmt::format("setup --apply connected to database \"{}\", but source.dsn names \"{}\"",
                            facts.database, target.database),
                admin ? fmt::format("add dbname={} to --admin-dsn", target.database)
                      : "check dbname in source.dsn");
  }
  // Without logical decoding the slot block would fail after every block before it ran: stop
  // before changing anything.
  if (auto wal_level = facts.setting("wal_level"); wal_level && *wal_level != "logical") {
    throw Error(ErrorClass::Config,
                fmt::format("wal_level is {} on this server; logical decoding needs logical, so "
                            "setup --apply changed nothing",
                            *wal_level),
                "as a superuser: ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL (a "
                "reload is not enough), and run setup --apply again. On a managed service, set it "
                "in the provider's console (tidemark setup --flavor prints how)");
  }
  std::vector<std::string> missing;
  std::vector<std::string> no_identity;
  for (const auto& t : facts.tables) {
    if (!t.exists) {
      missing.push_back(t.name.str());
    } else if (t.replica_identity == 'n' || (t.replica_identity == 'd' && !t.has_primary_key)) {
      no_identity.push_back(pg::quoteTableText(t.name.schema, t.name.table));
    }
  }
  if (!missing.empty()) {
    throw Error(ErrorClass::Config,
                fmt::format("captured tables do not exist in database \"{}\": {}", facts.database,
                            fmt::join(missing, ", ")),
                "create them, or fix source.tables");
  }
  if (!no_identity.empty()) {
    std::string fix;
    for (const auto& t : no_identity) fix += fmt::format("ALTER TABLE {} REPLICA IDENTITY FULL; ", t);
    throw Error(ErrorClass::Config,
                fmt::format("{} {} no primary key and no replica identity: once published, "
                            "PostgreSQL would refuse UPDATE and DELETE on {}, so setup does not "
                            "add {} to the publication",
                            fmt::join(no_identity, ", "), no_identity.size() == 1 ? "has" : "have",
                            no_identity.size() == 1 ? "it" : "them",
                            no_identity.size() == 1 ? "it" : "them"),
                fmt::format("as the tables' owner, choose a replica identity and run setup again: "
                            "{}(or USING INDEX on a unique index)",
                            fix));
  }
}

pg::ConnectOptions connectOptions(const config::PipelineConfig& cfg, const SetupOptions& options) {
  pg::ConnectOptions o = pg::sourceOptions(cfg.source, "tidemark-setup");
  if (options.admin_dsn) {
    // The admin brings its own credentials (in the dsn, PGPASSWORD or ~/.pgpass):
    // source.password belongs to the pipeline's role.
    o.dsn = *options.admin_dsn;
    o.password.reset();
    o.what = "admin (--admin-dsn)";
  }
  return o;
}

int printSetup(const config::PipelineConfig& cfg, Flavor flavor, const DsnTarget& target) {
  std::optional<ServerFacts> facts;
  std::string unchecked;
  try {
    pg::ConnectOptions o = connectOptions(cfg, SetupOptions{});
    // Printing must not hang on an unreachable server: it works without one.
    o.connect_timeout = std::min(o.connect_timeout, std::chrono::milliseconds(5000));
    pg::Connection conn = pg::Connection::open(o);
    facts = gatherFacts(conn, cfg, target);
  } catch (const Error& e) {
    unchecked = e.what();
  }
  fmt::print("{}", renderScript(buildPlan(cfg, flavor, target, facts, unchecked)));
  return kExitOk;
}

int applySetup(const config::PipelineConfig& cfg, Flavor flavor, const DsnTarget& target,
               const SetupOptions& options) {
  pg::Connection conn = [&] {
    try {
      return pg::Connection::open(connectOptions(cfg, options));
    } catch (const Error& e) {
      if (!options.admin_dsn) throw;
      throw Error(e.errorClass(), e.what(),
                  "check --admin-dsn: host, port, dbname, an administrator's user, and its "
                  "password (in the dsn, PGPASSWORD or ~/.pgpass)");
    }
  }();
  // An idempotent script says "already exists" at every second run: not news.
  conn.exec("SET client_min_messages = warning", "setting client_min_messages");
  ServerFacts facts = gatherFacts(conn, cfg, target);
  preflight(facts, target, options.admin_dsn.has_value());
  Plan plan = buildPlan(cfg, flavor, target, facts, "");

  fmt::print("tidemark setup --apply: pipeline \"{}\", role \"{}\", database \"{}\", flavor {}, as \"{}\"\n",
             cfg.name, target.user, facts.database, flavorName(flavor), facts.connected_as);
  int n = 0;
  int warnings = 0;
  for (const Block& b : plan.blocks) {
    ++n;
    const std::string label = fmt::format("{:>2}. {}", n, b.title);
    if (b.kind == BlockKind::Advice) {
      fmt::print("{}: advice, not run\n", label);
      printIndented(b.notes, "      ");
      if (!b.sql.empty()) printIndented({b.sql}, "      ");
      std::fflush(stdout);
      continue;
    }
    try {
      if (!b.precondition.empty() &&
          !queryTrue(conn, b.precondition, fmt::format("checking whether block \"{}\" can run", b.title))) {
        fmt::print("{}: not run\n      WARNING: {}\n", label, b.precondition_failed);
        ++warnings;
        std::fflush(stdout);
        continue;
      }
      if (!b.present.empty() &&
          queryTrue(conn, b.present, fmt::format("checking whether block \"{}\" is done", b.title))) {
        fmt::print("{}: skipped (already present)\n", label);
        std::fflush(stdout);
        continue;
      }
      conn.exec(b.sql, fmt::format("block {} ({})", n, b.title));
    } catch (const pg::ServerError& e) {
      fmt::print("{}: FAILED\n", label);
      std::fflush(stdout);
      throw Error(e.retriable() ? ErrorClass::Retriable : ErrorClass::Fatal,
                  fmt::format("setup --apply stopped at block {} ({}): {}", n, b.title, e.what()),
                  hintFor(e, flavor));
    }
    fmt::print("{}: ok\n", label);
    std::fflush(stdout);
  }
  fmt::print(
      "done{}. The role has no password unless you set one (\\password \"{}\" in psql); then run "
      "tidemark check -c FILE and tidemark run -c FILE.\n",
      warnings > 0 ? fmt::format(", with {} warning{}", warnings, warnings == 1 ? "" : "s") : "",
      target.user);
  return kExitOk;
}

}  // namespace

int setupCommand(const config::PipelineConfig& cfg, const SetupOptions& options) {
  std::optional<Flavor> flavor = parseFlavor(options.flavor);
  if (!flavor) {
    throw Error(ErrorClass::Config, fmt::format("--flavor {} is not one setup knows", options.flavor),
                "use postgres, rds (RDS and Aurora), cloudsql, azure, supabase or neon");
  }
  if (options.admin_dsn && !options.apply) {
    throw Error(ErrorClass::Config, "--admin-dsn goes with --apply",
                "add --apply, or leave out --admin-dsn to print the SQL");
  }
  DsnTarget target = dsnTarget(cfg.source.dsn);
  return options.apply ? applySetup(cfg, *flavor, target, options) : printSetup(cfg, *flavor, target);
}

}  // namespace tidemark::setup
