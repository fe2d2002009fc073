// The shared half of Debezium's `source` block. Every connector's block begins with the same
// fields (version, connector, name, ts_ms, snapshot, db, sequence, ts_us, ts_ns) and goes on
// with its own: schema, table, txId, lsn, xmin, origin for PostgreSQL
// (source/postgres/source_block.h); a MySQL connector adds table, server_id, gtid, file, pos,
// row, thread, query. SourceHead writes the shared part; the connector writes the rest and the
// sequence's value between the two.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace tidemark::debezium {

/// An integer in decimal, as blocks and envelopes write numbers.
void appendInteger(std::string& out, int64_t v);
void appendInteger(std::string& out, uint64_t v);
/// The finer two of Debezium's three renderings of an instant: ,"ts_us":..,"ts_ns":..
void appendTimes(std::string& out, int64_t micros);

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

}  // namespace tidemark::debezium
