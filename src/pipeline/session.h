// The parts of a running pipeline, apart from connecting: Delivery (the sinks, the state
// store, and the position they reach together) and Session (one replication stream's worth
// of decoding, event building and the durability protocol). pipeline.cc wires them to real
// connections; tests drive them with their own ReplicationSource, sinks and store.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/log.h"
#include "config/config.h"
#include "events/envelope.h"
#include "events/relations.h"
#include "pg/replication.h"
#include "pgoutput/decoder.h"
#include "pipeline/pipeline.h"
#include "sinks/sink.h"
#include "state/offset_store.h"

namespace tidemark::pipeline {

/// Every sink and the state store, kept in step: makeDurable() flushes every sink, then saves
/// the position with their checkpoints in one store transaction.
class Delivery {
 public:
  Delivery(std::vector<std::unique_ptr<sinks::Sink>> sinks, state::OffsetStore& store);

  /// Gives each sink its stored checkpoint (none on a first run, or for a sink added since).
  void recover(const std::optional<state::StoredPosition>& stored);

  void write(const events::Event& e);
  void markTransactionEnd();
  void rollbackToMark();
  uint64_t pendingBytes() const;

  /// Flushes every sink, then saves `position` with their checkpoints. After it returns,
  /// `position.lsn` may be confirmed to the server.
  void makeDurable(state::StoredPosition position);

 private:
  std::vector<std::unique_ptr<sinks::Sink>> sinks_;
  state::OffsetStore& store_;
};

enum class StopReason { Requested, UntilLsn };

/// One stream's worth of work. Invariant, at every status update it sends:
///   flush position sent <= position saved in the store <= what the sinks hold durably.
class Session {
 public:
  /// `position` is where the stream starts (already saved); `db` names the source database
  /// in events. `catalog` answers type and primary-key lookups.
  Session(const config::PipelineConfig& cfg, const RunOptions& options, Delivery& delivery,
          pg::ReplicationSource& source, events::Catalog catalog, const std::string& db,
          state::StoredPosition position, const Logger& log);

  /// Streams until `stop` is set or --until-lsn is reached, then makes everything whole
  /// durable, confirms it, and ends the stream. Throws Error on failure (the stream ending is
  /// a retriable one).
  StopReason stream(const std::atomic<bool>& stop);

  /// After an error: makes the whole transactions already written durable (without
  /// confirming them; the next connection starts from there).
  void salvage();

  Lsn durable() const { return durable_; }

 private:
  void onData(const pg::XLogData& d);
  void onBegin(const pgoutput::BeginMessage& m);
  void onCommit(const pgoutput::CommitMessage& m);
  void onUpdate(const pgoutput::UpdateMessage& m, Lsn lsn);
  void onMessage(const pgoutput::LogicalDecodingMessage& m, Lsn lsn);
  void onKeepalive(const pg::Keepalive& k);
  const events::Relation& relation(RelationId id);
  void setPending(Lsn lsn);
  void maybeFlush();
  void makeDurable();
  void maybeSendStatus();
  void sendStatus();
  StopReason finish(StopReason why);

  using Clock = std::chrono::steady_clock;

  const config::PipelineConfig& cfg_;
  const RunOptions& options_;
  Delivery& delivery_;
  pg::ReplicationSource& source_;
  pgoutput::Decoder decoder_;
  events::RelationCache relations_;
  events::EnvelopeBuilder builder_;
  state::StoredPosition position_;
  Logger log_;

  Lsn durable_;   // saved in the store, so it may be confirmed
  Lsn pending_;   // whole transactions in the sinks up to here, not yet durable
  Lsn received_;  // the furthest position the server has sent
  Clock::time_point pending_since_;
  Clock::time_point last_status_;
  bool in_transaction_ = false;
  bool skipping_ = false;
  bool reached_until_ = false;
};

}  // namespace tidemark::pipeline
