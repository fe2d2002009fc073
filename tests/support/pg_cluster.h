// A throwaway PostgreSQL 15 server for tests: initdb into a fresh temp dir, listen on
// 127.0.0.1 at a free port, logical decoding on, removed again on stop. Tests share one
// server per test binary (PgCluster::shared()) and keep apart by using a database each.
//
// PostgreSQL refuses to run as root, and CI runs tests as root, so then the server tools run
// as the `postgres` OS user (runuser) and the temp dir is handed to that user.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <libpq-fe.h>

#include "support/temp_dir.h"

namespace tidemark::test {

using PgRow = std::vector<std::optional<std::string>>;
using PgRows = std::vector<PgRow>;

/// One libpq connection. Errors throw std::runtime_error carrying the server's message.
class PgConnection {
 public:
  explicit PgConnection(const std::string& conninfo);

  /// Runs `sql` (several statements allowed; the rows are those of the last one).
  PgRows exec(const std::string& sql);
  /// The single value `sql` returns; throws when it returns no row, more than one value, or NULL.
  std::string scalar(const std::string& sql);
  /// As scalar, but NULL is returned as nothing.
  std::optional<std::string> maybeScalar(const std::string& sql);

  PGconn* get() const { return conn_.get(); }

 private:
  struct Closer {
    void operator()(PGconn* c) const { PQfinish(c); }
  };
  std::unique_ptr<PGconn, Closer> conn_;
};

class PgCluster {
 public:
  /// The role that must authenticate with scram-sha-256 (every other role is trusted), and
  /// its password. It has LOGIN and REPLICATION.
  static constexpr const char* kPasswordUser = "pw_user";
  static constexpr const char* kPasswordUserPassword = "s3cret-Pw-4-tests";

  PgCluster();
  /// Stops the server and removes its directory when still running.
  ~PgCluster();
  PgCluster(const PgCluster&) = delete;
  PgCluster& operator=(const PgCluster&) = delete;

  /// The server shared by all tests of this binary, started on first use and stopped when
  /// the binary exits (a watchdog process stops it even when the binary is killed).
  static PgCluster& shared();

  /// initdb (first time only) and start. Throws std::runtime_error with the server log tail.
  void start();
  /// Fast shutdown, then the data directory is removed.
  void stop();
  /// Fast shutdown and start again on the same port, keeping the data.
  void restart();
  /// Fast shutdown, keeping the data and the port: a source that is down until start().
  void halt();
  bool running() const { return running_; }

  int port() const { return port_; }
  /// libpq conninfo for `db` as `user` over TCP.
  std::string dsn(const std::string& db, const std::string& user = "postgres") const;

  /// Creates `name` afresh (dropped first when it exists).
  void createDatabase(const std::string& name);
  /// Drops `name` when it exists, after dropping the replication slots that live in it.
  void dropDatabase(const std::string& name);

  PgRows exec(const std::string& db, const std::string& sql);
  std::string scalar(const std::string& db, const std::string& sql);
  std::optional<std::string> maybeScalar(const std::string& db, const std::string& sql);
  PgConnection connect(const std::string& db, const std::string& user = "postgres");

  /// The last `maxBytes` of the server log, for failure messages.
  std::string logTail(size_t maxBytes = 8000) const;
  /// The server log file (pg_ctl -l; readable by the test process).
  const std::filesystem::path& logFile() const { return log_; }
  /// The current size of the server log: an offset for logSince.
  size_t logSize() const;
  /// What the server logged from `offset` (a logSize() taken earlier) on.
  std::string logSince(size_t offset) const;

  /// ALTER SYSTEM SET `name` = `value` (a SQL literal, e.g. "'all'" or "'5s'"), or ALTER
  /// SYSTEM RESET `name` when `value` is empty; then reloads the configuration and waits until
  /// a new connection sees the reload (pg_conf_load_time() moved), so connections opened
  /// afterwards, walsenders included, run with the new value.
  void setSystem(const std::string& name, const std::optional<std::string>& value);

 private:
  std::vector<std::string> asServerUser(std::vector<std::string> argv) const;
  std::filesystem::path tool(const std::string& name) const;
  void runTool(std::vector<std::string> argv) const;
  void initdb();
  bool startOnce();
  void startWatchdog();
  void stopWatchdog();

  std::filesystem::path bindir_;
  std::unique_ptr<TempDir> dir_;
  std::filesystem::path data_;
  std::filesystem::path log_;
  bool asPostgresUser_ = false;
  uid_t pgUid_ = 0;
  gid_t pgGid_ = 0;
  int port_ = 0;
  bool running_ = false;
  pid_t watchdog_ = -1;
  int watchdogFd_ = -1;
};

}  // namespace tidemark::test
