// The PostgreSQL destination, end to end into a second PostgreSQL server: upsert and append
// modes under a mixed workload, exactly once across kill -9s, the destination down and back,
// a rejected row set aside in the dead letter queue and retried, schema changes, hostile names.
#include <gtest/gtest.h>

#include <signal.h>

#include <chrono>
#include <limits>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "support/assertions.h"
#include "support/background_writer.h"
#include "support/destination_fixture.h"
#include "support/pipeline_fixture.h"
#include "support/poll.h"

namespace tidemark::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

using PostgresSinkTest = PgDestinationTest;

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
      "'12:34:56.789'::time, '1999-12-31 23:59:59.123', B'1', B'1010' FROM generate_series(1, 300) i");
  sql("INSERT INTO other SELECT 'k' || (i % 7), i, 'tab\there, new\nline, back\\slash' FROM generate_series(1, 50) i");
  sql("UPDATE acct SET name = 'renamed ' || id WHERE id % 10 = 0");   // big stays TOASTed and unchanged
  sql("DELETE FROM acct WHERE id % 7 = 0");
  // Key changes move rows, one of them (20) with its TOASTed value unchanged.
  sql("UPDATE acct SET id = id + 1000 WHERE id BETWEEN 11 AND 15 OR id = 20");
  sql("UPDATE acct SET f = 'NaN', n = 'NaN', d = 'infinity', ts = '-infinity' WHERE id = 2");
  sql("UPDATE acct SET ts = '0044-03-15 12:00:00.25+00 BC', tsn = '0001-01-01 00:00:00 BC' WHERE id = 3");
  sql("UPDATE acct SET ts = '12345-06-07 08:09:10+00', tsn = '10000-01-01 00:00:00.5' WHERE id = 4");
  sql("BEGIN; INSERT INTO acct VALUES (5000, 'gone'); DELETE FROM acct WHERE id = 5000; "
      "INSERT INTO acct (id, name) VALUES (5000, 'back'); UPDATE acct SET name = 'again' WHERE id = 5000; COMMIT");
  sql("INSERT INTO other SELECT 'big', i, repeat('v', 50) FROM generate_series(1, 30000) i");  // a large transaction
  sql("TRUNCATE other");
  sql("INSERT INTO other VALUES ('after', 1, 'truncate')");
  const RunResult r = runUntil(config, currentLsn());
  ASSERT_EQ(r.exitCode, 0) << r.description;

  EXPECT_TRUE(sameAtDestination("public.acct"));
  EXPECT_TRUE(sameAtDestination("public.other"));
  // The unchanged TOASTed value was kept, never the placeholder.
  EXPECT_EQ(destScalar("SELECT count(*) FROM public.acct WHERE big LIKE '%debezium_unavailable%'"), "0");
  EXPECT_EQ(destScalar("SELECT length(big) FROM public.acct WHERE id = 1020"), "12800");
  EXPECT_EQ(destScalar("SELECT count(*) FROM public.acct WHERE name LIKE 'renamed%' AND length(big) = 12800"),
            scalar("SELECT count(*) FROM public.acct WHERE name LIKE 'renamed%' AND length(big) = 12800"));
  // Append: one row per change, none twice, in source order within each transaction.
  const std::string changes = destScalar("SELECT count(*) FROM log.acct");
  EXPECT_EQ(changes, std::to_string(300 + 30 + 42 + 10 + 1 + 2 + 4));
  EXPECT_EQ(destScalar("SELECT count(*) FROM (SELECT __txid, __seq FROM log.acct GROUP BY 1, 2 HAVING count(*) > 1) d"),
            "0");
  EXPECT_EQ(destScalar("SELECT count(*) FROM log.other"), std::to_string(50 + 30000 + 1 + 1));
  EXPECT_EQ(destScalar("SELECT string_agg(__op, '' ORDER BY __seq) FROM log.acct WHERE id = 5000"), "cdcu");
  // The progress row says where each sink stands.
  EXPECT_EQ(destScalar("SELECT count(*) FROM tidemark.sink_progress"), "2");
  EXPECT_TRUE(verifiedEqual(config));
}

// Values whose Debezium rendering loses something (a timetz's zone, a varbit's leading zeros,
// an array's lower bounds, a numeric's trailing zeros, an interval's units) and values of the
// user's own types arrive exactly: the sink writes the source's own text of each row. Small
// batches (a few rows: one statement) and large ones (COPY) alike.
TEST_F(PostgresSinkTest, ValuesArriveExactlyAsTheSourcePrintedThem) {
  sql("CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')");
  dest("CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')");
  sql("CREATE TABLE x (id int PRIMARY KEY, tz timetz, bits varbit, arr int[], n numeric(10,4), iv interval, "
      "f float8, m mood, moods mood[], r int4range)");
  const auto config = writeConfig(TidemarkConfig({"public.x"}).withSinks(sink("up", "upsert") + sink("log", "append")));
  ASSERT_NO_FATAL_FAILURE(initPipeline(config));
  const std::string row =
      "'12:34:56.5+05:30', B'0001010', '[3:4]={7,8}', 1.5000, '1 mon -2 days 03:04:05.5', '4.9e-324', 'ok', "
      "'{sad,happy}', '[1,5)'";
  sql("INSERT INTO x VALUES (1, " + row + ")");  // one row: one statement
  sql("INSERT INTO x SELECT i, " + row + " FROM generate_series(2, 500) i");  // COPY
  sql("UPDATE x SET bits = B'00', tz = '23:59:59-11' WHERE id = 2");
  sql("UPDATE x SET arr = '[0:0]={1}', m = 'sad' WHERE id BETWEEN 10 AND 400");
  const RunResult r = runUntil(config, currentLsn());
  ASSERT_EQ(r.exitCode, 0) << r.description;
  // Compared as text: equal values in different forms would not do.
  const std::string text_cols = "id, tz::text, bits::text, arr::text, n::text, iv::text, f::text, m::text, moods::text, r::text";
  EXPECT_TRUE(sameAtDestination("public.x", text_cols));
  EXPECT_EQ(destScalar("SELECT tz::text || ' ' || bits::text || ' ' || arr::text FROM public.x WHERE id = 2"),
            "23:59:59-11 00 [3:4]={7,8}");
  EXPECT_EQ(destScalar("SELECT count(*) FROM log.x WHERE bits = B'0001010' AND arr::text = '[3:4]={7,8}'"), "500");
  EXPECT_TRUE(verifiedEqual(config));
}

// A row the destination rejects (a CHECK constraint the source does not have) goes to the dead
// letter queue, alone; everything else is delivered. Retried after the constraint is dropped, it
// is applied, unless a newer change of its key was applied meanwhile.
TEST_F(PostgresSinkTest, ARejectedRowIsSetAsideAndRetriedWithoutOverwritingANewerOne) {
  sql("CREATE TABLE p (id int PRIMARY KEY, v int)");
  dest("CREATE TABLE public.p (id int PRIMARY KEY, v int CHECK (v < 100))");
  const auto config = writeConfig(TidemarkConfig({"public.p"}).withSinks(sink("up", "upsert")));
  ASSERT_NO_FATAL_FAILURE(initPipeline(config));
  sql("INSERT INTO p SELECT i, i FROM generate_series(1, 50) i");
  sql("BEGIN; INSERT INTO p VALUES (51, 5000); INSERT INTO p VALUES (52, 52); COMMIT");  // 51 is rejected
  sql("INSERT INTO p VALUES (53, 6000)");                                                // so is 53
  sql("INSERT INTO p SELECT i, i FROM generate_series(54, 80) i");
  sql("UPDATE p SET v = 7 WHERE id = 51");  // newer than the rejected change of 51
  RunResult r = runUntil(config, currentLsn());
  ASSERT_EQ(r.exitCode, 0) << r.description;
  EXPECT_EQ(destScalar("SELECT count(*) FROM p"), "79");  // every row but 53
  EXPECT_EQ(destScalar("SELECT v FROM p WHERE id = 51"), "7");
  EXPECT_EQ(destScalar("SELECT count(*) FROM p WHERE id = 53"), "0");

  RunResult list = runTidemark({"dlq", "list", "-c", config.string(), "--json"});
  ASSERT_EQ(list.exitCode, 0) << list.description;
  const json letters = json::parse(list.out);
  ASSERT_EQ(letters.size(), 2u) << list.out;
  EXPECT_EQ(letters[0]["key"], "{\"id\":51}");
  EXPECT_EQ(letters[1]["key"], "{\"id\":53}");
  EXPECT_TRUE(contains(letters[0]["error"].get<std::string>(), "p_v_check")) << letters[0]["error"];
  EXPECT_EQ(letters[0]["state"], "pending");
  RunResult show =
      runTidemark({"dlq", "show", "-c", config.string(), "--id", std::to_string(letters[1]["id"].get<int>())});
  ASSERT_EQ(show.exitCode, 0) << show.description;
  EXPECT_EQ(json::parse(show.out)[0]["event"]["after"]["v"], 6000) << show.out;

  // Still rejected: left pending, exit 2.
  RunResult again = runTidemark({"dlq", "retry", "-c", config.string()});
  EXPECT_EQ(again.exitCode, 2) << again.description;
  EXPECT_TRUE(contains(again.out, "superseded")) << again.description;
  EXPECT_TRUE(contains(again.out, "still rejected")) << again.description;

  dest("ALTER TABLE public.p DROP CONSTRAINT p_v_check");
  RunResult retry = runTidemark({"dlq", "retry", "-c", config.string()});
  ASSERT_EQ(retry.exitCode, 0) << retry.description;
  EXPECT_EQ(destScalar("SELECT v FROM p WHERE id = 51"), "7");     // the newer change stands
  EXPECT_EQ(destScalar("SELECT v FROM p WHERE id = 53"), "6000");  // applied
  EXPECT_TRUE(sameAtDestination("public.p"));
  const json after = json::parse(runTidemark({"dlq", "list", "-c", config.string(), "--json"}).out);
  EXPECT_EQ(after[0]["state"], "superseded");
  EXPECT_EQ(after[1]["state"], "retried");
}

// A column added on the source reaches the destination before the first row that carries it;
// a changed type stops that sink only, naming the table, the column, both types and the fix.
TEST_F(PostgresSinkTest, AnAddedColumnArrivesAndAChangedTypeStopsOnlyThatSink) {
  sql("CREATE TABLE s (id int PRIMARY KEY, a text)");
  const auto config = writeConfig(
      TidemarkConfig({"public.s"})
          .withSinks(sink("up", "upsert") + "- name: files\n  kind: jsonl\n  path: " + outDir().string() + "\n"));
  ASSERT_NO_FATAL_FAILURE(initPipeline(config));
  sql("INSERT INTO s VALUES (1, 'one')");
  sql("ALTER TABLE s ADD COLUMN b numeric(8,3)");
  sql("INSERT INTO s VALUES (2, 'two', 2.5)");
  sql("ALTER TABLE s DROP COLUMN a");
  sql("INSERT INTO s VALUES (3, 3.25)");
  RunResult r = runUntil(config, currentLsn());
  ASSERT_EQ(r.exitCode, 0) << r.description;
  EXPECT_EQ(destScalar("SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                       "WHERE attrelid = 'public.s'::regclass AND attname = 'b'"),
            "numeric(8,3)");
  EXPECT_EQ(destScalar("SELECT string_agg(id || ':' || coalesce(a, '-') || ':' || coalesce(b::text, '-'), ' ' "
                       "ORDER BY id) FROM s"),
            "1:one:- 2:two:2.500 3:-:3.250");

  sql("ALTER TABLE s ALTER COLUMN b TYPE bigint");
  sql("INSERT INTO s VALUES (4, 4)");
  std::unique_ptr<Process> run;
  ASSERT_NO_FATAL_FAILURE(startStreaming(config, run));
  // The jsonl sink goes on; the postgres sink stops with the message.
  ASSERT_EVENTUALLY(contains(run->stderrText(), "is bigint at the source but numeric(8,3) at the destination"), 60s)
      << run->describe();
  EXPECT_TRUE(contains(run->stderrText(), "column \"b\" of \"public\".\"s\"")) << run->describe();
  EXPECT_TRUE(contains(run->stderrText(), "ALTER TABLE \"public\".\"s\" ALTER COLUMN \"b\" TYPE bigint"))
      << run->describe();
  sql("INSERT INTO s VALUES (5, 5)");
  ASSERT_EVENTUALLY(events("public.s").size() >= 5, 60s) << run->describe();
  EXPECT_TRUE(run->running()) << run->describe();
  run->signal(SIGTERM);
  run->waitExit(30s);
  EXPECT_EQ(destScalar("SELECT count(*) FROM s"), "3");
}

// Hostile names (mixed case, spaces, quotes, keywords, an attempt to end the statement) as
// schema, table and column names arrive as they are, and nothing they say runs.
TEST_F(PostgresSinkTest, HostileNamesRoundTripAndNothingTheySayRuns) {
  dest("CREATE TABLE public.x (id int)");
  const std::string table = R"("My Schema; drop table x;--"."a;drop table x;--")";
  sql(R"(CREATE SCHEMA "My Schema; drop table x;--")");
  sql("CREATE TABLE " + table +
      R"( ("Select" int PRIMARY KEY, "with space" text, "quo""te" text, "MiXeD" text, "x');drop table x;--" int))");
  const auto config =
      writeConfig(TidemarkConfig({"'" + table + "'"}).withSinks(sink("up", "upsert") + sink("log", "append")));
  ASSERT_NO_FATAL_FAILURE(initPipeline(config));
  sql("INSERT INTO " + table + R"( VALUES (1, 'a b', 'q"', 'M', 1), (2, ''';drop table x;--', NULL, NULL, 2))");
  sql("UPDATE " + table + R"( SET "with space" = 'changed' WHERE "Select" = 1)");
  sql("DELETE FROM " + table + R"( WHERE "Select" = 2)");
  RunResult r = runUntil(config, currentLsn());
  ASSERT_EQ(r.exitCode, 0) << r.description;
  EXPECT_TRUE(sameAtDestination(table));
  EXPECT_EQ(destScalar(R"(SELECT count(*) FROM log."a;drop table x;--")"), "4");
  EXPECT_EQ(destScalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename = 'x'"), "1");
}

// kill -9 twenty times at random moments while writers commit single rows, key changes and
// deletes, counter updates and multi-MB transactions: at the end the upsert destination equals
// the source, and the append destination holds every change once.
TEST_F(PostgresSinkTest, TwentyKillsLoseAndRepeatNothing) {
  sql("CREATE TABLE a (id bigint PRIMARY KEY, v text)");
  sql("CREATE TABLE b (id bigint PRIMARY KEY, v text)");
  sql("CREATE TABLE n (id int PRIMARY KEY, n bigint NOT NULL)");
  sql("INSERT INTO n VALUES (1, 0)");
  const auto config = writeConfig(TidemarkConfig({"public.a", "public.b", "public.n"})
                                      .withSinks(sink("up", "upsert") + sink("log", "append")));
  ASSERT_NO_FATAL_FAILURE(initPipeline(config));
  constexpr int64_t kBig = 2500;
  BackgroundWriter singles(pg().dsn(db()), [](int64_t batch) {
    const std::string id = std::to_string(batch + 1);
    // Every fifth batch moves an earlier row to a new key, every seventh deletes one.
    if (batch % 5 == 4) return "UPDATE a SET id = id + 1000000 WHERE id = " + std::to_string(batch - 3);
    if (batch % 7 == 6) return "DELETE FROM a WHERE id = " + std::to_string(batch - 5);
    return "INSERT INTO a VALUES (" + id + ", 'v" + id + "')";
  }, std::numeric_limits<int64_t>::max(), 2ms);
  BackgroundWriter bigs(pg().dsn(db()), [](int64_t batch) {
    const int64_t from = 1 + batch * kBig;
    return "INSERT INTO b SELECT g, repeat(md5(g::text), 64) FROM generate_series(" + std::to_string(from) + ", " +
           std::to_string(from + kBig - 1) + ") g";
  }, 8, 2500ms);
  BackgroundWriter counter(pg().dsn(db()), [](int64_t) { return std::string("UPDATE n SET n = n + 1 WHERE id = 1"); },
                           std::numeric_limits<int64_t>::max(), 5ms);
  const unsigned seed = std::random_device{}();
  RecordProperty("seed", static_cast<int>(seed));
  ASSERT_NO_FATAL_FAILURE(killRunsAtRandomMoments(config, 20, seed));
  singles.stop();
  bigs.stop();
  counter.stop();
  ASSERT_EQ(singles.error() + bigs.error() + counter.error(), "");
  RunResult r = runUntil(config, currentLsn(), 300s);
  ASSERT_EQ(r.exitCode, 0) << r.description;
  EXPECT_TRUE(sameAtDestination("public.a")) << "seed " << seed;
  EXPECT_TRUE(sameAtDestination("public.b")) << "seed " << seed;
  EXPECT_TRUE(sameAtDestination("public.n")) << "seed " << seed;
  EXPECT_TRUE(verifiedEqual(config)) << "seed " << seed;
  // Every counter update once.
  EXPECT_EQ(destScalar("SELECT count(*) FROM log.n WHERE __op = 'u'"), std::to_string(counter.committed()));
  EXPECT_EQ(destScalar("SELECT count(DISTINCT n) FROM log.n WHERE __op = 'u'"), std::to_string(counter.committed()));
  EXPECT_EQ(destScalar("SELECT count(*) FROM log.b"), std::to_string(bigs.committed() * kBig));
  for (const char* t : {"a", "b", "n"}) {
    EXPECT_EQ(destScalar(std::string("SELECT count(*) FROM (SELECT 1 FROM log.") + t +
                         " GROUP BY __txid, __seq HAVING count(*) > 1) d"),
              "0")
        << t << ", seed " << seed;
  }
  EXPECT_GE(bigs.committed(), 3);
}

// The destination down for a minute: capture goes on (the slot advances, the jsonl sink gets
// every row), the postgres sink retries, then catches up; equal at the end.
TEST_F(PostgresSinkTest, ADestinationDownForAMinuteCatchesUpAndCaptureGoesOn) {
  sql("CREATE TABLE c (id int PRIMARY KEY, v text)");
  const auto config = writeConfig(
      TidemarkConfig({"public.c"})
          .withSinks(sink("up", "upsert") + "- name: files\n  kind: jsonl\n  path: " + outDir().string() + "\n"));
  ASSERT_NO_FATAL_FAILURE(initPipeline(config));
  std::unique_ptr<Process> run;
  ASSERT_NO_FATAL_FAILURE(startStreaming(config, run));
  sql("INSERT INTO c SELECT i, 'v' || i FROM generate_series(1, 100) i");
  ASSERT_EVENTUALLY(destPoll("SELECT count(*) FROM c") == "100", 60s) << run->describe();

  destination().halt();
  struct Restart {
    ~Restart() {
      if (!destination().running()) destination().start();
    }
  } restart;
  const auto down_at = std::chrono::steady_clock::now();
  for (int i = 0; i < 20; ++i) {
    sql("INSERT INTO c SELECT i, 'v' || i FROM generate_series(" + std::to_string(101 + i * 100) + ", " +
        std::to_string(200 + i * 100) + ") i");
  }
  sql("UPDATE c SET v = 'changed' WHERE id % 3 = 0");
  const uint64_t written = parseLsn(currentLsn());
  // Capture goes on: the slot confirms past the writes, the other sink has every row.
  ASSERT_EVENTUALLY(parseLsn(slotConfirmedFlushLsn().value_or("0/0")) >= written, 60s) << run->describe();
  ASSERT_EVENTUALLY(events("public.c").size() >= 2100 + 700, 60s) << run->describe();
  StatusResult st;
  ASSERT_TRUE(statusEventually(config, [](const StatusResult& s) {
    return s.json && (*s.json)["sinks"]["up"]["state"] == "retrying";
  }, 60s, &st)) << describeStatus(st);
  EXPECT_GT((*st.json)["sinks"]["up"]["lag_records"].get<int64_t>(), 0);
  EXPECT_FALSE((*st.json)["sinks"]["up"]["last_error"].is_null());
  std::this_thread::sleep_until(down_at + 60s);  // the outage lasts a minute
  ASSERT_TRUE(run->running()) << run->describe();
  destination().start();
  ASSERT_EVENTUALLY(destPoll("SELECT count(*) FROM c") == "2100", 120s) << run->describe();
  ASSERT_TRUE(statusEventually(config, [](const StatusResult& s) {
    return s.json && (*s.json)["sinks"]["up"]["state"] == "running" && (*s.json)["sinks"]["up"]["lag_records"] == 0;
  }, 60s, &st)) << describeStatus(st);
  run->signal(SIGTERM);
  EXPECT_EQ(run->waitExit(30s), 0) << run->describe();
  EXPECT_TRUE(sameAtDestination("public.c"));
}

// Past retry.window the postgres sink is failed, with its last error; the other sink goes on.
TEST_F(PostgresSinkTest, PastTheRetryWindowTheSinkFailsAndTheOthersGoOn) {
  sql("CREATE TABLE c (id int PRIMARY KEY, v text)");
  const auto config = writeConfig(
      TidemarkConfig({"public.c"})
          .withSinks(sink("up", "upsert") + "- name: files\n  kind: jsonl\n  path: " + outDir().string() + "\n")
          .withTopLevel("retry:\n  window: 3s\n  max_backoff: 500ms"));
  ASSERT_NO_FATAL_FAILURE(initPipeline(config));
  std::unique_ptr<Process> run;
  ASSERT_NO_FATAL_FAILURE(startStreaming(config, run));
  destination().halt();
  struct Restart {
    ~Restart() {
      if (!destination().running()) destination().start();
    }
  } restart;
  sql("INSERT INTO c SELECT i, 'v' || i FROM generate_series(1, 10) i");
  StatusResult st;
  ASSERT_TRUE(statusEventually(config, [](const StatusResult& s) {
    return s.json && (*s.json)["sinks"]["up"]["state"] == "failed";
  }, 60s, &st)) << describeStatus(st);
  EXPECT_TRUE(contains((*st.json)["sinks"]["up"]["last_error"].get<std::string>(), "destination")) << describeStatus(st);
  sql("INSERT INTO c SELECT i, 'v' || i FROM generate_series(11, 20) i");
  ASSERT_EVENTUALLY(events("public.c").size() == 20, 60s) << run->describe();
  EXPECT_TRUE(run->running()) << run->describe();
  EXPECT_TRUE(contains(run->stderrText(), "giving up after retry.window")) << run->describe();
  run->signal(SIGTERM);
  run->waitExit(30s);
}

// verify: equal after a workload, computed chunk by chunk; rows changed at the destination
// behind tidemark's back show as the key ranges that hold them, and exit 2.
TEST_F(PostgresSinkTest, VerifyFindsTheKeyRangesThatDiffer) {
  sql("CREATE TABLE v (a int, b text, payload text, PRIMARY KEY (a, b))");
  sql("CREATE TABLE w (id bigint PRIMARY KEY, n numeric)");
  const auto config = writeConfig(TidemarkConfig({"public.v", "public.w"}).withSinks(sink("up", "upsert")));
  ASSERT_NO_FATAL_FAILURE(initPipeline(config));
  std::unique_ptr<Process> run;
  ASSERT_NO_FATAL_FAILURE(startStreaming(config, run));
  sql("INSERT INTO v SELECT i / 10, 'k' || (i % 10), md5(i::text) FROM generate_series(1, 20000) i");
  sql("INSERT INTO w SELECT i, i * 1.5 FROM generate_series(1, 3000) i");
  sql("UPDATE v SET payload = 'changed' WHERE a % 100 = 0");
  sql("DELETE FROM w WHERE id % 11 = 0");

  RunResult ok = runTidemark({"verify", "-c", config.string(), "--json", "--chunk-rows", "1000"});
  ASSERT_EQ(ok.exitCode, 0) << ok.description;
  const json report = json::parse(ok.out);
  EXPECT_TRUE(report["equal"].get<bool>()) << ok.out;
  ASSERT_EQ(report["tables"].size(), 2u) << ok.out;
  EXPECT_EQ(report["tables"][0]["source_rows"], 20000) << ok.out;
  EXPECT_EQ(report["tables"][0]["chunks"], 21) << ok.out;
  EXPECT_EQ(report["tables"][1]["destination_rows"], 3000 - 272) << ok.out;

  // Behind tidemark's back: a value changed in one range, a row deleted in another.
  dest("UPDATE public.v SET payload = 'tampered' WHERE a = 555 AND b = 'k3'");
  dest("DELETE FROM public.w WHERE id = 2500");
  RunResult bad = runTidemark({"verify", "-c", config.string(), "--json", "--chunk-rows", "1000", "--timeout", "30s"});
  EXPECT_EQ(bad.exitCode, 2) << bad.description;
  const json diff = json::parse(bad.out);
  EXPECT_FALSE(diff["equal"].get<bool>());
  ASSERT_EQ(diff["tables"][0]["differing"].size(), 1u) << bad.out;
  const json& range = diff["tables"][0]["differing"][0];
  EXPECT_EQ(range["source_rows"], range["destination_rows"]) << bad.out;  // same count, values differ
  // Keys sort (0,k1) ... (0,k9), (1,k0) ...: every thousandth is (100,k0), (200,k0), ...
  EXPECT_EQ(range["from"], json::array({"500", "k0"})) << bad.out;
  EXPECT_EQ(range["to"], json::array({"600", "k0"})) << bad.out;
  ASSERT_EQ(diff["tables"][1]["differing"].size(), 1u) << bad.out;
  EXPECT_EQ(diff["tables"][1]["differing"][0]["source_rows"].get<int>(),
            diff["tables"][1]["differing"][0]["destination_rows"].get<int>() + 1) << bad.out;
  RunResult text = runTidemark({"verify", "-c", config.string(), "--chunk-rows", "1000", "--timeout", "30s"});
  EXPECT_EQ(text.exitCode, 2);
  EXPECT_TRUE(contains(text.out, "DIFFERS  public.w -> sink up")) << text.out;
  EXPECT_TRUE(contains(text.out, "(values differ)")) << text.out;
  run->signal(SIGTERM);
  EXPECT_EQ(run->waitExit(30s), 0) << run->describe();
}

// tidemark check reaches each PostgreSQL destination and says what stops it.
TEST_F(PostgresSinkTest, CheckReachesTheDestination) {
  sql("CREATE TABLE c (id int PRIMARY KEY)");
  const auto ok = writeConfig(TidemarkConfig({"public.c"}).withSinks(sink("up", "upsert")));
  json entry = checkEntry(ok, "sinks");
  EXPECT_EQ(entry["outcome"], "pass") << entry;
  EXPECT_TRUE(contains(entry["saw"].get<std::string>(), "up (postgres): database")) << entry;
  const auto bad = writeConfig(TidemarkConfig({"public.c"}).withSinks("- name: up\n  kind: postgres\n  dsn: \"" +
                                                                     destination().dsn("no_such_db") + "\"\n"),
                               "bad.yaml");
  entry = checkEntry(bad, "sinks");
  EXPECT_EQ(entry["outcome"], "fail") << entry;
  EXPECT_TRUE(contains(entry["saw"].get<std::string>(), "no_such_db")) << entry;
  EXPECT_TRUE(contains(entry["fix"].get<std::string>(), "sinks[].dsn")) << entry;
}

// soft_delete marks deleted rows instead of removing them (and a row inserted again is live);
// truncate: false leaves the destination's rows when the source truncates.
TEST_F(PostgresSinkTest, SoftDeletesAndTruncatesLeftOut) {
  sql("CREATE TABLE d (id int PRIMARY KEY, v text)");
  const auto config = writeConfig(TidemarkConfig({"public.d"})
                                      .withSinks(sink("soft", "upsert", "  schema: soft\n  soft_delete: true\n") +
                                                 sink("keep", "upsert", "  schema: keep\n  truncate: false\n")));
  ASSERT_NO_FATAL_FAILURE(initPipeline(config));
  // One transaction: the rows are written and deleted within one batch.
  sql("BEGIN; INSERT INTO d SELECT i, 'v' || i FROM generate_series(1, 10) i; DELETE FROM d WHERE id <= 3; "
      "INSERT INTO d VALUES (2, 'again'); COMMIT");
  RunResult r = runUntil(config, currentLsn());
  ASSERT_EQ(r.exitCode, 0) << r.description;
  EXPECT_EQ(destScalar("SELECT string_agg(id || ':' || __deleted, ' ' ORDER BY id) FROM soft.d WHERE id <= 4"),
            "1:true 2:false 3:true 4:false");
  EXPECT_EQ(destScalar("SELECT v FROM soft.d WHERE id = 2"), "again");
  EXPECT_EQ(destScalar("SELECT count(*) FROM keep.d"), "8");
  std::unique_ptr<Process> run;
  ASSERT_NO_FATAL_FAILURE(startStreaming(config, run));
  RunResult v = runTidemark({"verify", "-c", config.string(), "--sink", "soft"});
  EXPECT_EQ(v.exitCode, 0) << v.description;  // the rows marked deleted are not counted
  sql("TRUNCATE d");
  sql("INSERT INTO d VALUES (100, 'after')");
  ASSERT_EVENTUALLY(destPoll("SELECT count(*) FROM keep.d WHERE id = 100") == "1", 60s) << run->describe();
  ASSERT_EVENTUALLY(destPoll("SELECT count(*) FROM soft.d WHERE id = 100") == "1", 60s) << run->describe();
  EXPECT_EQ(destScalar("SELECT count(*) FROM keep.d"), "9");  // the truncate was left out
  EXPECT_EQ(destScalar("SELECT count(*) FROM soft.d WHERE NOT __deleted"), "1");
  run->signal(SIGTERM);
  EXPECT_EQ(run->waitExit(30s), 0) << run->describe();
}

// dlq.max_records bounds the queue: one rejected row more fails the sink, saying so; the status
// counts each sink's dead letters; discard marks them.
TEST_F(PostgresSinkTest, AFullDeadLetterQueueFailsTheSink) {
  sql("CREATE TABLE p (id int PRIMARY KEY, v int)");
  dest("CREATE TABLE public.p (id int PRIMARY KEY, v int CHECK (v < 100))");
  const auto config = writeConfig(TidemarkConfig({"public.p"})
                                      .withSinks(sink("up", "upsert") + "- name: files\n  kind: jsonl\n  path: " +
                                                 outDir().string() + "\n")
                                      .withTopLevel("dlq:\n  max_records: 2"));
  ASSERT_NO_FATAL_FAILURE(initPipeline(config));
  sql("INSERT INTO p VALUES (1, 1000)");
  sql("INSERT INTO p VALUES (2, 2000)");
  sql("INSERT INTO p VALUES (3, 3)");
  RunResult r = runUntil(config, currentLsn());
  ASSERT_EQ(r.exitCode, 0) << r.description;
  StatusResult st = status(config);
  ASSERT_TRUE(st.json) << st.description;
  EXPECT_EQ((*st.json)["sinks"]["up"]["dead_letters"], 2) << st.description;
  EXPECT_EQ((*st.json)["sinks"]["files"]["dead_letters"], 0) << st.description;

  sql("INSERT INTO p VALUES (4, 4000)");
  sql("INSERT INTO p VALUES (5, 5)");
  std::unique_ptr<Process> run;
  ASSERT_NO_FATAL_FAILURE(startStreaming(config, run));
  ASSERT_EVENTUALLY(contains(run->stderrText(), "already holds dlq.max_records (2) records"), 60s) << run->describe();
  ASSERT_EVENTUALLY(events("public.p").size() == 5, 60s) << run->describe();  // the other sink goes on
  EXPECT_TRUE(run->running()) << run->describe();
  run->signal(SIGTERM);
  run->waitExit(30s);
  EXPECT_EQ(destScalar("SELECT string_agg(id::text, ',' ORDER BY id) FROM p"), "3");

  RunResult discard = runTidemark({"dlq", "discard", "-c", config.string(), "--sink", "up"});
  ASSERT_EQ(discard.exitCode, 0) << discard.description;
  EXPECT_TRUE(contains(discard.out, "discarded 2 records")) << discard.out;
  r = runUntil(config, currentLsn());
  ASSERT_EQ(r.exitCode, 0) << r.description;  // room again: 4 is set aside, 5 applied
  EXPECT_EQ(destScalar("SELECT string_agg(id::text, ',' ORDER BY id) FROM p"), "3,5");
  const json letters = json::parse(runTidemark({"dlq", "list", "-c", config.string(), "--json"}).out);
  ASSERT_EQ(letters.size(), 3u);
  EXPECT_EQ(letters[2]["key"], "{\"id\":4}");
  EXPECT_EQ(letters[2]["state"], "pending");
  EXPECT_EQ(letters[0]["state"], "discarded");
}

// A row inserted at the source that the destination holds already (written there, or kept by
// --reset-sink) is overwritten, as upsert says, not an error.
TEST_F(PostgresSinkTest, ARowAlreadyAtTheDestinationIsOverwritten) {
  sql("CREATE TABLE e (id int PRIMARY KEY, v text)");
  dest("CREATE TABLE public.e (id int PRIMARY KEY, v text)");
  dest("INSERT INTO public.e VALUES (2, 'stale'), (99, 'destination only')");
  const auto config = writeConfig(TidemarkConfig({"public.e"}).withSinks(sink("up", "upsert")));
  ASSERT_NO_FATAL_FAILURE(initPipeline(config));
  sql("INSERT INTO e SELECT i, 'v' || i FROM generate_series(1, 5) i");
  RunResult r = runUntil(config, currentLsn());
  ASSERT_EQ(r.exitCode, 0) << r.description;
  EXPECT_EQ(destScalar("SELECT string_agg(id || ':' || v, ' ' ORDER BY id) FROM e"),
            "1:v1 2:v2 3:v3 4:v4 5:v5 99:destination only");
}

}  // namespace
}  // namespace tidemark::test
