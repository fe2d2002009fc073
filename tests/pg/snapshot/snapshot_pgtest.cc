// The initial snapshot: the rows the tables held before the pipeline's first run, read while
// the tables keep changing, then the stream, with nothing missed and nothing doubled; the
// modes; an interrupted snapshot read again.
#include <gtest/gtest.h>
#include <signal.h>

#include <map>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "support/assertions.h"
#include "support/background_writer.h"
#include "support/pipeline_fixture.h"
#include "support/poll.h"

namespace tidemark::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

class SnapshotTest : public PgPipelineTest {
 protected:
  // The table's rows as its events leave them: reads, creates and updates set a row, deletes
  // remove it. Each row as "id|v|note".
  std::map<int, std::string> replayed(const std::string& table) {
    std::map<int, std::string> rows;
    for (const json& e : events(table)) {
      const std::string op = e["op"];
      if (op == "d") {
        rows.erase(e["before"]["id"].get<int>());
        continue;
      }
      const json& a = e["after"];
      rows[a["id"].get<int>()] = std::to_string(a["v"].get<int>()) + "|" + a["note"].get<std::string>();
    }
    return rows;
  }
  std::map<int, std::string> sourceRows(const std::string& table) {
    std::map<int, std::string> rows;
    for (const auto& r : sql("SELECT id, v, note FROM " + table)) rows[std::stoi(*r[0])] = *r[1] + "|" + *r[2];
    return rows;
  }
};

// 200,000 rows, read while another connection inserts, updates, deletes, inserts and deletes
// one key in one transaction, and appends to a ledger. The table ends as the source has it;
// every ledger row arrives exactly once, as a read or as a create, never both.
TEST_F(SnapshotTest, ReadWhileTheTablesChangeMissesAndDoublesNothing) {
  sql("CREATE TABLE s (id int PRIMARY KEY, v int NOT NULL, note text NOT NULL)");
  sql("CREATE TABLE ledger (id int PRIMARY KEY, v int NOT NULL, note text NOT NULL)");
  sql("INSERT INTO s SELECT i, i, 'row ' || i FROM generate_series(1, 200000) i");
  sql("INSERT INTO ledger SELECT i, 0, 'before' FROM generate_series(1, 1000) i");
  const auto config = writeConfig(
      TidemarkConfig({"public.s", "public.ledger"}).withSnapshot("initial", 5000));
  std::unique_ptr<Process> run = startRun(config);
  {
    BackgroundWriter writer(pg().dsn(db()), [](int64_t n) {
      const std::string i = std::to_string(n);
      const std::string key = std::to_string(1 + (n * 7919) % 200000);
      return "UPDATE s SET v = v + 1, note = 'updated " + i + "' WHERE id = " + key +
             "; DELETE FROM s WHERE id = " + std::to_string(1 + (n * 104729) % 200000) +
             "; INSERT INTO s VALUES (" + std::to_string(300000 + n) + ", 0, 'new " + i + "')" +
             "; INSERT INTO s VALUES (400000, 0, 'gone'); DELETE FROM s WHERE id = 400000" +
             "; INSERT INTO ledger VALUES (" + std::to_string(1001 + n) + ", 0, 'during')";
    }, 600);
    ASSERT_EVENTUALLY(writer.finished(), 120s) << run->describe();
    ASSERT_EQ(writer.error(), "");
  }
  RunResult first = [&] {
    // Let the snapshot end (it logs so), then stop and catch up to now.
    eventually([&] { return contains(run->stderrText(), "initial snapshot done"); }, 120s);
    run->signal(SIGTERM);
    return finish(*run);
  }();
  ASSERT_EQ(first.exitCode, 0) << first.description;
  ASSERT_TRUE(contains(first.err, "initial snapshot done")) << first.err;
  // The first run's status tells how far its snapshot went, per table.
  const StatusResult st = status(config);
  ASSERT_TRUE(st.json) << st.description;
  const json& snap = (*st.json)["snapshot"];
  EXPECT_EQ(snap["state"], "done") << snap.dump();
  EXPECT_EQ(snap["eta_seconds"], 0);
  size_t reads = 0;
  for (const json& e : events("public.s")) reads += e["op"] == "r" ? 1 : 0;
  EXPECT_EQ(snap["tables"]["public.s"]["rows"], reads) << snap.dump();
  EXPECT_EQ(snap["tables"]["public.ledger"]["rows"], snap["rows"].get<size_t>() - reads) << snap.dump();
  EXPECT_TRUE(snap["tables"]["public.s"]["done"].get<bool>());
  RunResult rest = runUntil(config, currentLsn());
  ASSERT_EQ(rest.exitCode, 0) << rest.description;

  EXPECT_EQ(replayed("public.s"), sourceRows("s"));
  std::map<int, int> seen;
  for (const json& e : events("public.ledger")) ++seen[e["after"]["id"].get<int>()];
  EXPECT_EQ(seen.size(), 1600u);
  for (const auto& [id, n] : seen) ASSERT_EQ(n, 1) << "ledger row " << id << " arrived " << n << " times";

  // Debezium's markers: the first read "first", the last "last", the last of the first table
  // "last_in_data_collection", the first of the second "first_in_data_collection".
  std::vector<std::string> markers;
  for (const std::string table : {"public.s", "public.ledger"}) {
    for (const json& e : events(table)) {
      if (e["op"] == "r") markers.push_back(table + ":" + e["source"]["snapshot"].get<std::string>());
    }
  }
  ASSERT_GE(markers.size(), 2u);
  std::map<std::string, int> counts;
  for (const auto& m : markers) ++counts[m];
  EXPECT_EQ(counts["public.s:first"], 1);
  EXPECT_EQ(counts["public.s:last_in_data_collection"], 1);
  EXPECT_EQ(counts["public.ledger:first_in_data_collection"], 1);
  EXPECT_EQ(counts["public.ledger:last"], 1);
  for (const json& e : events("public.s")) {
    if (e["op"] != "r") continue;
    EXPECT_TRUE(e["before"].is_null());
    EXPECT_FALSE(e["source"]["lsn"].is_null());
    EXPECT_FALSE(e["source"]["txId"].is_null());
    break;
  }
}

TEST_F(SnapshotTest, NeverReadsNothing) {
  sql("CREATE TABLE s (id int PRIMARY KEY, v int NOT NULL, note text NOT NULL)");
  sql("INSERT INTO s SELECT i, i, 'row ' || i FROM generate_series(1, 10) i");
  const auto config = writeConfig(TidemarkConfig({"public.s"}).withSnapshot("never"));
  RunResult r = runUntil(config, currentLsn());
  ASSERT_EQ(r.exitCode, 0) << r.description;
  EXPECT_TRUE(events("public.s").empty());
}

TEST_F(SnapshotTest, InitialOnlyReadsThenStops) {
  sql("CREATE TABLE s (id int PRIMARY KEY, v int NOT NULL, note text NOT NULL)");
  sql("INSERT INTO s SELECT i, i, 'row ' || i FROM generate_series(1, 10) i");
  const auto config = writeConfig(TidemarkConfig({"public.s"}).withSnapshot("initial_only"));
  RunResult r = runTidemark({"run", "-c", config.string()}, 60s);  // no --until-lsn: it stops by itself
  ASSERT_EQ(r.exitCode, 0) << r.description;
  EXPECT_EQ(events("public.s").size(), 10u);
  sql("INSERT INTO s VALUES (11, 11, 'after')");
  RunResult again = runTidemark({"run", "-c", config.string()}, 60s);
  ASSERT_EQ(again.exitCode, 0) << again.description;
  EXPECT_TRUE(contains(again.err, "nothing to do")) << again.err;
  EXPECT_EQ(events("public.s").size(), 10u);
}

// Killed mid-snapshot: the next run says so, reads the tables again, and the result is the
// source's rows.
TEST_F(SnapshotTest, AnInterruptedSnapshotIsReadAgainFromTheStart) {
  sql("CREATE TABLE s (id int PRIMARY KEY, v int NOT NULL, note text NOT NULL)");
  sql("INSERT INTO s SELECT i, i, repeat('x', 200) FROM generate_series(1, 200000) i");
  const auto config =
      writeConfig(TidemarkConfig({"public.s"}).withSnapshot("initial", 500));
  std::unique_ptr<Process> run = startRun(config);
  ASSERT_EVENTUALLY(!events("public.s").empty(), 60s) << run->describe();
  run->signal(SIGKILL);
  finish(*run);
  sql("UPDATE s SET v = -v WHERE id % 1000 = 0");
  RunResult again = runUntil(config, currentLsn());
  ASSERT_EQ(again.exitCode, 0) << again.description;
  EXPECT_TRUE(contains(again.err, "did not finish")) << again.err;
  EXPECT_EQ(replayed("public.s"), sourceRows("s"));
}

}  // namespace
}  // namespace tidemark::test
