// The source's side of the change log. The session appends each transaction's events and
// then its end (with the source position after it); makeDurable() commits the log (one
// fdatasync for every transaction since the last: group commit) and then saves the position,
// so that
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

#include "base/lsn.h"
#include "core/offset_store.h"
#include "log/local/local_log.h"
#include "source/postgres/envelope.h"
#include "source/postgres/relations.h"

namespace tidemark::pipeline {

/// The slowest sink: the log keeps every record from `offset` on for it.
struct Retention {
  uint64_t offset = 0;
  std::string sink;  // who holds it back ("" when no sink is running)
};

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

class LogAppender {
 public:
  struct Options {
    uint64_t spill_bytes = 4ull << 20;
    uint64_t max_bytes = 4ull << 30;  // buffer.max_bytes
  };

  /// `consumers` (may be null) say from where the sinks still need the log.
  LogAppender(changelog::LocalLog& log, state::OffsetStore& store, Options options,
              const LogConsumers* consumers);

  /// Appends an event; `schema` (may be null) is its table's, which goes into the log ahead of
  /// the first event that refers to it.
  void write(const core::Event& e, const events::TableSchema* schema = nullptr);
  /// The events written since the last end form a whole transaction, after which the source
  /// resumes at `position`. Writes nothing when there were none.
  void markTransactionEnd(Lsn position);
  /// Drops what was written since the last end (a transaction abandoned half-way).
  void rollbackToMark();
  /// Drops everything written since the last commit, after a commit or a save failed. Until
  /// it is called, after a failed commit every commit and makeDurable() throws: what the
  /// failed commit dropped must be read again from the source, never skipped.
  void rollbackToSaved();
  /// The offset the next record written gets.
  uint64_t appendedEnd() const { return log_.mark().next_offset; }
  /// Bytes written and not yet committed.
  uint64_t pendingBytes() const { return log_.pendingBytes(); }

  /// Commits the log, then saves `position` (with the log's end). After it returns,
  /// `position.lsn` may be confirmed to the server.
  void makeDurable(state::StoredPosition position);

  /// Deletes the segments every sink has consumed; then whether the log is at
  /// buffer.max_bytes (reading from the source must wait), and for whom. Throws Error when
  /// every sink gave up (LogConsumers::check).
  bool full(Retention& holder);

  /// Whether the log and what waits to be committed to it reach buffer.max_bytes.
  bool atCap() const { return log_.sizeBytes() + log_.pendingBytes() >= options_.max_bytes; }
  /// The committed log's size in bytes.
  uint64_t sizeBytes() const { return log_.sizeBytes(); }

 private:
  void trim();
  /// Commits the log; remembers a failure (dropped_).
  void commit();

  changelog::LocalLog& log_;
  state::OffsetStore& store_;
  Options options_;
  const LogConsumers* consumers_;
  changelog::LocalLog::Mark mark_;  // after the last transaction end written
  bool spilled_ = false;            // the open transaction's first part is committed
  bool dropped_ = false;            // a commit failed: what it held is gone (rollbackToSaved)
  // The schema version the log holds for each topic, up to the last transaction end
  // (`written_`), and as the open transaction changed it (`open_written_`).
  std::unordered_map<std::string, std::string> written_;
  std::unordered_map<std::string, std::string> open_written_;
};

/// The position a transaction end in the log holds (its readable form, Lsn::str()).
std::optional<Lsn> logPosition(const changelog::LocalLog& log);

}  // namespace tidemark::pipeline
