// Turns decoded pgoutput changes into the change model (core/change.h): each column's value
// rendered as Debezium's PostgreSQL connector renders it (values.h), the PostgreSQL part of
// the `source` block (source_block.h), and what pgoutput leaves implicit made explicit: an
// unchanged TOASTed value the server did not resend is taken from the old tuple when the
// server sent one that carries it, else it is Debezium's placeholder.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/json_writer.h"
#include "base/lsn.h"
#include "core/change.h"
#include "source/postgres/pgoutput_messages.h"
#include "source/postgres/relations.h"
#include "source/postgres/source_block.h"

namespace tidemark::events {

class ChangeBuilder {
 public:
  /// `server_name` is Debezium's topic.prefix (source.name); `db` the source database.
  /// `utf8` says what text values with bytes that are not valid UTF-8 become (possible only
  /// from a SQL_ASCII database): an error naming the row (Reject), or escapes (Escape).
  ChangeBuilder(std::string_view server_name, std::string_view db, Utf8Policy utf8 = Utf8Policy::Reject);

  void beginTransaction(Xid xid, pgoutput::PgTimestamp commit_time);
  /// The transaction being decoded was replicated from origin `name` (an Origin message):
  /// source.origin and source.origin_lsn of its events.
  void setOrigin(std::string_view name, Lsn origin_lsn);
  /// Remembers the end of the commit record, where the server places the Commit message, for
  /// the next events' source.sequence (Debezium's last commit LSN).
  void endTransaction(Lsn commit_end_lsn);

  /// A row change: Create, Update or Delete. `before` (with only the key columns when
  /// `before_kind` is Key) and `after` may be null. `old` is the old tuple the server sent, if
  /// any, when it is not `before`: an unchanged TOASTed value in `after` is taken from it.
  /// Throws Error(Poison) naming the table, the column and the row's key when a value cannot
  /// be rendered. Valid until the next call.
  const core::Change& change(core::Op op, const Relation& rel, Lsn lsn, const pgoutput::TupleData* before,
                             pgoutput::OldTupleKind before_kind, const pgoutput::TupleData* after,
                             const pgoutput::TupleData* old = nullptr);

  /// A truncate of one relation.
  const core::Change& truncate(const Relation& rel, Lsn lsn);
  /// A row a snapshot read (op r): `row` holds every column, as text.
  const core::Change& read(const Relation& rel, const pgoutput::TupleData& row,
                           const PostgresSourceBlock::SnapshotRead& snapshot);

  /// A logical decoding message. Outside a transaction (non-transactional messages), txId is
  /// null, source.ts_ms is the time it was received, and the message counts as its own commit
  /// in source.sequence, as in Debezium.
  const core::Change& message(const pgoutput::LogicalDecodingMessage& m, Lsn lsn, bool in_transaction);

  /// True when the key columns of two tuples differ (an update that changes the key). A key
  /// value the new tuple leaves unchanged (TOASTed, so not resent) is the old one.
  static bool keyChanged(const Relation& rel, const pgoutput::TupleData& old_tuple,
                         const pgoutput::TupleData& new_tuple);

 private:
  /// A rendered row: its values point into `text`.
  struct RowBuffer {
    std::string text;
    core::Row row;
    std::vector<std::pair<uint32_t, uint32_t>> spans;  // of each value in `text`
  };
  void renderRow(RowBuffer& out, const Relation& rel, const pgoutput::TupleData& tuple,
                 const pgoutput::TupleData* fallback, bool key_only) const;
  core::Value::State renderValue(std::string& out, const Column& col, const pgoutput::TupleColumn& c,
                                 const pgoutput::TupleColumn* fallback) const;
  void writeSource(std::string_view schema, std::string_view table, Lsn lsn, bool in_transaction);

  Utf8Policy utf8_;
  PostgresSourceBlock source_;  // the connector's part of every event
  std::string block_;
  RowBuffer before_;
  RowBuffer after_;
  core::Change change_;
};

}  // namespace tidemark::events
