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

void PostgresSourceBlock::append(std::string& out, std::string_view schema, std::string_view table, Lsn lsn,
                                 bool in_transaction, int64_t ts_us) const {
  head_.head(out, ts_us);
  // Debezium's sequence: the last commit's LSN and this event's LSN, as strings.
  out += "\"[";
  if (last_commit_lsn_.valid()) {
    out += "\\\"";
    appendInteger(out, last_commit_lsn_.value());
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
  if (in_transaction) appendInteger(out, static_cast<uint64_t>(xid_.value));
  else out += "null";
  out += ",\"lsn\":";
  appendInteger(out, lsn.value());
  // xmin: Debezium reads the slot's xmin only with xmin.fetch.interval.ms set (default off).
  out += R"(,"xmin":null,"origin":)";
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
  // As Debezium's snapshot records: the sequence has no last commit, and there is no origin.
  head_.head(out, read.ts_us, read.marker);
  out += "\"[null,\\\"";
  appendInteger(out, read.lsn.value());
  out += "\\\"]\"";
  debezium::SourceHead::tail(out, read.ts_us);
  out += ",\"schema\":";
  JsonWriter::appendQuoted(out, schema);
  out += ",\"table\":";
  JsonWriter::appendQuoted(out, table);
  out += ",\"txId\":";
  if (read.txid) appendInteger(out, *read.txid);
  else out += "null";
  out += ",\"lsn\":";
  appendInteger(out, read.lsn.value());
  out += R"(,"xmin":null,"origin":null,"origin_lsn":null})";
}

}  // namespace tidemark::events
