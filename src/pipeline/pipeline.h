// A running pipeline: source -> pgoutput decoder -> Debezium envelopes -> sinks, with the
// position protocol that keeps guarantee 1 (ack <= durable):
//
//   1. events of a transaction are written to every sink; at its Commit every sink marks a
//      transaction boundary and the commit's end LSN becomes the pending position;
//   2. when a flush is due (delivery.flush_interval / flush_bytes), every sink flushes
//      (fsync), then the pending position and the sinks' checkpoints are saved in the state
//      store in one transaction;
//   3. only then is the position sent to the server as flushed (standby status update).
//
// Keepalives move the pending position while no transaction is open, so the slot advances
// when the captured tables are idle but other tables are not.
//
// One thread does all of this; stop() may be called from a signal handler's flag.
#pragma once

#include <atomic>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/lsn.h"
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
