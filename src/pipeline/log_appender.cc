#include "pipeline/log_appender.h"

#include <fmt/format.h>

#include "base/error.h"

namespace tidemark::pipeline {

LogAppender::LogAppender(changelog::LocalLog& log, state::OffsetStore& store, Options options,
                         const LogConsumers* consumers)
    : log_(log), store_(store), options_(options), consumers_(consumers) {
  // A crash in the middle of a large transaction left its first part: drop it for the sinks.
  if (log_.inTransaction()) {
    log_.append(changelog::transactionAbort());
    commit();
  }
  mark_ = log_.mark();
}

void LogAppender::write(const core::Event& e, const events::TableSchema* schema) {
  changelog::RecordView r;
  r.topic = e.topic;
  if (!e.key.empty()) r.key = e.key;
  r.value = e.value;
  if (schema != nullptr) {
    auto open = open_written_.find(schema->topic);
    const std::string* held = open != open_written_.end() ? &open->second : nullptr;
    if (held == nullptr) {
      auto it = written_.find(schema->topic);
      if (it != written_.end()) held = &it->second;
    }
    if (held == nullptr || *held != schema->version) {
      log_.append(changelog::tableSchema(schema->topic, schema->version, schema->json));
      open_written_[schema->topic] = schema->version;
    }
    r.headers.push_back({changelog::kSchemaVersionHeader, schema->version});
  }
  log_.append(r);
  if (log_.pendingBytes() >= options_.spill_bytes) {
    // A large transaction: its first part goes to disk now, not at its end.
    commit();
    spilled_ = true;
    mark_ = log_.mark();
  }
}

void LogAppender::commit() {
  if (dropped_) {
    // A failed commit dropped what was appended before it; a commit now would write what came
    // after, and a position saved with it would skip what was dropped.
    throw Error(ErrorClass::Retriable,
                "the change log dropped transactions it could not write; nothing more is saved until "
                "they are read again from the source",
                "");
  }
  try {
    log_.commit();
  } catch (...) {
    dropped_ = true;
    throw;
  }
}

void LogAppender::markTransactionEnd(Lsn position) {
  // A transaction with nothing for the sinks (only uncaptured tables, a heartbeat row) leaves
  // no trace in the log: the saved position covers it.
  if (!spilled_ && log_.mark().next_offset == mark_.next_offset) return;
  log_.append(changelog::transactionEnd(position.str()));
  spilled_ = false;
  mark_ = log_.mark();
  for (auto& [topic, version] : open_written_) written_[topic] = std::move(version);
  open_written_.clear();
}

void LogAppender::rollbackToMark() {
  open_written_.clear();
  log_.rollbackTo(mark_);
  if (spilled_) {
    log_.append(changelog::transactionAbort());
    spilled_ = false;
  }
  mark_ = log_.mark();
}

void LogAppender::rollbackToSaved() {
  // Schema records of transactions dropped here are gone too: write them again when needed.
  open_written_.clear();
  written_.clear();
  dropped_ = false;
  log_.rollback();
  if (log_.inTransaction()) log_.append(changelog::transactionAbort());
  spilled_ = false;
  mark_ = log_.mark();
}

void LogAppender::makeDurable(state::StoredPosition position) {
  commit();
  mark_ = log_.mark();
  position.log_end = log_.endOffset();
  position.sinks.clear();  // each sink saves its own progress
  store_.save(position);
  trim();
}

void LogAppender::trim() {
  if (consumers_ != nullptr) log_.removeBefore(consumers_->retention().offset);
}

bool LogAppender::full(Retention& holder) {
  if (consumers_ != nullptr) consumers_->check();
  trim();
  if (!atCap()) return false;
  if (consumers_ != nullptr) holder = consumers_->retention();
  return true;
}

std::optional<Lsn> logPosition(const changelog::LocalLog& log) {
  if (!log.lastPosition()) return std::nullopt;
  auto lsn = Lsn::parse(*log.lastPosition());
  if (!lsn) {
    throw Error(ErrorClass::Fatal,
                fmt::format("change log: the last transaction end holds position \"{}\", which is not an LSN",
                            *log.lastPosition()),
                "the change log under state_dir was changed behind tidemark's back, or belongs to "
                "another source; move state_dir aside and run again");
  }
  return lsn;
}

}  // namespace tidemark::pipeline
