// The initial snapshot's readers: threads that read parts of the captured tables (a table, or
// a range of its keys) in the one snapshot, and make their rows into encoded read events, so
// that the one writer (Session::snapshot) only appends them to the change log in order.
//
// The first reader reads on the snapshot's own transaction; the others on connections of their
// own that import it (exportSnapshot, importSnapshot: snapshot.h), so every reader sees exactly
// the same rows. At most `threads` batches wait for the writer: memory stays flat whatever the
// tables' sizes, and a reader that runs ahead of the writer waits.
//
// Every event is encoded with the marker "true": the writer alone knows which row is the first
// or the last of a table or of all, and renders those few again (SnapshotBatch::first, last).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/json_writer.h"
#include "core/change_writer.h"
#include "postgres/connection.h"
#include "source/postgres/relations.h"
#include "source/postgres/snapshot.h"
#include "source/postgres/source_block.h"

namespace tidemark::pg {

/// One part of a table to read: its rows after the key `after` (none: from its start) up to the
/// key `until` (inclusive; none: to its end), in key order.
struct SnapshotPart {
  size_t table = 0;  // the writer's index of the table
  const SnapshotRelation* relation = nullptr;
  const events::Relation* rel = nullptr;  // as the change builder renders it
  std::optional<std::vector<std::string>> after;
  std::optional<std::vector<std::string>> until;
};

/// Up to a chunk of one part's rows as read events, or the part's end.
struct SnapshotBatch {
  size_t part = 0;    // index into the parts the readers were given
  bool end = false;   // the part has no more rows (and this batch none)
  std::string bytes;  // the events, encoded
  std::vector<core::EncodedChange> events;
  /// Each row's key: its values' text, each followed by '\0' (empty for a table with no key).
  std::vector<std::string> keys;
  SnapshotRow first;  // the first row and the last, to render under another marker
  SnapshotRow last;
};

/// A key as SnapshotBatch::keys holds it, back to its values.
std::vector<std::string> splitKey(std::string_view key);

class SnapshotReaders {
 public:
  struct Options {
    size_t threads = 1;
    uint64_t chunk_rows = 10000;
    std::string server_name;  // source.name, and the database, as the change builder takes them
    std::string db;
    Utf8Policy utf8 = Utf8Policy::Reject;
    events::PostgresSourceBlock::SnapshotRead read;  // the source block's snapshot fields
  };
  using OpenConnection = std::function<Connection()>;

  /// Starts min(threads, parts) readers: the first on `first`, whose transaction took the
  /// snapshot, the others on connections `open` makes, importing `exported` (needed only with
  /// more than one reader). Events are encoded by `writer`'s encoders. Throws Error when a
  /// reader's connection cannot be opened.
  SnapshotReaders(Options options, Connection& first, const OpenConnection& open, const std::string& exported,
                  const core::ChangeWriter& writer, std::vector<SnapshotPart> parts);
  /// Stops the readers and waits for them.
  ~SnapshotReaders();
  SnapshotReaders(const SnapshotReaders&) = delete;
  SnapshotReaders& operator=(const SnapshotReaders&) = delete;

  /// The next batch, in the order the readers made them; none once every part was read, or
  /// when `stop` is set. Rethrows the error a reader stopped on.
  std::optional<SnapshotBatch> next(const std::atomic<bool>& stop);
  /// Gives a batch the writer is done with back, for a reader to fill again (its buffers are
  /// kept: no allocation, and no page faults, per chunk).
  void recycle(SnapshotBatch&& batch);

 private:
  /// A reader's thread: readParts, its error kept for next().
  void read(Connection& conn);
  void readParts(Connection& conn);
  SnapshotBatch reuse();
  /// The next part no reader took yet.
  std::optional<size_t> take();
  /// Hands `batch` to the writer, waiting while `threads` wait already; false when stopping.
  bool put(SnapshotBatch&& batch);

  Options options_;
  const core::ChangeWriter& writer_;
  std::vector<SnapshotPart> parts_;
  std::vector<Connection> connections_;  // the readers' own, after the first
  std::vector<std::thread> threads_;

  std::mutex mu_;
  std::condition_variable changed_;
  std::deque<SnapshotBatch> ready_;
  std::vector<SnapshotBatch> spare_;  // recycled
  size_t next_part_ = 0;
  size_t running_ = 0;  // readers not finished
  bool cancel_ = false;
  std::exception_ptr error_;
};

}  // namespace tidemark::pg
