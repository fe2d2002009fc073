// A running pipeline: source (core::Source, source/postgres) -> change model -> the change log
// as its ChangeWriter (Debezium events, pipeline/log_appender.h) -> sinks, with the position
// protocol that keeps guarantee 1 (ack <= durable):
//
//   1. events of a transaction are appended to the change log; at its Commit a transaction end
//      with the source's position after it follows, which becomes the pending position;
//   2. when a flush is due (delivery.flush_interval / flush_bytes) the log is committed
//      (fdatasync), then the pending position is saved in the state store;
//   3. only then is the position sent to the server as flushed (standby status update).
//
// Each sink reads the log on a thread of its own from its own cursor, and saves the cursor
// with its checkpoint once its output is durable. Keepalives move the pending position while
// no transaction is open, so the slot advances when the captured tables are idle but other
// tables are not.
#pragma once

#include <atomic>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/lsn.h"
#include "config/config.h"

namespace tidemark::pipeline {

struct RunOptions {
  /// Stop by itself once every transaction committed at or before this LSN is durable and
  /// confirmed (like pg_recvlogical --endpos).
  std::optional<Lsn> until_lsn;
  /// Captured tables that were dropped and created again, whose new relation the operator
  /// accepts as the table to capture from now on (run --accept-recreated).
  std::vector<config::TableName> accept_recreated;
  /// Sinks whose output the operator accepts as it is now, whatever their stored checkpoint
  /// says (run --reset-sink).
  std::vector<std::string> reset_sinks;
  /// The troubleshooting checks as JSON (tidemark check --json), for /api/checks; the command
  /// line gives them, as the checks sit above the pipeline. Run on a thread of their own,
  /// never the endpoint's. Unset: /api/checks answers 404.
  std::function<std::string()> checks;
};

/// Runs the pipeline until `stop` becomes true or until_lsn is reached. Returns normally on a
/// clean stop; throws Error when it cannot go on (retriable errors are retried first).
void run(const config::PipelineConfig& cfg, const RunOptions& options, const std::atomic<bool>& stop);

}  // namespace tidemark::pipeline
