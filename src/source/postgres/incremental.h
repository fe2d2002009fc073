// Incremental snapshots: tables read again while the stream goes on, a chunk at a time, as
// DBLog does, without writing to the source.
//
// A chunk is read in its own REPEATABLE READ transaction, which notes its snapshot (what
// pg_current_snapshot() sees, a SnapshotCover) and the WAL insert position just after (the
// high watermark). Its rows wait in a window while the stream goes on to that position: a
// change the snapshot did not see, to a key of the chunk, drops that key from the window (the
// change is streamed, and the row read would be older). Once the stream passes the position,
// the rows left are written as read events (op r, source.snapshot "incremental"), so the
// stream never goes back in time. Session drives it (session.h); what is requested and how
// far each table got is part of the stored position, so progress survives restarts.
//
// Requests are Debezium's signals: rows of the signal table (id, type, data) seen in the
// stream, or files `tidemark snapshot` leaves in the state directory (for a read-only source).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/log.h"
#include "base/lsn.h"
#include "core/offset_store.h"
#include "source/postgres/pgoutput_messages.h"
#include "source/postgres/position.h"
#include "source/postgres/relations.h"
#include "source/postgres/snapshot.h"

namespace tidemark::pg {

/// A signal: a row of the signal table, or a request file (Debezium's layout).
struct Signal {
  std::string id;
  std::string type;  // execute-snapshot, stop-snapshot, pause-snapshot, resume-snapshot
  std::string data;  // JSON
};

/// Signals left as files for a running pipeline (`tidemark snapshot` on a read-only source):
/// state_dir/signals/<id>.json, each {"id", "type", "data"}, written whole (a temporary file
/// renamed into place). Reading skips files being written; a malformed one is renamed to
/// <name>.rejected and logged. A signal's file is removed once its effect is durable.
std::filesystem::path signalDirectory(const std::filesystem::path& state_dir);
void writeSignalFile(const std::filesystem::path& dir, const Signal& signal);
std::vector<Signal> readSignalFiles(const std::filesystem::path& dir, const Logger& log);
void removeSignalFile(const std::filesystem::path& dir, const Signal& signal);
/// A new signal id: "tm-<unix ms>-<random hex>".
std::string newSignalId();

/// What a signal did to `state`: a line for the log, or why it was refused (then `state` is
/// as it was). `captured` says whether "schema.table" is a captured table.
struct SignalOutcome {
  bool ok = true;
  std::string message;
};
SignalOutcome applySignal(std::optional<IncrementalState>& state, const Signal& signal,
                          const std::function<bool(const std::string& schema, const std::string& table)>& captured);

/// A chunk read and waiting for the stream to pass its high watermark.
class IncrementalWindow {
 public:
  /// Reads the next chunk of `table` (`captured` names its relation) on `conn`, in its own
  /// transaction, at most `rows` rows. Throws Error when the table cannot be read in chunks
  /// (no key), naming it and the ways to fix that.
  static IncrementalWindow read(Connection& conn, const IncrementalTable& table, const state::CapturedTable& captured,
                                uint64_t rows);

  /// The chunk came back empty: the table is done.
  bool empty() const { return order_.empty(); }
  const SnapshotCover& cover() const { return cover_; }
  Lsn high() const { return cover_.through; }
  RelationId relid() const { return described_.message.relid; }
  const pgoutput::RelationMessage& relation() const { return described_.message; }
  const std::vector<std::string>& lastKey() const { return last_key_; }
  /// The table's last key as the first chunk found it (IncrementalTable::until).
  const std::optional<std::vector<std::string>>& until() const { return until_; }

  /// A change to the window's table by a transaction the snapshot did not see: drops the
  /// keys of `old_tuple` and `new_tuple` (either may be null). False when a key cannot be
  /// told (an unchanged TOASTed key column): then the whole window must be read again.
  bool drop(const events::Relation& rel, const pgoutput::TupleData* old_tuple, const pgoutput::TupleData* new_tuple);

  /// The rows left, in key order.
  template <typename F>
  void forEachRow(F&& f) const {
    for (const auto& key : order_) {
      auto it = rows_.find(key);
      if (it != rows_.end()) f(it->second);
    }
  }

 private:
  /// The key's text, each value length-prefixed; none when a key column is not in `tuple`
  /// as text.
  std::optional<std::string> keyOf(const events::Relation& rel, const pgoutput::TupleData& tuple) const;

  SnapshotCover cover_;
  SnapshotRelation described_;
  std::vector<std::string> last_key_;
  std::optional<std::vector<std::string>> until_;
  std::vector<std::string> order_;
  std::unordered_map<std::string, SnapshotRow> rows_;
};

}  // namespace tidemark::pg
