// The initial snapshot: the rows the tables held before the pipeline's first run, read while
// the tables keep changing, then the stream, with nothing missed and nothing doubled; the
// modes; an interrupted snapshot resumed.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <iostream>
#include <map>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "support/assertions.h"
#include "support/background_writer.h"
#include "support/pipeline_fixture.h"
#include "support/replay.h"
#include "support/poll.h"

namespace tidemark::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

class SnapshotTest : public PgPipelineTest {
 protected:
  std::map<int, std::string> replayed(const std::string& table) { return replayIdVNote(events(table)); }
  std::map<int, std::string> sourceRows(const std::string& table) { return idVNoteRows(sql("SELECT id, v, note FROM " + table)); }
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

  EXPECT_TRUE(sameRows(replayed("public.s"), sourceRows("s")));
  std::map<int, int> seen;
  for (const json& e : events("public.ledger")) ++seen[e["after"]["id"].get<int>()];
  EXPECT_EQ(seen.size(), 1600u);
  for (const auto& [id, n] : seen) ASSERT_EQ(n, 1) << "ledger row " << id << " arrived " << n << " times";

  // Debezium's markers: the first read in the log "first", the last "last"; each table's first
  // "first_in_data_collection" and its last "last_in_data_collection", unless it is one of those.
  // The two tables are read side by side (source.snapshot.max_threads 2), so which table has
  // "first" and which "last" depends on the readers' pace.
  std::map<std::string, int> counts;
  for (const std::string table : {"public.s", "public.ledger"}) {
    std::vector<std::string> markers;
    for (const json& e : events(table)) {
      if (e["op"] == "r") markers.push_back(e["source"]["snapshot"].get<std::string>());
    }
    ASSERT_GE(markers.size(), 2u) << table;
    EXPECT_TRUE(markers.front() == "first" || markers.front() == "first_in_data_collection") << table;
    EXPECT_TRUE(markers.back() == "last" || markers.back() == "last_in_data_collection") << table;
    for (size_t i = 1; i + 1 < markers.size(); ++i) ASSERT_EQ(markers[i], "true") << table << " read " << i;
    for (const auto& m : markers) ++counts[m];
  }
  EXPECT_EQ(counts["first"], 1);
  EXPECT_EQ(counts["last"], 1);
  EXPECT_EQ(counts["first_in_data_collection"], 1);
  EXPECT_EQ(counts["last_in_data_collection"], 1);
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

// Killed mid-snapshot three times, with changes in between: each next run goes on after the
// last rows the change log holds, rereading at most a chunk per table, and the result is the
// source's rows. The second table has a two-column key, one of them text with a quote, a
// double quote and a comma in it, which the resumed read binds as parameters.
TEST_F(SnapshotTest, AKilledSnapshotResumesAfterItsLastChunk) {
  constexpr int kChunk = 500;
  sql("CREATE TABLE s (id int PRIMARY KEY, v int NOT NULL, note text NOT NULL)");
  sql("INSERT INTO s SELECT i, i, repeat('x', 200) FROM generate_series(1, 200000) i");
  sql("CREATE TABLE pair (a text, b int, v int NOT NULL, PRIMARY KEY (a, b))");
  sql("INSERT INTO pair SELECT 'k''\"' || (i % 13) || ',', i, i FROM generate_series(1, 50000) i");
  // Estimated, each table is read in two ranges of its key by the two readers: four parts,
  // each resumed on its own.
  sql("ANALYZE s, pair");
  const auto config = writeConfig(TidemarkConfig({"public.s", "public.pair"}).withSnapshot("initial", kChunk));
  auto written = [&] {
    uintmax_t bytes = 0;
    for (const std::string t : {"public.s", "public.pair"}) {
      std::error_code ec;
      const uintmax_t n = std::filesystem::file_size(topicFile(t), ec);
      bytes += ec ? 0 : n;
    }
    return bytes;
  };
  for (int kill = 0; kill < 3; ++kill) {
    const uintmax_t before = written();
    std::unique_ptr<Process> run = startRun(config);
    ASSERT_EVENTUALLY(written() > before + (1u << 20), 60s) << run->describe();
    run->signal(SIGKILL);
    RunResult killed = finish(*run);
    if (kill > 0) {
      EXPECT_TRUE(contains(killed.err, "initial snapshot resumed")) << killed.err;
    } else {
      EXPECT_TRUE(contains(killed.err, "public.s is read in 2 ranges of its key")) << killed.err;
      EXPECT_TRUE(contains(killed.err, "public.pair is read in 2 ranges of its key")) << killed.err;
    }
    EXPECT_FALSE(contains(killed.err, "initial snapshot done")) << "killed too late: " << killed.err;
    sql("UPDATE s SET v = -v WHERE id % 997 = " + std::to_string(kill));
    sql("DELETE FROM pair WHERE b % 101 = " + std::to_string(kill));
    sql("INSERT INTO s VALUES (" + std::to_string(300000 + kill) + ", 1, 'new')");
  }
  RunResult again = runUntil(config, currentLsn());
  ASSERT_EQ(again.exitCode, 0) << again.description;
  EXPECT_TRUE(contains(again.err, "did not finish")) << again.err;
  EXPECT_TRUE(sameRows(replayed("public.s"), sourceRows("s")));
  std::map<std::string, int> pair;
  for (const json& e : events("public.pair")) {
    const json& row = e["op"] == "d" ? e["before"] : e["after"];
    const std::string key = row["a"].get<std::string>() + "/" + std::to_string(row["b"].get<int>());
    if (e["op"] == "d") pair.erase(key);
    else pair[key] = row["v"].get<int>();
  }
  std::map<std::string, int> source_pair;
  for (const auto& r : sql("SELECT a, b, v FROM pair")) source_pair[*r[0] + "/" + *r[1]] = std::stoi(*r[2]);
  EXPECT_TRUE(sameRows(pair, source_pair));
  // Rows read twice: at most a chunk per table per kill (the writer commits each chunk).
  for (const std::string table : {"public.s", "public.pair"}) {
    std::map<std::string, int> reads;
    for (const json& e : events(table)) {
      if (e["op"] == "r") ++reads[e["after"].dump()];
    }
    size_t twice = 0;
    for (const auto& [row, n] : reads) twice += static_cast<size_t>(n - 1);
    EXPECT_LE(twice, 3u * kChunk) << table;
    std::cout << table << ": " << reads.size() << " row(s) read, " << twice << " of them twice\n";
  }
}

// when_needed: the slot dropped while tidemark was stopped, with changes before and after the
// drop. The next run says the position was lost, makes a new slot, reads every table again and
// streams on from there; the replayed events equal the source (no row was deleted in the gap:
// those would stay), and status counts the rebuild.
TEST_F(SnapshotTest, WhenNeededStartsOverWithANewSlotAndAFullRead) {
  sql("CREATE TABLE s (id int PRIMARY KEY, v int NOT NULL, note text NOT NULL)");
  sql("INSERT INTO s SELECT i, i, 'row ' || i FROM generate_series(1, 1000) i");
  const auto config = writeConfig(TidemarkConfig({"public.s"}).withSnapshot("when_needed", 100));
  RunResult first = runUntil(config, currentLsn());
  ASSERT_EQ(first.exitCode, 0) << first.description;
  sql("UPDATE s SET v = -v WHERE id % 10 = 0");
  sql("SELECT pg_drop_replication_slot('" + slot() + "')");
  sql("UPDATE s SET note = 'gap' WHERE id % 7 = 0");
  sql("INSERT INTO s SELECT i, i, 'gap' FROM generate_series(1001, 1100) i");
  RunResult rebuilt = runUntil(config, currentLsn());
  ASSERT_EQ(rebuilt.exitCode, 0) << rebuilt.description;
  EXPECT_TRUE(contains(rebuilt.err, "does not exist any more")) << rebuilt.err;
  EXPECT_TRUE(contains(rebuilt.err, "source.snapshot.mode is when_needed")) << rebuilt.err;
  EXPECT_TRUE(slotExists());
  StatusResult st = status(config);
  ASSERT_TRUE(st.json) << st.description;
  EXPECT_EQ((*st.json)["positions"]["rebuilds"], 1) << st.json->dump();
  EXPECT_EQ((*st.json)["snapshot"]["reason"], "position_lost") << st.json->dump();
  EXPECT_EQ((*st.json)["snapshot"]["rows"], 1100) << st.json->dump();
  // Streamed from the new slot.
  sql("DELETE FROM s WHERE id % 3 = 0");
  sql("UPDATE s SET v = 0 WHERE id = 1");
  RunResult after = runUntil(config, currentLsn());
  ASSERT_EQ(after.exitCode, 0) << after.description;
  EXPECT_FALSE(contains(after.err, "initial snapshot")) << after.err;
  EXPECT_TRUE(sameRows(replayed("public.s"), sourceRows("s")));
  st = status(config);
  ASSERT_TRUE(st.json) << st.description;
  EXPECT_EQ((*st.json)["positions"]["rebuilds"], 1) << st.json->dump();
}

// always: every start reads the tables again; what they held then is not streamed as well.
TEST_F(SnapshotTest, AlwaysReadsAtEachStart) {
  sql("CREATE TABLE s (id int PRIMARY KEY, v int NOT NULL, note text NOT NULL)");
  sql("INSERT INTO s SELECT i, i, 'row ' || i FROM generate_series(1, 10) i");
  const auto config = writeConfig(TidemarkConfig({"public.s"}).withSnapshot("always"));
  RunResult first = runUntil(config, currentLsn());
  ASSERT_EQ(first.exitCode, 0) << first.description;
  sql("INSERT INTO s VALUES (11, 11, 'between')");
  sql("UPDATE s SET v = 0 WHERE id = 1");
  RunResult second = runUntil(config, currentLsn());
  ASSERT_EQ(second.exitCode, 0) << second.description;
  std::map<std::string, int> ops;
  for (const json& e : events("public.s")) ++ops[e["op"].get<std::string>()];
  EXPECT_EQ(ops, (std::map<std::string, int>{{"r", 21}})) << "the changes between are in the second read only";
  EXPECT_TRUE(sameRows(replayed("public.s"), sourceRows("s")));
  const StatusResult st = status(config);
  ASSERT_TRUE(st.json) << st.description;
  EXPECT_EQ((*st.json)["snapshot"]["reason"], "always") << st.json->dump();
}

}  // namespace
}  // namespace tidemark::test
