#include "encode/debezium/envelope.h"

#include <fmt/format.h>

#include "base/base64.h"
#include "base/clock.h"
#include "base/error.h"
#include "base/json_writer.h"
#include "config/config.h"
#include "encode/debezium/source_head.h"

namespace tidemark::debezium {

namespace {

void appendValue(std::string& out, const core::Value& v) {
  if (v.state == core::Value::State::Null) out += "null";
  else out += v.json;
}

}  // namespace

Envelope::Envelope(std::string server_name) : server_name_(std::move(server_name)) {
  message_topic_ = config::sanitizeTopic(server_name_ + ".message");
  heartbeat_topic_ = config::sanitizeTopic("__debezium-heartbeat." + server_name_);
  key_.reserve(256);
  value_.reserve(4096);
}

void Envelope::writeRow(const core::Table& table, const core::Row& row, std::vector<uint32_t>& offsets) {
  if (row.size() != table.quoted_columns.size()) {
    throw Error(ErrorClass::Fatal, fmt::format("a row of {}.{} has {} values for {} columns", table.schema,
                                               table.name, row.size(), table.quoted_columns.size()));
  }
  offsets.clear();
  value_ += '{';
  for (size_t i = 0; i < row.size(); ++i) {
    if (i) value_ += ',';
    value_ += table.quoted_columns[i];
    value_ += ':';
    offsets.push_back(static_cast<uint32_t>(value_.size()));
    appendValue(value_, row[i]);
  }
  value_ += '}';
}

void Envelope::writeKey(const core::Table& table, const core::Row& row) {
  key_.clear();
  if (table.key.empty()) return;
  key_ += '{';
  for (size_t k = 0; k < table.key.size(); ++k) {
    const size_t i = table.key[k];
    if (k) key_ += ',';
    key_ += table.quoted_columns[i];
    key_ += ':';
    if (i < row.size()) appendValue(key_, row[i]);
    else key_ += "null";
  }
  key_ += '}';
}

void Envelope::writeTail(char op) {
  value_ += ",\"transaction\":null,\"op\":\"";
  value_ += op;
  value_ += "\",\"ts_ms\":";
  const int64_t now = unixMicrosNow();
  appendInteger(value_, now / 1000);
  appendTimes(value_, now);
}

core::Event Envelope::encode(const core::Change& c) {
  if (c.op == core::Op::Message) return message(c);
  const core::Table& table = *c.table;
  value_.clear();
  value_ += "{\"before\":";
  if (c.before != nullptr) writeRow(table, *c.before, before_offsets_);
  else value_ += "null";
  value_ += ",\"after\":";
  if (c.after != nullptr) writeRow(table, *c.after, after_offsets_);
  else value_ += "null";
  value_ += ",\"source\":";
  value_ += c.source_block;
  writeTail(static_cast<char>(c.op));
  value_ += '}';
  key_.clear();
  if (c.op != core::Op::Truncate) {
    const core::Row* key_row = c.after != nullptr ? c.after : c.before;
    if (key_row != nullptr) writeKey(table, *key_row);
  }
  return core::Event{.topic = table.topic, .key = key_, .value = value_};
}

core::Event Envelope::message(const core::Change& c) {
  value_.clear();
  value_ += "{\"source\":";
  value_ += c.source_block;
  // Debezium writes only ts_ms here.
  value_ += ",\"transaction\":null,\"op\":\"m\",\"ts_ms\":";
  appendInteger(value_, unixMicrosNow() / 1000);
  value_ += ",\"message\":{\"prefix\":";
  JsonWriter::appendQuoted(value_, c.message_prefix);
  value_ += ",\"content\":\"";
  appendBase64(value_, c.message_content);
  value_ += "\"}}";
  key_.clear();
  key_ += "{\"prefix\":";
  JsonWriter::appendQuoted(key_, c.message_prefix);
  key_ += '}';
  return core::Event{.topic = message_topic_, .key = key_, .value = value_};
}

core::Event Envelope::heartbeat(int64_t now_ms) {
  key_.clear();
  key_ += "{\"serverName\":";
  JsonWriter::appendQuoted(key_, server_name_);
  key_ += '}';
  value_.clear();
  value_ += "{\"ts_ms\":";
  appendInteger(value_, now_ms);
  value_ += '}';
  return core::Event{.topic = heartbeat_topic_, .key = key_, .value = value_};
}

}  // namespace tidemark::debezium
