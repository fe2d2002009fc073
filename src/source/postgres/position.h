// The PostgreSQL source's position, and its opaque form in the state store
// (state::SourcePosition): which cluster, timeline and slot, and the LSN to resume from.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/lsn.h"
#include "core/offset_store.h"

namespace tidemark::pg {

/// The transactions a snapshot's rows already hold, as pg_current_snapshot() described them
/// inside it. The stream that follows the snapshot skips them: each committed before the
/// snapshot was taken, so before `through` (the WAL insert position read just after), and
/// is visible in it.
struct SnapshotCover {
  uint64_t xmin = 0;  // full transaction ids (xid8)
  uint64_t xmax = 0;
  std::vector<uint64_t> xip;
  Lsn through;

  /// Whether the transaction `xid` whose commit record is at `commit_lsn` is in the snapshot.
  bool covers(uint32_t xid, Lsn commit_lsn) const;
  /// Parses pg_current_snapshot()'s text, "xmin:xmax:xip,xip,...". Throws Error when it is not.
  static SnapshotCover parse(std::string_view text, Lsn through);
  bool operator==(const SnapshotCover&) const = default;
};

/// How far an unfinished initial snapshot got with one table, as committed to the change log.
/// How far the initial snapshot got in a table, or in one range of its keys (a table read by
/// several readers has one for each range, in key order).
struct SnapshotTableState {
  std::string schema;
  std::string table;
  bool done = false;  // every row of it is in the log
  uint64_t rows = 0;  // rows of it in the log
  /// The key of the last row in the log, in the key's order (SnapshotRelation::key), as
  /// text; the next run reads the rows after it. None: read the table from its start. A
  /// range's lower bound (exclusive) until its first row is in the log.
  std::optional<std::vector<std::string>> after;
  /// A range's upper bound (inclusive); none: to the table's end.
  std::optional<std::vector<std::string>> until;
  bool operator==(const SnapshotTableState&) const = default;
};

/// One table an incremental snapshot reads, and how far it got.
struct IncrementalTable {
  std::string schema;
  std::string table;
  std::optional<std::string> filter;         // additional-conditions: a SQL condition on its rows
  std::optional<std::string> surrogate_key;  // the column to order by instead of the key
  std::optional<std::vector<std::string>> after;  // the last key read, as text
  /// The table's last key when its first chunk was read: rows past it were inserted since,
  /// and come through the stream, so the reading ends there (as Debezium's does).
  std::optional<std::vector<std::string>> until;
  uint64_t rows = 0;                               // rows written as read events
  bool operator==(const IncrementalTable&) const = default;
};

/// The incremental snapshot under way: the tables left, the first being read.
struct IncrementalState {
  std::string id;  // the signal that asked for it
  std::vector<IncrementalTable> tables;
  bool paused = false;
  /// The execute-snapshot signals it took (the latest 32): one seen again, its transaction
  /// streamed once more after a restart, is not queued twice.
  std::vector<std::string> taken;
  bool operator==(const IncrementalState&) const = default;
};

struct Position {
  std::string system_identifier;
  uint32_t timeline = 0;
  std::string slot;
  Lsn lsn;
  /// Set while the stream may still bring transactions the initial snapshot read.
  std::optional<SnapshotCover> cover;
  /// An initial snapshot began and has not ended: the log holds part of it. The next run
  /// goes on from where `snapshot_tables` say it got.
  bool snapshot_pending = false;
  /// While pending: the tables the snapshot started, and how far each got.
  std::vector<SnapshotTableState> snapshot_tables;
  /// How many times a lost position was replaced by a new one and a full snapshot
  /// (source.snapshot.mode when_needed), over the pipeline's life.
  uint32_t rebuilds = 0;
  /// The incremental snapshot under way, if any (incremental.h).
  std::optional<IncrementalState> incremental;
};

/// {"system_identifier":..,"timeline":..,"slot":..,"lsn":"0/16B3748"}, readable as the LSN;
/// with "snapshot_cover", "snapshot_pending", "snapshot_tables", "rebuilds" and "incremental"
/// when set.
state::SourcePosition encodePosition(const Position& position);

/// The position a token holds. Throws Error(Fatal) naming the state store when the token is
/// not one encodePosition wrote (a store of another source kind, or changed by hand).
Position decodePosition(const state::SourcePosition& stored);

}  // namespace tidemark::pg
