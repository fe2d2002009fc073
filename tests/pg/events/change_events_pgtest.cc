// The Debezium envelope of each kind of row change (c, u, d, t) and of logical decoding
// messages (m), before images under REPLICA IDENTITY DEFAULT and FULL, and record keys.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/jsonl.h"
#include "support/pipeline_fixture.h"

namespace tidemark::test {
namespace {

using nlohmann::json;

class ChangeEventTest : public PgPipelineTest {
 protected:
  int64_t nowMs() {
    return std::stoll(scalar("SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint"));
  }
};

std::string opsOf(const std::vector<json>& events) {
  std::string ops;
  for (const auto& e : events) ops += e.value("op", std::string("?"));
  return ops;
}

TEST_F(ChangeEventTest, InsertIsCreateEventWithCompleteSourceBlock) {
  sql("CREATE TABLE orders (id int PRIMARY KEY, status text, amount numeric(10,2))");
  auto config = writeConfig(TidemarkConfig({"public.orders"}));
  ASSERT_NO_FATAL_FAILURE(initPipeline(config));

  const int64_t startMs = nowMs();
  const uint64_t lsnBefore = parseLsn(currentLsn());
  PgConnection c = connect();
  c.exec("BEGIN");
  c.exec("INSERT INTO orders VALUES (1, 'new', 10.50)");
  const int64_t xid = std::stoll(c.scalar("SELECT txid_current()"));
  c.exec("COMMIT");
  const uint64_t lsnAfter = parseLsn(currentLsn());

  RunResult r = runUntil(config, currentLsn());
  ASSERT_EQ(r.exitCode, 0) << r.description;
  const int64_t endMs = nowMs();
  auto ev = events("public.orders");
  ASSERT_EQ(ev.size(), 1u) << json(ev).dump(2);
  const json& e = ev[0];
  EXPECT_EQ(e.at("op"), "c");
  EXPECT_TRUE(e.at("before").is_null());
  EXPECT_EQ(e.at("after"), json::parse(R"({"id": 1, "status": "new", "amount": "10.50"})"));
  EXPECT_TRUE(e.contains("transaction") && e["transaction"].is_null()) << e.dump();
  ASSERT_TRUE(e.at("ts_ms").is_number_integer()) << e.dump();
  EXPECT_GE(e["ts_ms"].get<int64_t>(), startMs - 1000);
  EXPECT_LE(e["ts_ms"].get<int64_t>(), endMs + 1000);

  const json& s = e.at("source");
  EXPECT_TRUE(s.at("version").is_string()) << s.dump();
  EXPECT_EQ(s.at("connector"), "postgresql");
  EXPECT_EQ(s.at("name"), "t1");
  EXPECT_EQ(s.at("snapshot"), "false");
  EXPECT_EQ(s.at("db"), db());
  EXPECT_EQ(s.at("schema"), "public");
  EXPECT_EQ(s.at("table"), "orders");
  EXPECT_TRUE(s.contains("sequence")) << s.dump();
  ASSERT_TRUE(s.at("txId").is_number_integer()) << s.dump();
  EXPECT_EQ(s["txId"].get<int64_t>(), xid);
  ASSERT_TRUE(s.at("lsn").is_number_integer()) << s.dump();
  // The insert's WAL record starts where the WAL ended before it: at lsnBefore or later.
  EXPECT_GE(s["lsn"].get<uint64_t>(), lsnBefore);
  EXPECT_LE(s["lsn"].get<uint64_t>(), lsnAfter);
  // source.ts_ms is the commit time.
  ASSERT_TRUE(s.at("ts_ms").is_number_integer()) << s.dump();
  EXPECT_GE(s["ts_ms"].get<int64_t>(), startMs - 1000);
  EXPECT_LE(s["ts_ms"].get<int64_t>(), endMs + 1000);
}

TEST_F(ChangeEventTest, InsertUpdateDeleteTruncateUnderDefaultIdentity) {
  sql("CREATE TABLE orders (id int PRIMARY KEY, status text, amount numeric(10,2))");
  auto config = writeConfig(TidemarkConfig({"public.orders"}));
  ASSERT_NO_FATAL_FAILURE(initPipeline(config));
  sql("INSERT INTO orders VALUES (1, 'new', 10.50), (2, 'new', 7)");
  sql("UPDATE orders SET status = 'paid' WHERE id = 1");
  sql("DELETE FROM orders WHERE id = 1");
  sql("TRUNCATE orders");
  RunResult r = runUntil(config, currentLsn());
  ASSERT_EQ(r.exitCode, 0) << r.description;

  auto ev = events("public.orders");
  ASSERT_EQ(opsOf(ev), "ccudt") << json(ev).dump(2);
  EXPECT_EQ(ev[0]["after"]["id"], 1);
  EXPECT_EQ(ev[1]["after"], json::parse(R"({"id": 2, "status": "new", "amount": "7.00"})"));
  // Without REPLICA IDENTITY FULL the server sends no old row for an update...
  EXPECT_TRUE(ev[2]["before"].is_null()) << ev[2].dump();
  EXPECT_EQ(ev[2]["after"], json::parse(R"({"id": 1, "status": "paid", "amount": "10.50"})"));
  // ...and only the key of a deleted one.
  EXPECT_EQ(ev[3]["before"], json::parse(R"({"id": 1, "status": null, "amount": null})"));
  EXPECT_TRUE(ev[3]["after"].is_null()) << ev[3].dump();
  EXPECT_TRUE(ev[4]["before"].is_null()) << ev[4].dump();
  EXPECT_TRUE(ev[4]["after"].is_null()) << ev[4].dump();
  EXPECT_EQ(ev[4]["source"]["table"], "orders");
  for (const auto& e : ev) EXPECT_EQ(e["source"]["table"], "orders");
}

TEST_F(ChangeEventTest, ReplicaIdentityFullGivesCompleteBeforeImages) {
  sql("CREATE TABLE customers (id int PRIMARY KEY, name text, tier int)");
  sql("ALTER TABLE customers REPLICA IDENTITY FULL");
  auto config = writeConfig(TidemarkConfig({"public.customers"}));
  ASSERT_NO_FATAL_FAILURE(initPipeline(config));
  sql("INSERT INTO customers VALUES (1, 'Ada', 1)");
  sql("UPDATE customers SET tier = 2 WHERE id = 1");
  sql("UPDATE customers SET id = 10, name = 'Ada L.' WHERE id = 1");
  sql("DELETE FROM customers WHERE id = 10");
  RunResult r = runUntil(config, currentLsn());
  ASSERT_EQ(r.exitCode, 0) << r.description;

  auto ev = events("public.customers");
  // A primary key change may be one update or a delete and a create (as Debezium does).
  const std::string ops = opsOf(ev);
  ASSERT_TRUE(ops == "cuud" || ops == "cudcd") << json(ev).dump(2);
  EXPECT_EQ(ev[1]["before"], json::parse(R"({"id": 1, "name": "Ada", "tier": 1})"));
  EXPECT_EQ(ev[1]["after"], json::parse(R"({"id": 1, "name": "Ada", "tier": 2})"));
  EXPECT_EQ(ev[2]["before"], json::parse(R"({"id": 1, "name": "Ada", "tier": 2})"));
  EXPECT_EQ(ev.back()["before"], json::parse(R"({"id": 10, "name": "Ada L.", "tier": 2})"));
  EXPECT_TRUE(ev.back()["after"].is_null());
}

TEST_F(ChangeEventTest, KeyIsPrimaryKeyOrReplicaIdentityIndex) {
  sql("CREATE TABLE orders (id int PRIMARY KEY, note text)");
  sql("CREATE TABLE lines (order_id int, line_no int, qty int, PRIMARY KEY (order_id, line_no))");
  sql("CREATE TABLE skus (code text NOT NULL, price int)");
  sql("CREATE UNIQUE INDEX skus_code ON skus (code)");
  sql("ALTER TABLE skus REPLICA IDENTITY USING INDEX skus_code");
  auto config =
      writeConfig(TidemarkConfig({"public.orders", "public.lines", "public.skus"}).withKeys());
  ASSERT_NO_FATAL_FAILURE(initPipeline(config));
  sql("INSERT INTO orders VALUES (7, 'x')");
  sql("INSERT INTO lines VALUES (7, 1, 3)");
  sql("INSERT INTO skus VALUES ('A-1', 100)");
  sql("DELETE FROM orders WHERE id = 7");
  RunResult r = runUntil(config, currentLsn());
  ASSERT_EQ(r.exitCode, 0) << r.description;

  auto orders = readJsonLines(topicFile("public.orders"));
  ASSERT_GE(orders.size(), 2u) << json(orders).dump(2);
  for (const auto& line : orders) {
    ASSERT_TRUE(line.is_object() && line.contains("key") && line.contains("value")) << line.dump();
    EXPECT_EQ(line["key"], json::parse(R"({"id": 7})"));
  }
  EXPECT_EQ(orders[0]["value"]["op"], "c");
  EXPECT_EQ(orders[1]["value"]["op"], "d");

  auto lines = readJsonLines(topicFile("public.lines"));
  ASSERT_EQ(lines.size(), 1u) << json(lines).dump(2);
  EXPECT_EQ(lines[0]["key"], json::parse(R"({"order_id": 7, "line_no": 1})"));
  EXPECT_EQ(lines[0]["value"]["after"]["qty"], 3);

  auto skus = readJsonLines(topicFile("public.skus"));
  ASSERT_EQ(skus.size(), 1u) << json(skus).dump(2);
  EXPECT_EQ(skus[0]["key"], json::parse(R"({"code": "A-1"})"));
}

// Under REPLICA IDENTITY FULL the stream flags every column as the identity and does not say
// which form the primary key: the key must still be the columns as they were at the change.
TEST_F(ChangeEventTest, FullIdentityKeyFollowsAKeyColumnRenamedAfterTheChange) {
  sql("CREATE TABLE f (id int PRIMARY KEY, v int)");
  sql("ALTER TABLE f REPLICA IDENTITY FULL");
  auto config = writeConfig(TidemarkConfig({"public.f"}).withKeys());
  ASSERT_NO_FATAL_FAILURE(initPipeline(config));
  sql("INSERT INTO f VALUES (1, 0)");
  sql("BEGIN; UPDATE f SET id = 10 WHERE id = 1; ALTER TABLE f RENAME COLUMN id TO ident; COMMIT");
  RunResult r = runUntil(config, currentLsn());
  ASSERT_EQ(r.exitCode, 0) << r.description;
  auto lines = readJsonLines(topicFile("public.f"));
  ASSERT_EQ(lines.size(), 3u) << json(lines).dump(2);
  EXPECT_EQ(lines[1]["value"]["op"], "d");
  EXPECT_EQ(lines[1]["key"], json::parse(R"({"id": 1})"));
  EXPECT_EQ(lines[2]["value"]["op"], "c");
  EXPECT_EQ(lines[2]["key"], json::parse(R"({"id": 10})"));
}

TEST_F(ChangeEventTest, FullIdentityWithoutAPrimaryKeyHasNoKey) {
  sql("CREATE TABLE nopk (a int, b text)");
  sql("ALTER TABLE nopk REPLICA IDENTITY FULL");
  auto config = writeConfig(TidemarkConfig({"public.nopk"}).withKeys());
  ASSERT_NO_FATAL_FAILURE(initPipeline(config));
  sql("INSERT INTO nopk VALUES (1, 'x'); UPDATE nopk SET b = 'y'; DELETE FROM nopk");
  RunResult r = runUntil(config, currentLsn());
  ASSERT_EQ(r.exitCode, 0) << r.description;
  auto lines = readJsonLines(topicFile("public.nopk"));
  ASSERT_EQ(lines.size(), 3u) << json(lines).dump(2);
  for (const auto& line : lines) EXPECT_TRUE(line["key"].is_null()) << line.dump();
  EXPECT_EQ(lines[1]["value"]["op"], "u");
  EXPECT_EQ(lines[1]["value"]["before"]["b"], "x");
}

// Without a primary key, Debezium keys a table's events by its first unique index by name;
// an index that does not keep every row apart (partial, or with an expression) is no key.
TEST_F(ChangeEventTest, WithoutAPrimaryKeyTheFirstWholeUniqueIndexIsTheKey) {
  sql("CREATE TABLE u (code text NOT NULL, alt int NOT NULL, note text)");
  sql("CREATE UNIQUE INDEX u_b_alt ON u (alt)");
  sql("CREATE UNIQUE INDEX u_a_code ON u (code)");
  sql("ALTER TABLE u REPLICA IDENTITY FULL");
  sql("CREATE TABLE p (code text, note text)");
  sql("CREATE UNIQUE INDEX p_a_partial ON p (code) WHERE note IS NOT NULL");
  sql("CREATE UNIQUE INDEX p_b_expression ON p (lower(code))");
  auto config = writeConfig(TidemarkConfig({"public.u", "public.p"}).withKeys());
  ASSERT_NO_FATAL_FAILURE(initPipeline(config));
  sql("INSERT INTO u VALUES ('a', 1, 'x'); UPDATE u SET note = 'y'; INSERT INTO p VALUES ('A', 'x')");
  RunResult r = runUntil(config, currentLsn());
  ASSERT_EQ(r.exitCode, 0) << r.description;
  auto u = readJsonLines(topicFile("public.u"));
  ASSERT_EQ(u.size(), 2u) << json(u).dump(2);
  for (const auto& line : u) EXPECT_EQ(line["key"], json::parse(R"({"code": "a"})")) << line.dump();
  auto p = readJsonLines(topicFile("public.p"));
  ASSERT_EQ(p.size(), 1u) << json(p).dump(2);
  EXPECT_TRUE(p[0]["key"].is_null()) << p[0].dump();
}

TEST_F(ChangeEventTest, LogicalDecodingMessagesGoToMessageTopicAsBase64) {
  sql("CREATE TABLE orders (id int PRIMARY KEY)");
  auto config = writeConfig(TidemarkConfig({"public.orders"}));
  ASSERT_NO_FATAL_FAILURE(initPipeline(config));
  sql("SELECT pg_logical_emit_message(true, 'audit', 'hello')");
  sql("SELECT pg_logical_emit_message(false, 'nontx', 'x')");
  sql("SELECT pg_logical_emit_message(true, 'bin', '\\x00ff00'::bytea)");
  // A non-transactional message is not flushed by anything, so pg_current_wal_lsn() can stay
  // behind it; the commits after it make sure the --until-lsn below covers it.
  RunResult r = runUntil(config, currentLsn());
  ASSERT_EQ(r.exitCode, 0) << r.description;

  auto msgs = readJsonLines(messageFile());
  ASSERT_EQ(msgs.size(), 3u) << json(msgs).dump(2);
  EXPECT_EQ(opsOf(msgs), "mmm");
  EXPECT_EQ(msgs[0]["message"], json::parse(R"({"prefix": "audit", "content": "aGVsbG8="})"));
  EXPECT_EQ(msgs[1]["message"], json::parse(R"({"prefix": "nontx", "content": "eA=="})"));
  EXPECT_EQ(msgs[2]["message"], json::parse(R"({"prefix": "bin", "content": "AP8A"})"));
  EXPECT_TRUE(msgs[1]["source"]["txId"].is_null()) << msgs[1].dump();
  for (const auto& m : msgs) {
    EXPECT_EQ(m["source"]["connector"], "postgresql") << m.dump();
    EXPECT_TRUE(m["source"]["lsn"].is_number_integer()) << m.dump();
  }
  EXPECT_TRUE(events("public.orders").empty());
}

}  // namespace
}  // namespace tidemark::test
