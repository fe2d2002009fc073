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
// when a stream is abandoned mid-transaction (clean stop, lost connection), and rollbackTo()
// when a write, flush or the state store failed (a full disk): the sink is then exactly as the
// last saved checkpoint says, and the source sends the rest again.
//
// A sink never removes what it cannot tell it wrote: recovery checks that its output is still
// what it made durable (and stops, naming the file and the ways on, when it is not).
//
// One thread drives a sink; sinks need no locking.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.h"
#include "core/event.h"

namespace tidemark::sinks {

/// How a sink starts, from what the state store says of it.
enum class RecoverMode {
  /// The checkpoint is this sink's durable state: check the output still is, and remove what
  /// was written after it.
  Resume,
  /// The pipeline has no stored position (a first run, or a state store that is new, empty or
  /// was removed): the sink's output must be empty, or what it holds could not be tied to a
  /// position.
  FirstRun,
  /// A position is stored but no checkpoint for this sink (it was added since): keep what its
  /// output holds.
  Added,
  /// The operator accepts the output as it is now (run --reset-sink): keep it, whatever the
  /// checkpoint says.
  Reset,
};

class Sink {
 public:
  virtual ~Sink() = default;

  virtual const std::string& name() const = 0;

  /// Recovers to the stored checkpoint (nullopt unless mode is Resume). Called once, before
  /// any write. Throws Error when the output is not what the mode expects.
  ///
  /// A sink that keeps its place in the destination itself (a database, where the change-log
  /// cursor is written in the same transaction as the rows) returns that cursor: the worker
  /// reads on from there, whatever the state store says, since the destination's own record
  /// is the one that cannot disagree with its rows. Others return nullopt.
  virtual std::optional<uint64_t> recover(const std::optional<std::string>& checkpoint, RecoverMode mode) = 0;

  /// A table's schema, as the change log holds it ahead of the first event that follows it
  /// (core::TableSchema: topic, version, JSON). For typed destinations; others ignore it.
  virtual void tableSchema(std::string_view /*topic*/, std::string_view /*version*/, std::string_view /*json*/) {}

  /// Appends one event. Throws Error on I/O failure.
  virtual void write(const core::Event& event) = 0;

  /// Everything written so far forms whole transactions; `cursor` is the change-log offset
  /// after the last one (what a sink that keeps its own place stores with it).
  virtual void markTransactionEnd(uint64_t cursor) = 0;

  /// Discards what was written after the last mark.
  virtual void rollbackToMark() = 0;

  /// Discards everything after `checkpoint` (one this sink gave: the last one saved), after a
  /// write, a flush or the save failed. Does not touch output that something else changed
  /// meanwhile. Throws Error when it cannot.
  virtual void rollbackTo(const std::string& checkpoint) = 0;

  /// Makes everything written (up to the last mark) durable. Throws Error on failure.
  virtual void flush() = 0;

  /// The durable state after the last flush(), serialized for the state store.
  virtual std::string checkpoint() const = 0;

  /// Bytes written since the last flush() (for the delivery.flush_bytes bound).
  virtual uint64_t pendingBytes() const = 0;
};

}  // namespace tidemark::sinks
