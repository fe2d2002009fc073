// The change model: what every source produces and every encoder reads, whatever the database.
//
// A source turns its stream (PostgreSQL's pgoutput, later MySQL's binlog) into Changes: an
// operation on a Table, with the row before and after as Values. A value arrives already in
// the form events carry it (Debezium's JSON for its type): how a database's types map to
// Debezium's is the connector's knowledge, as in Debezium, where each connector converts its
// values and the envelope around them is shared. So is the `source` block, Debezium's
// per-connector part of every event. Transactions are not in a Change: a source marks their
// ends on the ChangeWriter (core/change_writer.h), with its position after each.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace tidemark::core {

/// A captured table's columns, source types and key, as a record of the change log carries
/// them ahead of the table's first event: what typed destinations create and write tables
/// from. `version` names this content (a hash): a table whose columns change gets a new one,
/// and the same columns always the same one.
struct TableSchema {
  std::string topic;
  std::string version;
  std::string json;  // {"schema","table","topic","version","columns":[...],"key":[...]}
  /// The database whose text forms the table's values also come in (Value::text), e.g.
  /// "postgresql"; empty when the source has none. Destinations of the same kind write those
  /// forms as they are, exactly as the source printed them.
  std::string text_form;
};

/// A table as its changes name it.
struct Table {
  std::string schema;  // the namespace the table is in (PostgreSQL's schema)
  std::string name;
  std::string topic;   // where its events go
  /// The columns in row order, each as its JSON key with quotes ("name"), ready to append.
  std::vector<std::string> quoted_columns;
  /// Positions of the key columns, in row order; empty when the table has no key.
  std::vector<size_t> key;
  std::shared_ptr<const TableSchema> schema_record;  // null for a table that is not captured
};

/// One column's value in a row.
struct Value {
  enum class State : uint8_t {
    Null,       // SQL NULL, or a column a key-only row does not carry
    Present,    // `json` is the value
    Unchanged,  // the source did not resend it (PostgreSQL: an unchanged TOASTed value);
                // `json` is Debezium's placeholder for the column's type
  };
  State state = State::Null;
  std::string_view json;
  /// A Present value as the source database prints it (PostgreSQL: its type's output
  /// function), when the table's schema has a text_form; what its own kind of destination
  /// reads back without going through Debezium's rendering.
  std::string_view text;
};

/// A row's values, one per column of its Table, in the same order.
using Row = std::vector<Value>;

enum class Op : char {
  Create = 'c',
  Update = 'u',
  Delete = 'd',
  Truncate = 't',
  Read = 'r',     // a row as a snapshot read it (after only)
  Message = 'm',  // a message the application wrote into the stream (pg_logical_emit_message)
};

/// One change. Views and pointers are valid until the source's next change.
struct Change {
  Op op = Op::Create;
  const Table* table = nullptr;  // null for a Message
  /// The row before the change (Update, Delete), or null when the source does not have it.
  /// When the source sent only the old key, its other columns are Null.
  const Row* before = nullptr;
  const Row* after = nullptr;  // Create, Update
  /// The connector's `source` block, JSON (Debezium's per-connector part of the event).
  std::string_view source_block;
  /// Message only: its prefix and content bytes.
  std::string_view message_prefix;
  std::string_view message_content;
};

}  // namespace tidemark::core
