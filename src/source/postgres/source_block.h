// The PostgreSQL connector's part of Debezium's `source` block: after the fields every
// connector writes (encode/debezium/source_head.h), schema, table, txId, lsn, xmin and origin,
// with Debezium's sequence (the last commit's LSN and the event's).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/lsn.h"
#include "encode/debezium/source_head.h"

namespace tidemark::events {

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

  /// What a snapshot's read events say of it: Debezium's marker ("first", "true", ...), the
  /// snapshot transaction's id (null when none was assigned) and start time, and the LSN the
  /// stream goes on from.
  struct SnapshotRead {
    std::string_view marker;
    std::optional<uint64_t> txid;
    int64_t ts_us = 0;
    Lsn lsn;
  };
  void appendSnapshot(std::string& out, std::string_view schema, std::string_view table, const SnapshotRead& read) const;

 private:
  debezium::SourceHead head_;
  Xid xid_;
  int64_t commit_us_ = 0;  // commit time, microseconds since 1970
  std::string origin_;     // empty: the transaction is local
  Lsn origin_lsn_;
  Lsn last_commit_lsn_;
};

}  // namespace tidemark::events
