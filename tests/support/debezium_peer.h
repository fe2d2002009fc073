// Debezium's PostgreSQL connector as a peer in tests: the harness of bench/peers/debezium,
// built and run through scripts/debezium-peer.sh, reading a slot of its own beside tidemark's.
// It writes what it emits as `<dir>/<topic>.jsonl`, one {"key":...,"value":...} per line, the
// shape of tidemark's jsonl sink with `with_key: true`.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "support/process.h"

namespace tidemark::test {

struct DebeziumPeerOptions {
  std::string host = "127.0.0.1";
  int port = 0;
  std::string database;
  std::string user = "postgres";
  std::string slot;           // an existing pgoutput slot, or one Debezium creates
  std::string publication;    // an existing publication (autocreate is off)
  std::string topicPrefix;    // topic.prefix: tidemark's pipeline name
  std::filesystem::path out;  // where the topic files go
  /// Stop once a record at or past this LSN ("0/16B3748") was written.
  std::optional<std::string> stopAtLsn;
  /// Stop once this many records were written.
  std::optional<long> stopAfter;
  std::chrono::seconds timeout{180};
  /// More connector properties: {"heartbeat.interval.ms", "500"}.
  std::map<std::string, std::string> properties;
};

/// How a peer run ended.
struct DebeziumPeerResult {
  std::optional<int> exitCode;  // nothing when it was killed at the deadline
  std::string figures;          // the JSON line it prints: records, seconds, ...
  std::string description;      // command, exit and output tails, for assertion messages
};

/// The peer's exit code when the machine has no Java or Maven (the script names the packages).
inline constexpr int kDebeziumPeerMissingTools = 3;

/// Starts the peer (building it first when needed, which may take a minute once).
std::unique_ptr<Process> startDebeziumPeer(const DebeziumPeerOptions& options);

/// Runs the peer to its end: a stop condition or the timeout.
DebeziumPeerResult runDebeziumPeer(const DebeziumPeerOptions& options);

}  // namespace tidemark::test
