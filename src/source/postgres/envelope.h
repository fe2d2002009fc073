// Builds Debezium PostgreSQL connector envelopes (schemas disabled) from decoded pgoutput
// changes: {"before", "after", "source", "transaction", "op", "ts_ms", "ts_us", "ts_ns"} for
// rows, "op":"t" for truncates, and "op":"m" with {"message": {"prefix", "content"}} for
// logical decoding messages, members in Debezium 3.6's order. The key is the JSON object of
// the relation's key columns. tests/compat holds these to Debezium's own events.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/json_writer.h"
#include "base/lsn.h"
#include "core/event.h"
#include "source/postgres/pgoutput_messages.h"
#include "source/postgres/relations.h"
#include "source/postgres/source_block.h"

namespace tidemark::events {

using core::Event;  // the views are valid until the builder's next call

class EnvelopeBuilder {
 public:
  /// `server_name` is Debezium's topic.prefix (source.name); `db` the source database.
  /// `utf8` says what text values with bytes that are not valid UTF-8 become (possible only
  /// from a SQL_ASCII database): an error naming the row (Reject), or escapes (Escape).
  EnvelopeBuilder(std::string server_name, std::string db, Utf8Policy utf8 = Utf8Policy::Reject);

  void beginTransaction(Xid xid, pgoutput::PgTimestamp commit_time);
  /// The transaction being decoded was replicated from origin `name` (an Origin message):
  /// source.origin and source.origin_lsn of its events.
  void setOrigin(std::string_view name, Lsn origin_lsn);
  /// Remembers the end of the commit record, where the server places the Commit message, for
  /// the next events' source.sequence (Debezium's last commit LSN).
  void endTransaction(Lsn commit_end_lsn);

  /// A row change: op 'c' (insert), 'u' (update), 'd' (delete). `before` (written as the
  /// event's `before`, with only the key columns when `before_kind` is Key) and `after` may be
  /// null. `old` is the old tuple the server sent, if any, when it is not `before`: an
  /// unchanged TOASTed value in `after` or in the key is taken from it. Throws Error(Poison)
  /// naming the table, the column and the row's key when a value cannot be rendered.
  Event change(char op, const Relation& rel, Lsn lsn, const pgoutput::TupleData* before,
               pgoutput::OldTupleKind before_kind, const pgoutput::TupleData* after,
               const pgoutput::TupleData* old = nullptr);

  /// A truncate of one relation (op 't').
  Event truncate(const Relation& rel, Lsn lsn);

  /// A logical decoding message (op 'm'), topic <server_name>.message. Outside a transaction
  /// (non-transactional messages), txId is null, source.ts_ms is the time it was received,
  /// and the message counts as its own commit in source.sequence, as in Debezium.
  Event message(const pgoutput::LogicalDecodingMessage& m, Lsn lsn, bool in_transaction);

  /// A Layer 1 heartbeat, as Debezium writes it: topic __debezium-heartbeat.<server_name>,
  /// key {"serverName": <server_name>}, value {"ts_ms": <now>}.
  Event heartbeat(int64_t now_ms);

  /// True when the key columns of two tuples differ (an update that changes the key). A key
  /// value the new tuple leaves unchanged (TOASTed, so not resent) is the old one.
  static bool keyChanged(const Relation& rel, const pgoutput::TupleData& old_tuple,
                         const pgoutput::TupleData& new_tuple);

 private:
  void writeRow(const Relation& rel, const pgoutput::TupleData& tuple,
                const pgoutput::TupleData* fallback, bool key_only);
  void writeKey(const Relation& rel, const pgoutput::TupleData& tuple,
                const pgoutput::TupleData* fallback);
  void appendValue(std::string& out, const Column& col, const pgoutput::TupleColumn& c,
                   const pgoutput::TupleColumn* fallback) const;
  void writeSource(std::string_view schema, std::string_view table, Lsn lsn, bool in_transaction);
  /// ,"transaction":null,"op":..,"ts_ms":..,"ts_us":..,"ts_ns":.. (the envelope's brace stays open).
  void writeTail(char op);

  std::string server_name_;
  Utf8Policy utf8_;
  std::string message_topic_;
  std::string heartbeat_topic_;
  PostgresSourceBlock source_;  // the connector's part of every event; the rest is shared

  std::string key_;
  std::string value_;
};

}  // namespace tidemark::events
