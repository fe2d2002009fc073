#include "source/postgres/change_builder.h"

#include <fmt/format.h>

#include "base/clock.h"
#include "base/error.h"
#include "base/json_writer.h"
#include "source/postgres/values.h"

namespace tidemark::events {

namespace {

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

const char* opName(core::Op op) {
  switch (op) {
    case core::Op::Create: return "insert";
    case core::Op::Update: return "update";
    case core::Op::Delete: return "delete";
    case core::Op::Read: return "read";
    default: return "change";
  }
}

}  // namespace

ChangeBuilder::ChangeBuilder(std::string_view server_name, std::string_view db, Utf8Policy utf8)
    : utf8_(utf8), source_(server_name, db) {
  block_.reserve(512);
  before_.text.reserve(1024);
  after_.text.reserve(4096);
}

void ChangeBuilder::beginTransaction(Xid xid, pgoutput::PgTimestamp commit_time) {
  source_.beginTransaction(xid, commit_time + pgoutput::kPgEpochOffsetMicros);
}

void ChangeBuilder::setOrigin(std::string_view name, Lsn origin_lsn) { source_.setOrigin(name, origin_lsn); }

void ChangeBuilder::endTransaction(Lsn commit_end_lsn) { source_.endTransaction(commit_end_lsn); }

bool ChangeBuilder::keyChanged(const Relation& rel, const pgoutput::TupleData& old_tuple,
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

core::Value::State ChangeBuilder::renderValue(std::string& out, const Column& col,
                                              const pgoutput::TupleColumn& column,
                                              const pgoutput::TupleColumn* fallback) const {
  const pgoutput::TupleColumn& c = effective(column, fallback);
  JsonWriter w(out, utf8_);
  try {
    switch (c.kind) {
      case pgoutput::ColumnKind::Null:
        return core::Value::State::Null;
      case pgoutput::ColumnKind::Text:
        events::renderValue(*col.type, c.value, w);
        return core::Value::State::Present;
      case pgoutput::ColumnKind::UnchangedToast:
        renderUnavailable(*col.type, w);
        return core::Value::State::Unchanged;
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
  return core::Value::State::Null;
}

void ChangeBuilder::renderRow(RowBuffer& out, const Relation& rel, const pgoutput::TupleData& tuple,
                              const pgoutput::TupleData* fallback, bool key_only) const {
  if (tuple.size() != rel.columns.size()) {
    throw Error(ErrorClass::Fatal,
                fmt::format("a row of {}.{} has {} columns but its Relation message described {}",
                            rel.schema, rel.table, tuple.size(), rel.columns.size()));
  }
  out.text.clear();
  out.spans.clear();
  out.row.assign(tuple.size(), core::Value{});
  for (size_t i = 0; i < tuple.size(); ++i) {
    const Column& col = rel.columns[i];
    const size_t start = out.text.size();
    if (!key_only || col.part_of_key) {
      out.row[i].state = renderValue(out.text, col, tuple[i], columnOf(fallback, i));
      // The server's own text, for destinations that are PostgreSQL too (the message buffer
      // outlives the change).
      if (out.row[i].state == core::Value::State::Present) out.row[i].text = effective(tuple[i], columnOf(fallback, i)).value;
    }
    out.spans.emplace_back(static_cast<uint32_t>(start), static_cast<uint32_t>(out.text.size() - start));
  }
  // The text is complete (it no longer moves): point the values into it.
  for (size_t i = 0; i < out.row.size(); ++i) {
    out.row[i].json = std::string_view(out.text).substr(out.spans[i].first, out.spans[i].second);
  }
}

void ChangeBuilder::writeSource(std::string_view schema, std::string_view table, Lsn lsn, bool in_transaction) {
  block_.clear();
  source_.append(block_, schema, table, lsn, in_transaction, source_.eventMicros(in_transaction, unixMicrosNow()));
  change_.source_block = block_;
}

const core::Change& ChangeBuilder::change(core::Op op, const Relation& rel, Lsn lsn,
                                          const pgoutput::TupleData* before, pgoutput::OldTupleKind before_kind,
                                          const pgoutput::TupleData* after, const pgoutput::TupleData* old) {
  if (old == nullptr) old = before;
  change_ = core::Change{};
  change_.op = op;
  change_.table = &rel.model;
  try {
    // Before-images: the full old row under REPLICA IDENTITY FULL; only the key columns when
    // the server sent just the key (a delete, or an update that changed the key).
    if (before != nullptr) {
      renderRow(before_, rel, *before, nullptr, before_kind == pgoutput::OldTupleKind::Key);
      change_.before = &before_.row;
    }
    if (after != nullptr) {
      renderRow(after_, rel, *after, old, false);
      change_.after = &after_.row;
    }
  } catch (const Error& e) {
    // Name the row: the table and its key, rendered for people (invalid bytes replaced).
    const pgoutput::TupleData& key_row = after != nullptr ? *after : *before;
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
                fmt::format("cannot write the {} of a row of {}.{} (key {}) at {}: {}", opName(op), rel.schema,
                            rel.table, key, lsn.str(), e.what()),
                e.hint());
  }
  writeSource(rel.schema, rel.table, lsn, true);
  return change_;
}

const core::Change& ChangeBuilder::read(const Relation& rel, const pgoutput::TupleData& row,
                                        const PostgresSourceBlock::SnapshotRead& snapshot) {
  change(core::Op::Read, rel, snapshot.lsn, nullptr, pgoutput::OldTupleKind::None, &row, nullptr);
  block_.clear();
  source_.appendSnapshot(block_, rel.schema, rel.table, snapshot);
  change_.source_block = block_;
  return change_;
}

const core::Change& ChangeBuilder::truncate(const Relation& rel, Lsn lsn) {
  change_ = core::Change{};
  change_.op = core::Op::Truncate;
  change_.table = &rel.model;
  writeSource(rel.schema, rel.table, lsn, true);
  return change_;
}

const core::Change& ChangeBuilder::message(const pgoutput::LogicalDecodingMessage& m, Lsn lsn,
                                           bool in_transaction) {
  // Outside a transaction the message is its own commit (Debezium's last commit LSN).
  if (!in_transaction) source_.endTransaction(lsn);
  change_ = core::Change{};
  change_.op = core::Op::Message;
  change_.message_prefix = m.prefix;
  change_.message_content = m.content;
  writeSource("", "", lsn, in_transaction);
  return change_;
}

}  // namespace tidemark::events
