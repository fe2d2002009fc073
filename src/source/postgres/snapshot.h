// The initial snapshot's reads: one REPEATABLE READ transaction on an ordinary connection, the
// transactions it sees (SnapshotCover, position.h), each captured table's columns as a
// Relation message would describe them, and its rows through a cursor, a chunk at a time.
//
// Why this is exact without an exported snapshot: the slot's position is older than the
// snapshot, so the stream that follows brings every transaction committed after the slot's
// position; the ones visible in the snapshot (committed before it) are skipped, their rows
// were read; the others are streamed. Session::snapshot drives it (session.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/lsn.h"
#include "core/offset_store.h"
#include "postgres/connection.h"
#include "source/postgres/pgoutput_messages.h"
#include "source/postgres/position.h"

namespace tidemark::pg {

struct SnapshotStart {
  SnapshotCover cover;
  std::optional<uint64_t> txid;  // the snapshot transaction's id (null on a read-only source)
  int64_t started_us = 0;        // its start time, Unix microseconds
};

/// Begins the snapshot transaction on `conn` (REPEATABLE READ, READ ONLY) and says what it
/// sees. `assign_xid`: take a transaction id for events' txId, as Debezium does (it writes a
/// commit record; a read-only source gets null).
SnapshotStart beginSnapshot(Connection& conn, bool assign_xid);

/// A captured table as pgoutput's Relation message would describe it, read in the snapshot.
/// The views point into `storage`.
struct SnapshotRelation {
  pgoutput::RelationMessage message;
  std::vector<std::string> storage;
  std::string select;  // SELECT <its columns> FROM <it>
  /// The columns rows are read in the order of, as positions in the row: the primary key,
  /// else the replica identity index. Empty when the table has neither (then it is read in
  /// no order, and cannot be resumed part way).
  std::vector<size_t> key;
  std::vector<std::string> types;  // format_type() of each column, to cast a key's text
  char kind = 'r';                 // pg_class.relkind: 'r' a table, 'p' a partitioned one

  /// The query that reads the rows, in key order; with `after`, only those past that key
  /// (its values' text as parameters $1..$n, never spliced in); with `until`, only those up
  /// to that key (the next n parameters); with `filter`, only those it holds for (a
  /// condition, parenthesized); with `limit`, that many at most.
  std::string query(bool after, bool until = false, std::optional<std::string_view> filter = std::nullopt,
                    std::optional<uint64_t> limit = std::nullopt) const;
  /// The key's columns, quoted, comma-separated, each followed by `suffix` (" DESC").
  std::string keyColumns(std::string_view suffix = {}) const;
  /// The query for the last key, in key order: SELECT <key> ... ORDER BY <key> DESC LIMIT 1.
  std::string lastKeyQuery() const;
  /// Orders by the column `name` instead of the key. False when there is no such column.
  bool orderBy(std::string_view name);
};
SnapshotRelation describeForSnapshot(Connection& conn, const state::CapturedTable& table);

/// Exports the snapshot of `conn`'s transaction (pg_export_snapshot()) for others to read in.
std::string exportSnapshot(Connection& conn);
/// Begins a transaction on `conn` (REPEATABLE READ, READ ONLY) that sees exactly the snapshot
/// `exported` (exportSnapshot), while the transaction that exported it is open.
void importSnapshot(Connection& conn, const std::string& exported);

/// Keys that split `relation` (a plain table with a key) into `parts` ranges of about as many
/// rows each, in key order, each key as its values' text: picked from a sample of its pages
/// (TABLESAMPLE SYSTEM) of about 200 keys per part, ten times as many pages again while fewer
/// than half of those come up. None when even all of them are fewer than 4 per part.
std::vector<std::vector<std::string>> splitKeys(Connection& conn, const SnapshotRelation& relation, size_t parts,
                                                uint64_t estimated_rows);

/// The planner's estimate of a table's rows (pg_class.reltuples); none before it was
/// analyzed or vacuumed.
std::optional<uint64_t> estimatedRows(Connection& conn, const state::CapturedTable& table);

/// A row read by a snapshot, each value as text or null, owned: held until its event is written.
using SnapshotRow = std::vector<std::optional<std::string>>;
/// Row `row` of a query's result.
SnapshotRow snapshotRow(PGresult* result, int row);
/// The row as a pgoutput tuple (views into `row`), for ChangeBuilder::read.
void asTuple(const SnapshotRow& row, pgoutput::TupleData& tuple);

/// A table's rows, in text, `chunk` at a time: a cursor in the snapshot transaction over
/// SnapshotRelation::query, from the start or after the key `after`, to the end or up to the
/// key `until`.
class SnapshotCursor {
 public:
  SnapshotCursor(Connection& conn, const SnapshotRelation& relation, const std::optional<std::vector<std::string>>& after,
                 uint64_t chunk, const std::optional<std::vector<std::string>>& until = std::nullopt);
  ~SnapshotCursor();
  /// The next chunk (no rows at the end).
  Result next();

 private:
  Connection& conn_;
  uint64_t chunk_;
};

}  // namespace tidemark::pg
