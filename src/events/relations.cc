#include "events/relations.h"

#include <fmt/format.h>

#include <algorithm>

#include "common/error.h"
#include "common/json_writer.h"

namespace tidemark::events {

namespace {
constexpr TypeOid kFirstNormalObjectId = 16384;
}

std::string sanitizeTopic(std::string_view topic) {
  std::string out(topic);
  for (char& c : out) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) c = '_';
  }
  return out;
}

RelationCache::RelationCache(std::string topic_prefix, Catalog catalog,
                             std::function<RelationRole(std::string_view, std::string_view)> classify)
    : prefix_(std::move(topic_prefix)), catalog_(std::move(catalog)), classify_(std::move(classify)) {}

const Relation& RelationCache::update(const pgoutput::RelationMessage& m) {
  Relation rel;
  rel.relid = m.relid;
  rel.schema = std::string(m.nspname);
  rel.table = std::string(m.relname);
  rel.topic = sanitizeTopic(fmt::format("{}.{}.{}", prefix_, rel.schema, rel.table));
  rel.replica_identity = m.replica_identity;
  RelationRole role = classify_(rel.schema, rel.table);
  rel.captured = role == RelationRole::Captured;
  rel.heartbeat = role == RelationRole::Heartbeat;
  rel.columns.reserve(m.columns.size());
  std::vector<std::string> primary_key;
  if (m.replica_identity == 'f') primary_key = catalog_.primary_key(m.relid);
  for (const auto& c : m.columns) {
    Column col;
    col.name = std::string(c.name);
    JsonWriter::appendQuoted(col.quoted_name, col.name);
    col.type_oid = c.type;
    col.type = typeInfo(c.type);
    if (m.replica_identity == 'f') {
      col.part_of_key = std::find(primary_key.begin(), primary_key.end(), col.name) != primary_key.end();
    } else {
      col.part_of_key = m.replica_identity != 'n' && c.part_of_key;
    }
    rel.has_key = rel.has_key || c.part_of_key;
    rel.columns.push_back(std::move(col));
  }
  auto [it, inserted] = relations_.insert_or_assign(m.relid, std::move(rel));
  return it->second;
}

const Relation* RelationCache::find(RelationId relid) const {
  auto it = relations_.find(relid);
  return it == relations_.end() ? nullptr : &it->second;
}

std::shared_ptr<const TypeInfo> RelationCache::typeInfo(TypeOid oid, int depth) {
  if (auto b = builtinType(oid)) return b;
  static const auto text = std::make_shared<const TypeInfo>(TypeInfo{ValueKind::Text, nullptr, ','});
  if (oid < kFirstNormalObjectId) return text;  // a built-in the table does not know: text form
  if (auto it = types_.find(oid); it != types_.end()) return it->second;
  if (depth > 8) {
    throw Error(ErrorClass::Fatal, fmt::format("type {} nests domains or arrays too deeply", oid));
  }
  CatalogType ct = catalog_.type(oid);
  std::shared_ptr<const TypeInfo> info;
  if (ct.typtype == 'd' && ct.base_type != 0) {
    info = typeInfo(ct.base_type, depth + 1);  // a domain renders as its base type
  } else if (ct.is_array && ct.element != 0) {
    info = std::make_shared<const TypeInfo>(
        TypeInfo{ValueKind::Array, typeInfo(ct.element, depth + 1), ct.delimiter});
  } else {
    info = text;  // enums render as their label; other types as their text form
  }
  types_.emplace(oid, info);
  return info;
}

}  // namespace tidemark::events
