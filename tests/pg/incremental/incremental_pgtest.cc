// Incremental snapshots: tables read again while the stream goes on, asked for by `tidemark
// snapshot` (through the signal table, or a file for a read-only source) or a row written
// into the signal table; filters, stop, pause and resume, malformed and hostile requests,
// restarts. Each ends with the table, as its events leave it, equal to the source.
#include <gtest/gtest.h>
#include <signal.h>

#include <limits>
#include <map>
#include <regex>
#include <string>

#include <nlohmann/json.hpp>

#include "support/assertions.h"
#include "support/background_writer.h"
#include "support/destination_fixture.h"
#include "support/pipeline_fixture.h"
#include "support/replay.h"
#include "support/poll.h"

namespace tidemark::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

class IncrementalTest : public PgDestinationTest {
 protected:
  std::map<int, std::string> replayed(const std::string& table) { return replayIdVNote(events(table)); }
  std::map<int, std::string> sourceRows(const std::string& table) { return idVNoteRows(sql("SELECT id, v, note FROM " + table)); }
  size_t reads(const std::string& table) {
    size_t n = 0;
    for (const json& e : events(table)) n += e["op"] == "r" ? 1 : 0;
    return n;
  }
  // As tidemark setup does: run then adds it to the publication.
  void createSignalTable() {
    sql("CREATE SCHEMA IF NOT EXISTS tidemark");
    sql("CREATE TABLE tidemark.tidemark_signal (id varchar(42) PRIMARY KEY, type varchar(32) NOT NULL, "
        "data varchar(2048))");
  }
  void createTable(const std::string& name, int rows) {
    sql("CREATE TABLE " + name + " (id int PRIMARY KEY, v int NOT NULL, note text NOT NULL)");
    sql("INSERT INTO " + name + " SELECT i, i, 'row ' || i FROM generate_series(1, " + std::to_string(rows) + ") i");
  }
  RunResult snapshot(const std::filesystem::path& config, std::vector<std::string> args) {
    args.insert(args.begin(), {"snapshot", "-c", config.string()});
    return runTidemark(args);
  }
  // Waits until status says the incremental snapshot is `state` ("done", "paused").
  ::testing::AssertionResult incrementalState(const std::filesystem::path& config, const std::string& state,
                                              std::chrono::milliseconds deadline = 120s) {
    StatusResult last;
    std::string trail;
    if (statusEventually(
            config,
            [&](const StatusResult& s) {
              return s.json && (*s.json)["incremental_snapshot"].is_object() &&
                     (*s.json)["incremental_snapshot"]["state"] == state;
            },
            deadline, &last, &trail)) {
      return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure() << "incremental snapshot never " << state << "\n" << describeStatus(last, trail);
  }
  // Stops a streaming run once the slot has everything committed so far.
  void stopAfterCatchingUp(const std::filesystem::path& config, std::unique_ptr<Process>& run) {
    run->signal(SIGTERM);
    RunResult stopped = finish(*run);
    ASSERT_EQ(stopped.exitCode, 0) << stopped.description;
    RunResult rest = runUntil(config, currentLsn());
    ASSERT_EQ(rest.exitCode, 0) << rest.description;
  }
};

// The table is read in chunks of 500 while another connection changes it all along (updates,
// deletes, inserts, a key inserted and deleted in one transaction) and a second table: at the end the
// table as its events leave it equals the source, and the rows nobody changed came as reads.
TEST_F(IncrementalTest, ReadWhileStreamingEqualsTheSource) {
  createTable("big", 30000);
  createTable("busy", 10);
  createSignalTable();
  const auto config = writeConfig(TidemarkConfig({"public.big", "public.busy"}).withSnapshot("never", 500));
  std::unique_ptr<Process> run;
  ASSERT_NO_FATAL_FAILURE(startStreaming(config, run));
  {
    BackgroundWriter writer(pg().dsn(db()), [](int64_t n) {
      const std::string i = std::to_string(n);
      return "UPDATE big SET v = v + 1, note = 'updated " + i + "' WHERE id = " + std::to_string(1 + (n * 7919) % 30000) +
             "; DELETE FROM big WHERE id = " + std::to_string(1 + (n * 104729) % 30000) +
             "; INSERT INTO big VALUES (" + std::to_string(100000 + n) + ", 0, 'new " + i + "')" +
             "; INSERT INTO big VALUES (-1, 0, 'gone'); DELETE FROM big WHERE id = -1" +
             "; UPDATE busy SET v = v + 1 WHERE id = " + std::to_string(1 + n % 10);
    }, std::numeric_limits<int64_t>::max(), 2ms);
    RunResult asked = snapshot(config, {"public.big"});
    ASSERT_EQ(asked.exitCode, 0) << asked.description;
    EXPECT_TRUE(contains(asked.out, "written to tidemark.tidemark_signal")) << asked.out;
    ASSERT_TRUE(incrementalState(config, "done")) << run->describe();
    writer.stop();
    ASSERT_EQ(writer.error(), "");
    EXPECT_GT(writer.committed(), 100);
  }
  ASSERT_NO_FATAL_FAILURE(stopAfterCatchingUp(config, run));
  EXPECT_TRUE(sameRows(replayed("public.big"), sourceRows("big")));
  // Rows nobody touched arrive only as reads, marked incremental.
  size_t marked = 0;
  for (const json& e : events("public.big")) {
    if (e["op"] == "r") marked += e["source"]["snapshot"] == "incremental" ? 1 : 0;
  }
  EXPECT_GE(marked, 25000u);
  EXPECT_EQ(marked, reads("public.big"));
  EXPECT_EQ(reads("public.busy"), 0u);
}

// Into a PostgreSQL destination (a second server), compared by `tidemark verify`: 200,000 rows
// read by two readers in two ranges of the key while another connection updates, deletes,
// inserts, and inserts and deletes one key; then the destination's table emptied (a rebuilt
// destination) and read again incrementally while the changes go on.
TEST_F(IncrementalTest, AnInitialAndAnIncrementalSnapshotIntoADestinationVerifyEqual) {
  createTable("big", 200000);
  sql("ANALYZE big");
  const auto config = writeConfig(
      TidemarkConfig({"public.big"}).withSnapshot("initial", 5000).withSinks(sink("dest", "upsert")));
  auto workload = [](int64_t from) {  // the nth change of a run that began at `from`
    return [from](int64_t n) {
      const std::string i = std::to_string(n + from);
      return "UPDATE big SET v = v + 1, note = 'updated " + i + "' WHERE id = " +
             std::to_string(1 + ((n + from) * 7919) % 200000) +
             "; DELETE FROM big WHERE id = " + std::to_string(1 + ((n + from) * 104729) % 200000) +
             "; INSERT INTO big VALUES (" + std::to_string(300000 + n + from) + ", 0, 'new " + i + "')" +
             "; INSERT INTO big VALUES (-1, 0, 'gone'); DELETE FROM big WHERE id = -1";
    };
  };
  std::unique_ptr<Process> run = startRun(config);
  {
    BackgroundWriter writer(pg().dsn(db()), workload(0), std::numeric_limits<int64_t>::max(), 2ms);
    ASSERT_EVENTUALLY(contains(run->stderrText(), "initial snapshot done"), 180s) << run->describe();
    writer.stop();
    ASSERT_EQ(writer.error(), "");
    EXPECT_GT(writer.committed(), 20);
  }
  EXPECT_TRUE(contains(run->stderrText(), "public.big is read in 2 ranges of its key")) << run->describe();
  ASSERT_NO_FATAL_FAILURE(stopAfterCatchingUp(config, run));
  EXPECT_TRUE(sameAtDestination("public.big"));
  EXPECT_TRUE(verifiedEqual(config));

  dest("TRUNCATE public.big");
  ASSERT_NO_FATAL_FAILURE(startStreaming(config, run));
  {
    BackgroundWriter writer(pg().dsn(db()), workload(50000), std::numeric_limits<int64_t>::max(), 2ms);
    RunResult asked = snapshot(config, {"public.big"});
    ASSERT_EQ(asked.exitCode, 0) << asked.description;
    ASSERT_TRUE(incrementalState(config, "done", 180s)) << run->describe();
    writer.stop();
    ASSERT_EQ(writer.error(), "");
    EXPECT_GT(writer.committed(), 20);
  }
  ASSERT_NO_FATAL_FAILURE(stopAfterCatchingUp(config, run));
  EXPECT_TRUE(sameAtDestination("public.big"));
  EXPECT_TRUE(verifiedEqual(config));
}

// additional-conditions: only the rows the filter holds for. A filter that tries to end the
// statement is refused by `tidemark snapshot`, and in a signal row it is refused and counted
// while the stream goes on; malformed and unknown signals likewise. The table is still there.
TEST_F(IncrementalTest, FiltersReadOnlyTheirRowsAndHostileSignalsAreRefused) {
  createTable("big", 2000);
  createSignalTable();
  const auto config = writeConfig(TidemarkConfig({"public.big"}).withSnapshot("never", 300));
  std::unique_ptr<Process> run;
  ASSERT_NO_FATAL_FAILURE(startStreaming(config, run));

  RunResult hostile = snapshot(config, {"public.big", "--where", "1=1; DROP TABLE big"});
  EXPECT_NE(hostile.exitCode, 0) << hostile.description;
  EXPECT_TRUE(contains(hostile.err, "--where has a ';'")) << hostile.err;
  RunResult uncaptured = snapshot(config, {"public.nope"});
  EXPECT_NE(uncaptured.exitCode, 0);
  EXPECT_TRUE(contains(uncaptured.err, "public.nope is not in source.tables")) << uncaptured.err;

  sql(R"(INSERT INTO tidemark.tidemark_signal VALUES ('bad-1', 'execute-snapshot', '{"data-collections": ["public.big"], "additional-conditions": [{"data-collection": "public.big", "filter": "id < 5); DROP TABLE big; --"}]}'))");
  sql("INSERT INTO tidemark.tidemark_signal VALUES ('bad-2', 'execute-snapshot', 'not json')");
  sql("INSERT INTO tidemark.tidemark_signal VALUES ('bad-3', 'launch-rockets', '{}')");
  RunResult filtered = snapshot(config, {"public.big", "--where", "id % 10 = 0"});
  ASSERT_EQ(filtered.exitCode, 0) << filtered.description;
  ASSERT_TRUE(incrementalState(config, "done")) << run->describe();
  StatusResult st = status(config);
  ASSERT_TRUE(st.json) << st.description;
  EXPECT_EQ((*st.json)["signals"]["refused"], 3) << st.json->dump();
  EXPECT_TRUE(contains((*st.json)["signals"]["last_error"].dump(), "unknown signal type")) << st.json->dump();
  sql("UPDATE big SET v = -1 WHERE id = 7");
  ASSERT_NO_FATAL_FAILURE(stopAfterCatchingUp(config, run));
  std::map<int, std::string> want;
  for (const auto& [id, row] : sourceRows("big")) {
    if (id % 10 == 0) want[id] = row;
  }
  want[7] = "-1|row 7";  // streamed
  EXPECT_TRUE(sameRows(replayed("public.big"), want));
  EXPECT_EQ(reads("public.big"), 200u);
  EXPECT_EQ(scalar("SELECT count(*) FROM big"), "2000");
}

// Paused, the snapshot reads nothing more until resumed; stopped, it ends. Both survive in
// the stored position, and a restart goes on after the last chunk written. Without a signal
// table, the requests go through files.
TEST_F(IncrementalTest, PauseResumeStopAndRestart) {
  createTable("big", 20000);
  const auto config = writeConfig(TidemarkConfig({"public.big"}).withSnapshot("never", 200));
  std::unique_ptr<Process> run;
  ASSERT_NO_FATAL_FAILURE(startStreaming(config, run));
  // No signal table here: the requests are files in the state directory.
  RunResult asked = snapshot(config, {"public.big"});
  ASSERT_EQ(asked.exitCode, 0) << asked.description;
  EXPECT_TRUE(contains(asked.out, "there is no signal table")) << asked.out;
  ASSERT_EQ(snapshot(config, {"--pause"}).exitCode, 0);
  ASSERT_TRUE(incrementalState(config, "paused")) << run->describe();
  const size_t paused_at = reads("public.big");
  EXPECT_LT(paused_at, 20000u);

  // Killed while paused: the next run is still paused, at the same place.
  run->signal(SIGKILL);
  finish(*run);
  ASSERT_NO_FATAL_FAILURE(startStreaming(config, run));
  ASSERT_TRUE(incrementalState(config, "paused")) << run->describe();
  EXPECT_EQ(reads("public.big"), paused_at);

  ASSERT_EQ(snapshot(config, {"--resume"}).exitCode, 0);
  // Killed again mid-way once it moved on; the next run goes on after the last chunk.
  ASSERT_EVENTUALLY(reads("public.big") > paused_at + 1000 || !run->running(), 60s) << run->describe();
  run->signal(SIGKILL);
  finish(*run);
  ASSERT_NO_FATAL_FAILURE(startStreaming(config, run));
  ASSERT_TRUE(incrementalState(config, "done")) << run->describe();
  ASSERT_NO_FATAL_FAILURE(stopAfterCatchingUp(config, run));
  std::map<int, int> read_times;
  for (const json& e : events("public.big")) {
    if (e["op"] == "r") ++read_times[e["after"]["id"].get<int>()];
  }
  EXPECT_EQ(read_times.size(), 20000u);
  size_t twice = 0;
  for (const auto& [id, n] : read_times) twice += static_cast<size_t>(n - 1);
  EXPECT_LE(twice, 2u * 200u) << "at most a chunk again per kill";

  // Stopped: a new snapshot is asked for, then stopped; status says no snapshot is under way.
  ASSERT_NO_FATAL_FAILURE(startStreaming(config, run));
  ASSERT_EQ(snapshot(config, {"--pause"}).exitCode, 0);
  ASSERT_EQ(snapshot(config, {"public.big"}).exitCode, 0);
  ASSERT_EQ(snapshot(config, {"--stop"}).exitCode, 0);
  ASSERT_EVENTUALLY(contains(run->stderrText(), "incremental snapshot stopped") || !run->running(), 60s)
      << run->describe();
  run->signal(SIGTERM);
  EXPECT_EQ(finish(*run).exitCode, 0);
}

// A read-only source: the request is a file in the state directory, and the server's
// statement log shows no write of tidemark's while the table is read; the result is equal.
TEST_F(IncrementalTest, ReadOnlySourceWritesNothing) {
  createTable("big", 5000);
  sql("CREATE SCHEMA tidemark");
  sql("CREATE TABLE tidemark.tidemark_heartbeat (pipeline text PRIMARY KEY, ts timestamptz NOT NULL)");
  sql("CREATE PUBLICATION t1_pub FOR TABLE big, tidemark.tidemark_heartbeat WITH (publish_via_partition_root = true)");
  const std::string role = "ro_" + db();
  sql("CREATE ROLE " + role + " LOGIN REPLICATION");
  sql("GRANT SELECT ON big, tidemark.tidemark_heartbeat TO " + role);
  sql("GRANT USAGE ON SCHEMA tidemark TO " + role);
  sql("ALTER ROLE " + role + " SET default_transaction_read_only = on");
  setSystem("log_statement", "'all'");
  setSystem("log_line_prefix", "'%m [%p] %u@%d app=%a '");
  const size_t log_start = pg().logSize();

  const auto config = writeConfig(TidemarkConfig({"public.big"})
                                      .withUser(role)
                                      .withSourceExtra("read_only: true")
                                      .withSnapshot("never", 1000));
  std::unique_ptr<Process> run;
  ASSERT_NO_FATAL_FAILURE(startStreaming(config, run));
  RunResult asked = snapshot(config, {"public.big"});
  ASSERT_EQ(asked.exitCode, 0) << asked.description;
  EXPECT_TRUE(contains(asked.out, "left in")) << asked.out;
  sql("UPDATE big SET v = 0 WHERE id % 100 = 0");
  ASSERT_TRUE(incrementalState(config, "done")) << run->describe();
  ASSERT_NO_FATAL_FAILURE(stopAfterCatchingUp(config, run));
  EXPECT_TRUE(sameRows(replayed("public.big"), sourceRows("big")));
  EXPECT_EQ(reads("public.big"), 5000u);

  const std::string log = pg().logSince(log_start);
  const std::regex write(R"(\b(INSERT|UPDATE|DELETE|CREATE|ALTER|DROP|TRUNCATE|pg_logical_emit_message|pg_current_xact_id)\b)",
                         std::regex::icase);
  std::string offending;
  size_t tidemark_lines = 0;
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);) {
    if (line.find(role + "@") == std::string::npos) continue;
    ++tidemark_lines;
    if (line.find("statement:") != std::string::npos && std::regex_search(line, write)) offending += line + "\n";
    if (line.find("read-only transaction") != std::string::npos) offending += line + "\n";
  }
  EXPECT_GT(tidemark_lines, 10u) << "log_statement = all did not take effect?";
  EXPECT_EQ(offending, "") << "tidemark wrote to a read-only source";
}

// Names as hostile as PostgreSQL allows, for the table and its key column: the initial
// snapshot orders and resumes by that key, the incremental one reads it in chunks, and
// every name is quoted: the table that its name tries to drop is still there.
TEST_F(IncrementalTest, HostileNamesAreQuotedEverywhere) {
  const std::string table = R"("we'ird; DROP TABLE keep--")";
  sql("CREATE TABLE keep (id int)");
  sql("CREATE TABLE " + table + R"( ("i""d) --" int PRIMARY KEY, "v, note" text))");
  sql("INSERT INTO " + table + " SELECT i, 'x' || i FROM generate_series(1, 1000) i");
  const auto config =
      writeConfig(TidemarkConfig({R"('public."we''ird; DROP TABLE keep--"')"}).withSnapshot("initial", 100));
  auto readsOfAll = [&] {
    size_t n = 0;
    for (const json& e : allEvents()) n += e.is_object() && e.value("op", "") == "r" ? 1 : 0;
    return n;
  };
  RunResult first = runUntil(config, currentLsn());
  ASSERT_EQ(first.exitCode, 0) << first.description;
  EXPECT_EQ(readsOfAll(), 1000u);
  std::unique_ptr<Process> run;
  ASSERT_NO_FATAL_FAILURE(startStreaming(config, run));
  RunResult asked = snapshot(config, {R"(public."we'ird; DROP TABLE keep--")", "--where", R"("i""d) --" <= 500)"});
  ASSERT_EQ(asked.exitCode, 0) << asked.description;
  ASSERT_TRUE(incrementalState(config, "done")) << run->describe();
  run->signal(SIGTERM);
  EXPECT_EQ(finish(*run).exitCode, 0);
  EXPECT_EQ(readsOfAll(), 1500u);
  EXPECT_EQ(scalar("SELECT count(*) FROM keep"), "0");
}

// A table with no key to read it in chunks by: the request is refused with a message naming
// the table and the ways out, counted in status, and the stream goes on; with a surrogate
// key (a unique column) it is read.
TEST_F(IncrementalTest, AKeylessTableNeedsASurrogateKey) {
  sql("CREATE TABLE nokey (id int NOT NULL UNIQUE, v int NOT NULL, note text NOT NULL)");
  sql("ALTER TABLE nokey REPLICA IDENTITY FULL");
  sql("INSERT INTO nokey SELECT i, i, 'row ' || i FROM generate_series(1, 700) i");
  createSignalTable();
  const auto config = writeConfig(TidemarkConfig({"public.nokey"}).withSnapshot("never", 100));
  std::unique_ptr<Process> run;
  ASSERT_NO_FATAL_FAILURE(startStreaming(config, run));
  ASSERT_EQ(snapshot(config, {"public.nokey"}).exitCode, 0);
  StatusResult last;
  ASSERT_TRUE(statusEventually(
      config, [](const StatusResult& s) { return s.json && (*s.json)["signals"]["refused"] == 1; }, 60s, &last))
      << describeStatus(last) << run->describe();
  const std::string why = (*last.json)["signals"]["last_error"].dump();
  EXPECT_TRUE(contains(why, "public.nokey has no primary key")) << why;
  EXPECT_TRUE(contains(why, "surrogate-key")) << why;
  RunResult keyed = snapshot(config, {"public.nokey", "--surrogate-key", "id"});
  ASSERT_EQ(keyed.exitCode, 0) << keyed.description;
  ASSERT_EVENTUALLY(reads("public.nokey") >= 700u || !run->running(), 60s) << run->describe();
  run->signal(SIGTERM);
  EXPECT_EQ(finish(*run).exitCode, 0);
  EXPECT_EQ(reads("public.nokey"), 700u);
  EXPECT_TRUE(sameRows(replayed("public.nokey"), sourceRows("nokey")));
}

}  // namespace
}  // namespace tidemark::test
