// Debezium's `source` block: where an event comes from. Every connector's block begins with
// the same fields (version, connector, name, ts_ms, snapshot, db, sequence, ts_us, ts_ns) and
// goes on with its own: schema, table, txId, lsn, xmin, origin for PostgreSQL; a MySQL
// connector would add table, server_id, gtid, file, pos, row, thread, query. SourceHead writes
// the shared part; a connector's block (PostgresSourceBlock) writes the rest and keeps the
// state it needs. The envelope around it (EnvelopeBuilder) is the same for every connector.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/lsn.h"

namespace tidemark::events {

/// An integer in decimal, as the blocks and envelopes write numbers.
void appendInteger(std::string& out, int64_t v);
void appendInteger(std::string& out, uint64_t v);
/// The finer two of Debezium's three renderings of an instant: ,"ts_us":..,"ts_ns":..
void appendTimes(std::string& out, int64_t micros);

/// The part every connector's block begins with.
class SourceHead {
 public:
  /// `connector`: Debezium's connector name ("postgresql", "mysql"); `server_name` its
  /// topic.prefix; `db` the source database.
  SourceHead(std::string_view connector, std::string_view server_name, std::string_view db);

  /// Appends {"version":..,"connector":..,"name":..,"ts_ms":..,"snapshot":..,"db":..,"sequence":
  /// for an event made at `ts_us`; the connector then appends the sequence's value and calls
  /// tail().
  void head(std::string& out, int64_t ts_us, std::string_view snapshot = "false") const;
  /// Appends ,"ts_us":..,"ts_ns":.. after the sequence (the brace stays open).
  static void tail(std::string& out, int64_t ts_us) { appendTimes(out, ts_us); }

 private:
  std::string start_;  // {"version":..,"connector":..,"name":..,"ts_ms":
  std::string db_;     // ,"snapshot": is written between; then ,"db":"<db>"
};

/// The PostgreSQL connector's block, and what of the stream it needs: the transaction's id,
/// commit time and origin, and the last commit's end LSN (Debezium's sequence).
class PostgresSourceBlock {
 public:
  PostgresSourceBlock(std::string_view server_name, std::string_view db);

  void beginTransaction(Xid xid, int64_t commit_us);
  void setOrigin(std::string_view name, Lsn origin_lsn);
  /// The end of the commit record: the next events' last commit LSN.
  void endTransaction(Lsn commit_end_lsn) { last_commit_lsn_ = commit_end_lsn; }

  /// When the event was made: the commit time inside a transaction, now outside one.
  int64_t eventMicros(bool in_transaction, int64_t now_us) const { return in_transaction ? commit_us_ : now_us; }

  /// Appends the block of an event of `schema`.`table` at `lsn`, made at `ts_us`.
  void append(std::string& out, std::string_view schema, std::string_view table, Lsn lsn, bool in_transaction,
              int64_t ts_us) const;

 private:
  SourceHead head_;
  Xid xid_;
  int64_t commit_us_ = 0;  // commit time, microseconds since 1970
  std::string origin_;     // empty: the transaction is local
  Lsn origin_lsn_;
  Lsn last_commit_lsn_;
};

}  // namespace tidemark::events
