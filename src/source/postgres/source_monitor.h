// The source monitor: a thread with its own connection to the source that, every
// heartbeat.interval, writes the Layer 2 heartbeat (table upsert, logical message or the
// user's query), every couple of seconds reads the slot's figures for the status, and every
// heartbeat.interval (at most ten seconds) checks that the source still sends the captured
// tables (source/postgres/capture.h). In read-only mode it writes nothing and reads the heartbeat row
// back instead, so stall detection still knows what was written. Its own failures are logged
// and reported in the snapshot; the monitor reconnects on its next turn and never stops the
// pipeline itself: the session stops on the capture problems it reports.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/log.h"
#include "base/lsn.h"
#include "config/config.h"
#include "core/offset_store.h"
#include "source/postgres/capture.h"

namespace tidemark::pg {

/// The slot as the monitor last read it from pg_replication_slots.
struct SlotFigures {
  std::optional<Lsn> confirmed_flush_lsn;
  std::optional<Lsn> restart_lsn;
  std::optional<Lsn> current_wal_lsn;         // the server's WAL position when read
  std::optional<int64_t> retained_wal_bytes;  // current WAL position minus restart_lsn
  std::optional<int64_t> lag_bytes;           // current WAL position minus confirmed_flush_lsn
  std::optional<std::string> wal_status;
  std::optional<int64_t> safe_wal_size;
  bool active = false;
  int64_t checked_at_us = 0;  // Unix microseconds
};

struct MonitorSnapshot {
  /// Source time (Unix microseconds) of the latest heartbeat written, and when, on this
  /// machine's steady clock, the monitor learned of it.
  std::optional<int64_t> last_written_us;
  std::optional<std::chrono::steady_clock::time_point> last_written_seen;
  /// Why Layer 2 heartbeats are not being written; empty when they are (or are not due).
  std::string problem;
  std::optional<SlotFigures> slot;
};

class SourceMonitor {
 public:
  /// `writes_visible`: heartbeats written will come through the stream (table mode with the
  /// table in the publication, or message mode); only then can a missing one mean a stall.
  SourceMonitor(const config::PipelineConfig& cfg, bool writes_visible, std::string setup_problem,
                const Logger& log);
  ~SourceMonitor();

  SourceMonitor(const SourceMonitor&) = delete;
  SourceMonitor& operator=(const SourceMonitor&) = delete;

  /// A change of a captured table came through: the stream is live, so with hibernation on
  /// the next Layer 2 write is skipped.
  void noteCapturedChange();

  /// Whether a written heartbeat is expected to come through the stream.
  bool writesVisible() const { return writes_visible_; }

  /// From now on, checks that the source still sends these tables (the session's capture).
  void watchCapture(std::vector<state::CapturedTable> tables);
  /// What the last check found wrong with the captured tables; empty when nothing.
  std::vector<CaptureProblem> captureProblems() const;

  MonitorSnapshot snapshot() const;

 private:
  void loop();
  /// Writes the Layer 2 heartbeat (or, read-only, reads back the row a job writes) and notes
  /// when it was written; a failure that is not the server's becomes the snapshot's problem.
  void beat(pg::Connection& conn, bool writes, bool reads_back);
  /// The slot's figures for the status.
  void sampleSlot(pg::Connection& conn);
  /// Judges the captured tables against the catalog (capture.h) for the session to act on.
  void checkCapture(pg::Connection& conn, const std::vector<state::CapturedTable>& capture);
  /// Waits `d`, or until the monitor stops.
  void pause(std::chrono::milliseconds d);

  const config::PipelineConfig& cfg_;
  const bool writes_visible_;
  Logger log_;

  mutable std::mutex mutex_;
  MonitorSnapshot snapshot_;
  std::optional<std::vector<state::CapturedTable>> capture_;  // what to check, once set
  std::vector<CaptureProblem> capture_problems_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::atomic<int64_t> last_captured_change_us_{0};
  std::thread thread_;
};

}  // namespace tidemark::pg
