#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "events/envelope.h"
#include "events/relations.h"

namespace tidemark::events {
namespace {

using pgoutput::ColumnKind;
using pgoutput::OldTupleKind;
using pgoutput::TupleColumn;
using pgoutput::TupleData;

// A catalog that knows no custom types and says table "orders" has primary key "id".
Catalog fakeCatalog() {
  Catalog c;
  c.type = [](TypeOid) { return CatalogType{}; };
  c.primary_key = [](RelationId) { return std::vector<std::string>{"id"}; };
  return c;
}

RelationCache cache() {
  return RelationCache("shop", fakeCatalog(),
                       [](std::string_view, std::string_view table) {
                         return table == "other" ? RelationRole::Other : RelationRole::Captured;
                       });
}

pgoutput::RelationMessage ordersRelation(char identity, bool all_key) {
  pgoutput::RelationMessage m;
  m.relid = RelationId{16384};
  m.nspname = "public";
  m.relname = "orders";
  m.replica_identity = identity;
  m.columns = {{true, "id", 20, -1}, {all_key, "note", 25, -1}, {all_key, "amount", 1700, -1}};
  return m;
}

TupleColumn text(std::string_view v) { return {ColumnKind::Text, v}; }

nlohmann::json parse(std::string_view s) { return nlohmann::json::parse(s); }

TEST(EnvelopeBuilder, InsertHasDebeziumShapeAndKey) {
  RelationCache rels = cache();
  const Relation& rel = rels.update(ordersRelation('d', false));
  EnvelopeBuilder b("shop", "shopdb");
  b.beginTransaction(Xid{42}, 0);  // commit at 2000-01-01
  TupleData row = {text("9223372036854775807"), text("a \"quoted\"\nnote"), text("12.50")};
  Event e = b.change('c', rel, Lsn(0x100), nullptr, OldTupleKind::None, &row);
  EXPECT_EQ(e.topic, "shop.public.orders");
  EXPECT_EQ(e.key, R"({"id":9223372036854775807})");
  auto v = parse(e.value);
  EXPECT_TRUE(v["before"].is_null());
  EXPECT_EQ(v["after"]["id"].get<int64_t>(), INT64_MAX);
  EXPECT_EQ(v["after"]["note"], "a \"quoted\"\nnote");
  EXPECT_EQ(v["after"]["amount"], "12.50");
  EXPECT_EQ(v["op"], "c");
  EXPECT_TRUE(v["transaction"].is_null());
  const auto& src = v["source"];
  EXPECT_EQ(src["connector"], "postgresql");
  EXPECT_EQ(src["name"], "shop");
  EXPECT_EQ(src["db"], "shopdb");
  EXPECT_EQ(src["schema"], "public");
  EXPECT_EQ(src["table"], "orders");
  EXPECT_EQ(src["txId"], 42);
  EXPECT_EQ(src["lsn"], 256);
  EXPECT_EQ(src["ts_ms"], 946684800000);
  EXPECT_EQ(src["snapshot"], "false");
  EXPECT_EQ(src["sequence"], "[null,\"256\"]");
  b.endTransaction(Lsn(0x200));
  e = b.change('c', rel, Lsn(0x300), nullptr, OldTupleKind::None, &row);
  EXPECT_EQ(parse(e.value)["source"]["sequence"], "[\"512\",\"768\"]");
}

TEST(EnvelopeBuilder, DeleteUnderDefaultIdentityCarriesOnlyTheKey) {
  RelationCache rels = cache();
  const Relation& rel = rels.update(ordersRelation('d', false));
  EnvelopeBuilder b("shop", "db");
  TupleData old_key = {text("7"), {ColumnKind::Null, {}}, {ColumnKind::Null, {}}};
  auto v = parse(b.change('d', rel, Lsn(1), &old_key, OldTupleKind::Key, nullptr).value);
  EXPECT_EQ(v["before"], parse(R"({"id":7,"note":null,"amount":null})"));
  EXPECT_TRUE(v["after"].is_null());
  EXPECT_EQ(v["op"], "d");
}

TEST(EnvelopeBuilder, FullIdentityKeysByPrimaryKeyAndFillsUnchangedToastFromOldRow) {
  RelationCache rels = cache();
  // Under FULL, pgoutput flags every column as part of the identity.
  const Relation& rel = rels.update(ordersRelation('f', true));
  EnvelopeBuilder b("shop", "db");
  TupleData old_row = {text("1"), text("big toasted text"), text("1.00")};
  TupleData new_row = {text("1"), {ColumnKind::UnchangedToast, {}}, text("2.00")};
  Event e = b.change('u', rel, Lsn(1), &old_row, OldTupleKind::Full, &new_row);
  EXPECT_EQ(e.key, R"({"id":1})");
  auto v = parse(e.value);
  EXPECT_EQ(v["before"]["note"], "big toasted text");
  EXPECT_EQ(v["after"]["note"], "big toasted text");
  EXPECT_EQ(v["after"]["amount"], "2.00");
  EXPECT_FALSE(EnvelopeBuilder::keyChanged(rel, old_row, new_row));
}

TEST(EnvelopeBuilder, UnchangedToastWithoutOldRowIsThePlaceholder) {
  RelationCache rels = cache();
  const Relation& rel = rels.update(ordersRelation('d', false));
  EnvelopeBuilder b("shop", "db");
  TupleData new_row = {text("1"), {ColumnKind::UnchangedToast, {}}, text("2.00")};
  auto v = parse(b.change('u', rel, Lsn(1), nullptr, OldTupleKind::None, &new_row).value);
  EXPECT_EQ(v["after"]["note"], "__debezium_unavailable_value");
}

TEST(EnvelopeBuilder, RowWithWrongColumnCountIsAnError) {
  RelationCache rels = cache();
  const Relation& rel = rels.update(ordersRelation('d', false));
  EnvelopeBuilder b("shop", "db");
  TupleData short_row = {text("1")};
  EXPECT_THROW(b.change('c', rel, Lsn(1), nullptr, OldTupleKind::None, &short_row), Error);
}

TEST(EnvelopeBuilder, TruncateAndMessageEvents) {
  RelationCache rels = cache();
  const Relation& rel = rels.update(ordersRelation('d', false));
  EnvelopeBuilder b("shop", "db");
  b.beginTransaction(Xid{5}, 0);
  Event t = b.truncate(rel, Lsn(10));
  EXPECT_TRUE(t.key.empty());
  auto tv = parse(t.value);
  EXPECT_EQ(tv["op"], "t");
  EXPECT_TRUE(tv["before"].is_null() && tv["after"].is_null());

  pgoutput::LogicalDecodingMessage m{false, Lsn(20), "audit", std::string_view("\0\1", 2)};
  Event e = b.message(m, Lsn(20), false);
  EXPECT_EQ(e.topic, "shop.message");
  EXPECT_EQ(e.key, R"({"prefix":"audit"})");
  auto v = parse(e.value);
  EXPECT_EQ(v["op"], "m");
  EXPECT_EQ(v["message"]["prefix"], "audit");
  EXPECT_EQ(v["message"]["content"], "AAE=");
  EXPECT_TRUE(v["source"]["txId"].is_null());
}

TEST(EnvelopeBuilder, HeartbeatHasDebeziumsTopicKeyAndValue) {
  EnvelopeBuilder b("shop", "db");
  Event e = b.heartbeat(1700000000123);
  EXPECT_EQ(e.topic, "__debezium-heartbeat.shop");
  EXPECT_EQ(e.key, R"({"serverName":"shop"})");
  EXPECT_EQ(e.value, R"({"ts_ms":1700000000123})");
}

TEST(RelationCache, TopicsOfHostileNamesAreSafeFileNames) {
  RelationCache rels = cache();
  pgoutput::RelationMessage m = ordersRelation('d', false);
  m.nspname = "we/ird";
  m.relname = "../ta ble\"";
  const Relation& rel = rels.update(m);
  EXPECT_EQ(rel.topic, "shop.we_ird..._ta_ble_");
  EXPECT_EQ(rel.topic.find('/'), std::string::npos);
}

TEST(RelationCache, TablesOutsideTheConfigurationAreNotCaptured) {
  RelationCache rels = cache();
  pgoutput::RelationMessage m = ordersRelation('d', false);
  m.relname = "other";
  EXPECT_FALSE(rels.update(m).captured);
  EXPECT_TRUE(rels.update(ordersRelation('d', false)).captured);
}

}  // namespace
}  // namespace tidemark::events
