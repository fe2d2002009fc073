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
#include <memory>
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

/// A change made into its event by a ChangeEncoder: its parts, in this order, from `at` in the
/// buffer it was appended to (lengths in bytes), and the table schema it follows (may be null).
struct EncodedChange {
  size_t at = 0;
  uint32_t topic = 0;
  uint32_t key = 0;
  uint32_t value = 0;
  uint32_t unchanged = 0;
  uint32_t text = 0;
  const TableSchema* schema = nullptr;
};

/// Makes changes into a ChangeWriter's events away from it, on another thread: the costly half
/// of write(change). Each encoder is used by one thread at a time; it needs nothing of the
/// writer's state.
class ChangeEncoder {
 public:
  virtual ~ChangeEncoder() = default;
  /// Appends the event `change` becomes to `buffer` and says where it lies. Throws Error.
  virtual EncodedChange encode(const Change& change, std::string& buffer) = 0;
};

class ChangeWriter {
 public:
  virtual ~ChangeWriter() = default;

  /// Writes one change; returns the size of the event it became (its value, in bytes).
  /// Throws Error.
  virtual uint64_t write(const Change& change) = 0;
  /// An encoder of this writer's events, for another thread.
  virtual std::unique_ptr<ChangeEncoder> encoder() const = 0;
  /// Writes a change one of encoder()'s encoded (the event lies in `buffer`), as write(change)
  /// would have written it; returns the size of its value.
  virtual uint64_t write(std::string_view buffer, const EncodedChange& encoded) = 0;
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
