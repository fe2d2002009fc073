#include "pipeline/sink_worker.h"

#include <random>

#include "base/clock.h"
#include "core/event.h"

namespace tidemark::pipeline {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// How long the worker waits for new records before it looks at its flush bounds again.
constexpr milliseconds kIdleWait{100};
// Saves kept for the status's delivery times: a few seconds' worth at the shortest flush
// interval, long enough for the status thread, which looks every two seconds.
constexpr size_t kSavesKept = 64;

}  // namespace

SinkWorker::SinkWorker(sinks::Sink& sink, const changelog::LocalLog& log, SinkProgress start, Options options,
                       std::function<void(const SinkProgress&)> save, Logger logger)
    : sink_(sink),
      log_(log),
      options_(options),
      save_(std::move(save)),
      logger_(std::move(logger)),
      retry_(options.retry, std::random_device{}()),
      boundary_(start.cursor),
      last_flush_(Clock::now()),
      durable_(std::move(start)) {
  status_.durable_cursor = status_.read_cursor = durable_.cursor;
  status_.state = "running";
  thread_ = std::jthread([this](std::stop_token stop) { loop(stop); });
}

SinkWorker::~SinkWorker() { stop(); }

void SinkWorker::stop() {
  if (!thread_.joinable()) return;
  thread_.request_stop();
  thread_.join();
}

void SinkWorker::loop(std::stop_token stop) {
  while (!stop.stop_requested()) {
    try {
      if (rollback_pending_) {
        sink_.rollbackTo(durable_.checkpoint);
        rollback_pending_ = false;
      }
      if (!reader_) reader_ = log_.reader(durable_.cursor);
      feed(stop);
      maybeFlush();
      noteCaughtUp();
      if (!stop.stop_requested()) log_.waitBeyond(reader_->position(), kIdleWait);
    } catch (const Error& e) {
      recover(e, stop);
      std::lock_guard lock(mutex_);
      if (failure_) return;
    }
  }
  // A clean stop: what the sink holds of whole transactions becomes durable; a transaction
  // read in part is dropped from the sink, and read again at the next start.
  try {
    if (!rollback_pending_ && reader_ && reader_->position() > boundary_) sink_.rollbackToMark();
    if (!rollback_pending_ && boundary_ > durable_.cursor) flushNow();
  } catch (const Error& e) {
    logger_.warn("could not make the last transactions durable at stop ({}); they are read "
                 "again from the change log at the next start",
                 e.what());
  }
}

void SinkWorker::noteCaughtUp() {
  std::lock_guard lock(mutex_);
  if (durable_.cursor >= log_.endOffset()) status_.caught_up_at_us = unixMicrosNow();
}

void SinkWorker::feed(std::stop_token stop) {
  // The status learns the read cursor at transaction ends and when caught up, not per record.
  auto noteRead = [this] {
    std::lock_guard lock(mutex_);
    status_.read_cursor = reader_->position();
  };
  while (!stop.stop_requested()) {
    const changelog::StoredRecord* r = reader_->next();
    if (r == nullptr) break;
    if (changelog::isTransactionEnd(r->record)) {
      sink_.markTransactionEnd(r->offset + 1);
      boundary_ = r->offset + 1;
      noteRead();
      maybeFlush();
    } else if (changelog::isTransactionAbort(r->record)) {
      // The first part of a large transaction, abandoned: the source sends it again whole.
      sink_.rollbackToMark();
    } else if (changelog::isTableSchema(r->record)) {
      sink_.tableSchema(changelog::headerValue(r->record, changelog::kTopicHeader).value_or(""),
                        changelog::headerValue(r->record, changelog::kSchemaVersionHeader).value_or(""),
                        r->record.value.value_or(""));
    } else if (changelog::isControl(r->record)) {
      // A kind of the pipeline's own that sinks need not know.
    } else {
      core::Event e{.topic = r->record.topic,
                    .key = r->record.key.value_or(std::string_view()),
                    .value = r->record.value.value_or(std::string_view("null"))};
      e.offset = r->offset;
      for (const changelog::Header& h : r->record.headers) {
        if (h.name == changelog::kSchemaVersionHeader) e.schema_version = h.value;
        if (h.name == changelog::kUnchangedHeader) e.unchanged = h.value;
        if (h.name == changelog::kTextHeader) e.text = h.value;
      }
      sink_.write(e);
    }
  }
  noteRead();
}

void SinkWorker::maybeFlush() {
  if (boundary_ <= durable_.cursor) return;
  // Only at a transaction's end: the sink flushes up to its last mark, and nothing after it.
  if (!reader_ || reader_->position() != boundary_) return;
  const bool bounds = sink_.pendingBytes() >= options_.flush_bytes ||
                      Clock::now() - last_flush_ >= options_.flush_interval;
  // Caught up with the log: what waits is all there is for now, so make it durable.
  const bool caught_up = boundary_ >= log_.endOffset();
  if (!bounds && !caught_up) return;
  flushNow();
}

void SinkWorker::flushNow() {
  sink_.flush();
  SinkProgress progress{boundary_, sink_.checkpoint()};
  save_(progress);
  poisoned_at_.reset();
  last_flush_ = Clock::now();
  {
    std::lock_guard lock(mutex_);
    durable_ = std::move(progress);
    status_.durable_cursor = durable_.cursor;
    status_.saves.emplace_back(durable_.cursor, unixMicrosNow());
    if (status_.saves.size() > kSavesKept) status_.saves.pop_front();
    if (status_.state != "running") {
      logger_.info("delivering again from offset {}", durable_.cursor);
      status_.state = "running";
      status_.error.clear();
      status_.attempt = 0;
    }
  }
  durable_changed_.notify_all();
}

void SinkWorker::recover(const Error& e, std::stop_token stop) {
  if (e.errorClass() == ErrorClass::Poison && !poisoned_at_.has_value()) {
    // One change the destination rejects: the sink reads again from its cursor and applies
    // change by change, setting aside the one it rejects (core/sink.h). At once, no backoff;
    // a second rejection at the same cursor is not the sink's to sort out, so it counts as
    // an error.
    logger_.warn("{}; reading again from change-log offset {} to find the change", e.what(), durable_.cursor);
    poisoned_at_ = durable_.cursor;
    reader_.reset();
    boundary_ = durable_.cursor;
    rollback_pending_ = true;
    return;
  }
  // What will not pass by waiting (output changed behind tidemark's back, a bad
  // configuration) stops the sink at once.
  const auto wait = e.retriable() ? retry_.failed(durable_.cursor, Clock::now()) : std::nullopt;
  {
    std::lock_guard lock(mutex_);
    status_.error = e.what();
    status_.attempt = retry_.attempt();
    status_.retry_since_us = retry_.sinceUnixMicros();
    status_.gives_up_at_us = retry_.givesUpAtUnixMicros();
    if (!wait) {
      status_.state = "failed";
      failure_ = e;
    } else {
      status_.state = "retrying";
    }
  }
  if (!wait) {
    if (e.retriable()) {
      logger_.error("giving up after retry.window: {}", e.describe());
    } else {
      logger_.error("{}", e.describe());
    }
    durable_changed_.notify_all();
    return;
  }
  logger_.warn("{}; the sink goes back to what it last made durable (change-log offset {}) and retries in "
               "{} ms (attempt {})",
               e.what(), durable_.cursor, wait->count(), retry_.attempt());
  std::mutex sleep_mutex;
  std::unique_lock sleep_lock(sleep_mutex);
  std::condition_variable_any().wait_for(sleep_lock, stop, *wait, [] { return false; });
  // Back to what was saved: the sink to its checkpoint (before anything is written again),
  // the reader to its cursor.
  reader_.reset();
  boundary_ = durable_.cursor;
  rollback_pending_ = true;
}

bool SinkWorker::waitDurable(uint64_t offset, milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return durable_changed_.wait_for(lock, timeout, [&] { return durable_.cursor >= offset || failure_; }) &&
         durable_.cursor >= offset;
}

SinkWorker::Status SinkWorker::status() const {
  std::lock_guard lock(mutex_);
  return status_;
}

std::optional<Error> SinkWorker::failure() const {
  std::lock_guard lock(mutex_);
  return failure_;
}

}  // namespace tidemark::pipeline
