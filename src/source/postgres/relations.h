// What tidemark knows about each relation the stream describes, built from pgoutput Relation
// messages: the names and topic its events carry, and for every column how its values render.
// Which relations are captured, and under which name, the pipeline decides (a Classifier): by
// OID first, so that a renamed table stays captured, then by name. Column types that are not
// built in (enums, domains, arrays of those, extension types) are resolved once through the
// Catalog (a query on the source), then cached by OID; a type the catalog no longer knows is an
// error, never a guess. The key columns are those of the replica identity, except under
// REPLICA IDENTITY FULL and for a table without a primary key under DEFAULT, whose key comes
// from the catalog (the primary key, else the first unique index, as Debezium's), and NOTHING
// (none).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/lsn.h"
#include "core/change.h"
#include "source/postgres/pgoutput_messages.h"
#include "source/postgres/values.h"

namespace tidemark::events {

struct Column {
  std::string name;
  std::string quoted_name;  // the JSON key with quotes, "name", ready to append
  TypeOid type_oid = 0;
  int32_t typmod = -1;
  /// The type as the source declares it (format_type: "numeric(12,2)", "character
  /// varying(64)"); empty when the catalog no longer knows the column.
  std::string source_type;
  bool optional = true;  // may be NULL (no NOT NULL constraint known)
  std::shared_ptr<const TypeInfo> type;  // null for relations that are not delivered
  bool part_of_key = false;
};

enum class RelationRole {
  Captured,   // a table of source.tables (or a partition of one, or an incarnation by name)
  Heartbeat,  // the heartbeat table: its rows are measured (and delivered only when asked)
  Other,      // published, but not captured: its changes are skipped and counted
};

/// Where a relation's changes go, as the pipeline decides from its OID and the names its
/// Relation message carries.
struct RelationTarget {
  RelationRole role = RelationRole::Other;
  /// The names events carry and their topic: the configured table's for a captured relation,
  /// whatever the relation is called in the stream.
  std::string schema;
  std::string table;
  std::string topic;
  /// For a captured relation matched otherwise than by its own OID and name (renamed, a
  /// partition, another incarnation), what it is; logged with its first change. For Other,
  /// why its changes are skipped.
  std::string note;
};

using Classifier =
    std::function<RelationTarget(RelationId relid, std::string_view schema, std::string_view table)>;

/// A captured table's schema record (core::TableSchema): tableSchema().
using core::TableSchema;

struct Relation {
  RelationId relid;
  std::string stream_schema;  // the names in the Relation message
  std::string stream_table;
  std::string schema;         // the names events carry (RelationTarget)
  std::string table;
  std::string topic;
  std::string note;
  char replica_identity = 'd';
  std::vector<Column> columns;
  bool has_key = false;
  bool captured = false;
  bool heartbeat = false;
  /// The table as changes name it (captured and heartbeat relations); its schema record is
  /// set for captured relations only.
  core::Table model;
};

/// Facts about a non-built-in type, as the catalog tells them.
struct CatalogType {
  char typtype = 'b';       // 'b' base, 'e' enum, 'd' domain, 'c' composite, 'r' range, ...
  TypeOid element = 0;      // typelem, for arrays (typcategory 'A')
  bool is_array = false;
  TypeOid base_type = 0;    // typbasetype, for domains
  char delimiter = ',';
  std::string name;         // typname: "hstore" renders as a JSON object
};

/// One row of pg_attribute for a relation (attnum > 0).
struct CatalogAttribute {
  int attnum = 0;
  std::string name;
  TypeOid type = 0;
  bool dropped = false;
  bool generated = false;  // generated columns are not in pgoutput's stream (PostgreSQL 15)
  /// Part of the key events carry: the primary key, or for a table without one its first
  /// unique index by name without expression columns (the key Debezium uses).
  bool in_key = false;
  std::string type_name;  // format_type(atttypid, atttypmod)
  bool not_null = false;
};

/// Lookups in the source's catalog, for what pgoutput does not say. Both throw on failure.
struct Catalog {
  /// The type, or nothing when no type has this OID (it was dropped since).
  std::function<std::optional<CatalogType>(TypeOid)> type;
  /// The relation's attributes in attnum order. Needed under REPLICA IDENTITY FULL, where
  /// pgoutput flags every column as part of the identity and the key is not in the stream,
  /// and for a table without a primary key (its unique index is the key).
  std::function<std::vector<CatalogAttribute>(RelationId)> attributes;
};

/// Which columns of a Relation message form the relation's key (CatalogAttribute::in_key),
/// from its attributes as the catalog shows them now: by name when every key column's name is
/// among the message's columns, else by position when the message's columns line up with the
/// live attributes in types (a key column renamed since the change). Empty without a key;
/// nothing when neither way matches (the columns changed too much since the change was made).
std::optional<std::vector<size_t>> keyPositions(
    const std::vector<pgoutput::RelationColumn>& columns, const std::vector<CatalogAttribute>& attributes);

/// The schema record of a captured relation.
TableSchema tableSchema(const Relation& rel);

/// The table as the changes of a captured or heartbeat relation name it (with its schema
/// record when captured).
core::Table tableModel(const Relation& rel);

class RelationCache {
 public:
  RelationCache(Catalog catalog, Classifier classify);

  /// Adds or replaces a relation from its Relation message. Throws Error naming the relation
  /// and column when a captured column's type or the key cannot be resolved.
  const Relation& update(const pgoutput::RelationMessage& message);
  /// Records what a Type message says of a type: its name, or for a domain its base type's,
  /// as they were when the change was written.
  void noteType(const pgoutput::TypeMessage& message);

  /// The relation, or nullptr if no Relation message has described it.
  const Relation* find(RelationId relid) const;

  /// How values of `oid` render, resolving through the catalog when not built in. Throws
  /// Error when the catalog no longer knows the type.
  std::shared_ptr<const TypeInfo> typeInfo(TypeOid oid, int depth = 0);

 private:
  std::string typeName(TypeOid oid) const;

  Catalog catalog_;
  Classifier classify_;
  std::unordered_map<RelationId, Relation> relations_;
  std::unordered_map<TypeOid, std::shared_ptr<const TypeInfo>> types_;
  struct TypeName {
    std::string nspname;  // empty for pg_catalog
    std::string typname;
  };
  std::unordered_map<TypeOid, TypeName> type_names_;  // from Type messages
};

}  // namespace tidemark::events
