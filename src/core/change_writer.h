// Where a source writes what it captures, and the one rule it keeps:
//
//   a source confirms a position to its server only after commit() with that position
//   returned (everything before it is then durable in the change log and the position saved).
//
// The pipeline implements it over the change log (pipeline/log_appender.h): a Change becomes
// an event of the log's format, a transaction end a record with the source's position after
// it, commit() one fdatasync for every transaction since the last (group commit), then the
// position saved in the state store. A source never learns which log or store it writes to.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/change.h"
#include "core/offset_store.h"

namespace tidemark::core {

/// The slowest reader of the log: the log keeps every record from `offset` on for it.
struct Retention {
  uint64_t offset = 0;
  std::string sink;  // who holds it back ("" when no sink is running)
};

class ChangeWriter {
 public:
  virtual ~ChangeWriter() = default;

  /// Writes one change; returns the size of the event it became (its value, in bytes).
  /// Throws Error.
  virtual uint64_t write(const Change& change) = 0;
  /// Writes a heartbeat event (Debezium's, on its heartbeat topic) made at `now_ms`; returns
  /// its size as write() does.
  virtual uint64_t heartbeat(int64_t now_ms) = 0;
  /// What was written since the last end is a whole transaction, after which the source
  /// resumes at `position` (its own form; PostgreSQL: the LSN). Writes nothing when nothing
  /// was written.
  virtual void endTransaction(std::string_view position) = 0;
  /// Drops what was written since the last end (a transaction abandoned half-way).
  virtual void abortTransaction() = 0;
  /// Makes every whole transaction written durable, then saves `position` as where the source
  /// resumes. After it returns, `position` may be confirmed to the source. Throws Error.
  virtual void commit(const state::SourcePosition& position) = 0;
  /// After a commit failed: drops everything written since the last commit that succeeded.
  /// Until then every commit throws (what the failed one dropped must be read again).
  virtual void dropUncommitted() = 0;

  /// Bytes written and not yet committed.
  virtual uint64_t pendingBytes() const = 0;
  /// The log offset the next record written gets.
  virtual uint64_t nextOffset() const = 0;
  /// Whether the log and what waits to be committed to it reach the log's cap.
  virtual bool atCap() const = 0;
  /// Frees what every reader has consumed; then, when the log is still at its cap (reading
  /// from the source must wait), who holds it. Throws Error when no reader can go on.
  virtual std::optional<Retention> full() = 0;
};

}  // namespace tidemark::core
