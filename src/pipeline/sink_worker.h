// One sink fed from the change log, on a thread of its own. The worker reads from its own
// cursor, writes each transaction's events to the sink and marks its end, and at a flush makes
// them durable in the sink, then saves the cursor with the sink's checkpoint in one step. The
// source never waits for it: a sink that is slow or down only falls behind in the log.
//
// Invariant (guarantee 1 for a sink): a saved cursor never passes what the sink holds durably,
// and always lies at a transaction's end, so the sink holds whole transactions only. After a
// failure the sink goes back to the last saved checkpoint and the worker reads again from the
// saved cursor, so nothing is lost and nothing repeats in the sink's output; it retries within
// retry.window, then gives up and says why (failure()).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "base/error.h"
#include "base/log.h"
#include "config/config.h"
#include "core/offset_store.h"
#include "core/sink.h"
#include "log/local/local_log.h"
#include "pipeline/retry.h"

namespace tidemark::pipeline {

using state::SinkProgress;

class SinkWorker {
 public:
  struct Options {
    std::chrono::milliseconds flush_interval{500};
    uint64_t flush_bytes = 64ull << 20;
    config::RetryConfig retry;
  };

  /// What the status shows of a worker.
  struct Status {
    uint64_t durable_cursor = 0;  // saved: durable in the sink
    uint64_t read_cursor = 0;     // read from the log, maybe not yet durable
    std::string state;            // "running", "retrying" or "failed"
    std::string error;            // the last error, while retrying or failed
    int attempt = 0;
    int64_t retry_since_us = 0;   // while retrying: when the retry window started
    int64_t gives_up_at_us = 0;   // and when it ends (Unix microseconds)
    /// When the sink last held everything the log held (Unix microseconds; 0: not yet). While
    /// it is behind, what it lacks was appended after that moment.
    int64_t caught_up_at_us = 0;
    /// The latest saves: (cursor, Unix microseconds), oldest first; when a record became
    /// durable in the sink is the time of the first save whose cursor is past it.
    std::deque<std::pair<uint64_t, int64_t>> saves;
  };

  /// Starts feeding `sink`, already recovered to `start`, from `start.cursor`. `save` stores a
  /// new progress; it is called on the worker's thread after the sink made it durable, and
  /// when it returns the progress counts as saved.
  SinkWorker(sinks::Sink& sink, const changelog::LocalLog& log, SinkProgress start, Options options,
             std::function<void(const SinkProgress&)> save, Logger logger);
  /// Stops, as stop() does.
  ~SinkWorker();
  SinkWorker(const SinkWorker&) = delete;
  SinkWorker& operator=(const SinkWorker&) = delete;

  /// Makes what the sink holds of whole transactions durable, saves it and ends the thread: a
  /// clean stop repeats nothing.
  void stop();
  /// Waits until every record below `offset` is durable in the sink; false at the timeout, or
  /// once the worker gave up.
  bool waitDurable(uint64_t offset, std::chrono::milliseconds timeout);
  Status status() const;
  /// Why the worker gave up (retry.window over), if it did.
  std::optional<Error> failure() const;

 private:
  void loop(std::stop_token stop);
  /// Reads and writes what the log holds; returns when caught up or stopping.
  void feed(std::stop_token stop);
  /// Flushes and saves when whole transactions wait and the bounds say so, or the log has
  /// nothing more for now.
  void maybeFlush();
  void flushNow();
  void noteCaughtUp();
  void recover(const Error& e, std::stop_token stop);

  sinks::Sink& sink_;
  const changelog::LocalLog& log_;
  Options options_;
  std::function<void(const SinkProgress&)> save_;
  Logger logger_;
  RetryPolicy retry_;

  // The worker's thread only.
  std::unique_ptr<changelog::LogReader> reader_;
  uint64_t boundary_ = 0;  // the cursor after the last transaction end read
  bool rollback_pending_ = false;  // the sink must go back to durable_ before any write
  std::optional<uint64_t> poisoned_at_;  // the cursor a change was rejected after, until the next save
  std::chrono::steady_clock::time_point last_flush_;

  mutable std::mutex mutex_;  // guards what other threads read
  std::condition_variable durable_changed_;
  SinkProgress durable_;
  Status status_;
  std::optional<Error> failure_;

  std::jthread thread_;  // last: started once everything else is set up
};

}  // namespace tidemark::pipeline
