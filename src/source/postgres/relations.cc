#include "source/postgres/relations.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>

#include "base/error.h"
#include "base/json_writer.h"

namespace tidemark::events {

namespace {
constexpr TypeOid kFirstNormalObjectId = 16384;
}

std::optional<std::vector<size_t>> keyPositions(const std::vector<pgoutput::RelationColumn>& columns,
                                                const std::vector<CatalogAttribute>& attributes) {
  std::vector<const CatalogAttribute*> key;
  for (const auto& a : attributes) {
    if (a.in_key) key.push_back(&a);
  }
  if (key.empty()) return std::vector<size_t>{};

  // By name: a column keeps its name unless renamed, whatever was added or dropped around it
  // (and a publication's column list may leave columns out).
  std::vector<size_t> positions;
  for (const CatalogAttribute* k : key) {
    auto it = std::find_if(columns.begin(), columns.end(),
                           [&](const pgoutput::RelationColumn& c) { return c.name == k->name; });
    if (it == columns.end()) break;
    positions.push_back(static_cast<size_t>(it - columns.begin()));
  }
  if (positions.size() == key.size()) {
    std::sort(positions.begin(), positions.end());
    return positions;
  }

  // By position: a key column renamed since. The message lists the live columns in attnum
  // order, so they line up with today's live attributes unless columns were dropped since;
  // columns added since come after all of them. Types must agree all along.
  std::vector<const CatalogAttribute*> live;
  for (const auto& a : attributes) {
    if (!a.dropped && !a.generated) live.push_back(&a);
  }
  if (columns.size() > live.size()) return std::nullopt;
  positions.clear();
  for (size_t i = 0; i < columns.size(); ++i) {
    if (columns[i].type != live[i]->type) return std::nullopt;
    if (live[i]->in_key) positions.push_back(i);
  }
  if (positions.size() != key.size()) return std::nullopt;
  return positions;
}

RelationCache::RelationCache(Catalog catalog, Classifier classify)
    : catalog_(std::move(catalog)), classify_(std::move(classify)) {}

void RelationCache::noteType(const pgoutput::TypeMessage& m) {
  type_names_[m.type] = TypeName{std::string(m.nspname), std::string(m.typname)};
}

std::string RelationCache::typeName(TypeOid oid) const {
  auto it = type_names_.find(oid);
  if (it == type_names_.end()) return fmt::format("type {}", oid);
  return fmt::format("type {}.{} ({})", it->second.nspname.empty() ? "pg_catalog" : it->second.nspname,
                     it->second.typname, oid);
}

const Relation& RelationCache::update(const pgoutput::RelationMessage& m) {
  Relation rel;
  rel.relid = m.relid;
  rel.stream_schema = std::string(m.nspname);
  rel.stream_table = std::string(m.relname);
  RelationTarget target = classify_(m.relid, m.nspname, m.relname);
  rel.captured = target.role == RelationRole::Captured;
  rel.heartbeat = target.role == RelationRole::Heartbeat;
  rel.schema = target.schema.empty() ? rel.stream_schema : std::move(target.schema);
  rel.table = target.table.empty() ? rel.stream_table : std::move(target.table);
  rel.topic = std::move(target.topic);
  rel.note = std::move(target.note);
  rel.replica_identity = m.replica_identity;
  // Only relations whose rows are rendered need types and keys: resolving the rest would make
  // an unrelated table of a shared publication able to stop the pipeline.
  const bool rendered = rel.captured || rel.heartbeat;

  // The key from the catalog: under FULL pgoutput flags every column; under DEFAULT a table
  // without a primary key has no identity in the stream, but may have a unique index.
  const bool stream_has_key = std::any_of(m.columns.begin(), m.columns.end(),
                                          [](const pgoutput::RelationColumn& c) { return c.part_of_key; });
  const bool key_from_catalog =
      m.replica_identity == 'f' || (m.replica_identity == 'd' && !stream_has_key);
  std::vector<size_t> catalog_key;
  // A captured table's declared types and NOT NULLs, for its schema record.
  std::vector<CatalogAttribute> attributes;
  if (rel.captured || (rendered && key_from_catalog)) attributes = catalog_.attributes(m.relid);
  if (rendered && key_from_catalog) {
    auto positions = keyPositions(m.columns, attributes);
    if (!positions) {
      throw Error(ErrorClass::Fatal,
                  fmt::format("cannot tell which columns of {}.{} formed its key (primary key or "
                              "unique index) when this change was made: the stream does not "
                              "say, and the table's columns have changed too much since (a key "
                              "column renamed, and columns dropped or retyped)",
                              rel.schema, rel.table),
                  "give the table REPLICA IDENTITY DEFAULT or USING INDEX, which put the key in "
                  "the stream; a change already in the stream stays undecidable");
    }
    catalog_key = std::move(*positions);
  }
  rel.columns.reserve(m.columns.size());
  for (size_t i = 0; i < m.columns.size(); ++i) {
    const auto& c = m.columns[i];
    Column col;
    col.name = std::string(c.name);
    if (rendered && JsonWriter::firstInvalidUtf8(col.name) != std::string_view::npos) {
      throw Error(ErrorClass::Fatal,
                  fmt::format("a column name of {}.{} is not valid UTF-8", rel.schema, rel.table),
                  "the database's encoding is probably SQL_ASCII; rename the column");
    }
    JsonWriter::appendQuoted(col.quoted_name, col.name);
    col.type_oid = c.type;
    col.typmod = c.typmod;
    for (const CatalogAttribute& a : attributes) {
      // The catalog as it is now: only a column of the same name and type is this one.
      if (!a.dropped && a.name == col.name && a.type == c.type) {
        col.source_type = a.type_name;
        col.optional = !a.not_null;
      }
    }
    if (rendered) {
      try {
        col.type = withTypmod(typeInfo(c.type), c.typmod);
      } catch (const Error& e) {
        throw Error(e.errorClass(),
                    fmt::format("column \"{}\" of {}.{}: {}", col.name, rel.schema, rel.table, e.what()),
                    e.hint());
      }
    }
    if (key_from_catalog) {
      col.part_of_key = std::find(catalog_key.begin(), catalog_key.end(), i) != catalog_key.end();
    } else {
      col.part_of_key = m.replica_identity != 'n' && c.part_of_key;
    }
    rel.has_key = rel.has_key || col.part_of_key;
    rel.columns.push_back(std::move(col));
  }
  if (rendered) rel.model = tableModel(rel);
  auto [it, inserted] = relations_.insert_or_assign(m.relid, std::move(rel));
  return it->second;
}

core::Table tableModel(const Relation& rel) {
  core::Table t;
  t.schema = rel.schema;
  t.name = rel.table;
  t.topic = rel.topic;
  for (size_t i = 0; i < rel.columns.size(); ++i) {
    t.quoted_columns.push_back(rel.columns[i].quoted_name);
    if (rel.columns[i].part_of_key) t.key.push_back(i);
  }
  if (rel.captured) t.schema_record = std::make_shared<const TableSchema>(tableSchema(rel));
  return t;
}

TableSchema tableSchema(const Relation& rel) {
  // The content first, without the version; the version is its hash.
  nlohmann::ordered_json columns = nlohmann::ordered_json::array();
  nlohmann::ordered_json key = nlohmann::ordered_json::array();
  for (const Column& c : rel.columns) {
    nlohmann::ordered_json col{{"name", c.name},
                               {"type", c.source_type.empty() ? nlohmann::ordered_json(nullptr)
                                                              : nlohmann::ordered_json(c.source_type)},
                               {"type_oid", c.type_oid},
                               {"typmod", c.typmod},
                               {"optional", c.optional},
                               {"key", c.part_of_key}};
    // How the column's values are rendered in events, for destinations that write them back
    // into typed columns.
    if (c.type != nullptr) {
      col["value"] = valueForm(*c.type);
      if (c.type->kind == ValueKind::Array && c.type->element != nullptr) {
        col["element"] = valueForm(*c.type->element);
      }
    }
    columns.push_back(std::move(col));
    if (c.part_of_key) key.push_back(c.name);
  }
  const std::string content =
      nlohmann::ordered_json{{"columns", columns}, {"key", key}, {"text_form", "postgresql"}}.dump();
  uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a 64
  for (unsigned char ch : rel.schema + '.' + rel.table + '\n' + content) {
    h = (h ^ ch) * 0x100000001b3ULL;
  }
  TableSchema t;
  t.topic = rel.topic;
  t.version = fmt::format("{:016x}", h);
  // Events carry each value as the server printed it too (header tidemark.text).
  t.text_form = "postgresql";
  nlohmann::ordered_json doc{{"schema", rel.schema},   {"table", rel.table}, {"topic", rel.topic},
                             {"version", t.version},   {"columns", columns}, {"key", key},
                             {"text_form", t.text_form}};
  t.json = doc.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  return t;
}

const Relation* RelationCache::find(RelationId relid) const {
  auto it = relations_.find(relid);
  return it == relations_.end() ? nullptr : &it->second;
}

std::shared_ptr<const TypeInfo> RelationCache::typeInfo(TypeOid oid, int depth) {
  if (auto b = builtinType(oid)) return b;
  static const auto text = std::make_shared<const TypeInfo>(TypeInfo{ValueKind::Text, nullptr, ','});
  if (oid < kFirstNormalObjectId) return text;  // a built-in the table does not know: text form
  // A type's rendering cannot change while its OID names it: a domain keeps its base type, an
  // array its element. So a resolved type stays cached, even once the catalog has dropped it.
  if (auto it = types_.find(oid); it != types_.end()) return it->second;
  if (depth > 8) {
    throw Error(ErrorClass::Fatal, fmt::format("{} nests domains or arrays too deeply", typeName(oid)));
  }
  std::optional<CatalogType> ct = catalog_.type(oid);
  if (!ct) {
    // Dropped since. pgoutput's Type message names a domain's base type as it was when the
    // change was written; a built-in one says how the value renders.
    if (auto it = type_names_.find(oid); it != type_names_.end() && it->second.nspname.empty()) {
      if (auto base = builtinTypeNamed(it->second.typname)) {
        types_.emplace(oid, base);
        return base;
      }
    }
    throw Error(ErrorClass::Fatal,
                fmt::format("its {} no longer exists in the catalog (dropped since the change was "
                            "made), so tidemark cannot tell how to render its values",
                            typeName(oid)),
                "the type (an enum, a range, an extension's type, or a domain over one) was dropped "
                "after the column's type changed, so the changes written before cannot be rendered "
                "by their own type; recreating it does not help (a new type gets a new OID)");
  }
  std::shared_ptr<const TypeInfo> info;
  if (ct->typtype == 'd' && ct->base_type != 0) {
    info = typeInfo(ct->base_type, depth + 1);  // a domain renders as its base type
  } else if (ct->is_array && ct->element != 0) {
    info = std::make_shared<const TypeInfo>(
        TypeInfo{ValueKind::Array, typeInfo(ct->element, depth + 1), ct->delimiter});
  } else if (ct->typtype == 'b' && ct->name == "hstore") {
    info = hstoreType();  // the extension's type, as Debezium's hstore.handling.mode=json
  } else {
    info = text;  // enums render as their label; other types as their text form
  }
  types_.emplace(oid, info);
  return info;
}

}  // namespace tidemark::events
