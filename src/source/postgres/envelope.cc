#include "source/postgres/envelope.h"

#include <charconv>
#include <chrono>

#include <fmt/format.h>

#include "base/base64.h"
#include "base/error.h"
#include "base/json_writer.h"
#include "config/config.h"

namespace tidemark::events {

namespace {

int64_t nowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The value that stands for `c` in an event: an unchanged TOASTed value is the old tuple's,
// when the server sent one that carries it.
const pgoutput::TupleColumn& effective(const pgoutput::TupleColumn& c, const pgoutput::TupleColumn* fallback) {
  if (c.kind == pgoutput::ColumnKind::UnchangedToast && fallback != nullptr &&
      fallback->kind == pgoutput::ColumnKind::Text) {
    return *fallback;
  }
  return c;
}

const pgoutput::TupleColumn* columnOf(const pgoutput::TupleData* tuple, size_t i) {
  return (tuple != nullptr && i < tuple->size()) ? &(*tuple)[i] : nullptr;
}

const char* opName(char op) {
  switch (op) {
    case 'c': return "insert";
    case 'u': return "update";
    case 'd': return "delete";
    default: return "change";
  }
}

}  // namespace

EnvelopeBuilder::EnvelopeBuilder(std::string server_name, std::string db, Utf8Policy utf8)
    : server_name_(std::move(server_name)), utf8_(utf8), source_(server_name_, db) {
  message_topic_ = config::sanitizeTopic(server_name_ + ".message");
  heartbeat_topic_ = config::sanitizeTopic("__debezium-heartbeat." + server_name_);
  key_.reserve(256);
  value_.reserve(4096);
}

void EnvelopeBuilder::beginTransaction(Xid xid, pgoutput::PgTimestamp commit_time) {
  source_.beginTransaction(xid, commit_time + pgoutput::kPgEpochOffsetMicros);
}

void EnvelopeBuilder::setOrigin(std::string_view name, Lsn origin_lsn) { source_.setOrigin(name, origin_lsn); }

void EnvelopeBuilder::endTransaction(Lsn commit_end_lsn) { source_.endTransaction(commit_end_lsn); }

bool EnvelopeBuilder::keyChanged(const Relation& rel, const pgoutput::TupleData& old_tuple,
                                 const pgoutput::TupleData& new_tuple) {
  for (size_t i = 0; i < rel.columns.size() && i < old_tuple.size() && i < new_tuple.size(); ++i) {
    if (!rel.columns[i].part_of_key) continue;
    const auto& o = old_tuple[i];
    const auto& n = new_tuple[i];
    // Not resent because it did not change: the server sends a TOASTed key value it left alone
    // in the old key only.
    if (n.kind == pgoutput::ColumnKind::UnchangedToast) continue;
    if (o.kind != n.kind || o.value != n.value) return true;
  }
  return false;
}

void EnvelopeBuilder::appendValue(std::string& out, const Column& col, const pgoutput::TupleColumn& column,
                                  const pgoutput::TupleColumn* fallback) const {
  const pgoutput::TupleColumn& c = effective(column, fallback);
  JsonWriter w(out, utf8_);
  try {
    switch (c.kind) {
      case pgoutput::ColumnKind::Null:
        out += "null";
        return;
      case pgoutput::ColumnKind::Text:
        renderValue(*col.type, c.value, w);
        return;
      case pgoutput::ColumnKind::UnchangedToast:
        renderUnavailable(*col.type, w);
        return;
      case pgoutput::ColumnKind::Binary:
        throw Error(ErrorClass::Fatal, "it arrived in binary format, which tidemark does not request");
    }
  } catch (const InvalidUtf8& e) {
    throw Error(ErrorClass::Poison, fmt::format("column \"{}\": {}", col.name, e.what()),
                "the database's encoding is probably SQL_ASCII, which stores bytes unchecked; "
                "set source.invalid_utf8: escape to write such bytes as \\udcXX escapes (the "
                "change stays in the stream until it is delivered; correcting the row at the "
                "source fixes later changes only)");
  } catch (const Error& e) {
    throw Error(e.errorClass(), fmt::format("column \"{}\": {}", col.name, e.what()), e.hint());
  }
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
    appendValue(value_, col, tuple[i], columnOf(fallback, i));
  }
  value_ += '}';
}

void EnvelopeBuilder::writeKey(const Relation& rel, const pgoutput::TupleData& tuple,
                               const pgoutput::TupleData* fallback) {
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
    appendValue(key_, col, tuple[i], columnOf(fallback, i));
  }
  key_ += '}';
}

void EnvelopeBuilder::writeSource(std::string_view schema, std::string_view table, Lsn lsn,
                                  bool in_transaction) {
  value_ += "\"source\":";
  source_.append(value_, schema, table, lsn, in_transaction, source_.eventMicros(in_transaction, nowMicros()));
}

void EnvelopeBuilder::writeTail(char op) {
  value_ += ",\"transaction\":null,\"op\":\"";
  value_ += op;
  value_ += "\",\"ts_ms\":";
  const int64_t now = nowMicros();
  appendInteger(value_, now / 1000);
  appendTimes(value_, now);
}

Event EnvelopeBuilder::change(char op, const Relation& rel, Lsn lsn, const pgoutput::TupleData* before,
                              pgoutput::OldTupleKind before_kind, const pgoutput::TupleData* after,
                              const pgoutput::TupleData* old) {
  if (old == nullptr) old = before;
  const pgoutput::TupleData& key_row = after != nullptr ? *after : *before;
  try {
    value_.clear();
    value_ += "{\"before\":";
    // Before-images: the full old row under REPLICA IDENTITY FULL; only the key columns when
    // the server sent just the key (a delete, or an update that changed the key).
    if (before != nullptr) {
      writeRow(rel, *before, nullptr, before_kind == pgoutput::OldTupleKind::Key);
    } else {
      value_ += "null";
    }
    value_ += ",\"after\":";
    if (after != nullptr) writeRow(rel, *after, old, false);
    else value_ += "null";
    value_ += ',';
    writeSource(rel.schema, rel.table, lsn, true);
    writeTail(op);
    value_ += '}';
    writeKey(rel, key_row, old);
  } catch (const Error& e) {
    // Name the row: the table and its key, rendered for people (invalid bytes replaced).
    std::string key = "none";
    if (rel.has_key) {
      key.clear();
      for (size_t i = 0; i < rel.columns.size() && i < key_row.size(); ++i) {
        if (!rel.columns[i].part_of_key) continue;
        const pgoutput::TupleColumn& c = effective(key_row[i], columnOf(old, i));
        key += key.empty() ? "" : ", ";
        key += rel.columns[i].name + "=";
        key += c.kind == pgoutput::ColumnKind::Text ? std::string(c.value).substr(0, 64) : "?";
      }
      std::string quoted;
      JsonWriter::appendQuoted(quoted, key);  // replaces bytes that are not UTF-8
      key = quoted.substr(1, quoted.size() - 2);
    }
    throw Error(e.errorClass(),
                fmt::format("cannot write the {} of a row of {}.{} (key {}) at {}: {}", opName(op),
                            rel.schema, rel.table, key, lsn.str(), e.what()),
                e.hint());
  }
  return Event{rel.topic, key_, value_};
}

Event EnvelopeBuilder::truncate(const Relation& rel, Lsn lsn) {
  value_.clear();
  value_ += R"({"before":null,"after":null,)";
  writeSource(rel.schema, rel.table, lsn, true);
  writeTail('t');
  value_ += '}';
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
  appendInteger(value_, now_ms);
  value_ += '}';
  return Event{heartbeat_topic_, key_, value_};
}

Event EnvelopeBuilder::message(const pgoutput::LogicalDecodingMessage& m, Lsn lsn,
                               bool in_transaction) {
  // Outside a transaction the message is its own commit (Debezium's last commit LSN).
  if (!in_transaction) source_.endTransaction(lsn);
  value_.clear();
  value_ += '{';
  writeSource("", "", lsn, in_transaction);
  // Debezium writes only ts_ms here.
  value_ += ",\"transaction\":null,\"op\":\"m\",\"ts_ms\":";
  appendInteger(value_, nowMicros() / 1000);
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
