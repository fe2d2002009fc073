#include "ops/check/rules.h"

#include <arpa/inet.h>

#include <algorithm>

#include <fmt/format.h>

#include "source/postgres/source_setup.h"

namespace tidemark::check {


namespace {

CheckResult result(std::string id, std::string title, Outcome outcome, std::string saw,
                   std::string fix = {}) {
  return CheckResult{std::move(id), std::move(title), outcome, std::move(saw), std::move(fix)};
}

std::string mbText(int64_t mb) {
  if (mb >= 1024 && mb % 1024 == 0) return fmt::format("{}GB", mb / 1024);
  return fmt::format("{}MB", mb);
}

}  // namespace

std::string bytesText(int64_t bytes) {
  const char* units[] = {"kB", "MB", "GB", "TB"};
  if (bytes < 0) return "-" + bytesText(-bytes);
  if (bytes < 10 * 1024) return fmt::format("{} bytes", bytes);
  double v = static_cast<double>(bytes);
  size_t unit = 0;
  v /= 1024;
  while (v >= 1024 && unit + 1 < std::size(units)) {
    v /= 1024;
    ++unit;
  }
  return v < 10 ? fmt::format("{:.1f} {}", v, units[unit]) : fmt::format("{:.0f} {}", v, units[unit]);
}

bool isLoopbackHost(std::string_view host) {
  if (host.empty() || host.front() == '/' || host.front() == '@') return true;  // Unix socket
  if (host == "localhost" || host == "localhost.localdomain") return true;
  std::string h(host);
  in_addr v4{};
  if (::inet_pton(AF_INET, h.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (::inet_pton(AF_INET6, h.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
}

CheckResult judgeConnection(const ConnectionFacts& f) {
  const std::string title = "connection and TLS";
  const bool socket = !f.host.empty() && (f.host.front() == '/' || f.host.front() == '@');
  std::string where = socket ? fmt::format("the Unix socket in {} (port {})", f.host, f.port)
                             : fmt::format("{}:{}", f.host, f.port);
  std::string saw = fmt::format("connected to {} as user \"{}\", database \"{}\"", where, f.user,
                                f.database);
  if (f.tls) {
    return result("connection", title, Outcome::Pass,
                  fmt::format("{}, over TLS ({})", saw, f.tls_protocol.empty() ? "?" : f.tls_protocol));
  }
  if (isLoopbackHost(f.host)) {
    return result("connection", title, Outcome::Pass,
                  fmt::format("{}, without TLS (loopback: the traffic stays on this machine)", saw));
  }
  return result("connection", title, Outcome::Warn,
                fmt::format("{}, without TLS: row data and the authentication exchange cross the "
                            "network unencrypted",
                            saw),
                "turn on ssl on the server (ssl = on, with a certificate) and add sslmode=verify-full "
                "sslrootcert=<CA file> to source.dsn (sslmode=require encrypts without checking the "
                "server's certificate)");
}

CheckResult connectionFailed(const std::string& message, const std::string& hint) {
  std::string fix = hint.empty() ? "check host, port, dbname and user in source.dsn" : hint;
  if (fix.find("pg_hba") == std::string::npos) {
    fix += "; and that pg_hba.conf on the server has a line allowing this user from this host to "
           "this database (e.g. hostssl <db> <user> <client address>/32 scram-sha-256)";
  }
  // libpq's message spans lines ("...failed: Connection refused\n\tIs the server running...").
  std::string saw;
  for (char c : message) {
    if (c == '\n' || c == '\t') {
      if (!saw.empty() && saw.back() != ' ') saw += ' ';
    } else {
      saw += c;
    }
  }
  while (!saw.empty() && saw.back() == ' ') saw.pop_back();
  return result("connection", "connection and TLS", Outcome::Fail, saw, fix);
}

CheckResult notChecked(std::string id, std::string title) {
  return result(std::move(id), std::move(title), Outcome::Skip, "not checked: no connection");
}

CheckResult judgeServerVersion(int v, const std::string& text, bool in_recovery) {
  const std::string title = "server version";
  const std::string saw = fmt::format("PostgreSQL {}{}", text, in_recovery ? " (a standby, in recovery)" : "");
  if (in_recovery && v < 160000) {
    return result("server_version", title, Outcome::Fail,
                  saw + ": before PostgreSQL 16 logical decoding runs only on the primary",
                  "point source.dsn at the primary (on Aurora: the cluster endpoint, not a reader "
                  "endpoint)");
  }
  if (v < 100000) {
    return result("server_version", title, Outcome::Fail,
                  saw + ": publications and pgoutput need PostgreSQL 10 or later",
                  "upgrade PostgreSQL (tidemark is tested on 15)");
  }
  if (v < 140000) {
    // Deliberately a failure, not a warning: tidemark run always asks pgoutput for logical
    // decoding messages (pg/replication.cc), an option PostgreSQL 14 added, so streaming from
    // an older server is refused. Becomes a warning once that option depends on the version.
    return result("server_version", title, Outcome::Fail,
                  saw + ": tidemark streams with pgoutput's `messages` option, which needs "
                        "PostgreSQL 14; START_REPLICATION fails on this server",
                  "upgrade PostgreSQL to 14 or later (tidemark is tested on 15)");
  }
  return result("server_version", title, Outcome::Pass, saw);
}

CheckResult judgeWalLevel(const WalLevelFacts& f) {
  const std::string title = "wal_level";
  if (f.wal_level == "logical") return result("wal_level", title, Outcome::Pass, "logical");
  if (f.pending_restart) {
    return result("wal_level", title, Outcome::Fail,
                  fmt::format("{}; a new value is configured but waits for a restart", f.wal_level),
                  f.rds ? "reboot the DB instance (Aurora: the writer) so the parameter group's "
                          "rds.logical_replication = 1 takes effect"
                        : "restart PostgreSQL (e.g. pg_ctl restart -D <data dir>, or systemctl "
                          "restart postgresql); wal_level changes only at start");
  }
  return result("wal_level", title, Outcome::Fail,
                fmt::format("{}; logical decoding needs logical", f.wal_level),
                f.rds ? "set rds.logical_replication = 1 in the DB (Aurora: DB cluster) parameter "
                        "group, a custom one since the default group cannot be changed, then "
                        "reboot the instance"
                      : "ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL (a reload "
                        "is not enough)");
}

CheckResult judgeCapacity(const CapacityFacts& f) {
  const std::string title = "replication slots and WAL senders";
  const int free_slots = f.max_replication_slots - f.slots_used;
  const int free_senders = f.max_wal_senders - f.senders_active;
  std::string saw = fmt::format("slots {} of max_replication_slots = {} in use; WAL senders {} of "
                                "max_wal_senders = {} active",
                                f.slots_used, f.max_replication_slots, f.senders_active,
                                f.max_wal_senders);
  std::vector<std::string> problems;
  std::vector<std::string> fixes;
  // A missing slot takes a new one; streaming takes a sender unless one already holds the
  // slot (then tidemark runs already, or the slot check reports who holds it).
  if (!f.slot_exists && free_slots <= 0) {
    problems.push_back("no free slot for the pipeline's new slot");
    std::string fix = fmt::format("ALTER SYSTEM SET max_replication_slots = {}; then restart PostgreSQL",
                                  std::max(f.max_replication_slots, f.slots_used) + 4);
    if (!f.inactive_slots.empty()) {
      std::string drops;
      for (const auto& s : f.inactive_slots) {
        drops += fmt::format(" SELECT pg_drop_replication_slot('{}');", s);
      }
      fix += "; or, if nothing reads them any more, drop inactive slots:" + drops;
    }
    fixes.push_back(fix);
  }
  if (!f.slot_active && free_senders <= 0) {
    problems.push_back("no free WAL sender for tidemark's replication connection");
    fixes.push_back(fmt::format("ALTER SYSTEM SET max_wal_senders = {}; then restart PostgreSQL",
                                std::max(f.max_wal_senders, f.senders_active) + 4));
  }
  if (!f.inactive_slots.empty()) {
    std::string names;
    for (const auto& s : f.inactive_slots) names += (names.empty() ? "" : ", ") + s;
    saw += fmt::format("; inactive slots (they retain WAL): {}", names);
  }
  if (problems.empty()) return result("replication_capacity", title, Outcome::Pass, saw);
  std::string p, fx;
  for (const auto& s : problems) p += "; " + s;
  for (const auto& s : fixes) fx += (fx.empty() ? "" : "; ") + s;
  return result("replication_capacity", title, Outcome::Fail, saw + p, fx);
}

CheckResult judgeRetentionGuard(const RetentionFacts& f) {
  const std::string title = "WAL retention guard";
  std::string retained = f.retained_bytes ? fmt::format("; the slot retains {}", bytesText(*f.retained_bytes)) : "";
  std::string keep = fmt::format("wal_keep_size = {}", mbText(f.wal_keep_size_mb));
  if (f.max_slot_wal_keep_size_mb < 0) {
    // Room for what the slot already holds, twice over, and at least what setup suggests.
    int64_t suggest_gb = pg::kSuggestedWalKeepSizeGb;
    if (f.retained_bytes) {
      suggest_gb = std::max<int64_t>(suggest_gb, (*f.retained_bytes * 2 + (1ll << 30) - 1) >> 30);
    }
    std::string set = f.rds ? fmt::format("set max_slot_wal_keep_size = {} (MB) in the DB parameter group",
                                          suggest_gb * 1024)
                            : fmt::format("ALTER SYSTEM SET max_slot_wal_keep_size = '{}GB'; "
                                          "SELECT pg_reload_conf();",
                                          suggest_gb);
    return result("retention_guard", title, Outcome::Warn,
                  fmt::format("max_slot_wal_keep_size = -1 (unguarded): a slot that stops "
                              "advancing keeps WAL until the disk fills and the server stops; {}{}",
                              keep, retained),
                  fmt::format("{} (size it below the free space of the pg_wal disk: a slot that "
                              "passes it is invalidated, and tidemark then stops with exit 3 "
                              "instead of the server running out of disk)",
                              set));
  }
  std::string saw = fmt::format("max_slot_wal_keep_size = {}; {}{}", mbText(f.max_slot_wal_keep_size_mb),
                                keep, retained);
  const int64_t limit = f.max_slot_wal_keep_size_mb << 20;
  if (f.retained_bytes && *f.retained_bytes * 10 > limit * 8) {
    return result("retention_guard", title, Outcome::Warn,
                  saw + ": over 80% of the limit; at the limit the server invalidates the slot",
                  fmt::format("find out why the slot does not advance (tidemark status -c FILE), or "
                              "raise the limit: ALTER SYSTEM SET max_slot_wal_keep_size = '{}'; "
                              "SELECT pg_reload_conf();",
                              mbText(f.max_slot_wal_keep_size_mb * 2)));
  }
  return result("retention_guard", title, Outcome::Pass, saw);
}

CheckResult judgeWalSenderTimeout(int64_t timeout_ms, std::chrono::milliseconds status_interval,
                                  bool rds) {
  const std::string title = "wal_sender_timeout";
  const int64_t interval_ms = status_interval.count();
  auto setSql = [&](const std::string& value) {
    return rds ? fmt::format("set wal_sender_timeout = {} (ms) in the DB parameter group", value)
               : fmt::format("ALTER SYSTEM SET wal_sender_timeout = '{}ms'; SELECT pg_reload_conf();",
                             value);
  };
  if (timeout_ms == 0) {
    return result("wal_sender_timeout", title, Outcome::Warn,
                  "0 (disabled): a tidemark connection that died without closing keeps the slot "
                  "active, and the next run is refused with \"replication slot is active\", until "
                  "TCP gives up (hours). tidemark reports its position every "
                  "source.status_interval, so an idle stream is not cut off by a timeout",
                  setSql(std::to_string(std::max<int64_t>(60000, 3 * interval_ms))));
  }
  std::string saw = fmt::format("{} ms; source.status_interval = {} ms", timeout_ms, interval_ms);
  if (timeout_ms < 2 * interval_ms) {
    return result("wal_sender_timeout", title, Outcome::Warn,
                  saw + ": less than two status intervals, so the server may end the connection "
                        "between two status updates",
                  fmt::format("set source.status_interval: {}ms (or less) in the pipeline file, or {}",
                              std::max<int64_t>(100, timeout_ms / 3),
                              setSql(std::to_string(3 * interval_ms))));
  }
  return result("wal_sender_timeout", title, Outcome::Pass, saw);
}

CheckResult judgeStoredPosition(const std::optional<pg::Position>& stored,
                                const std::string& config_slot,
                                const std::string& server_system_identifier,
                                const std::optional<SlotPosition>& slot) {
  const std::string title = "stored position vs slot";
  const std::string id = "stored_position";
  std::optional<pg::SlotInfo> info;
  if (slot) {
    info.emplace();
    info->confirmed_flush_lsn = slot->confirmed_flush_lsn;
    info->wal_status = slot->wal_status;
  }
  if (auto problem = pg::judgeStoredPosition(stored, config_slot, server_system_identifier, info)) {
    std::string saw = problem->what();
    if (problem->errorClass() == ErrorClass::PositionLost) saw += " (tidemark run refuses with exit 3)";
    return result(id, title, Outcome::Fail, saw, problem->hint());
  }
  if (!stored) {
    return result(id, title, Outcome::Pass,
                  slot ? "no stored position: the first run starts at the slot's confirmed position"
                       : "no stored position: the first run creates the slot and starts there");
  }
  const std::string at = stored->lsn.str();
  return result(id, title, Outcome::Pass,
                fmt::format("stored {}, slot confirmed {}: the next run resumes at {}", at,
                            slot->confirmed_flush_lsn->str(), at));
}

}  // namespace tidemark::check
