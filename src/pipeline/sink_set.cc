#include "pipeline/sink_set.h"

#include <algorithm>
#include <chrono>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "base/error.h"
#include "config/settings.h"
#include "state/dlq_store.h"
#include "sink/jsonl/jsonl_sink.h"
#include "sink/postgres/postgres_sink.h"
#include "sink/stdout/stdout_sink.h"

namespace tidemark::pipeline {

namespace {

// The sink a configuration describes; config/settings.cc lists the kinds.
std::unique_ptr<sinks::Sink> makeSink(const config::PipelineConfig& pipeline, const config::SinkConfig& cfg,
                                      core::DeadLetters* dead_letters, const Logger& logger) {
  if (cfg.kind == "jsonl") return std::make_unique<sinks::JsonlSink>(cfg);
  if (cfg.kind == "stdout") return std::make_unique<sinks::StdoutSink>(cfg);
  if (cfg.kind == "postgres") {
    return std::make_unique<sinks::PostgresSink>(cfg, pipeline.dlq.max_records, dead_letters,
                                                 logger.with("sink", cfg.name));
  }
  throw Error(ErrorClass::Config, fmt::format("sink \"{}\": unknown kind \"{}\"", cfg.name, cfg.kind),
              "sinks[].kind is one of: jsonl, stdout, postgres");
}

}  // namespace

SinkSet::SinkSet(const config::PipelineConfig& cfg, const changelog::LocalLog& log, state::OffsetStore& store,
                 const Logger& logger)
    : cfg_(cfg), log_(log), store_(store), logger_(logger), dead_letters_(state::openDeadLetters(cfg.state_dir)) {
  for (const auto& s : cfg.sinks) sinks_.push_back(makeSink(cfg, s, dead_letters_.get(), logger_));
}

SinkSet::~SinkSet() { stop(); }

void SinkSet::start(const std::optional<state::StoredPosition>& stored, const std::vector<std::string>& reset) {
  for (const auto& name : reset) {
    if (std::none_of(sinks_.begin(), sinks_.end(), [&](const auto& s) { return s->name() == name; })) {
      throw Error(ErrorClass::Config, fmt::format("--reset-sink {}: no sink of that name", name),
                  "name a sink of the configuration (sinks[].name)");
    }
  }
  // Every sink is recovered before any starts, so that one that cannot start stops the run
  // before the others deliver anything.
  std::vector<SinkProgress> starts;
  for (auto& s : sinks_) {
    std::optional<SinkProgress> saved;
    if (stored) {
      auto it = stored->sinks.find(s->name());
      if (it != stored->sinks.end()) saved = it->second;
    }
    sinks::RecoverMode mode = sinks::RecoverMode::FirstRun;
    if (std::find(reset.begin(), reset.end(), s->name()) != reset.end()) {
      mode = sinks::RecoverMode::Reset;
    } else if (saved) {
      mode = sinks::RecoverMode::Resume;
    } else if (stored) {
      mode = sinks::RecoverMode::Added;
    }
    const std::optional<uint64_t> own = s->recover(
        mode == sinks::RecoverMode::Resume ? std::optional<std::string>(saved->checkpoint) : std::nullopt, mode);
    SinkProgress from{log_.startOffset(), s->checkpoint()};
    // Where the sink's output stands: its own record when it keeps one (a database), else
    // what the store saved.
    const std::optional<uint64_t> stands = own ? own : (saved ? std::optional<uint64_t>(saved->cursor) : std::nullopt);
    if (stands && *stands >= log_.startOffset()) from.cursor = *stands;
    if (stands && (own || mode == sinks::RecoverMode::Resume)) {
      if (*stands < log_.startOffset()) {
        throw Error(ErrorClass::Fatal,
                    fmt::format("sink \"{}\" stands at change-log offset {}, but the log now starts at {}: "
                                "the records between were deleted",
                                s->name(), *stands, log_.startOffset()),
                    fmt::format("run with --reset-sink {} to keep its output and go on from the oldest "
                                "record the log holds (the records between are missing from it)",
                                s->name()));
      }
      if (*stands > log_.endOffset()) {
        throw Error(ErrorClass::Fatal,
                    fmt::format("sink \"{}\" has consumed the change log up to offset {}, but the log now "
                                "ends at {}: records it consumed are gone from the log (it was cut or "
                                "damaged), and the records read again would not line up with its output",
                                s->name(), *stands, log_.endOffset()),
                    fmt::format("run with --reset-sink {} to keep its output as it is and go on from the "
                                "log's end (what the source sends again may then be in it twice)",
                                s->name()));
      }
    }
    if (mode == sinks::RecoverMode::Reset) from.cursor = std::min(from.cursor, log_.endOffset());
    if (mode == sinks::RecoverMode::Added) {
      logger_.info("sink \"{}\" is new: it starts from the oldest record the change log holds (offset {})",
                   s->name(), from.cursor);
    }
    // Saved at once, so that the log keeps what this sink still needs from now on.
    store_.saveSink(s->name(), from);
    starts.push_back(std::move(from));
  }
  // The table schemas of records before where each sink starts reading.
  const std::vector<core::TableSchema> schemas = store_.loadTableSchemas();
  for (auto& s : sinks_) {
    for (const core::TableSchema& t : schemas) s->tableSchema(t.topic, t.version, t.json);
  }
  SinkWorker::Options options;
  options.flush_interval = cfg_.delivery.flush_interval;
  options.flush_bytes = cfg_.delivery.flush_bytes;
  options.retry = cfg_.retry;
  for (size_t i = 0; i < sinks_.size(); ++i) {
    const std::string name = sinks_[i]->name();
    workers_.push_back(std::make_unique<SinkWorker>(
        *sinks_[i], log_, starts[i], options,
        [this, name](const SinkProgress& p) { store_.saveSink(name, p); },
        logger_.with("sink", name)));
  }
}

bool SinkSet::drain(uint64_t offset, const std::atomic<bool>& stop) {
  for (size_t i = 0; i < workers_.size(); ++i) {
    while (!workers_[i]->waitDurable(offset, std::chrono::milliseconds(100))) {
      if (auto failure = workers_[i]->failure()) {
        throw Error(ErrorClass::Fatal, fmt::format("sink \"{}\" gave up: {}", cfg_.sinks[i].name, failure->what()),
                    failure->hint());
      }
      if (stop.load()) return false;
    }
  }
  return true;
}

void SinkSet::stop() {
  for (auto& w : workers_) w->stop();
}

std::vector<SinkStatus> SinkSet::status() const {
  std::vector<SinkStatus> out;
  const uint64_t end = log_.endOffset();
  for (size_t i = 0; i < workers_.size(); ++i) {
    out.push_back(SinkStatus{cfg_.sinks[i].name, cfg_.sinks[i].kind, workers_[i]->status(), end,
                             dead_letters_->pending(cfg_.sinks[i].name)});
  }
  return out;
}

Retention SinkSet::retention() const {
  Retention r{log_.endOffset(), ""};
  for (size_t i = 0; i < workers_.size(); ++i) {
    const uint64_t cursor = workers_[i]->status().durable_cursor;
    if (r.sink.empty() || cursor < r.offset) r = Retention{cursor, cfg_.sinks[i].name};
  }
  return r;
}

void SinkSet::check() const {
  if (workers_.empty()) return;
  std::vector<std::string> why;
  std::string hint;
  bool retried = false;
  for (size_t i = 0; i < workers_.size(); ++i) {
    auto failure = workers_[i]->failure();
    if (!failure) return;
    why.push_back(fmt::format("sink \"{}\": {}", cfg_.sinks[i].name, failure->what()));
    retried = retried || failure->retriable();
    if (hint.empty()) hint = failure->hint();
  }
  const std::string after =
      retried ? fmt::format(" after retrying for {} (retry.window)", config::formatDuration(cfg_.retry.window)) : "";
  throw Error(ErrorClass::Fatal, fmt::format("every sink gave up{}: {}", after, fmt::join(why, "; ")),
              fmt::format("{}{}each sink resumes from the last change it made durable at the next run, and "
                          "the change log holds the rest",
                          hint, hint.empty() ? "" : "; "));
}

}  // namespace tidemark::pipeline
