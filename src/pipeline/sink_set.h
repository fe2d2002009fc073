// Every configured sink, each fed from the change log by its own SinkWorker. Starting
// recovers each sink from the progress the state store holds for it; each worker then saves
// its own progress (cursor and checkpoint) as it makes output durable. The log keeps records
// until the slowest sink has consumed them.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/log.h"
#include "config/config.h"
#include "core/dead_letters.h"
#include "core/offset_store.h"
#include "core/sink.h"
#include "log/local/local_log.h"
#include "pipeline/log_appender.h"
#include "pipeline/sink_worker.h"

namespace tidemark::pipeline {

/// One sink as the status shows it.
struct SinkStatus {
  std::string name;
  std::string kind;
  SinkWorker::Status worker;
  uint64_t log_end = 0;  // the log's end offset when this was taken
  uint64_t dead_letters = 0;  // pending in the dead letter queue
};

class SinkSet final : public LogConsumers {
 public:
  SinkSet(const config::PipelineConfig& cfg, const changelog::LocalLog& log, state::OffsetStore& store,
          const Logger& logger);
  ~SinkSet() override;

  /// Recovers every sink from `stored` and starts feeding it. A sink with stored progress
  /// resumes from its cursor; one added since the last run (a position is stored but nothing
  /// for the sink) keeps what its output holds and starts from the oldest record the log
  /// retains; on a first run every sink must be empty. Sinks named in `reset` keep their output
  /// as it is, whatever their checkpoint says (run --reset-sink). Throws Error when a sink's
  /// output is not what was made durable, or its cursor is not in the log.
  void start(const std::optional<state::StoredPosition>& stored, const std::vector<std::string>& reset);

  /// Waits until every sink holds every record below `offset` durably; throws the failure of
  /// a sink that gave up meanwhile. False when `stop` was set first.
  bool drain(uint64_t offset, const std::atomic<bool>& stop);
  /// Stops every worker: each makes what it holds of whole transactions durable first.
  void stop();

  std::vector<SinkStatus> status() const;

  Retention retention() const override;
  void check() const override;

 private:
  const config::PipelineConfig& cfg_;
  const changelog::LocalLog& log_;
  state::OffsetStore& store_;
  Logger logger_;
  std::unique_ptr<core::DeadLetters> dead_letters_;  // <state_dir>/dlq.db
  std::vector<std::unique_ptr<sinks::Sink>> sinks_;
  std::vector<std::unique_ptr<SinkWorker>> workers_;  // one per sink, once started
};

}  // namespace tidemark::pipeline
