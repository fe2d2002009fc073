// What `tidemark setup` does, as data: an ordered list of blocks, each a comment that says why
// and the SQL that does it. Building the plan needs no connection (what the server said, when
// it could be asked, only enriches it), so the printed script and `--apply` run the same SQL,
// and tests read the plan without a server.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.h"

namespace tidemark::setup {

/// Where PostgreSQL runs; it decides how the role gets the right to replicate and how server
/// parameters are changed.
enum class Flavor { Postgres, Rds, CloudSql, Azure, Supabase, Neon };

/// "postgres", "rds", "cloudsql", "azure", "supabase", "neon"; nothing for anything else.
std::optional<Flavor> parseFlavor(std::string_view text);
std::string_view flavorName(Flavor flavor);

/// Whom and where the setup is for: the user and database of source.dsn.
struct DsnTarget {
  std::string user;
  /// dbname of the dsn; as libpq does, PGDATABASE and then the user name when it has none.
  std::string database;
};

/// Parses source.dsn (conninfo or URI) with libpq. Throws Error(Config) when it names no user:
/// setup must know which role to create and grant. Never puts the dsn in a message.
DsnTarget dsnTarget(const std::string& dsn);

/// What the source server said about the pipeline's objects, when it could be reached.
struct RoleFacts {
  bool superuser = false;
  bool replication = false;
  bool can_login = false;
};

struct TableFacts {
  config::TableName name;
  bool exists = false;
  bool has_primary_key = false;
  /// pg_class.relreplident: d(efault), n(othing), f(ull), i(ndex).
  char replica_identity = 'd';
};

struct ServerFacts {
  std::string database;        // current_database()
  std::string server_version;  // "15.4"
  std::string connected_as;    // current_user
  bool in_recovery = false;
  /// Parameters by name, as current_setting shows them; nothing when the server has no such
  /// parameter (rds.logical_replication on a self-hosted server).
  std::vector<std::pair<std::string, std::optional<std::string>>> settings;
  /// The pipeline's role; nothing when it does not exist yet.
  std::optional<RoleFacts> role;
  std::vector<TableFacts> tables;  // the captured tables, in configuration order
  bool pg_cron = false;            // the pg_cron extension is installed in this database

  std::optional<std::string> setting(std::string_view name) const;
};

enum class BlockKind {
  Statement,  // printed as SQL and run by --apply
  Advice,     // printed as comments only, never run: restarts, parameter groups, table changes
};

struct Block {
  std::string title;
  BlockKind kind = BlockKind::Statement;
  /// Why the block is there and what to know, one line each (rendered as "-- " comments).
  std::vector<std::string> notes;
  /// Statement: SQL run as is (idempotent). Advice: SQL shown commented out, if any.
  std::string sql;
  /// A query returning one boolean, true when the block has nothing left to do; --apply then
  /// skips it and says so. Empty: the block always runs (it is idempotent anyway).
  std::string present;
  /// A query returning one boolean, false when the block cannot run on this server; --apply
  /// then prints `precondition_failed` as a warning instead of failing.
  std::string precondition;
  std::string precondition_failed;
};

struct Plan {
  std::vector<std::string> header;  // who, where, how to run the script
  std::vector<Block> blocks;
};

/// The blocks for this pipeline. `facts` is what the server said, if it could be reached;
/// `unchecked` says why not (shown in the header) when it is empty.
Plan buildPlan(const config::PipelineConfig& cfg, Flavor flavor, const DsnTarget& target,
               const std::optional<ServerFacts>& facts, const std::string& unchecked);

/// The plan as a SQL script for psql: comment headers per block, statements ending in ';'.
std::string renderScript(const Plan& plan);

/// `body` between dollar quotes whose tag ($tag$, $tag1$, ...) does not occur in it, so any
/// name inside is safe.
std::string dollarQuote(std::string_view body, std::string_view tag);

}  // namespace tidemark::setup
