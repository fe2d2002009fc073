#include "pipeline/log_appender.h"

#include <fmt/format.h>

#include "base/error.h"
#include "core/text_row.h"

namespace tidemark::pipeline {

LogAppender::LogAppender(changelog::LocalLog& log, state::OffsetStore& store, Options options,
                         const LogConsumers* consumers)
    : log_(log),
      store_(store),
      options_(std::move(options)),
      consumers_(consumers),
      heartbeats_(options_.server_name),
      encoder_(encoder()) {
  // A crash in the middle of a large transaction left its first part: drop it for the sinks.
  if (log_.inTransaction()) {
    log_.append(changelog::transactionAbort());
    commitLog();
  }
  mark_ = log_.mark();
}

namespace {

/// A change as the log holds it: its Debezium event, the columns whose value the source did not
/// resend, and its row as the source printed it.
class LogEncoder : public core::ChangeEncoder {
 public:
  explicit LogEncoder(const std::string& server_name) : envelope_(server_name) {}

  core::EncodedChange encode(const core::Change& change, std::string& buffer) override {
    const core::Event e = envelope_.encode(change);
    core::EncodedChange out;
    out.at = buffer.size();
    auto put = [&buffer](std::string_view part) {
      buffer += part;
      return static_cast<uint32_t>(part.size());
    };
    out.topic = put(e.topic);
    out.key = put(e.key);
    out.value = put(e.value);
    // The columns the source did not resend: a destination must not write the placeholder over
    // the value it holds.
    const size_t unchanged_at = buffer.size();
    if (change.after != nullptr) {
      for (size_t i = 0; i < change.after->size(); ++i) {
        if ((*change.after)[i].state != core::Value::State::Unchanged) continue;
        if (buffer.size() > unchanged_at) buffer += ',';
        buffer += std::to_string(i);
      }
    }
    out.unchanged = static_cast<uint32_t>(buffer.size() - unchanged_at);
    out.schema = change.table != nullptr ? change.table->schema_record.get() : nullptr;
    // The row as the source printed it, for destinations of its own kind.
    const size_t text_at = buffer.size();
    const bool deleted = change.op == core::Op::Delete;
    const core::Row* image = deleted ? change.before : change.after;
    if (out.schema != nullptr && !out.schema->text_form.empty() && image != nullptr) {
      core::appendTextRow(static_cast<char>(change.op), *image, envelope_.valueOffsets(deleted), buffer);
    }
    out.text = static_cast<uint32_t>(buffer.size() - text_at);
    return out;
  }

 private:
  debezium::Envelope envelope_;
};

}  // namespace

uint64_t LogAppender::write(const core::Change& change) {
  encoded_.clear();
  const core::EncodedChange e = encoder_->encode(change, encoded_);
  return write(encoded_, e);
}

std::unique_ptr<core::ChangeEncoder> LogAppender::encoder() const {
  return std::make_unique<LogEncoder>(options_.server_name);
}

uint64_t LogAppender::write(std::string_view buffer, const core::EncodedChange& encoded) {
  core::Event e;
  size_t at = encoded.at;
  auto take = [&](uint32_t size) {
    std::string_view part = buffer.substr(at, size);
    at += size;
    return part;
  };
  e.topic = take(encoded.topic);
  e.key = take(encoded.key);
  e.value = take(encoded.value);
  e.unchanged = take(encoded.unchanged);
  e.text = take(encoded.text);
  append(e, encoded.schema);
  return e.value.size();
}

uint64_t LogAppender::heartbeat(int64_t now_ms) {
  const core::Event e = heartbeats_.heartbeat(now_ms);
  append(e);
  return e.value.size();
}

void LogAppender::append(const core::Event& e, const core::TableSchema* schema) {
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
      // Kept in the store too, for sinks that start reading past this record.
      if (saved_schemas_.insert(schema->version).second) store_.saveTableSchema(*schema);
      log_.append(changelog::tableSchema(schema->topic, schema->version, schema->json));
      open_written_[schema->topic] = schema->version;
    }
    r.headers.push_back({changelog::kSchemaVersionHeader, schema->version});
  }
  if (!e.unchanged.empty()) r.headers.push_back({changelog::kUnchangedHeader, e.unchanged});
  if (!e.text.empty()) r.headers.push_back({changelog::kTextHeader, e.text});
  log_.append(r);
  if (log_.pendingBytes() >= options_.spill_bytes) {
    // A large transaction: its first part goes to disk now, not at its end.
    commitLog();
    spilled_ = true;
    mark_ = log_.mark();
  }
}

void LogAppender::commitLog() {
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

void LogAppender::endTransaction(std::string_view position) {
  // A transaction with nothing for the sinks (only uncaptured tables, a heartbeat row) leaves
  // no trace in the log: the saved position covers it.
  if (!spilled_ && log_.mark().next_offset == mark_.next_offset) return;
  log_.append(changelog::transactionEnd(position));
  spilled_ = false;
  mark_ = log_.mark();
  for (auto& [topic, version] : open_written_) written_[topic] = std::move(version);
  open_written_.clear();
}

void LogAppender::abortTransaction() {
  open_written_.clear();
  log_.rollbackTo(mark_);
  if (spilled_) {
    log_.append(changelog::transactionAbort());
    spilled_ = false;
  }
  mark_ = log_.mark();
}

void LogAppender::dropUncommitted() {
  // Schema records of transactions dropped here are gone too: write them again when needed.
  open_written_.clear();
  written_.clear();
  dropped_ = false;
  log_.rollback();
  if (log_.inTransaction()) log_.append(changelog::transactionAbort());
  spilled_ = false;
  mark_ = log_.mark();
}

void LogAppender::commit(const state::SourcePosition& position) {
  commitLog();
  mark_ = log_.mark();
  state::StoredPosition stored;
  stored.source = position;
  stored.log_end = log_.endOffset();  // each sink saves its own progress
  store_.save(stored);
  trim();
}

void LogAppender::restart(std::string_view end, const state::SourcePosition& position) {
  log_.append(changelog::transactionEnd(end));
  mark_ = log_.mark();
  commit(position);
}

void LogAppender::trim() {
  if (consumers_ != nullptr) log_.removeBefore(consumers_->retention().offset);
}

std::optional<core::Retention> LogAppender::full() {
  if (consumers_ != nullptr) consumers_->check();
  trim();
  if (!atCap()) return std::nullopt;
  return consumers_ != nullptr ? consumers_->retention() : core::Retention{};
}

}  // namespace tidemark::pipeline
