#include "source/postgres/source_block.h"

#include "base/json_writer.h"

namespace tidemark::events {

using debezium::appendInteger;

PostgresSourceBlock::PostgresSourceBlock(std::string_view server_name, std::string_view db)
    : head_("postgresql", server_name, db) {}

void PostgresSourceBlock::beginTransaction(Xid xid, int64_t commit_us) {
  xid_ = xid;
  commit_us_ = commit_us;
  origin_.clear();
  origin_lsn_ = Lsn();
}

void PostgresSourceBlock::setOrigin(std::string_view name, Lsn origin_lsn) {
  origin_ = name;
  origin_lsn_ = origin_lsn;
}

namespace {

// What stream and snapshot events share, after the head: Debezium's sequence (the last
// commit's LSN and this event's, as strings), the tail of times, and from schema to xmin.
void appendBody(std::string& out, Lsn last_commit, Lsn lsn, int64_t ts_us, std::string_view schema,
                std::string_view table, std::optional<uint64_t> txid) {
  out += "\"[";
  if (last_commit.valid()) {
    out += "\\\"";
    appendInteger(out, last_commit.value());
    out += "\\\"";
  } else {
    out += "null";
  }
  out += ",\\\"";
  appendInteger(out, lsn.value());
  out += "\\\"]\"";
  debezium::SourceHead::tail(out, ts_us);
  out += ",\"schema\":";
  JsonWriter::appendQuoted(out, schema);
  out += ",\"table\":";
  JsonWriter::appendQuoted(out, table);
  out += ",\"txId\":";
  if (txid) appendInteger(out, *txid);
  else out += "null";
  out += ",\"lsn\":";
  appendInteger(out, lsn.value());
  // xmin: Debezium reads the slot's xmin only with xmin.fetch.interval.ms set (default off).
  out += R"(,"xmin":null)";
}

}  // namespace

void PostgresSourceBlock::append(std::string& out, std::string_view schema, std::string_view table, Lsn lsn,
                                 bool in_transaction, int64_t ts_us) const {
  head_.head(out, ts_us);
  appendBody(out, last_commit_lsn_, lsn, ts_us, schema, table,
             in_transaction ? std::optional<uint64_t>(xid_.value) : std::nullopt);
  out += R"(,"origin":)";
  if (in_transaction && !origin_.empty()) {
    JsonWriter::appendQuoted(out, origin_);
    out += ",\"origin_lsn\":";
    if (origin_lsn_.valid()) appendInteger(out, origin_lsn_.value());
    else out += "null";
  } else {
    out += R"(null,"origin_lsn":null)";
  }
  out += '}';
}

void PostgresSourceBlock::appendSnapshot(std::string& out, std::string_view schema, std::string_view table,
                                         const SnapshotRead& read) const {
  // As Debezium's snapshot records: no last commit in the sequence, no origin.
  head_.head(out, read.ts_us, read.marker);
  appendBody(out, Lsn(), read.lsn, read.ts_us, schema, table, read.txid);
  out += R"(,"origin":null,"origin_lsn":null})";
}

}  // namespace tidemark::events
