// The judgements of `tidemark check` that need no server: each takes what was read from the
// catalog (or the state store) and returns the outcome, what was seen and the fix. Kept apart
// from the queries so that the thresholds and the fix texts are unit-tested.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/lsn.h"
#include "ops/check/check.h"
#include "source/postgres/position.h"

namespace tidemark::check {

/// "1.5 GB", "16 MB", "512 bytes": sizes as pg_size_pretty prints them (units of 1024).
std::string bytesText(int64_t bytes);

/// True for a host that never leaves the machine: a Unix socket directory, localhost,
/// 127.0.0.0/8, ::1.
bool isLoopbackHost(std::string_view host);

/// What the connection check saw of an open connection.
struct ConnectionFacts {
  std::string host;  // PQhost: a name, an address or a socket directory
  std::string port;
  std::string user;
  std::string database;
  bool tls = false;
  std::string tls_protocol;  // "TLSv1.3" when tls
};
CheckResult judgeConnection(const ConnectionFacts& facts);

/// The connection check when the connection failed: `message` is libpq's reason (it never
/// holds the password), `hint` what tidemark's connection code suggests.
CheckResult connectionFailed(const std::string& message, const std::string& hint);

/// A check that needs the source, reported when there is no connection.
CheckResult notChecked(std::string id, std::string title);

/// version_num as PQserverVersion gives it (150004).
CheckResult judgeServerVersion(int version_num, const std::string& version_text, bool in_recovery);

struct WalLevelFacts {
  std::string wal_level;        // SHOW wal_level
  bool pending_restart = false; // pg_settings.pending_restart: a new value waits for a restart
  bool rds = false;             // rds.logical_replication exists: RDS or Aurora
};
CheckResult judgeWalLevel(const WalLevelFacts& facts);

struct CapacityFacts {
  int max_replication_slots = 0;
  int slots_used = 0;
  int max_wal_senders = 0;
  int senders_active = 0;
  bool slot_exists = false;  // the pipeline's slot
  bool slot_active = false;  // held by a walsender now
  std::vector<std::string> inactive_slots;  // other slots no one is reading
};
CheckResult judgeCapacity(const CapacityFacts& facts);

struct RetentionFacts {
  int64_t max_slot_wal_keep_size_mb = -1;  // -1: unlimited
  int64_t wal_keep_size_mb = 0;
  std::optional<int64_t> retained_bytes;   // WAL the pipeline's slot holds back, if it exists
  bool rds = false;
};
CheckResult judgeRetentionGuard(const RetentionFacts& facts);

/// wal_sender_timeout in milliseconds (0: disabled) against source.status_interval.
CheckResult judgeWalSenderTimeout(int64_t timeout_ms, std::chrono::milliseconds status_interval,
                                  bool rds);

/// The slot as the stored-position check needs it.
struct SlotPosition {
  std::optional<Lsn> confirmed_flush_lsn;
  std::optional<std::string> wal_status;
};

/// The state store's position against the server (pg::judgeStoredPosition, what run
/// decides at start): the silent-loss case of docs/GUARANTEES.md, guarantee 2. `slot` is
/// nullopt when the slot does not exist.
CheckResult judgeStoredPosition(const std::optional<pg::Position>& stored,
                                const std::string& config_slot,
                                const std::string& server_system_identifier,
                                const std::optional<SlotPosition>& slot);


}  // namespace tidemark::check
