// Builds Debezium PostgreSQL connector envelopes (schemas disabled) from decoded pgoutput
// changes: {"before", "after", "source", "op", "ts_ms", "transaction"} for rows, "op":"t" for
// truncates, and "op":"m" with {"message": {"prefix", "content"}} for logical decoding
// messages. The key is the JSON object of the relation's key columns.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/lsn.h"
#include "events/relations.h"
#include "pgoutput/messages.h"

namespace tidemark::events {

/// One event ready for a sink. The views are valid until the builder's next call.
struct Event {
  std::string_view topic;
  std::string_view key;    // JSON; empty means the event has no key (null)
  std::string_view value;  // JSON
};

class EnvelopeBuilder {
 public:
  /// `server_name` is Debezium's topic.prefix (source.name); `db` the source database.
  EnvelopeBuilder(std::string server_name, std::string db);

  void beginTransaction(Xid xid, pgoutput::PgTimestamp commit_time);
  /// Remembers the commit for the next events' source.sequence.
  void endTransaction(Lsn commit_lsn);

  /// A row change: op 'c' (insert), 'u' (update), 'd' (delete). `old_tuple` may be null.
  /// Throws Error(Poison) when a value cannot be rendered.
  Event change(char op, const Relation& rel, Lsn lsn, const pgoutput::TupleData* old_tuple,
               pgoutput::OldTupleKind old_kind, const pgoutput::TupleData* new_tuple);

  /// A truncate of one relation (op 't').
  Event truncate(const Relation& rel, Lsn lsn);

  /// A logical decoding message (op 'm'), topic <server_name>.message. Outside a transaction
  /// (non-transactional messages), txId is null and ts_ms is the time it was received.
  Event message(const pgoutput::LogicalDecodingMessage& m, Lsn lsn, bool in_transaction);

  /// A Layer 1 heartbeat, as Debezium writes it: topic __debezium-heartbeat.<server_name>,
  /// key {"serverName": <server_name>}, value {"ts_ms": <now>}.
  Event heartbeat(int64_t now_ms);

  /// True when the key columns of two tuples differ (an update that changes the key).
  static bool keyChanged(const Relation& rel, const pgoutput::TupleData& old_tuple,
                         const pgoutput::TupleData& new_tuple);

 private:
  void writeRow(const Relation& rel, const pgoutput::TupleData& tuple,
                const pgoutput::TupleData* fallback, bool key_only);
  void writeKey(const Relation& rel, const pgoutput::TupleData& tuple);
  void writeSource(std::string_view schema, std::string_view table, Lsn lsn, bool in_transaction);
  void writeTail(char op);

  std::string server_name_;
  std::string db_;
  std::string message_topic_;
  std::string heartbeat_topic_;
  std::string source_head_;  // the constant start of every source block

  Xid xid_;
  int64_t commit_ms_ = 0;
  Lsn last_commit_lsn_;

  std::string key_;
  std::string value_;
};

}  // namespace tidemark::events
