// The source's side of the change log: the ChangeWriter (core/change_writer.h) a source
// writes to. Each change becomes a Debezium event (encode/debezium); each transaction end a
// record with the source position after it; commit() commits the log (one fdatasync for every
// transaction since the last: group commit) and then saves the position, so that
//
//   position confirmed to the source <= position saved <= what the log holds durably.
//
// A transaction larger than spill_bytes is committed to the log in parts before its end
// arrives, so memory stays flat; if it is abandoned half-way (a lost connection, a clean stop),
// a transactionAbort record tells the sinks to drop its first part, and the source sends it
// again whole. The same happens at the first start after a crash that left a part in the log.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "core/change.h"
#include "core/change_writer.h"
#include "core/event.h"
#include "core/offset_store.h"
#include "encode/debezium/envelope.h"
#include "log/local/local_log.h"

namespace tidemark::pipeline {

using core::Retention;

/// Who reads the log (the sinks), as the appender needs to know them.
class LogConsumers {
 public:
  virtual ~LogConsumers() = default;
  /// From where the log must keep its records.
  virtual Retention retention() const = 0;
  /// Throws Error when no consumer can go on (every sink gave up): capturing more would only
  /// fill the log.
  virtual void check() const = 0;
};

class LogAppender : public core::ChangeWriter {
 public:
  struct Options {
    uint64_t spill_bytes = 4ull << 20;
    uint64_t max_bytes = 4ull << 30;  // buffer.max_bytes
    std::string server_name;          // source.name: Debezium's topic.prefix
  };

  /// `consumers` (may be null) say from where the sinks still need the log.
  LogAppender(changelog::LocalLog& log, state::OffsetStore& store, Options options,
              const LogConsumers* consumers);

  uint64_t write(const core::Change& change) override;
  std::unique_ptr<core::ChangeEncoder> encoder() const override;
  uint64_t write(std::string_view buffer, const core::EncodedChange& encoded) override;
  uint64_t heartbeat(int64_t now_ms) override;
  void endTransaction(std::string_view position) override;
  void abortTransaction() override;
  /// Commits the log, then saves `position` (with the log's end offset).
  void commit(const state::SourcePosition& position) override;
  /// Commits a transaction end holding `end` (as endTransaction would) though no change comes
  /// with it, then saves `position`: the source's positions started over (a new slot), and
  /// an older one left as the log's last must not be taken for where to resume.
  void restart(std::string_view end, const state::SourcePosition& position);
  void dropUncommitted() override;
  uint64_t pendingBytes() const override { return log_.pendingBytes(); }
  uint64_t nextOffset() const override { return log_.mark().next_offset; }
  bool atCap() const override { return log_.sizeBytes() + log_.pendingBytes() >= options_.max_bytes; }
  /// Deletes the segments every sink has consumed; then, at buffer.max_bytes, the sink that
  /// holds the log. Throws Error when every sink gave up (LogConsumers::check).
  std::optional<core::Retention> full() override;

  /// Appends an event; `schema` (may be null) is its table's, which goes into the log ahead of
  /// the first event that refers to it.
  void append(const core::Event& e, const core::TableSchema* schema = nullptr);
  /// The committed log's size in bytes.
  uint64_t sizeBytes() const { return log_.sizeBytes(); }

 private:
  void trim();
  /// Commits the log; remembers a failure (dropped_).
  void commitLog();

  changelog::LocalLog& log_;
  state::OffsetStore& store_;
  Options options_;
  const LogConsumers* consumers_;
  debezium::Envelope heartbeats_;
  std::unique_ptr<core::ChangeEncoder> encoder_;  // write(change)'s
  std::string encoded_;                           // and the event it made
  changelog::LocalLog::Mark mark_;  // after the last transaction end written
  bool spilled_ = false;            // the open transaction's first part is committed
  bool dropped_ = false;            // a commit failed: what it held is gone (dropUncommitted)
  // The schema version the log holds for each topic, up to the last transaction end
  // (`written_`), and as the open transaction changed it (`open_written_`).
  std::unordered_map<std::string, std::string> written_;
  std::unordered_map<std::string, std::string> open_written_;
  std::unordered_set<std::string> saved_schemas_;  // versions saved to the store by this process
};

}  // namespace tidemark::pipeline
