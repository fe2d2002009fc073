#include "encode/debezium/source_head.h"

#include <charconv>

#include "base/json_writer.h"

namespace tidemark::debezium {

namespace {

template <typename Integer>
void appendDecimal(std::string& out, Integer v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

}  // namespace

void appendInteger(std::string& out, int64_t v) { appendDecimal(out, v); }
void appendInteger(std::string& out, uint64_t v) { appendDecimal(out, v); }

void appendTimes(std::string& out, int64_t micros) {
  out += ",\"ts_us\":";
  appendInteger(out, micros);
  out += ",\"ts_ns\":";
  appendInteger(out, micros * 1000);
}

SourceHead::SourceHead(std::string_view connector, std::string_view server_name, std::string_view db) {
  start_ = R"({"version":")" TIDEMARK_VERSION R"(","connector":)";
  JsonWriter::appendQuoted(start_, connector);
  start_ += ",\"name\":";
  JsonWriter::appendQuoted(start_, server_name);
  start_ += ",\"ts_ms\":";
  db_ = ",\"db\":";
  JsonWriter::appendQuoted(db_, db);
}

void SourceHead::head(std::string& out, int64_t ts_us, std::string_view snapshot) const {
  out += start_;
  appendInteger(out, ts_us / 1000);
  out += ",\"snapshot\":\"";
  out += snapshot;
  out += '"';
  out += db_;
  out += ",\"sequence\":";
}

}  // namespace tidemark::debezium
