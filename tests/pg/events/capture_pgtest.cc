// Which changes come out, compared with what PostgreSQL itself decodes (test_decoding on a
// sibling slot): partitioned tables through every path, captured tables that leave the
// publication, are dropped and created again or renamed while tidemark runs, tables published
// but not captured, and tables whose topics would collide. Nothing of a captured table may go
// missing without tidemark saying so.
#include <gtest/gtest.h>
#include <signal.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/assertions.h"
#include "support/jsonl.h"
#include "support/log_records.h"
#include "support/pipeline_fixture.h"
#include "support/poll.h"
#include "support/test_decoding.h"

namespace tidemark::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

constexpr int kExitConfig = 1;
constexpr int kExitPositionLost = 3;

class CaptureTest : public PgPipelineTest {
 protected:
  void createMeasurements() {
    sql("CREATE TABLE measurements (id int, ts int, v text, PRIMARY KEY (id, ts)) PARTITION BY RANGE (ts)");
    sql("CREATE TABLE m1 PARTITION OF measurements FOR VALUES FROM (0) TO (100)");
    sql("CREATE TABLE m2 PARTITION OF measurements FOR VALUES FROM (100) TO (200)");
  }

  // The sibling slot, created after the pipeline's, so both decode the same changes.
  TestDecodingSlot& server() {
    if (!server_) server_ = std::make_unique<TestDecodingSlot>(pg(), db(), slot() + "_td");
    return *server_;
  }

  // The server's changes of `tables`, renamed to `as` (partitions to their parent).
  std::vector<DecodedChange> serverChanges(const std::vector<std::string>& tables, const std::string& as) {
    std::vector<DecodedChange> out = server().changes(tables);
    for (auto& c : out) c.table = as;
    return out;
  }

  static TidemarkConfig fastChecks(TidemarkConfig c) {
    return c.withHeartbeat("interval: 1s");
  }

  std::unique_ptr<TestDecodingSlot> server_;
};

TEST_F(CaptureTest, PartitionedTableCreatedByTidemarkLosesNoRowWhereverItIsStored) {
  createMeasurements();
  const auto config = writeConfig(fastChecks(TidemarkConfig({"public.measurements"})));
  ASSERT_NO_FATAL_FAILURE(initPipeline(config));
  EXPECT_EQ(scalar("SELECT pubviaroot::text FROM pg_publication WHERE pubname = 't1_pub'"), "true");
  server();

  std::unique_ptr<Process> run;
  ASSERT_NO_FATAL_FAILURE(startStreaming(config, run));
  sql("INSERT INTO measurements VALUES (1, 5, 'through the parent')");
  sql("INSERT INTO m2 VALUES (2, 150, 'into a partition')");
  sql("UPDATE measurements SET ts = 160 WHERE id = 1");  // moves from m1 to m2
  sql("UPDATE m2 SET v = 'in place' WHERE id = 2");
  // A partition attached while running.
  sql("CREATE TABLE m3 (id int NOT NULL, ts int NOT NULL, v text)");
  sql("ALTER TABLE m3 ADD PRIMARY KEY (id, ts)");
  sql("ALTER TABLE measurements ATTACH PARTITION m3 FOR VALUES FROM (200) TO (300)");
  sql("INSERT INTO measurements VALUES (3, 250, 'into an attached partition')");
  sql("DELETE FROM m3 WHERE id = 3");
  std::vector<DecodedChange> expected = serverChanges({"public.m1", "public.m2", "public.m3"}, "public.measurements");
  ASSERT_EQ(expected.size(), 7u);  // the move is a delete and an insert

  // A partition detached while running is no longer the table: its rows are not captured.
  sql("ALTER TABLE measurements DETACH PARTITION m1");
  sql("INSERT INTO m1 VALUES (4, 50, 'detached')");
  sql("INSERT INTO measurements VALUES (5, 110, 'after the detach')");
  std::vector<DecodedChange> after = serverChanges({"public.m2"}, "public.measurements");
  expected.insert(expected.end(), after.begin(), after.end());

  ASSERT_EVENTUALLY(events("public.measurements").size() >= 8, 30s) << run->describe();
  run->signal(SIGTERM);
  RunResult r = finish(*run);
  ASSERT_EQ(r.exitCode, 0) << r.description;

  auto ev = events("public.measurements");
  EXPECT_TRUE(sameChanges(expected, ev, {"id", "ts"})) << r.description;
  for (const auto& e : ev) {
    EXPECT_EQ(e["source"]["table"], "measurements");
    EXPECT_EQ(e["source"]["schema"], "public");
  }
  EXPECT_TRUE(events("public.m1").empty() && events("public.m2").empty() && events("public.m3").empty());
}

TEST_F(CaptureTest, PublicationWithoutThePartitionRootIsRefusedWithTheFixThenWorks) {
  createMeasurements();
  sql("CREATE PUBLICATION t1_pub FOR TABLE measurements");  // publish_via_partition_root off
  const auto config = writeConfig(TidemarkConfig({"public.measurements"}));
  const std::string fix = "ALTER PUBLICATION \"t1_pub\" SET (publish_via_partition_root = true);";

  RunResult r = runUntil(config, currentLsn());
  EXPECT_EQ(r.exitCode, kExitConfig) << r.description;
  EXPECT_TRUE(contains(r.err, "under its partitions' names"));
  EXPECT_TRUE(contains(r.err, fix));
  EXPECT_FALSE(slotExists()) << "a slot was created for a pipeline that cannot capture its table";

  const json captured = checkEntry(config, "captured_tables");
  EXPECT_EQ(captured["outcome"], "fail") << captured.dump();
  EXPECT_TRUE(contains(captured.value("fix", ""), fix));

  sql(fix);
  ASSERT_NO_FATAL_FAILURE(initPipeline(config));
  sql("INSERT INTO m1 VALUES (1, 5, 'a')");
  r = runUntil(config, currentLsn());
  ASSERT_EQ(r.exitCode, 0) << r.description;
  ASSERT_EQ(events("public.measurements").size(), 1u) << r.description;
}

TEST_F(CaptureTest, SetupApplySwitchesAnExistingPublicationToThePartitionRootTwice) {
  createMeasurements();
  sql("CREATE PUBLICATION t1_pub FOR TABLE measurements");
  const auto config = writeConfig(TidemarkConfig({"public.measurements"}));
  for (int i = 0; i < 2; ++i) {
    RunResult s = runTidemark({"setup", "-c", config.string(), "--apply"});
    ASSERT_EQ(s.exitCode, 0) << "setup --apply run " << i + 1 << "\n" << s.description;
  }
  EXPECT_EQ(scalar("SELECT pubviaroot::text FROM pg_publication WHERE pubname = 't1_pub'"), "true");
  ASSERT_NO_FATAL_FAILURE(initPipeline(config));
  sql("INSERT INTO measurements VALUES (1, 150, 'b')");
  RunResult r = runUntil(config, currentLsn());
  ASSERT_EQ(r.exitCode, 0) << r.description;
  ASSERT_EQ(events("public.measurements").size(), 1u) << r.description;
}

// Publication options are read as they were when a change was written. Rows written while
// the root was off come under the partition's own name, even after it is back on.
TEST_F(CaptureTest, RowsWrittenUnderAPartitionsNameGoToTheCapturedParent) {
  createMeasurements();
  const auto config = writeConfig(TidemarkConfig({"public.measurements"}));
  ASSERT_NO_FATAL_FAILURE(initPipeline(config));
  server();
  sql("ALTER PUBLICATION t1_pub SET (publish_via_partition_root = false)");
  sql("INSERT INTO m1 VALUES (1, 5, 'under m1')");
  sql("ALTER PUBLICATION t1_pub SET (publish_via_partition_root = true)");
  sql("INSERT INTO m1 VALUES (2, 6, 'under measurements')");

  RunResult r = runUntil(config, currentLsn());
  ASSERT_EQ(r.exitCode, 0) << r.description;
  EXPECT_TRUE(sameChanges(serverChanges({"public.m1"}, "public.measurements"), events("public.measurements"),
                          {"id", "ts"}))
      << r.description;
  EXPECT_TRUE(contains(r.err, "a partition of captured table public.measurements"));
}

TEST_F(CaptureTest, TableThatLeavesThePublicationWhileRunningStopsWithExitThree) {
  sql("CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY)");
  const auto config = writeConfig(fastChecks(TidemarkConfig({"public.a", "public.b"})));
  ASSERT_NO_FATAL_FAILURE(initPipeline(config));
  std::unique_ptr<Process> run;
  ASSERT_NO_FATAL_FAILURE(startStreaming(config, run));
  sql("INSERT INTO b VALUES (1)");
  ASSERT_EVENTUALLY(events("public.b").size() == 1, 30s) << run->describe();

  sql("ALTER PUBLICATION t1_pub DROP TABLE b");
  sql("INSERT INTO b VALUES (2)");  // not in the stream: the hole
  RunResult r = finish(*run, 30s);
  ASSERT_EQ(r.exitCode, kExitPositionLost) << r.description;
  EXPECT_TRUE(contains(r.err, "captured table public.b is no longer in publication \"t1_pub\""));
  EXPECT_TRUE(contains(r.err, "ALTER PUBLICATION \"t1_pub\" ADD TABLE \"public\".\"b\";"));
  StatusResult st = status(config);
  ASSERT_TRUE(st.json) << st.description;
  EXPECT_EQ((*st.json)["state"], "failed") << st.description;
  // check says the same, with the same fix.
  const json captured = checkEntry(config, "captured_tables");
  EXPECT_EQ(captured["outcome"], "fail") << captured.dump();
  EXPECT_TRUE(contains(captured.value("saw", ""), "no longer in publication \"t1_pub\"\n(tidemark run stops with exit 3)"));
  EXPECT_TRUE(contains(captured.value("fix", ""), "ALTER PUBLICATION \"t1_pub\" ADD TABLE \"public\".\"b\";"));

  // Run again refuses while the table is out; put back, it goes on from where it was.
  RunResult again = runUntil(config, currentLsn());
  EXPECT_EQ(again.exitCode, kExitPositionLost) << again.description;
  sql("ALTER PUBLICATION t1_pub ADD TABLE b");
  sql("INSERT INTO b VALUES (3)");
  RunResult after = runUntil(config, currentLsn());
  ASSERT_EQ(after.exitCode, 0) << after.description;
  auto ev = events("public.b");
  ASSERT_EQ(ev.size(), 2u) << after.description;
  EXPECT_EQ(ev[0]["after"]["id"], 1);
  EXPECT_EQ(ev[1]["after"]["id"], 3);
}

TEST_F(CaptureTest, TableDroppedAndCreatedAgainStopsUntilTheNewOneIsAccepted) {
  sql("CREATE TABLE a (id int PRIMARY KEY)");
  const auto config = writeConfig(fastChecks(TidemarkConfig({"public.a"})));
  ASSERT_NO_FATAL_FAILURE(initPipeline(config));
  std::unique_ptr<Process> run;
  ASSERT_NO_FATAL_FAILURE(startStreaming(config, run));
  sql("INSERT INTO a VALUES (1)");
  ASSERT_EVENTUALLY(events("public.a").size() == 1, 30s) << run->describe();

  // A migration tool re-creating the table: the new one is in no publication.
  sql("DROP TABLE a; CREATE TABLE a (id int PRIMARY KEY, note text)");
  sql("INSERT INTO a VALUES (2, 'lost')");
  RunResult r = finish(*run, 30s);
  ASSERT_EQ(r.exitCode, kExitPositionLost) << r.description;
  EXPECT_TRUE(contains(r.err, "captured table public.a was dropped and created again"));
  EXPECT_TRUE(contains(r.err, "--accept-recreated public.a"));

  sql("ALTER PUBLICATION t1_pub ADD TABLE a");
  RunResult refused = runUntil(config, currentLsn());
  EXPECT_EQ(refused.exitCode, kExitPositionLost) << "a new table was taken without being accepted\n"
                                                 << refused.description;
  RunResult accepted =
      runTidemark({"run", "-c", config.string(), "--accept-recreated", "public.a", "--until-lsn", currentLsn()});
  ASSERT_EQ(accepted.exitCode, 0) << accepted.description;
  EXPECT_TRUE(contains(accepted.err, "capturing public.a as relation"));
  sql("INSERT INTO a VALUES (3, 'new table')");
  RunResult after = runUntil(config, currentLsn());
  ASSERT_EQ(after.exitCode, 0) << after.description;
  auto ev = events("public.a");
  ASSERT_EQ(ev.size(), 2u) << after.description;
  EXPECT_EQ(ev[1]["after"]["id"], 3);
  EXPECT_EQ(ev[1]["after"]["note"], "new table");
}

TEST_F(CaptureTest, TableRenamedWhileRunningLosesNothingAndStopsUntilNamedBack) {
  sql("CREATE TABLE b (id int PRIMARY KEY)");
  const auto config = writeConfig(fastChecks(TidemarkConfig({"public.b"})));
  ASSERT_NO_FATAL_FAILURE(initPipeline(config));
  server();
  std::unique_ptr<Process> run;
  ASSERT_NO_FATAL_FAILURE(startStreaming(config, run));
  sql("INSERT INTO b VALUES (1)");
  sql("ALTER TABLE b RENAME TO b2");
  sql("INSERT INTO b2 VALUES (2)");
  RunResult r = finish(*run, 30s);
  ASSERT_EQ(r.exitCode, kExitPositionLost) << r.description;
  EXPECT_TRUE(contains(r.err, "captured table public.b was renamed: relation"));
  EXPECT_TRUE(contains(r.err, "is now public.b2"));
  EXPECT_TRUE(contains(r.err, "ALTER TABLE \"public\".\"b2\" RENAME TO \"b\";"));

  sql("ALTER TABLE b2 RENAME TO b");
  sql("INSERT INTO b VALUES (3)");
  RunResult after = runUntil(config, currentLsn());
  ASSERT_EQ(after.exitCode, 0) << after.description;
  // Every change the server decoded, under the captured table's name and topic.
  EXPECT_TRUE(sameChanges(serverChanges({"public.b", "public.b2"}, "public.b"), events("public.b"), {"id"}));
  EXPECT_TRUE(events("public.b2").empty());
}

TEST_F(CaptureTest, ChangesOfTablesPublishedButNotCapturedAreSkippedSaidOnceAndCounted) {
  sql("CREATE TABLE orders (id int PRIMARY KEY); CREATE TABLE audit (id int PRIMARY KEY)");
  sql("CREATE PUBLICATION t1_pub FOR ALL TABLES");
  const auto config = writeConfig(TidemarkConfig({"public.orders"}));
  ASSERT_NO_FATAL_FAILURE(initPipeline(config));
  sql("INSERT INTO audit VALUES (1); INSERT INTO audit VALUES (2); INSERT INTO audit VALUES (3)");
  sql("INSERT INTO orders VALUES (1)");
  RunResult r = runUntil(config, currentLsn());
  ASSERT_EQ(r.exitCode, 0) << r.description;
  EXPECT_EQ(events("public.orders").size(), 1u);
  EXPECT_EQ(recordsWith(r.err, {"skipping the changes of public.audit"}).size(), 1u) << r.err;
  StatusResult st = status(config);
  ASSERT_TRUE(st.json) << st.description;
  EXPECT_EQ(jsonAt(*st.json, "events.skipped"), json(3)) << st.description;
  EXPECT_EQ(jsonAt(*st.json, "events.skipped_tables"), json({{"public.audit", 3}})) << st.description;
}

TEST_F(CaptureTest, TablesWhoseNamesMakeOneTopicAreRefusedUntilOneHasATopicOfItsOwn) {
  std::string a, b;
  for (int i = 0; i < 21; ++i) {
    a += "\xe8\xa1\xa8";  // 表: 21 of them fill 63 bytes, and make 21 underscores
    b += "\xe4\xb8\xad";  // 中
  }
  sql("CREATE TABLE \"" + a + "\" (id int PRIMARY KEY); CREATE TABLE \"" + b + "\" (id int PRIMARY KEY)");
  const std::vector<std::string> tables = {"'\"" + a + "\"'", "'\"" + b + "\"'"};
  RunResult r = runUntil(writeConfig(TidemarkConfig(tables)), currentLsn());
  EXPECT_EQ(r.exitCode, kExitConfig) << r.description;
  EXPECT_TRUE(contains(r.err, "would both write topic"));
  EXPECT_TRUE(contains(r.err, "source.topics"));

  const auto config = writeConfig(TidemarkConfig(tables).withSourceExtra("topics: {'\"" + b + "\"': t1.public.zhong}"));
  ASSERT_NO_FATAL_FAILURE(initPipeline(config));
  sql("INSERT INTO \"" + a + "\" VALUES (1); INSERT INTO \"" + b + "\" VALUES (2)");
  r = runUntil(config, currentLsn());
  ASSERT_EQ(r.exitCode, 0) << r.description;
  auto zhong = readJsonLines(outDir() / "t1.public.zhong.jsonl");
  auto biao = readJsonLines(outDir() / ("t1.public." + std::string(21, '_') + ".jsonl"));
  ASSERT_EQ(zhong.size(), 1u);
  ASSERT_EQ(biao.size(), 1u);
  EXPECT_EQ(zhong[0]["after"]["id"], 2);
  EXPECT_EQ(zhong[0]["source"]["table"], b);
  EXPECT_EQ(biao[0]["after"]["id"], 1);
}

}  // namespace
}  // namespace tidemark::test
