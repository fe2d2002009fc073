#include "support/pg_cluster.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "support/poll.h"
#include "support/process.h"

namespace tidemark::test {
namespace {

constexpr auto kToolTimeout = std::chrono::seconds(120);

struct ResultCloser {
  void operator()(PGresult* r) const { PQclear(r); }
};
using ResultPtr = std::unique_ptr<PGresult, ResultCloser>;

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// A port the kernel considers free right now. Another process may take it before the server
// binds it, so start() retries with a new one when the server reports the address in use.
int freePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    int err = errno;
    ::close(fd);
    throw std::runtime_error(std::string("bind/getsockname: ") + std::strerror(err));
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

std::filesystem::path findBindir() {
  // pg_config may belong to another major version than the server packages; only trust it
  // when it points at an initdb.
  if (FILE* p = ::popen("pg_config --bindir 2>/dev/null", "r")) {
    char buf[4096];
    std::string out;
    while (std::fgets(buf, sizeof buf, p) != nullptr) out += buf;
    ::pclose(p);
    std::filesystem::path dir = trimmed(out);
    std::error_code ec;
    if (!dir.empty() && std::filesystem::exists(dir / "initdb", ec)) return dir;
  }
  std::filesystem::path fallback = "/usr/lib/postgresql/15/bin";
  if (std::filesystem::exists(fallback / "initdb")) return fallback;
  throw std::runtime_error(
      "PostgreSQL server binaries not found (pg_config --bindir, /usr/lib/postgresql/15/bin)");
}

std::string readTail(const std::filesystem::path& p, size_t maxBytes) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return "(no log at " + p.string() + ")";
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  if (s.size() > maxBytes) s = "..." + s.substr(s.size() - maxBytes);
  return s;
}

std::string quoteIdent(const std::string& name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string quoteLiteral(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

}  // namespace

// ---- PgConnection ----

PgConnection::PgConnection(const std::string& conninfo) : conn_(PQconnectdb(conninfo.c_str())) {
  if (!conn_) throw std::runtime_error("PQconnectdb: out of memory");
  if (PQstatus(conn_.get()) != CONNECTION_OK) {
    throw std::runtime_error("connect (" + conninfo + "): " + trimmed(PQerrorMessage(conn_.get())));
  }
  // NOTICEs ("database ... does not exist, skipping") would only clutter the test output.
  PQsetNoticeProcessor(conn_.get(), [](void*, const char*) {}, nullptr);
}

PgRows PgConnection::exec(const std::string& sql) {
  ResultPtr res(PQexec(conn_.get(), sql.c_str()));
  const ExecStatusType st = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    std::string msg = res ? PQresultErrorMessage(res.get()) : PQerrorMessage(conn_.get());
    std::string shown = sql.size() > 300 ? sql.substr(0, 300) + "..." : sql;
    throw std::runtime_error("SQL failed: " + trimmed(msg) + "\n  in: " + shown);
  }
  PgRows rows;
  const int nrows = PQntuples(res.get());
  const int ncols = PQnfields(res.get());
  rows.reserve(static_cast<size_t>(nrows));
  for (int r = 0; r < nrows; ++r) {
    PgRow row;
    row.reserve(static_cast<size_t>(ncols));
    for (int c = 0; c < ncols; ++c) {
      if (PQgetisnull(res.get(), r, c)) {
        row.emplace_back(std::nullopt);
      } else {
        row.emplace_back(std::string(PQgetvalue(res.get(), r, c),
                                     static_cast<size_t>(PQgetlength(res.get(), r, c))));
      }
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

std::optional<std::string> PgConnection::maybeScalar(const std::string& sql) {
  PgRows rows = exec(sql);
  if (rows.size() != 1 || rows[0].size() != 1) {
    throw std::runtime_error("expected one value, got " + std::to_string(rows.size()) +
                             " rows from: " + sql);
  }
  return rows[0][0];
}

std::string PgConnection::scalar(const std::string& sql) {
  auto v = maybeScalar(sql);
  if (!v) throw std::runtime_error("expected a value, got NULL from: " + sql);
  return *v;
}

// ---- PgCluster ----

PgCluster::PgCluster() : bindir_(findBindir()) {
  if (::geteuid() == 0) {
    const passwd* pw = ::getpwnam("postgres");
    if (pw == nullptr) {
      throw std::runtime_error("running as root, but there is no `postgres` OS user to run "
                               "the server as (PostgreSQL refuses root)");
    }
    asPostgresUser_ = true;
    pgUid_ = pw->pw_uid;
    pgGid_ = pw->pw_gid;
  }
}

PgCluster::~PgCluster() {
  try {
    stop();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "PgCluster: stop failed: %s\n", e.what());
  }
}

PgCluster& PgCluster::shared() {
  // A function-local static: constructed on first use, destroyed (server stopped, directory
  // removed) when the binary exits normally. The watchdog covers abnormal exits.
  static PgCluster cluster;
  if (!cluster.running()) cluster.start();
  return cluster;
}

std::filesystem::path PgCluster::tool(const std::string& name) const { return bindir_ / name; }

std::vector<std::string> PgCluster::asServerUser(std::vector<std::string> argv) const {
  if (!asPostgresUser_) return argv;
  std::vector<std::string> out = {"runuser", "-u", "postgres", "--"};
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

void PgCluster::runTool(std::vector<std::string> argv) const {
  Process p(asServerUser(std::move(argv)));
  auto rc = p.waitExit(kToolTimeout);
  if (!rc || *rc != 0) {
    throw std::runtime_error("PostgreSQL tool failed\n" + p.describe() + "\nserver log:\n" +
                             logTail());
  }
}

void PgCluster::startWatchdog() {
  // A separate process that outlives this one: it blocks reading a pipe whose only writer is
  // this process, so it wakes up when this process closes it (stop) or dies in any way, and
  // then shuts the server down and removes the directory if they are still there.
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    throw std::runtime_error(std::string("pipe2: ") + std::strerror(errno));
  }
  const std::string script =
      "read -r _ignored; d=\"$1\"; t=\"$2\"; shift 2; "
      "if [ -f \"$d/postmaster.pid\" ]; then \"$@\" stop -D \"$d\" -m immediate -w; fi; "
      "rm -rf \"$t\"";
  std::vector<std::string> argv = {"/bin/sh", "-c", script, "tidemark-pg-watchdog",
                                   data_.string(), dir_->path().string()};
  for (auto& a : asServerUser({tool("pg_ctl").string()})) argv.push_back(a);
  std::vector<char*> ptrs;
  for (auto& a : argv) ptrs.push_back(a.data());
  ptrs.push_back(nullptr);

  pid_t pid = ::fork();
  if (pid < 0) {
    int err = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    throw std::runtime_error(std::string("fork: ") + std::strerror(err));
  }
  if (pid == 0) {
    // Own session: a Ctrl-C aimed at the test binary must not take the watchdog with it.
    ::setsid();
    int devnull = ::open("/dev/null", O_RDWR);
    if (::dup2(fds[0], 0) < 0 || devnull < 0 || ::dup2(devnull, 1) < 0 || ::dup2(devnull, 2) < 0) {
      ::_exit(127);
    }
    ::execv("/bin/sh", ptrs.data());
    ::_exit(127);
  }
  ::close(fds[0]);
  watchdog_ = pid;
  watchdogFd_ = fds[1];
}

void PgCluster::stopWatchdog() {
  if (watchdogFd_ >= 0) {
    ::close(watchdogFd_);
    watchdogFd_ = -1;
  }
  if (watchdog_ > 0) {
    int status;
    while (::waitpid(watchdog_, &status, 0) < 0 && errno == EINTR) {
    }
    watchdog_ = -1;
  }
}

void PgCluster::initdb() {
  dir_ = std::make_unique<TempDir>("tidemark-pg");
  data_ = dir_->path() / "data";
  log_ = dir_->path() / "postgres.log";
  if (asPostgresUser_) {
    if (::chown(dir_->path().c_str(), pgUid_, pgGid_) != 0) {
      throw std::runtime_error("chown " + dir_->path().string() + ": " + std::strerror(errno));
    }
  }
  startWatchdog();
  // --no-sync only skips flushing the template files initdb writes; the server itself runs
  // with fsync on.
  runTool({tool("initdb").string(), "-D", data_.string(), "-U", "postgres", "-A", "trust",
           "-E", "UTF8", "--locale=C", "--no-sync"});

  {
    std::ofstream conf(data_ / "postgresql.conf", std::ios::app);
    conf << "\n# tidemark test cluster\n"
         << "listen_addresses = '127.0.0.1'\n"
         << "unix_socket_directories = '" << dir_->path().string() << "'\n"
         << "wal_level = logical\n"
         << "max_replication_slots = 20\n"
         << "max_wal_senders = 20\n"
         << "fsync = on\n"
         << "shared_buffers = 32MB\n"
         << "max_connections = 100\n"
         << "password_encryption = 'scram-sha-256'\n"
         << "logging_collector = off\n"
         << "log_min_messages = warning\n"
         << "log_line_prefix = '%m [%p] %u@%d '\n"
         << "log_replication_commands = on\n"
         << "log_connections = off\n"
         << "max_wal_size = 1GB\n";
    if (!conf) throw std::runtime_error("cannot write postgresql.conf");
  }
  {
    // First match wins: pw_user must authenticate, everyone else is trusted.
    std::ofstream hba(data_ / "pg_hba.conf", std::ios::trunc);
    hba << "local all all trust\n"
        << "host all " << kPasswordUser << " 127.0.0.1/32 scram-sha-256\n"
        << "host replication " << kPasswordUser << " 127.0.0.1/32 scram-sha-256\n"
        << "host all all 127.0.0.1/32 trust\n"
        << "host replication all 127.0.0.1/32 trust\n";
    if (!hba) throw std::runtime_error("cannot write pg_hba.conf");
  }
}

bool PgCluster::startOnce() {
  Process p(asServerUser({tool("pg_ctl").string(), "start", "-w", "-t", "60", "-D", data_.string(),
                          "-l", log_.string(), "-o", "-p " + std::to_string(port_)}));
  auto rc = p.waitExit(kToolTimeout);
  if (rc && *rc == 0) return true;
  if (logTail(4000).find("Address already in use") != std::string::npos) return false;
  throw std::runtime_error("pg_ctl start failed\n" + p.describe() + "\nserver log:\n" + logTail());
}

void PgCluster::start() {
  if (running_) return;
  const bool fresh = !dir_;
  if (fresh) initdb();
  if (fresh || port_ == 0) {
    constexpr int kAttempts = 5;
    for (int attempt = 1;; ++attempt) {
      port_ = freePort();
      if (startOnce()) break;
      if (attempt == kAttempts) {
        throw std::runtime_error("no free port for PostgreSQL after " + std::to_string(kAttempts) +
                                 " attempts\n" + logTail());
      }
    }
  } else if (!startOnce()) {
    throw std::runtime_error("port " + std::to_string(port_) + " was taken while restarting");
  }
  running_ = true;
  if (fresh) {
    exec("postgres", std::string("CREATE ROLE ") + kPasswordUser + " LOGIN REPLICATION PASSWORD " +
                         quoteLiteral(kPasswordUserPassword));
  }
}

void PgCluster::stop() {
  if (!dir_) return;
  if (running_) {
    running_ = false;
    runTool({tool("pg_ctl").string(), "stop", "-D", data_.string(), "-m", "fast", "-w", "-t", "60"});
  }
  dir_.reset();
  stopWatchdog();
  port_ = 0;
}

void PgCluster::halt() {
  if (!running_) return;
  running_ = false;
  runTool({tool("pg_ctl").string(), "stop", "-D", data_.string(), "-m", "fast", "-w", "-t", "60"});
}

void PgCluster::restart() {
  halt();
  start();
}

std::string PgCluster::dsn(const std::string& db, const std::string& user) const {
  return "host=127.0.0.1 port=" + std::to_string(port_) + " dbname=" + db + " user=" + user;
}

void PgCluster::dropDatabase(const std::string& name) {
  // A database cannot be dropped while a replication slot lives in it; walsenders holding
  // a slot are ended first so that their slots can be dropped.
  const std::string lit = quoteLiteral(name);
  exec("postgres",
       "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots "
       "WHERE database = " + lit + " AND active_pid IS NOT NULL");
  // A terminated walsender releases its slot asynchronously, so dropping may fail for a
  // moment with "slot is active".
  std::string lastError;
  const bool dropped = eventually(
      [&] {
        try {
          exec("postgres", "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                           "WHERE database = " + lit);
          return true;
        } catch (const std::runtime_error& e) {
          lastError = e.what();
          return false;
        }
      },
      std::chrono::seconds(30));
  if (!dropped) throw std::runtime_error("cannot drop the slots of " + name + ": " + lastError);
  exec("postgres", "DROP DATABASE IF EXISTS " + quoteIdent(name) + " WITH (FORCE)");
}

void PgCluster::createDatabase(const std::string& name) {
  dropDatabase(name);
  exec("postgres", "CREATE DATABASE " + quoteIdent(name));
}

PgRows PgCluster::exec(const std::string& db, const std::string& sql) {
  return connect(db).exec(sql);
}

std::string PgCluster::scalar(const std::string& db, const std::string& sql) {
  return connect(db).scalar(sql);
}

std::optional<std::string> PgCluster::maybeScalar(const std::string& db, const std::string& sql) {
  return connect(db).maybeScalar(sql);
}

PgConnection PgCluster::connect(const std::string& db, const std::string& user) {
  return PgConnection(dsn(db, user));
}

std::string PgCluster::logTail(size_t maxBytes) const { return readTail(log_, maxBytes); }

size_t PgCluster::logSize() const {
  std::error_code ec;
  const auto size = std::filesystem::file_size(log_, ec);
  return ec ? 0 : static_cast<size_t>(size);
}

std::string PgCluster::logSince(size_t offset) const {
  std::ifstream in(log_, std::ios::binary);
  if (!in) return "";
  in.seekg(static_cast<std::streamoff>(offset));
  if (!in) return "";
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void PgCluster::setSystem(const std::string& name, const std::optional<std::string>& value) {
  const std::string before = scalar("postgres", "SELECT pg_conf_load_time()::text");
  if (value) {
    exec("postgres", "ALTER SYSTEM SET " + name + " = " + *value);
  } else {
    exec("postgres", "ALTER SYSTEM RESET " + name);
  }
  // pg_conf_load_time() has microsecond resolution; make sure the reload is a later one.
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  exec("postgres", "SELECT pg_reload_conf()");
  // A new backend inherits the postmaster's settings, and its pg_conf_load_time() tells when
  // the postmaster last read them.
  const bool reloaded = eventually(
      [&] { return scalar("postgres", "SELECT pg_conf_load_time()::text") != before; },
      std::chrono::seconds(30), std::chrono::milliseconds(20));
  if (!reloaded) {
    throw std::runtime_error("the server did not reload its configuration after ALTER SYSTEM " +
                             name + "\n" + logTail(2000));
  }
}

}  // namespace tidemark::test
