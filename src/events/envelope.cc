#include "events/envelope.h"

#include <charconv>
#include <chrono>

#include <fmt/format.h>

#include "common/base64.h"
#include "common/error.h"
#include "common/json_writer.h"

namespace tidemark::events {

namespace {

int64_t nowMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void appendDecimal(std::string& out, uint64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

void appendValue(std::string& out, const Column& col, const pgoutput::TupleColumn& c,
                 const pgoutput::TupleColumn* fallback) {
  JsonWriter w(out);
  switch (c.kind) {
    case pgoutput::ColumnKind::Null:
      out += "null";
      return;
    case pgoutput::ColumnKind::Text:
      renderValue(*col.type, c.value, w);
      return;
    case pgoutput::ColumnKind::UnchangedToast:
      // The old row (REPLICA IDENTITY FULL) carries the value the update left unchanged.
      if (fallback != nullptr && fallback->kind == pgoutput::ColumnKind::Text) {
        renderValue(*col.type, fallback->value, w);
      } else {
        renderUnavailable(*col.type, w);
      }
      return;
    case pgoutput::ColumnKind::Binary:
      throw Error(ErrorClass::Fatal,
                  fmt::format("column \"{}\" arrived in binary format, which tidemark does not "
                              "request",
                              col.name));
  }
}

}  // namespace

EnvelopeBuilder::EnvelopeBuilder(std::string server_name, std::string db)
    : server_name_(std::move(server_name)), db_(std::move(db)) {
  message_topic_ = sanitizeTopic(server_name_ + ".message");
  heartbeat_topic_ = sanitizeTopic("__debezium-heartbeat." + server_name_);
  source_head_ = R"({"version":")" TIDEMARK_VERSION R"(","connector":"postgresql","name":)";
  JsonWriter::appendQuoted(source_head_, server_name_);
  source_head_ += ",\"ts_ms\":";
  key_.reserve(256);
  value_.reserve(4096);
}

void EnvelopeBuilder::beginTransaction(Xid xid, pgoutput::PgTimestamp commit_time) {
  xid_ = xid;
  commit_ms_ = pgoutput::toUnixMillis(commit_time);
}

void EnvelopeBuilder::endTransaction(Lsn commit_lsn) { last_commit_lsn_ = commit_lsn; }

bool EnvelopeBuilder::keyChanged(const Relation& rel, const pgoutput::TupleData& old_tuple,
                                 const pgoutput::TupleData& new_tuple) {
  for (size_t i = 0; i < rel.columns.size() && i < old_tuple.size() && i < new_tuple.size(); ++i) {
    if (!rel.columns[i].part_of_key) continue;
    const auto& o = old_tuple[i];
    const auto& n = new_tuple[i];
    if (o.kind != n.kind || o.value != n.value) return true;
  }
  return false;
}

void EnvelopeBuilder::writeRow(const Relation& rel, const pgoutput::TupleData& tuple,
                               const pgoutput::TupleData* fallback, bool key_only) {
  if (tuple.size() != rel.columns.size()) {
    throw Error(ErrorClass::Fatal,
                fmt::format("a row of {}.{} has {} columns but its Relation message described {}",
                            rel.schema, rel.table, tuple.size(), rel.columns.size()));
  }
  value_ += '{';
  for (size_t i = 0; i < tuple.size(); ++i) {
    const Column& col = rel.columns[i];
    if (i) value_ += ',';
    value_ += col.quoted_name;
    value_ += ':';
    if (key_only && !col.part_of_key) {
      value_ += "null";
      continue;
    }
    const pgoutput::TupleColumn* fb =
        (fallback != nullptr && i < fallback->size()) ? &(*fallback)[i] : nullptr;
    appendValue(value_, col, tuple[i], fb);
  }
  value_ += '}';
}

void EnvelopeBuilder::writeKey(const Relation& rel, const pgoutput::TupleData& tuple) {
  key_.clear();
  if (!rel.has_key) return;
  key_ += '{';
  bool first = true;
  for (size_t i = 0; i < rel.columns.size() && i < tuple.size(); ++i) {
    const Column& col = rel.columns[i];
    if (!col.part_of_key) continue;
    if (!first) key_ += ',';
    first = false;
    key_ += col.quoted_name;
    key_ += ':';
    appendValue(key_, col, tuple[i], nullptr);
  }
  key_ += '}';
}

void EnvelopeBuilder::writeSource(std::string_view schema, std::string_view table, Lsn lsn,
                                  bool in_transaction) {
  value_ += "\"source\":";
  value_ += source_head_;
  appendDecimal(value_, static_cast<uint64_t>(in_transaction ? commit_ms_ : nowMillis()));
  value_ += R"(,"snapshot":"false","db":)";
  JsonWriter::appendQuoted(value_, db_);
  // Debezium's sequence: the last committed LSN and this event's LSN, as strings.
  value_ += R"(,"sequence":"[)";
  if (last_commit_lsn_.valid()) {
    value_ += "\\\"";
    appendDecimal(value_, last_commit_lsn_.value());
    value_ += "\\\"";
  } else {
    value_ += "null";
  }
  value_ += ",\\\"";
  appendDecimal(value_, lsn.value());
  value_ += R"(\"]","schema":)";
  JsonWriter::appendQuoted(value_, schema);
  value_ += ",\"table\":";
  JsonWriter::appendQuoted(value_, table);
  value_ += ",\"txId\":";
  if (in_transaction) appendDecimal(value_, xid_.value);
  else value_ += "null";
  value_ += ",\"lsn\":";
  appendDecimal(value_, lsn.value());
  value_ += '}';
}

void EnvelopeBuilder::writeTail(char op) {
  value_ += ",\"op\":\"";
  value_ += op;
  value_ += "\",\"ts_ms\":";
  appendDecimal(value_, static_cast<uint64_t>(nowMillis()));
  value_ += ",\"transaction\":null}";
}

Event EnvelopeBuilder::change(char op, const Relation& rel, Lsn lsn,
                              const pgoutput::TupleData* old_tuple, pgoutput::OldTupleKind old_kind,
                              const pgoutput::TupleData* new_tuple) {
  value_.clear();
  value_ += "{\"before\":";
  // Before-images: the full old row under REPLICA IDENTITY FULL; only the key columns when
  // the server sent just the key (a delete, or an update that changed the key).
  if (old_tuple != nullptr) {
    writeRow(rel, *old_tuple, nullptr, old_kind == pgoutput::OldTupleKind::Key);
  } else {
    value_ += "null";
  }
  value_ += ",\"after\":";
  const pgoutput::TupleData* fallback =
      old_kind == pgoutput::OldTupleKind::Full ? old_tuple : nullptr;
  if (new_tuple != nullptr) writeRow(rel, *new_tuple, fallback, false);
  else value_ += "null";
  value_ += ',';
  writeSource(rel.schema, rel.table, lsn, true);
  writeTail(op);
  writeKey(rel, new_tuple != nullptr ? *new_tuple : *old_tuple);
  return Event{rel.topic, key_, value_};
}

Event EnvelopeBuilder::truncate(const Relation& rel, Lsn lsn) {
  value_.clear();
  value_ += R"({"before":null,"after":null,)";
  writeSource(rel.schema, rel.table, lsn, true);
  writeTail('t');
  key_.clear();
  return Event{rel.topic, key_, value_};
}

Event EnvelopeBuilder::heartbeat(int64_t now_ms) {
  key_.clear();
  key_ += "{\"serverName\":";
  JsonWriter::appendQuoted(key_, server_name_);
  key_ += '}';
  value_.clear();
  value_ += "{\"ts_ms\":";
  appendDecimal(value_, static_cast<uint64_t>(now_ms));
  value_ += '}';
  return Event{heartbeat_topic_, key_, value_};
}

Event EnvelopeBuilder::message(const pgoutput::LogicalDecodingMessage& m, Lsn lsn,
                               bool in_transaction) {
  value_.clear();
  value_ += '{';
  writeSource("", "", lsn, in_transaction);
  value_ += ",\"op\":\"m\",\"ts_ms\":";
  appendDecimal(value_, static_cast<uint64_t>(nowMillis()));
  value_ += ",\"message\":{\"prefix\":";
  JsonWriter::appendQuoted(value_, m.prefix);
  value_ += ",\"content\":\"";
  appendBase64(value_, m.content);
  value_ += "\"}}";
  key_.clear();
  key_ += "{\"prefix\":";
  JsonWriter::appendQuoted(key_, m.prefix);
  key_ += '}';
  return Event{message_topic_, key_, value_};
}

}  // namespace tidemark::events
