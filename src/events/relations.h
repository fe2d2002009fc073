// What tidemark knows about each captured relation, built from pgoutput Relation messages:
// owned names, the topic, and for every column how its values render. Column types that are
// not built in (enums, domains, arrays of those, extension types) are resolved once through
// the Catalog (a query on the source), then cached by OID. The key columns are those of the
// replica identity, except under REPLICA IDENTITY FULL (the primary key, if any) and NOTHING
// (none), as Debezium keys its events by the primary key.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/lsn.h"
#include "events/values.h"
#include "pgoutput/messages.h"

namespace tidemark::events {

struct Column {
  std::string name;
  std::string quoted_name;  // the JSON key with quotes, "name", ready to append
  TypeOid type_oid = 0;
  std::shared_ptr<const TypeInfo> type;
  bool part_of_key = false;
};

struct Relation {
  RelationId relid;
  std::string schema;
  std::string table;
  std::string topic;  // <prefix>.<schema>.<table>, with characters outside [A-Za-z0-9._-] as '_'
  char replica_identity = 'd';
  std::vector<Column> columns;
  bool has_key = false;
  /// Listed in source.tables. A publication may cover more tables (FOR ALL TABLES, or a
  /// table since removed from the configuration); their changes are not delivered.
  bool captured = false;
  /// The heartbeat table: its rows are measured (and delivered only when asked).
  bool heartbeat = false;
};

enum class RelationRole { Captured, Heartbeat, Other };

/// Facts about a non-built-in type, as the catalog tells them.
struct CatalogType {
  char typtype = 'b';       // 'b' base, 'e' enum, 'd' domain, 'c' composite, 'r' range, ...
  TypeOid element = 0;      // typelem, for arrays (typcategory 'A')
  bool is_array = false;
  TypeOid base_type = 0;    // typbasetype, for domains
  char delimiter = ',';
};

/// Lookups in the source's catalog, for what pgoutput does not say. Both throw on failure.
struct Catalog {
  std::function<CatalogType(TypeOid)> type;
  /// Primary key column names of a relation, empty when it has none. Needed under REPLICA
  /// IDENTITY FULL, where pgoutput flags every column as part of the identity.
  std::function<std::vector<std::string>(RelationId)> primary_key;
};

class RelationCache {
 public:
  RelationCache(std::string topic_prefix, Catalog catalog,
                std::function<RelationRole(std::string_view schema, std::string_view table)> classify);

  /// Adds or replaces a relation from its Relation message.
  const Relation& update(const pgoutput::RelationMessage& message);
  /// Forgets a cached type (a Type message says it may have changed).
  void invalidateType(TypeOid oid) { types_.erase(oid); }

  /// The relation, or nullptr if no Relation message has described it.
  const Relation* find(RelationId relid) const;

  /// How values of `oid` render, resolving through the catalog when not built in.
  std::shared_ptr<const TypeInfo> typeInfo(TypeOid oid, int depth = 0);

  const std::string& topicPrefix() const { return prefix_; }

 private:
  std::string prefix_;
  Catalog catalog_;
  std::function<RelationRole(std::string_view, std::string_view)> classify_;
  std::unordered_map<RelationId, Relation> relations_;
  std::unordered_map<TypeOid, std::shared_ptr<const TypeInfo>> types_;
};

/// A topic name made safe for file names and Kafka: characters outside [A-Za-z0-9._-]
/// become '_'.
std::string sanitizeTopic(std::string_view topic);

}  // namespace tidemark::events
