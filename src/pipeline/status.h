// The pipeline's status document (docs/STATUS.md): what `tidemark status` prints. The run
// process builds it from the session's positions and freshness, the source monitor's
// snapshot and its own state, and saves it in the state store every two seconds and on every
// change of state.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <deque>
#include <mutex>

#include "base/log.h"
#include "base/lsn.h"
#include "config/config.h"
#include "log/local/local_log.h"
#include "pipeline/sink_set.h"
#include "source/postgres/session.h"
#include "source/postgres/source_monitor.h"

namespace tidemark::pipeline {

enum class PipelineState { Starting, Running, Paused, Retrying, Stalled, Stopped, Failed };

std::string_view stateName(PipelineState state);

/// How far behind the server the stream is, and how fast it catches up.
struct Progress {
  std::optional<int64_t> backlog_bytes;  // the server's WAL position minus received
  std::optional<double> bytes_per_second;
  std::optional<double> events_per_second;
  std::optional<int64_t> eta_seconds;    // backlog / rate, when catching up
};

/// While `run` retries after an error that may pass: the error, and its retry window.
struct RetryStatus {
  std::string last_error;
  int attempt = 0;
  int64_t since_us = 0;        // when the window started (Unix microseconds)
  int64_t gives_up_at_us = 0;  // when it ends
};

/// The change log between the source and the sinks.
struct LogFigures {
  uint64_t size_bytes = 0;
  uint64_t max_bytes = 0;
  uint64_t start_offset = 0;
  uint64_t end_offset = 0;
  uint64_t oldest_unconsumed = 0;  // the slowest sink's cursor
  std::string held_by;             // that sink
};

struct StatusInput {
  PipelineState state = PipelineState::Starting;
  std::string reason;
  std::optional<RetryStatus> retry;  // while retrying (or stalled and reconnecting)
  std::optional<int> pid;
  pg::SessionStatus session;
  std::optional<LogFigures> log;
  std::vector<SinkStatus> sinks;
  pg::MonitorSnapshot monitor;
  Progress progress;
  uint64_t retries = 0;
  int64_t now_us = 0;
};

/// The status document as JSON.
std::string renderStatus(const config::PipelineConfig& cfg, const StatusInput& in);

/// The same figures in Prometheus' text exposition format.
std::string renderMetrics(const config::PipelineConfig& cfg, const StatusInput& in);

/// The run's status, kept by the pipeline's thread and read by the HTTP endpoint's: the
/// latest document, metrics, and a sample every ten seconds for the last hour (the status
/// page's charts). Saves the document in the state store on every update.
class StatusBoard {
 public:
  using Save = std::function<void(const std::string& json)>;

  StatusBoard(const config::PipelineConfig& cfg, Save save, const Logger& log);

  void setMonitor(const pg::SourceMonitor* monitor);
  /// The sinks and the change log, read live for every document.
  void setDelivery(const SinkSet* sinks, const changelog::LocalLog* log);
  /// Sets the state; any state but retrying or stalled ends the retry figures.
  void setState(PipelineState state, std::string reason = {});
  /// Retrying after `retry.last_error` (state `state`: retrying, or stalled).
  void setRetrying(PipelineState state, std::string reason, RetryStatus retry);
  void report(const pg::SessionStatus& session);
  void countRetry();

  std::string json() const;
  std::string metrics() const;
  /// {"samples":[{"t","state","age_ms","e2e_lag_ms","retained_wal_bytes","backlog_bytes","events_per_second"}...]}
  std::string history() const;
  PipelineState state() const;

 private:
  void update();  // with mutex_ held
  StatusInput input() const;  // with mutex_ held

  const config::PipelineConfig& cfg_;
  Save save_;
  Logger log_;
  mutable std::mutex mutex_;
  const pg::SourceMonitor* monitor_ = nullptr;
  const SinkSet* sinks_ = nullptr;
  const changelog::LocalLog* log_figures_ = nullptr;
  StatusInput in_;
  std::string json_;
  struct Sample {
    int64_t t_us;
    PipelineState state;
    std::optional<int64_t> age_ms, e2e_lag_ms, retained_wal_bytes, backlog_bytes;
    std::optional<double> events_per_second;
  };
  std::deque<Sample> samples_;
  // For rates: the previous report's position and count.
  std::optional<std::pair<int64_t, pg::SessionStatus>> previous_;
  int64_t last_progress_log_us_ = 0;
};

}  // namespace tidemark::pipeline
