#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <fmt/format.h>

#include "base/error.h"
#include "config/config.h"
#include "encode/debezium/envelope.h"
#include "source/postgres/change_builder.h"
#include "source/postgres/relations.h"

namespace tidemark::events {
namespace {

using core::Event;
using pgoutput::ColumnKind;
using pgoutput::OldTupleKind;
using pgoutput::TupleColumn;
using pgoutput::TupleData;

// A catalog that knows no custom types and says table "orders" has primary key "id".
Catalog fakeCatalog() {
  Catalog c;
  c.type = [](TypeOid) { return std::optional<CatalogType>(); };
  c.attributes = [](RelationId) {
    return std::vector<CatalogAttribute>{{1, "id", 20, false, false, true, "", false},
                                         {2, "note", 25, false, false, false, "", false},
                                         {3, "amount", 1700, false, false, false, "", false}};
  };
  return c;
}

// Captures every table but "other", on topic shop.<schema>.<table>.
RelationCache cache(Catalog catalog = fakeCatalog()) {
  return RelationCache(std::move(catalog), [](RelationId, std::string_view schema, std::string_view table) {
    RelationTarget t;
    if (table == "other") return t;
    t.role = RelationRole::Captured;
    t.topic = config::sanitizeTopic(fmt::format("shop.{}.{}", schema, table));
    return t;
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

// The PostgreSQL source's changes as the change log receives them: the change model from
// ChangeBuilder, in the shared Debezium envelope.
class EnvelopeBuilder {
 public:
  EnvelopeBuilder(const std::string& server, const std::string& db, Utf8Policy utf8 = Utf8Policy::Reject)
      : changes_(server, db, utf8), envelope_(server) {}
  void beginTransaction(Xid xid, pgoutput::PgTimestamp commit_time) { changes_.beginTransaction(xid, commit_time); }
  void endTransaction(Lsn commit_end_lsn) { changes_.endTransaction(commit_end_lsn); }
  Event change(char op, const Relation& rel, Lsn lsn, const TupleData* before, OldTupleKind before_kind,
               const TupleData* after, const TupleData* old = nullptr) {
    return envelope_.encode(changes_.change(static_cast<core::Op>(op), rel, lsn, before, before_kind, after, old));
  }
  Event truncate(const Relation& rel, Lsn lsn) { return envelope_.encode(changes_.truncate(rel, lsn)); }
  Event message(const pgoutput::LogicalDecodingMessage& m, Lsn lsn, bool in_transaction) {
    return envelope_.encode(changes_.message(m, lsn, in_transaction));
  }
  Event heartbeat(int64_t now_ms) { return envelope_.heartbeat(now_ms); }
  static bool keyChanged(const Relation& rel, const TupleData& old_tuple, const TupleData& new_tuple) {
    return ChangeBuilder::keyChanged(rel, old_tuple, new_tuple);
  }

 private:
  ChangeBuilder changes_;
  debezium::Envelope envelope_;
};

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

// A key value TOASTed and left unchanged is not resent: the server sends the old key (a 'K'
// tuple) with the new row's 'u'. That is an update under the old key, not a key change.
TEST(EnvelopeBuilder, UpdateKeepingAToastedKeyIsAnUpdateUnderTheOldKey) {
  RelationCache rels = cache();
  const Relation& rel = rels.update(ordersRelation('d', false));
  EnvelopeBuilder b("shop", "db");
  TupleData old_key = {text("77"), {ColumnKind::Null, {}}, {ColumnKind::Null, {}}};
  TupleData new_row = {{ColumnKind::UnchangedToast, {}}, text("n"), text("1.00")};
  EXPECT_FALSE(EnvelopeBuilder::keyChanged(rel, old_key, new_row));
  Event e = b.change('u', rel, Lsn(1), nullptr, OldTupleKind::Key, &new_row, &old_key);
  EXPECT_EQ(e.key, R"({"id":77})");
  auto v = parse(e.value);
  EXPECT_TRUE(v["before"].is_null());
  EXPECT_EQ(v["after"]["id"], 77);
  EXPECT_EQ(v["after"]["note"], "n");
}

TEST(EnvelopeBuilder, KeyChangeUnderFullIdentityKeepsUnchangedToastedValuesInTheCreate) {
  RelationCache rels = cache();
  const Relation& rel = rels.update(ordersRelation('f', true));
  EnvelopeBuilder b("shop", "db");
  TupleData old_row = {text("1"), text("big toasted text"), text("1.00")};
  TupleData new_row = {text("2"), {ColumnKind::UnchangedToast, {}}, text("1.00")};
  EXPECT_TRUE(EnvelopeBuilder::keyChanged(rel, old_row, new_row));
  Event c = b.change('c', rel, Lsn(1), nullptr, OldTupleKind::None, &new_row, &old_row);
  EXPECT_EQ(c.key, R"({"id":2})");
  auto v = parse(c.value);
  EXPECT_TRUE(v["before"].is_null());
  EXPECT_EQ(v["after"]["note"], "big toasted text");
}

TEST(EnvelopeBuilder, FullIdentityWithoutAPrimaryKeyHasNoKey) {
  Catalog catalog = fakeCatalog();
  catalog.attributes = [](RelationId) {
    return std::vector<CatalogAttribute>{{1, "id", 20, false, false, false, "", false},
                                         {2, "note", 25, false, false, false, "", false},
                                         {3, "amount", 1700, false, false, false, "", false}};
  };
  RelationCache rels = cache(catalog);
  const Relation& rel = rels.update(ordersRelation('f', true));
  EXPECT_FALSE(rel.has_key);
  EnvelopeBuilder b("shop", "db");
  TupleData row = {text("1"), text("x"), text("1.00")};
  EXPECT_TRUE(b.change('c', rel, Lsn(1), nullptr, OldTupleKind::None, &row).key.empty());
}

TEST(PrimaryKeyPositions, ByNameThenByPositionWhenAKeyColumnWasRenamed) {
  using Col = pgoutput::RelationColumn;
  // The message as the change was decoded: (id, v).
  std::vector<Col> message = {{true, "id", 23, -1}, {true, "v", 23, -1}};
  // Today: id renamed to ident, a column added since.
  std::vector<CatalogAttribute> renamed = {{1, "ident", 23, false, false, true, "", false},
                                           {2, "v", 23, false, false, false, "", false},
                                           {3, "added", 25, false, false, false, "", false}};
  EXPECT_EQ(keyPositions(message, renamed), (std::vector<size_t>{0}));
  // Today: the key is v, and a column before it was dropped since (by name still).
  std::vector<CatalogAttribute> dropped = {{1, "........pg.dropped.1........", 0, true, false, false, "", false},
                                           {2, "v", 23, false, false, true, "", false}};
  EXPECT_EQ(keyPositions(message, dropped), (std::vector<size_t>{1}));
  // A renamed key column and a column dropped since: the two cannot be told apart.
  std::vector<CatalogAttribute> both = {{1, "........pg.dropped.1........", 0, true, false, false, "", false},
                                        {2, "w", 23, false, false, true, "", false}};
  std::vector<Col> three = {{true, "id", 23, -1}, {true, "v", 23, -1}, {true, "x", 25, -1}};
  EXPECT_EQ(keyPositions(three, both), std::nullopt);
  // No primary key.
  EXPECT_EQ(keyPositions(message, {{1, "id", 23, false, false, false, "", false}}), (std::vector<size_t>{}));
}

TEST(EnvelopeBuilder, BytesThatAreNotUtf8AreAnErrorNamingTableColumnAndKey) {
  RelationCache rels = cache();
  const Relation& rel = rels.update(ordersRelation('d', false));
  EnvelopeBuilder strict("shop", "db");
  TupleData row = {text("5"), text(std::string_view("caf\xe9", 4)), text("1.00")};
  try {
    strict.change('c', rel, Lsn(0x10), nullptr, OldTupleKind::None, &row);
    FAIL() << "wrote bytes that are not UTF-8";
  } catch (const Error& e) {
    std::string message = e.what();
    EXPECT_EQ(e.errorClass(), ErrorClass::Poison);
    EXPECT_NE(message.find("public.orders"), std::string::npos) << message;
    EXPECT_NE(message.find("column \"note\""), std::string::npos) << message;
    EXPECT_NE(message.find("key id=5"), std::string::npos) << message;
    EXPECT_NE(message.find("0/10"), std::string::npos) << message;
    EXPECT_NE(e.hint().find("source.invalid_utf8: escape"), std::string::npos) << e.hint();
  }
  EnvelopeBuilder escaping("shop", "db", Utf8Policy::Escape);
  Event e = escaping.change('c', rel, Lsn(0x10), nullptr, OldTupleKind::None, &row);
  EXPECT_NE(e.value.find(R"("note":"caf\udce9")"), std::string_view::npos) << e.value;
}

TEST(RelationCache, ATypeTheCatalogNoLongerKnowsIsAnErrorNamingTheColumn) {
  RelationCache rels = cache();
  pgoutput::TypeMessage type{RelationId{}.value + 50000, "public", "money_domain"};
  rels.noteType(type);
  pgoutput::RelationMessage m = ordersRelation('d', false);
  m.columns[2].type = 50000;
  try {
    rels.update(m);
    FAIL() << "rendered a column whose type is gone";
  } catch (const Error& e) {
    std::string message = e.what();
    EXPECT_NE(message.find("column \"amount\" of public.orders"), std::string::npos) << message;
    EXPECT_NE(message.find("public.money_domain"), std::string::npos) << message;
    EXPECT_NE(message.find("no longer exists"), std::string::npos) << message;
  }
  // A table that is not captured is never rendered, so its types are not looked up.
  m.relname = "other";
  EXPECT_FALSE(rels.update(m).captured);
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

namespace tidemark::debezium {
namespace {

// The envelope knows nothing of PostgreSQL: any source's change in the model, with its own
// `source` block, gets the same body.
TEST(DebeziumEnvelope, WrapsAnySourcesChangeAndKeysItByTheTablesKey) {
  core::Table table;
  table.schema = "inventory";
  table.name = "customers";
  table.topic = "shop.inventory.customers";
  table.quoted_columns = {R"("id")", R"("email")", R"("bio")"};
  table.key = {0};
  core::Row before = {{core::Value::State::Present, "7", "7"}, {}, {}};
  core::Row after = {{core::Value::State::Present, "7", "7"},
                     {core::Value::State::Present, R"("a@example.com")", "a@example.com"},
                     {core::Value::State::Unchanged, R"("__debezium_unavailable_value")", {}}};
  core::Change c;
  c.op = core::Op::Update;
  c.table = &table;
  c.before = &before;
  c.after = &after;
  c.source_block = R"({"connector":"mysql","gtid":"3E11FA47:23"})";
  Envelope envelope("shop");
  core::Event e = envelope.encode(c);
  EXPECT_EQ(e.topic, "shop.inventory.customers");
  EXPECT_EQ(e.key, R"({"id":7})");
  auto v = nlohmann::json::parse(e.value);
  EXPECT_EQ(v["before"], nlohmann::json::parse(R"({"id":7,"email":null,"bio":null})"));
  EXPECT_EQ(v["after"]["email"], "a@example.com");
  EXPECT_EQ(v["after"]["bio"], "__debezium_unavailable_value");
  EXPECT_EQ(v["source"]["gtid"], "3E11FA47:23");
  EXPECT_EQ(v["op"], "u");
  EXPECT_TRUE(v["transaction"].is_null());
  std::vector<std::string> members;
  const nlohmann::ordered_json ordered = nlohmann::ordered_json::parse(e.value);
  for (auto it = ordered.begin(); it != ordered.end(); ++it) members.push_back(it.key());
  EXPECT_EQ(members, (std::vector<std::string>{"before", "after", "source", "transaction", "op", "ts_ms", "ts_us", "ts_ns"}));

  // A delete keys by the row before; a truncate has no key; a keyless table neither.
  c.op = core::Op::Delete;
  c.after = nullptr;
  EXPECT_EQ(envelope.encode(c).key, R"({"id":7})");
  c.op = core::Op::Truncate;
  c.before = nullptr;
  EXPECT_EQ(envelope.encode(c).key, "");
  table.key.clear();
  c.op = core::Op::Create;
  c.after = &after;
  EXPECT_EQ(envelope.encode(c).key, "");

  // A row that does not match its table is an error, not a shifted event.
  core::Row short_row = {{core::Value::State::Present, "7", "7"}};
  c.after = &short_row;
  EXPECT_THROW(envelope.encode(c), Error);
}

}  // namespace
}  // namespace tidemark::debezium
