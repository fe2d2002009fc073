// Guarantee 4 (order): the events of one source transaction stay together and in statement
// order, across tables; transactions arrive in commit order, not in the order they began.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/pipeline_fixture.h"

namespace tidemark::test {
namespace {

using nlohmann::json;

class TransactionOrderTest : public PgPipelineTest {};

// "<table>:<op>:<id>" for compact comparisons.
std::string tag(const json& e) {
  const json& row = e["after"].is_null() ? e["before"] : e["after"];
  return e["source"]["table"].get<std::string>() + ":" + e["op"].get<std::string>() + ":" +
         row["id"].dump();
}

TEST_F(TransactionOrderTest, EventsOfOneTransactionAcrossTablesAreContiguousAndInOrder) {
  sql("CREATE TABLE orders (id int PRIMARY KEY, customer int)");
  sql("CREATE TABLE customers (id int PRIMARY KEY, name text)");
  auto config = writeConfig(TidemarkConfig({"public.orders", "public.customers"}));
  ASSERT_NO_FATAL_FAILURE(initPipeline(config));

  sql("INSERT INTO customers VALUES (100, 'before')");
  PgConnection c = connect();
  c.exec("BEGIN");
  c.exec("INSERT INTO customers VALUES (1, 'Ada')");
  c.exec("INSERT INTO orders VALUES (1, 1)");
  c.exec("UPDATE customers SET name = 'Ada L.' WHERE id = 1");
  c.exec("INSERT INTO orders VALUES (2, 1)");
  c.exec("DELETE FROM customers WHERE id = 100");
  const int64_t xid = std::stoll(c.scalar("SELECT txid_current()"));
  c.exec("COMMIT");
  sql("INSERT INTO orders VALUES (3, 1)");
  RunResult r = runUntil(config, currentLsn());
  ASSERT_EQ(r.exitCode, 0) << r.description;

  // Each file on its own is in stream order.
  for (const char* table : {"public.orders", "public.customers"}) {
    auto ev = events(table);
    for (size_t i = 1; i < ev.size(); ++i) {
      EXPECT_LT(ev[i - 1]["source"]["lsn"].get<uint64_t>(), ev[i]["source"]["lsn"].get<uint64_t>())
          << table << " line " << i + 1;
    }
  }
  // The union, ordered by LSN, holds the transaction as one block in statement order.
  std::vector<json> all = events("public.orders");
  for (auto& e : events("public.customers")) all.push_back(e);
  std::sort(all.begin(), all.end(), [](const json& a, const json& b) {
    return a["source"]["lsn"].get<uint64_t>() < b["source"]["lsn"].get<uint64_t>();
  });
  std::vector<std::string> tags;
  std::vector<int64_t> xids;
  for (const auto& e : all) {
    tags.push_back(tag(e));
    xids.push_back(e["source"]["txId"].get<int64_t>());
  }
  const std::vector<std::string> expected = {
      "customers:c:100", "customers:c:1", "orders:c:1", "customers:u:1",
      "orders:c:2",      "customers:d:100", "orders:c:3"};
  EXPECT_EQ(tags, expected);
  ASSERT_EQ(xids.size(), expected.size());
  for (size_t i = 1; i <= 5; ++i) EXPECT_EQ(xids[i], xid) << tags[i];
  EXPECT_NE(xids[0], xid);
  EXPECT_NE(xids[6], xid);
}

TEST_F(TransactionOrderTest, InterleavedTransactionsAreDeliveredInCommitOrder) {
  sql("CREATE TABLE orders (id int PRIMARY KEY, writer text)");
  sql("CREATE TABLE customers (id int PRIMARY KEY, writer text)");
  auto config = writeConfig(TidemarkConfig({"public.orders", "public.customers"}));
  ASSERT_NO_FATAL_FAILURE(initPipeline(config));

  PgConnection a = connect();
  PgConnection b = connect();
  a.exec("BEGIN");
  b.exec("BEGIN");
  a.exec("INSERT INTO orders VALUES (1, 'a')");
  b.exec("INSERT INTO orders VALUES (101, 'b')");
  a.exec("INSERT INTO orders VALUES (2, 'a')");
  b.exec("INSERT INTO customers VALUES (101, 'b')");
  a.exec("INSERT INTO customers VALUES (1, 'a')");
  b.exec("INSERT INTO orders VALUES (102, 'b')");
  const int64_t xidA = std::stoll(a.scalar("SELECT txid_current()"));
  const int64_t xidB = std::stoll(b.scalar("SELECT txid_current()"));
  // Began first, commits last.
  b.exec("COMMIT");
  a.exec("COMMIT");
  RunResult r = runUntil(config, currentLsn());
  ASSERT_EQ(r.exitCode, 0) << r.description;

  auto orders = events("public.orders");
  std::vector<std::string> got;
  for (const auto& e : orders) got.push_back(tag(e));
  EXPECT_EQ(got, (std::vector<std::string>{"orders:c:101", "orders:c:102", "orders:c:1",
                                           "orders:c:2"}));
  ASSERT_EQ(orders.size(), 4u);
  EXPECT_EQ(orders[0]["source"]["txId"], xidB);
  EXPECT_EQ(orders[1]["source"]["txId"], xidB);
  EXPECT_EQ(orders[2]["source"]["txId"], xidA);
  EXPECT_EQ(orders[3]["source"]["txId"], xidA);
  auto customers = events("public.customers");
  ASSERT_EQ(customers.size(), 2u);
  EXPECT_EQ(tag(customers[0]), "customers:c:101");
  EXPECT_EQ(tag(customers[1]), "customers:c:1");
}

}  // namespace
}  // namespace tidemark::test
