// The spine: source -> change log -> sinks. A sink that is blocked, slow or added later never
// holds back the source, the log stays within buffer.max_bytes, a log cut behind tidemark's back
// is read again from the source (or stops naming the sink that cannot go on), and twenty
// kill -9s during a mixed workload lose and repeat nothing.
#include <gtest/gtest.h>

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "log/local/local_log.h"
#include "support/assertions.h"
#include "support/background_writer.h"
#include "support/pipeline_fixture.h"
#include "support/poll.h"

namespace tidemark::test {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

class ChangeLogTest : public PgPipelineTest {
 protected:
  /// Two jsonl sinks, "a" and (when `with_b`) "b", under out/a and out/b.
  std::string twoSinks(bool with_a, bool with_b) const {
    std::string yaml;
    if (with_a) yaml += "- name: a\n  kind: jsonl\n  path: " + (outDir() / "a").string() + "\n";
    if (with_b) yaml += "- name: b\n  kind: jsonl\n  path: " + (outDir() / "b").string() + "\n";
    return yaml;
  }
  /// The `after.<column>` of every event of public.<table> in sink directory `dir`, in order.
  static std::vector<int64_t> column(const std::filesystem::path& dir, const std::string& table,
                                     const std::string& name = "id") {
    std::vector<int64_t> out;
    const auto file = dir / ("t1.public." + table + ".jsonl");
    if (!std::filesystem::exists(file)) return out;
    forEachJsonLine(file, [&](const json& e) {
      if (e.contains("after") && e["after"].is_object()) out.push_back(e["after"][name].get<int64_t>());
    });
    return out;
  }
  std::optional<int> walsenderPid() {
    auto v = pg().maybeScalar("postgres", "SELECT active_pid FROM pg_replication_slots WHERE slot_name = '" +
                                              slot() + "'");
    if (!v) return std::nullopt;
    return std::stoi(*v);
  }
  /// The `after.id` of every change event a stdout sink printed, in order.
  static std::vector<int64_t> idsInStdout(const Process& p) {
    std::vector<int64_t> out;
    std::istringstream in(p.stdoutText());
    std::string line;
    while (std::getline(in, line)) {
      json doc = json::parse(line, nullptr, false);
      if (doc.is_object() && doc.contains("after") && doc["after"].is_object()) {
        out.push_back(doc["after"]["id"].get<int64_t>());
      }
    }
    return out;
  }
  /// 1, 2, ..., n.
  static std::vector<int64_t> upTo(int64_t n) {
    std::vector<int64_t> v(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = i + 1;
    return v;
  }
  /// Where the first difference between `got` and 1..n is, for assertion messages.
  static ::testing::AssertionResult isOneToN(const std::vector<int64_t>& got, int64_t n) {
    if (got == upTo(n)) return ::testing::AssertionSuccess();
    for (size_t i = 0; i < got.size(); ++i) {
      if (got[i] != static_cast<int64_t>(i) + 1) {
        return ::testing::AssertionFailure() << "event " << i << " is " << got[i] << ", not " << i + 1 << " ("
                                             << got.size() << " events for " << n << ")";
      }
    }
    return ::testing::AssertionFailure() << got.size() << " events for " << n;
  }
  void insertEach(const std::string& table, int from, int to) {
    for (int i = from; i <= to; ++i) sql("INSERT INTO " + table + " VALUES (" + std::to_string(i) + ")");
  }
};

// A destination that blocks for a minute under heavy writes holds back neither the slot nor
// the connection: the source goes on into the change log, the slot's confirmed position keeps
// moving, and afterwards the sink catches up with exactly the source's rows, in commit order.
TEST_F(ChangeLogTest, ASinkBlockedForAMinuteHoldsBackNeitherTheSlotNorTheConnection) {
  sql("CREATE TABLE orders (id bigint PRIMARY KEY, note text)");
  setSystem("wal_sender_timeout", "'5s'");
  auto config = writeConfig(TidemarkConfig({"public.orders"})
                                .withSourceExtra("status_interval: 1s")
                                .withHeartbeat("interval: 1s")
                                .withSinks("- name: out\n  kind: stdout"));
  ASSERT_NO_FATAL_FAILURE(initPipeline(config));
  const size_t logStart = pg().logSize();

  ProcessOptions options;
  options.stdoutPipe = true;
  Process p({tidemarkBinary(), "run", "-c", config.string()}, options);
  ASSERT_EVENTUALLY(slotActive() || !p.running(), seconds(60)) << p.describe();
  const auto walsender = walsenderPid();
  ASSERT_TRUE(walsender.has_value());
  // Far more than a pipe holds (64 KiB): the sink blocks on its first flush.
  constexpr int64_t kFirst = 20000;
  sql("INSERT INTO orders SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, " + std::to_string(kFirst) +
      ") g");
  const uint64_t blockedAt = parseLsn(currentLsn());
  ASSERT_EVENTUALLY(p.stdoutPipeBuffered() >= 32 * 1024 || !p.running(), seconds(30))
      << "the sink did not fill its pipe: " << p.stdoutPipeBuffered() << " bytes\n"
      << p.describe();

  // Heavy writes for a minute while nobody reads: 100 rows a transaction, up to 50 a second.
  constexpr int64_t kBatch = 100;
  BackgroundWriter more(pg().dsn(db()), [](int64_t batch) {
    const int64_t from = kFirst + 1 + batch * kBatch;
    return "INSERT INTO orders SELECT g, 'later' FROM generate_series(" + std::to_string(from) + ", " +
           std::to_string(from + kBatch - 1) + ") g";
  }, std::numeric_limits<int64_t>::max(), milliseconds(20));
  const auto blockedUntil = std::chrono::steady_clock::now() + seconds(60);
  uint64_t confirmedMidway = 0;
  StatusResult st;
  while (std::chrono::steady_clock::now() < blockedUntil && p.running()) {
    std::this_thread::sleep_for(seconds(5));
    if (confirmedMidway == 0 && std::chrono::steady_clock::now() > blockedUntil - seconds(30)) {
      confirmedMidway = parseLsn(slotConfirmedFlushLsn().value_or("0/0"));
      st = status(config);
    }
  }
  ASSERT_TRUE(p.running()) << p.describe();
  EXPECT_GE(p.stdoutPipeBuffered(), 32u * 1024) << "the pipe was read meanwhile?";
  const uint64_t confirmedAtEnd = parseLsn(slotConfirmedFlushLsn().value_or("0/0"));
  more.stop();
  EXPECT_EQ(more.error(), "");
  const int64_t rows = kFirst + more.committed() * kBatch;
  EXPECT_GT(more.committed(), 100) << "the load was not heavy";
  // The slot moved past everything the sink has not taken, and kept moving.
  EXPECT_GT(confirmedMidway, blockedAt) << "the slot waited for the blocked sink";
  EXPECT_GT(confirmedAtEnd, confirmedMidway) << "the slot stopped moving while the sink was blocked";
  EXPECT_EQ(walsenderPid(), walsender) << "the walsender changed: the connection was replaced";
  ASSERT_TRUE(st.json) << st.description;
  EXPECT_GT(jsonAt(*st.json, "sinks.out.lag_records").value_or(0).get<int64_t>(), 0) << st.json->dump();
  EXPECT_EQ(jsonAt(*st.json, "log.held_by").value_or(nullptr), "out") << st.json->dump();

  // Unblocked, the sink catches up with every row, once each, in commit order.
  p.drainStdout();
  ASSERT_TRUE(statusEventually(
      config, [](const StatusResult& s) { return s.json && jsonAt(*s.json, "sinks.out.lag_records") == 0; },
      seconds(180), &st, nullptr, seconds(1)))
      << describeStatus(st) << p.describe();
  p.signal(SIGTERM);
  RunResult r = finish(p, seconds(60));
  EXPECT_EQ(r.exitCode, 0) << r.description;
  EXPECT_TRUE(isOneToN(idsInStdout(p), rows));
  const std::string log = pg().logSince(logStart);
  EXPECT_EQ(log.find("terminating walsender process due to replication timeout"), std::string::npos)
      << log.substr(0, 4000);
}


TEST_F(ChangeLogTest, ASinkAddedLaterStartsFromTheOldestRetainedRecord) {
  sql("CREATE TABLE c (id int PRIMARY KEY)");
  auto config = writeConfig(TidemarkConfig({"public.c"}).withSinks(twoSinks(true, false)));
  ASSERT_NO_FATAL_FAILURE(initPipeline(config));
  insertEach("c", 1, 3);
  ASSERT_EQ(runUntil(config, currentLsn()).exitCode, 0);
  EXPECT_TRUE(isOneToN(column(outDir() / "a", "c"), 3));

  config = writeConfig(TidemarkConfig({"public.c"}).withSinks(twoSinks(true, true)));
  insertEach("c", 4, 5);
  RunResult r = runUntil(config, currentLsn());
  ASSERT_EQ(r.exitCode, 0) << r.description;
  EXPECT_TRUE(contains(r.err, "sink \"b\" is new: it starts from the oldest record the change log holds")) << r.err;
  EXPECT_TRUE(isOneToN(column(outDir() / "a", "c"), 5));
  EXPECT_TRUE(isOneToN(column(outDir() / "b", "c"), 5));
  StatusResult st = status(config);
  ASSERT_TRUE(st.json) << st.description;
  EXPECT_EQ(jsonAt(*st.json, "sinks.a.position"), jsonAt(*st.json, "sinks.b.position")) << st.json->dump();
  EXPECT_EQ(jsonAt(*st.json, "sinks.b.lag_records").value_or(-1), 0) << st.json->dump();
}

// The schema records typed destinations create tables from: the source's declared types,
// NOT NULLs and key, a new version once a column is added, and every event naming its version.
TEST_F(ChangeLogTest, TheLogHoldsEachTablesSchemaWithItsSourceTypes) {
  sql("CREATE TABLE s (id bigint PRIMARY KEY, amount numeric(12,2) NOT NULL, note varchar(40))");
  auto config = writeConfig(TidemarkConfig({"public.s"}));
  ASSERT_NO_FATAL_FAILURE(initPipeline(config));
  sql("INSERT INTO s VALUES (1, 1.50, 'a')");
  sql("ALTER TABLE s ADD COLUMN at timestamptz");
  sql("INSERT INTO s VALUES (2, 2.50, 'b', now())");
  ASSERT_EQ(runUntil(config, currentLsn()).exitCode, 0);

  changelog::LocalLog log({stateDir() / "log"});
  std::vector<json> schemas;
  std::vector<std::string> eventVersions;
  auto reader = log.reader(log.startOffset());
  while (const changelog::StoredRecord* r = reader->next()) {
    if (changelog::isTableSchema(r->record)) {
      schemas.push_back(json::parse(*r->record.value));
    } else if (!changelog::isControl(r->record) && r->record.topic == "t1.public.s") {
      eventVersions.emplace_back(changelog::headerValue(r->record, changelog::kSchemaVersionHeader).value_or(""));
    }
  }
  ASSERT_EQ(schemas.size(), 2u);
  const json& first = schemas[0];
  EXPECT_EQ(first["topic"], "t1.public.s");
  EXPECT_EQ(first["key"], json::array({"id"}));
  ASSERT_EQ(first["columns"].size(), 3u);
  EXPECT_EQ(first["columns"][0]["type"], "bigint");
  EXPECT_EQ(first["columns"][0]["optional"], false);
  EXPECT_EQ(first["columns"][1]["type"], "numeric(12,2)");
  EXPECT_EQ(first["columns"][1]["optional"], false);
  EXPECT_EQ(first["columns"][2]["type"], "character varying(40)");
  EXPECT_EQ(first["columns"][2]["optional"], true);
  EXPECT_EQ(schemas[1]["columns"][3]["type"], "timestamp with time zone");
  EXPECT_EQ(eventVersions, (std::vector<std::string>{first["version"], schemas[1]["version"]}));
}

// buffer.max_bytes with a blocked sink: reading pauses at the cap (the status names the sink),
// the slot stops where the log stopped, and everything flows once the sink drains.
TEST_F(ChangeLogTest, AtBufferMaxBytesReadingPausesUntilTheSinkDrains) {
  sql("CREATE TABLE orders (id bigint PRIMARY KEY, note text)");
  auto config = writeConfig(TidemarkConfig({"public.orders"})
                                .withSourceExtra("status_interval: 1s")
                                .withTopLevel("buffer:\n  max_bytes: 1MiB")
                                .withSinks("- name: out\n  kind: stdout"));
  ASSERT_NO_FATAL_FAILURE(initPipeline(config));
  ProcessOptions options;
  options.stdoutPipe = true;
  Process p({tidemarkBinary(), "run", "-c", config.string()}, options);
  ASSERT_EVENTUALLY(slotActive() || !p.running(), seconds(60)) << p.describe();
  // About 6 MB of events in transactions of 100 rows: six times the cap.
  constexpr int64_t kBatch = 100, kBatches = 200;
  BackgroundWriter writer(pg().dsn(db()), [](int64_t batch) {
    const int64_t from = 1 + batch * kBatch;
    return "INSERT INTO orders SELECT g, repeat(md5(g::text), 4) FROM generate_series(" + std::to_string(from) +
           ", " + std::to_string(from + kBatch - 1) + ") g";
  }, kBatches);
  StatusResult st;
  ASSERT_TRUE(statusEventually(config, [](const StatusResult& s) { return s.json && (*s.json)["state"] == "paused"; },
                               seconds(60), &st))
      << describeStatus(st) << p.describe();
  EXPECT_TRUE(contains((*st.json)["reason"].get<std::string>(), "sink \"out\" holds it back")) << st.json->dump();
  // At the cap, give or take the frame read last and the segment the sink is in.
  EXPECT_LE(jsonAt(*st.json, "log.size_bytes").value_or(0).get<uint64_t>(), (3u << 20) / 2) << st.json->dump();
  ASSERT_EVENTUALLY(writer.finished(), seconds(60));
  EXPECT_EQ(writer.error(), "");
  const uint64_t end = parseLsn(currentLsn());
  EXPECT_LT(parseLsn(slotConfirmedFlushLsn().value_or("0/0")), end) << "the slot went past what the log holds";

  p.drainStdout();
  ASSERT_TRUE(statusEventually(
      config, [](const StatusResult& s) { return s.json && jsonAt(*s.json, "sinks.out.lag_records") == 0; },
      seconds(120), &st, nullptr, milliseconds(500)))
      << describeStatus(st) << p.describe();
  ASSERT_EVENTUALLY(parseLsn(slotConfirmedFlushLsn().value_or("0/0")) >= end, seconds(30));
  p.signal(SIGTERM);
  RunResult r = finish(p, seconds(60));
  EXPECT_EQ(r.exitCode, 0) << r.description;
  EXPECT_TRUE(contains(r.err, "the change log is at buffer.max_bytes")) << r.err;
  EXPECT_TRUE(contains(r.err, "reading from the source resumes")) << r.err;
  EXPECT_TRUE(isOneToN(idsInStdout(p), kBatch * kBatches));
}

// The log cut mid-record behind tidemark's back, after the sink consumed what was cut: the
// sink cannot line up with records read again, and the run says so naming it and the fix. A
// sink added then gets every change once: what the log kept, and the rest read again from the
// source (the slot, restored from a copy taken earlier, can still send it).
TEST_F(ChangeLogTest, ALogCutMidRecordIsReadAgainFromTheSource) {
  sql("CREATE TABLE c (id int PRIMARY KEY, v text)");
  auto insertRows = [&](int from, int to) {
    for (int i = from; i <= to; ++i) {
      sql("INSERT INTO c VALUES (" + std::to_string(i) + ", repeat('v', 200))");
    }
  };
  auto config = writeConfig(TidemarkConfig({"public.c"}).withSinks(twoSinks(true, false)));
  ASSERT_NO_FATAL_FAILURE(initPipeline(config));
  insertRows(1, 5);
  ASSERT_EQ(runUntil(config, currentLsn()).exitCode, 0);
  // The slot as it stands now, to put back later: as if the confirmations after this moment
  // had never reached the server.
  sql("SELECT pg_copy_logical_replication_slot('" + slot() + "', '" + slot() + "_copy')");
  insertRows(6, 10);
  ASSERT_EQ(runUntil(config, currentLsn()).exitCode, 0);
  ASSERT_TRUE(isOneToN(column(outDir() / "a", "c"), 10));

  std::filesystem::path last;
  for (const auto& e : std::filesystem::directory_iterator(stateDir() / "log")) {
    if (e.path().extension() == ".log" && e.path() > last) last = e.path();
  }
  ASSERT_FALSE(last.empty());
  const auto size = std::filesystem::file_size(last);
  std::filesystem::resize_file(last, size - size / 5);  // into the records of rows 6..10
  sql("SELECT pg_drop_replication_slot('" + slot() + "')");
  sql("SELECT pg_copy_logical_replication_slot('" + slot() + "_copy', '" + slot() + "')");
  sql("SELECT pg_drop_replication_slot('" + slot() + "_copy')");

  config = writeConfig(TidemarkConfig({"public.c"}).withSinks(twoSinks(true, true)));
  RunResult stopped = runUntil(config, currentLsn());
  EXPECT_EQ(stopped.exitCode, 2) << stopped.description;
  EXPECT_TRUE(contains(stopped.err, "cut back a torn tail")) << stopped.err;
  EXPECT_TRUE(contains(stopped.err, "sink \"a\" has consumed the change log up to offset")) << stopped.err;
  EXPECT_TRUE(contains(stopped.err, "--reset-sink a")) << stopped.err;

  config = writeConfig(TidemarkConfig({"public.c"}).withSinks(twoSinks(false, true)));
  RunResult r = runUntil(config, currentLsn());
  ASSERT_EQ(r.exitCode, 0) << r.description;
  EXPECT_TRUE(contains(r.err, "records were cut from it; reading again from")) << r.err;
  EXPECT_TRUE(isOneToN(column(outDir() / "b", "c"), 10));
}

// kill -9 twenty times at random moments while three writers commit interleaved transactions:
// single rows, large transactions (several MB: committed to the log in parts), and updates of
// one counter. After the last restart every change is in the sink once, in commit order.
TEST_F(ChangeLogTest, TwentyKillsDuringAMixedWorkloadLoseAndRepeatNothing) {
  sql("CREATE TABLE a (id bigint PRIMARY KEY)");
  sql("CREATE TABLE b (id bigint PRIMARY KEY, v text)");
  sql("CREATE TABLE n (id int PRIMARY KEY, n bigint NOT NULL)");
  sql("INSERT INTO n VALUES (1, 0)");
  auto config = writeConfig(TidemarkConfig({"public.a", "public.b", "public.n"}));
  ASSERT_NO_FATAL_FAILURE(initPipeline(config));
  constexpr int64_t kBig = 2500;  // rows of 2 kB: 5 MB a transaction
  BackgroundWriter singles(pg().dsn(db()),
                           [](int64_t batch) { return "INSERT INTO a VALUES (" + std::to_string(batch + 1) + ")"; },
                           std::numeric_limits<int64_t>::max(), milliseconds(2));
  BackgroundWriter bigs(pg().dsn(db()), [](int64_t batch) {
    const int64_t from = 1 + batch * kBig;
    return "INSERT INTO b SELECT g, repeat(md5(g::text), 64) FROM generate_series(" + std::to_string(from) + ", " +
           std::to_string(from + kBig - 1) + ") g";
  }, 8, milliseconds(2500));
  BackgroundWriter counter(pg().dsn(db()), [](int64_t) { return std::string("UPDATE n SET n = n + 1 WHERE id = 1"); },
                           std::numeric_limits<int64_t>::max(), milliseconds(5));

  const unsigned seed = std::random_device{}();
  RecordProperty("seed", static_cast<int>(seed));
  ASSERT_NO_FATAL_FAILURE(killRunsAtRandomMoments(config, 20, seed));
  singles.stop();
  bigs.stop();
  counter.stop();
  ASSERT_EQ(singles.error() + bigs.error() + counter.error(), "");
  RunResult r = runUntil(config, currentLsn(), seconds(300));
  ASSERT_EQ(r.exitCode, 0) << r.description;
  EXPECT_TRUE(isOneToN(column(outDir(), "a"), singles.committed())) << "seed " << seed;
  EXPECT_TRUE(isOneToN(column(outDir(), "b"), bigs.committed() * kBig)) << "seed " << seed;
  EXPECT_TRUE(isOneToN(column(outDir(), "n", "n"), counter.committed())) << "seed " << seed;
  EXPECT_GE(bigs.committed(), 3);
}

}  // namespace
}  // namespace tidemark::test
