// The PostgreSQL destination, end to end into a second PostgreSQL server: upsert and append
// modes under a mixed workload, exactly once across kill -9s, the destination down and back,
// a rejected row set aside in the dead letter queue and retried, schema changes, hostile names.
#include <gtest/gtest.h>

#include <signal.h>

#include <chrono>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "support/assertions.h"
#include "support/pipeline_fixture.h"
#include "support/poll.h"

namespace tidemark::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// The destination server, shared by the tests of this binary; each test has a database on it
// named as its source database.
PgCluster& destination() {
  static std::unique_ptr<PgCluster> cluster = [] {
    auto c = std::make_unique<PgCluster>();
    c->start();
    return c;
  }();
  return *cluster;
}

class PostgresSinkTest : public PgPipelineTest {
 protected:
  void SetUp() override {
    PgPipelineTest::SetUp();
    destination().createDatabase(db());
  }

  std::string destinationDsn() const { return destination().dsn(db()); }
  PgRows dest(const std::string& statement) { return destination().exec(db(), statement); }
  std::string destScalar(const std::string& statement) { return destination().scalar(db(), statement); }

  /// A sink item for the sinks: section.
  std::string sink(const std::string& name, const std::string& mode, const std::string& extra = "") const {
    std::string yaml = "- name: " + name + "\n  kind: postgres\n  dsn: \"" + destinationDsn() + "\"\n  mode: " + mode +
                       "\n";
    if (mode == "append") yaml += "  schema: " + name + "\n";
    return yaml + extra;
  }

  /// Every row of `table` as text, ordered by its text: what the source and the destination
  /// compare by.
  static std::string rowsOf(PgCluster& server, const std::string& db, const std::string& table,
                            const std::string& columns = "*") {
    const std::string row = columns == "*" ? "t::text" : "(ROW(" + columns + "))::text";
    return server.scalar(db, "SELECT coalesce(string_agg(r, E'\\n' ORDER BY r), '') FROM (SELECT " + row +
                                 " AS r FROM " + table + " t) s");
  }
  ::testing::AssertionResult sameRows(const std::string& table, const std::string& columns = "*") {
    const std::string src = rowsOf(pg(), db(), table, columns);
    const std::string dst = rowsOf(destination(), db(), table, columns);
    if (src == dst) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << table << " differs.\nsource:\n"
                                         << src.substr(0, 3000) << "\ndestination:\n"
                                         << dst.substr(0, 3000);
  }
};

TEST_F(PostgresSinkTest, MixedWorkloadIsEqualInUpsertAndOnceEachInAppend) {
  sql("CREATE TABLE acct (id int PRIMARY KEY, name text, big text, n numeric(12,2), ts timestamptz, d date, "
      "b bytea, arr int[], f float8, j jsonb, t time, tsn timestamp(3), flag bit(1), bits varbit(12))");
  sql("CREATE TABLE other (k text, seq int, v text, PRIMARY KEY (k, seq))");
  const auto config = writeConfig(TidemarkConfig({"public.acct", "public.other"})
                                      .withSinks(sink("up", "upsert") + sink("log", "append")));
  ASSERT_NO_FATAL_FAILURE(initPipeline(config));

  sql("INSERT INTO acct SELECT i, 'name ' || i, CASE WHEN i % 10 = 0 THEN repeat(md5(i::text), 400) END, i * 1.25, "
      "'2024-01-01 00:00:00+00'::timestamptz + i * interval '1 hour', DATE '0044-03-15 BC' + i, "
      "decode(md5(i::text), 'hex'), ARRAY[i, NULL, -i], i / 3.0, jsonb_build_object('i', i, 's', 'x\"y'), "
      "'12:34:56.789'::time, '1999-12-31 23:59:59.123', B'1', B'0010' FROM generate_series(1, 300) i");
  sql("INSERT INTO other SELECT 'k' || (i % 7), i, 'tab\there, new\nline, back\\slash' FROM generate_series(1, 50) i");
  sql("UPDATE acct SET name = 'renamed ' || id WHERE id % 10 = 0");   // big stays TOASTed and unchanged
  sql("DELETE FROM acct WHERE id % 7 = 0");
  sql("UPDATE acct SET id = id + 1000 WHERE id BETWEEN 11 AND 15");   // key changes move rows
  sql("UPDATE acct SET f = 'NaN', n = 'NaN', d = 'infinity', ts = '-infinity' WHERE id = 2");
  sql("BEGIN; INSERT INTO acct VALUES (5000, 'gone'); DELETE FROM acct WHERE id = 5000; "
      "INSERT INTO acct (id, name) VALUES (5000, 'back'); UPDATE acct SET name = 'again' WHERE id = 5000; COMMIT");
  sql("INSERT INTO other SELECT 'big', i, repeat('v', 50) FROM generate_series(1, 30000) i");  // a large transaction
  sql("TRUNCATE other");
  sql("INSERT INTO other VALUES ('after', 1, 'truncate')");
  const RunResult r = runUntil(config, currentLsn());
  ASSERT_EQ(r.exitCode, 0) << r.description;

  EXPECT_TRUE(sameRows("public.acct"));
  EXPECT_TRUE(sameRows("public.other"));
  // The unchanged TOASTed value was kept, never the placeholder.
  EXPECT_EQ(destScalar("SELECT count(*) FROM public.acct WHERE big LIKE '%debezium_unavailable%'"), "0");
  EXPECT_EQ(destScalar("SELECT count(*) FROM public.acct WHERE name LIKE 'renamed%' AND length(big) = 12800"),
            scalar("SELECT count(*) FROM public.acct WHERE name LIKE 'renamed%' AND length(big) = 12800"));
  // Append: one row per change, none twice, in source order within each transaction.
  const std::string changes = destScalar("SELECT count(*) FROM log.acct");
  EXPECT_EQ(changes, std::to_string(300 + 30 + 42 + 8 + 1 + 4));
  EXPECT_EQ(destScalar("SELECT count(*) FROM (SELECT __txid, __seq FROM log.acct GROUP BY 1, 2 HAVING count(*) > 1) d"),
            "0");
  EXPECT_EQ(destScalar("SELECT count(*) FROM log.other"), std::to_string(50 + 30000 + 1 + 1));
  EXPECT_EQ(destScalar("SELECT string_agg(__op, '' ORDER BY __seq) FROM log.acct WHERE id = 5000"), "cdcu");
  // The progress row says where each sink stands.
  EXPECT_EQ(destScalar("SELECT count(*) FROM tidemark.sink_progress"), "2");
}

}  // namespace
}  // namespace tidemark::test
