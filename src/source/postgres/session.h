// The PostgreSQL source: one replication stream's worth of work. It decodes pgoutput, turns
// captured changes into the change model (ChangeBuilder), measures heartbeats, and keeps the
// durability protocol against the ChangeWriter it writes to (core/change_writer.h): a position
// is confirmed to the server only after the writer committed it. pipeline.cc wires it to real
// connections and the change log; tests drive it with their own ReplicationSource.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "base/log.h"
#include "base/lsn.h"
#include "config/config.h"
#include "core/change_writer.h"
#include "core/source.h"
#include "source/postgres/change_builder.h"
#include "source/postgres/incremental.h"
#include "source/postgres/pgoutput_decoder.h"
#include "source/postgres/position.h"
#include "source/postgres/relations.h"
#include "source/postgres/replication.h"
#include "source/postgres/source_monitor.h"

namespace tidemark::pg {

using core::StopReason;

/// What text values that are not valid UTF-8 become (source.invalid_utf8).
Utf8Policy utf8Policy(const config::PipelineConfig& cfg);

/// How fresh the data that came through the stream is. Times are Unix microseconds; the
/// "written" ones are source times (heartbeat timestamps, commit times).
struct Freshness {
  std::optional<int64_t> observed_written_us;  // latest heartbeat or captured commit seen
  std::optional<int64_t> observed_at_us;       // when it was seen
  std::optional<int64_t> heartbeat_written_us; // latest Layer 2 heartbeat seen
  std::optional<int64_t> delivered_written_us; // latest one durable in the change log
  std::optional<int64_t> delivered_at_us;      // when it became durable there
  std::optional<uint64_t> delivered_offset;    // the log offset just past its transaction
};

/// The initial snapshot of this run, as far as it went.
struct SnapshotProgress {
  struct Table {
    std::string name;                  // schema.table
    uint64_t rows = 0;                 // read so far
    std::optional<uint64_t> estimated; // pg_class.reltuples when the table was analyzed
    bool done = false;
  };
  /// Why it was read: "initial" (the pipeline's first run), "resumed" (one interrupted
  /// before), "always" (source.snapshot.mode always), "position_lost" (when_needed).
  std::string reason;
  bool done = false;
  std::vector<Table> tables;
  int64_t started_us = 0;
  int64_t ended_us = 0;  // 0 while reading

  /// Rows read, all tables, and what the estimates make of the whole: a table read past its
  /// estimate counts what was read, a finished one without an estimate its rows; none while
  /// a table without an estimate is still being read.
  struct Totals {
    uint64_t rows = 0;
    std::optional<uint64_t> estimated;
  };
  Totals totals() const {
    Totals out;
    uint64_t estimated = 0;
    bool all = true;
    for (const auto& t : tables) {
      out.rows += t.rows;
      if (t.estimated) estimated += std::max(*t.estimated, t.rows);
      else if (t.done) estimated += t.rows;
      else all = false;
    }
    if (all) out.estimated = estimated;
    return out;
  }
};

struct SessionStatus {
  Lsn received;
  Lsn durable;
  Lsn acknowledged;
  uint64_t events_delivered = 0;  // appended to the change log
  uint64_t bytes_delivered = 0;   // event values appended to the change log
  uint64_t pending_bytes = 0;     // appended to the change log, not yet durable
  /// Reading from the source waits: the change log is at buffer.max_bytes, held by this sink.
  std::optional<std::string> paused_by;
  /// Changes of published relations that are not captured, skipped on purpose, and of which.
  uint64_t changes_skipped = 0;
  std::map<std::string, uint64_t> skipped_tables;
  Freshness freshness;
  std::optional<SnapshotProgress> snapshot;  // set once this run read an initial snapshot
  uint32_t position_rebuilds = 0;  // lost positions replaced by a new one (Position::rebuilds)
  std::optional<IncrementalState> incremental;  // the incremental snapshot under way
  std::optional<std::string> incremental_done;  // the id of the last one that finished
  uint64_t incremental_rows = 0;                // read events it wrote in this process
  uint64_t signals = 0;                         // signals taken
  uint64_t signals_failed = 0;                  // signals refused (malformed, unknown)
  std::optional<std::string> last_signal_error;
};

/// Heartbeats were written on the source but have not come through the stream, and the
/// stream has sent nothing, for heartbeat.stall_timeout. Retriable: reconnecting often helps.
class StallError : public Error {
 public:
  explicit StallError(std::string message)
      : Error(ErrorClass::Retriable, std::move(message),
              "check the server log for the walsender serving this slot (is it stuck, or "
              "blocked?), the network between tidemark and the server, and that the heartbeat "
              "table is still in the publication; tidemark reconnects") {}
};

/// One stream's worth of work. Invariant, at every status update it sends:
///   flush position sent <= position saved in the store <= what the change log holds durably
/// (the writer's commit() saves it after the log's commit).
class Session final : public core::Source {
 public:
  /// Called every two seconds and when the session stops, with what the status shows.
  using StatusReport = std::function<void(const SessionStatus&)>;

  /// `position` is where the stream starts (already saved), `until` --until-lsn; `db` names
  /// the source database in events. `catalog` answers type and primary-key lookups;
  /// `classify` says which relations are captured, and as which table (CaptureSet). `monitor`
  /// (may be null) tells what heartbeats were written, for stall detection, learns of
  /// captured changes, and reports captured tables the source no longer sends.
  Session(const config::PipelineConfig& cfg, std::optional<Lsn> until, core::ChangeWriter& out,
          pg::ReplicationSource& source, events::Catalog catalog, events::Classifier classify,
          const std::string& db, pg::Position position, const Logger& log,
          SourceMonitor* monitor = nullptr, StatusReport report = {});

  /// Streams until `stop` is set or --until-lsn is reached, then makes everything whole
  /// durable, confirms it, and ends the stream. Throws Error on failure (the stream ending is
  /// a retriable one).
  StopReason stream(const std::atomic<bool>& stop) override;

  /// The initial snapshot, before stream(): every table of `tables` in one snapshot taken on
  /// `conn` (an ordinary connection to the source), in key order, as read events (op r,
  /// Debezium's snapshot markers). Read by source.snapshot.max_threads readers
  /// (snapshot_reader.h; those after the first on connections the incremental snapshots'
  /// OpenConnection makes, importing the snapshot), a large table in ranges of its key; this
  /// thread writes what they read, committed to the log a chunk at a time under positions
  /// that say the snapshot is pending and how far each table or range got. Then the stream
  /// skips the transactions the snapshot saw. `resume`: the stored position's snapshot is
  /// pending; go on after the last row each table or range has in the log. `reason` is
  /// SnapshotProgress::reason for a new one. False when `stop` was set before the end (the
  /// next run resumes).
  bool snapshot(Connection& conn, const std::vector<state::CapturedTable>& tables, bool resume,
                std::string_view reason, const std::atomic<bool>& stop);

  /// Incremental snapshots (incremental.h): chunks are read on the connection `open` makes
  /// (opened when first needed); `poll` (may be empty) returns the signals waiting outside
  /// the stream (files `tidemark snapshot` left), and `taken` is called with each once its
  /// effect is durable. Signal table rows come through the stream regardless.
  using OpenConnection = std::function<Connection()>;
  using PollSignals = std::function<std::vector<Signal>()>;
  using SignalTaken = std::function<void(const Signal&)>;
  void enableIncremental(OpenConnection open, PollSignals poll, SignalTaken taken);

  /// After an error: makes the whole transactions already written durable (without
  /// confirming them; the next connection starts from there). When that fails too (the log
  /// or the store were what failed: a full disk), what was written since the last commit is
  /// dropped instead, and the next connection starts from the durable position. Throws only
  /// when even that fails.
  void salvage() override;

  Lsn durable() const { return durable_; }

  SessionStatus status() const;

  /// Safe to call from another thread: what a status update sent now would say, and when the
  /// last one went out. For the thread that keeps status updates going while this one is
  /// blocked (a slow sink).
  Lsn receivedForFeedback() const { return Lsn{received_pub_.load(std::memory_order_acquire)}; }
  Lsn durableForFeedback() const { return Lsn{durable_pub_.load(std::memory_order_acquire)}; }
  std::chrono::steady_clock::time_point lastStatusAt() const {
    return std::chrono::steady_clock::time_point(
        std::chrono::steady_clock::duration(last_status_pub_.load(std::memory_order_acquire)));
  }

 private:
  void onData(const pg::XLogData& d);
  void onBegin(const pgoutput::BeginMessage& m);
  void onCommit(const pgoutput::CommitMessage& m);
  void onUpdate(const pgoutput::UpdateMessage& m, Lsn lsn);
  void onMessage(const pgoutput::LogicalDecodingMessage& m, Lsn lsn);
  void onKeepalive(const pg::Keepalive& k);
  bool isSignalTable(const events::Relation& rel) const;
  /// Whether schema.table, named as source.tables names it, is a captured table.
  bool isCaptured(const std::string& schema, const std::string& table) const;
  void onSignalRow(const events::Relation& rel, const pgoutput::TupleData& tuple);
  void takeSignal(const Signal& signal);
  /// Between transactions: takes waiting signals, and reads the next chunk when none waits.
  void maybeIncremental();
  /// A change the open window's snapshot did not see: drops its keys from the window.
  void inWindow(const events::Relation& rel, const pgoutput::TupleData* old_tuple, const pgoutput::TupleData* new_tuple);
  /// The stream is past the window's high watermark: writes its rows, durable with the
  /// table's progress.
  void closeWindow();
  void discardWindow(std::string_view why);
  void noteCommitted(uint32_t xid);
  /// A line on the terminal (the log) with the initial snapshot's rows, rate and time left.
  void logProgress(const SnapshotProgress& progress);
  void onHeartbeatRow(const events::Relation& rel, const pgoutput::TupleData& tuple);
  void observe(int64_t written_us, bool heartbeat);
  void maybeHeartbeatEvent();
  void checkStall();
  void checkCapture();
  /// Whether a change of `rel` is delivered; counts and logs (once per relation) the changes
  /// skipped on purpose, and logs how a captured relation was matched, if unusually.
  bool delivers(const events::Relation& rel);
  void maybeReport(bool force);
  /// Writes a change to the change log.
  void deliver(const core::Change& change);
  void setReceived(Lsn lsn);
  const events::Relation& relation(RelationId id);
  void setPending(Lsn lsn);
  void maybeFlush();
  void makeDurable(bool force = false);
  /// Whether the change log is at buffer.max_bytes: then reading waits (status says why).
  bool paused();
  void maybeSendStatus();
  void sendStatus();
  StopReason finish(StopReason why);

  using Clock = std::chrono::steady_clock;

  const config::PipelineConfig& cfg_;
  const std::optional<Lsn> until_;
  core::ChangeWriter& delivery_;
  pg::ReplicationSource& source_;
  pgoutput::Decoder decoder_;
  events::RelationCache relations_;
  events::ChangeBuilder builder_;
  std::string db_;  // the source database, as events name it
  pg::Position position_;  // the cluster, timeline and slot; its lsn is where the stream started
  std::optional<SnapshotProgress> snapshot_progress_;
  Logger log_;
  SourceMonitor* monitor_;
  StatusReport report_;

  Lsn durable_;   // saved in the store, so it may be confirmed
  Lsn pending_;   // whole transactions in the sinks up to here, not yet durable
  Lsn received_;  // the furthest position the server has sent
  Lsn acknowledged_;  // the last flush position sent to the server
  Clock::time_point pending_since_;
  Clock::time_point last_status_;
  Clock::time_point last_progress_;  // when the server last sent something new
  Clock::time_point next_heartbeat_event_;
  Clock::time_point next_report_;
  Clock::time_point last_report_;
  Clock::time_point next_stall_check_;
  Clock::time_point next_capture_check_;
  // Since when a heartbeat the monitor wrote has been waiting to come through (stall detection
  // measures from the oldest one, not the latest: the monitor writes a new one every interval).
  std::optional<Clock::time_point> unseen_since_;
  bool report_soon_ = false;  // a heartbeat came through: save the status promptly
  bool in_transaction_ = false;
  bool skipping_ = false;
  bool reached_until_ = false;
  bool tx_has_changes_ = false;    // the open transaction changed a captured table
  std::optional<int64_t> tx_observed_written_us_;  // heartbeat or commit time seen in it
  struct Observation {
    Lsn end;              // of its transaction
    int64_t written_us;   // the source time it carried
    uint64_t log_offset;  // just past its transaction in the change log
  };
  std::optional<Observation> undelivered_;  // awaiting durability
  std::optional<core::Retention> paused_by_;  // while the log is full
  Clock::time_point next_pause_check_;
  uint64_t events_delivered_ = 0;
  uint64_t bytes_delivered_ = 0;
  uint64_t changes_skipped_ = 0;
  // Changes skipped, by relation (the name as the stream last gave it, and the count).
  std::unordered_map<RelationId, std::pair<std::string, uint64_t>> skipped_;
  std::unordered_set<RelationId> noted_;  // relations whose note was logged
  Freshness freshness_;

  // Incremental snapshots.
  events::Classifier classify_;  // a signal's tables must be captured ones
  OpenConnection open_chunk_connection_;
  PollSignals poll_signals_;
  SignalTaken signal_taken_;
  std::optional<Connection> chunk_connection_;
  std::optional<IncrementalWindow> window_;
  bool tx_unseen_by_window_ = false;  // the open transaction is not in the window's snapshot
  Clock::time_point next_chunk_;
  Clock::time_point next_window_poke_;
  Clock::time_point next_signal_poll_;
  std::deque<uint32_t> recent_xids_;
  std::unordered_set<uint32_t> recent_xid_set_;
  std::optional<std::string> incremental_done_;
  uint64_t incremental_rows_ = 0;
  uint64_t signals_ = 0;
  uint64_t signals_failed_ = 0;
  std::optional<std::string> last_signal_error_;

  // Mirrors for the feedback thread.
  std::atomic<uint64_t> received_pub_{0};
  std::atomic<uint64_t> durable_pub_{0};
  std::atomic<Clock::rep> last_status_pub_{0};
};

}  // namespace tidemark::pg
