// Sinks: where events end up. The pipeline drives every sink through the same cycle:
//
//   write()* ... markTransactionEnd() ... write()* ... markTransactionEnd() ... flush()
//
// write() may buffer or write through; nothing is durable until flush() returns. flush() is
// only called right after markTransactionEnd(), so what is durable always ends at a
// transaction boundary. checkpoint() describes that durable state; the pipeline stores it
// with the source position in one state-store transaction. On start, recover() gets the
// stored checkpoint back and removes anything written after it (a crash between a sink's
// fsync and the state store's commit), so files never hold half a transaction or a
// transaction that the source will send again. rollbackToMark() does the same in-process
// when a stream is abandoned mid-transaction (clean stop, lost connection).
//
// One thread drives a sink; sinks need no locking.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "config/config.h"
#include "events/envelope.h"

namespace tidemark::sinks {

class Sink {
 public:
  virtual ~Sink() = default;

  virtual const std::string& name() const = 0;

  /// Recovers to the stored checkpoint (nullopt: none stored, a first run). Called once,
  /// before any write.
  virtual void recover(const std::optional<std::string>& checkpoint) = 0;

  /// Appends one event. Throws Error on I/O failure.
  virtual void write(const events::Event& event) = 0;

  /// Everything written so far forms whole transactions.
  virtual void markTransactionEnd() = 0;

  /// Discards what was written after the last mark.
  virtual void rollbackToMark() = 0;

  /// Makes everything written (up to the last mark) durable. Throws Error on failure.
  virtual void flush() = 0;

  /// The durable state after the last flush(), serialized for the state store.
  virtual std::string checkpoint() const = 0;

  /// Bytes written since the last flush() (for the delivery.flush_bytes bound).
  virtual uint64_t pendingBytes() const = 0;
};

/// Builds the sink a configuration describes.
std::unique_ptr<Sink> makeSink(const config::SinkConfig& cfg);

}  // namespace tidemark::sinks
