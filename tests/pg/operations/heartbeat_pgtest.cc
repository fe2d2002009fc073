// Heartbeats. Layer 1: an event on `__debezium-heartbeat.<prefix>` every interval. Layer 2: a
// write on the source every interval that comes back through the stream (mode table: this
// pipeline's row in tidemark.tidemark_heartbeat; message: pg_logical_emit_message; query: the
// configured statement), measured and not delivered unless heartbeat.deliver; read-only
// sources are written by a job outside tidemark, and tidemark writes nothing at all.
#include <gtest/gtest.h>

#include <signal.h>

#include <cctype>
#include <chrono>
#include <limits>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/background_writer.h"
#include "support/jsonl.h"
#include "support/log_records.h"
#include "support/pipeline_fixture.h"
#include "support/poll.h"

namespace tidemark::test {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

int64_t nowMs() {
  return std::chrono::duration_cast<milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}


class HeartbeatTest : public PgPipelineTest {
 protected:
  /// ts of this pipeline's row in the heartbeat table; nothing while the table or row is missing.
  std::optional<std::string> heartbeatTs(const std::string& pipeline = "t1") {
    try {
      auto rows = sql("SELECT ts::text FROM tidemark.tidemark_heartbeat WHERE pipeline = '" +
                      pipeline + "'");
      if (rows.empty()) return std::nullopt;
      return rows[0][0];
    } catch (const std::runtime_error&) {
      return std::nullopt;  // the table does not exist (yet)
    }
  }

  /// Adds the current heartbeat ts to `seen`; for use inside ASSERT_EVENTUALLY.
  size_t collectTs(std::set<std::string>& seen) {
    if (auto ts = heartbeatTs()) seen.insert(*ts);
    return seen.size();
  }

  bool schemaExists(const std::string& schema) {
    return scalar("SELECT count(*) FROM pg_namespace WHERE nspname = '" + schema + "'") == "1";
  }

  bool heartbeatTableInPublication() {
    return scalar("SELECT count(*) FROM pg_publication_tables WHERE pubname = '" + publication() +
                  "' AND schemaname = 'tidemark' AND tablename = 'tidemark_heartbeat'") == "1";
  }

  /// Sink files of the heartbeat table (Layer 2 rows delivered as data), whatever their topic.
  std::vector<std::filesystem::path> heartbeatTableFiles() const {
    std::vector<std::filesystem::path> out;
    std::error_code ec;
    if (!std::filesystem::is_directory(outDir(), ec)) return out;
    for (const auto& e : std::filesystem::directory_iterator(outDir())) {
      const std::string name = e.path().filename().string();
      if (name.find("tidemark_heartbeat") != std::string::npos &&
          name.rfind("__debezium-heartbeat", 0) != 0) {
        out.push_back(e.path());
      }
    }
    return out;
  }

  std::string outDirListing() const {
    std::string out;
    std::error_code ec;
    if (!std::filesystem::is_directory(outDir(), ec)) return "(no output directory)";
    for (const auto& e : std::filesystem::directory_iterator(outDir())) {
      out += e.path().filename().string() + " ";
    }
    return out.empty() ? "(empty)" : out;
  }

  /// A login role with REPLICATION that may read `tables` and owns nothing. Roles are
  /// cluster-wide, so the name carries the test's database.
  std::string readerRole(const std::string& tag, const std::vector<std::string>& tables) {
    std::string role = tag + "_" + db();
    sql("CREATE ROLE " + role + " LOGIN REPLICATION");
    for (const auto& t : tables) sql("GRANT SELECT ON " + t + " TO " + role);
    return role;
  }

  /// Waits until the slot has confirmed everything committed so far (so a clean stop has
  /// nothing left in flight), then stops the run with SIGTERM; it must exit 0.
  void confirmAndStop(Process& p) {
    const std::string lsn = currentLsn();
    ASSERT_EVENTUALLY(parseLsn(slotConfirmedFlushLsn().value_or("0/0")) >= parseLsn(lsn) ||
                          !p.running(),
                      seconds(30))
        << "confirmed_flush_lsn " << slotConfirmedFlushLsn().value_or("(none)") << ", wanted "
        << lsn << "\n"
        << p.describe();
    p.signal(SIGTERM);
    RunResult r = finish(p, seconds(60));
    ASSERT_EQ(r.exitCode, 0) << "a clean stop must exit 0\n" << r.description;
  }

};

// ---- Layer 2, mode table ----

TEST_F(HeartbeatTest, TableModeCreatesTheTableInThePublicationAndAdvancesItsRowEveryInterval) {
  sql("CREATE TABLE orders (id int PRIMARY KEY, note text)");
  auto config =
      writeConfig(TidemarkConfig({"public.orders"}).withHeartbeat("interval: 1s\nmode: table"));
  std::unique_ptr<Process> p;
  ASSERT_NO_FATAL_FAILURE(startStreaming(config, p));

  ASSERT_EVENTUALLY(heartbeatTs().has_value() || !p->running(), seconds(30)) << p->describe();
  EXPECT_TRUE(heartbeatTableInPublication());
  EXPECT_EQ(scalar("SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod) || "
                   "CASE WHEN attnotnull THEN ' not null' ELSE '' END, ', ' ORDER BY attnum) "
                   "FROM pg_attribute WHERE attrelid = 'tidemark.tidemark_heartbeat'::regclass "
                   "AND attnum > 0 AND NOT attisdropped"),
            "pipeline text not null, ts timestamp with time zone not null");
  EXPECT_EQ(scalar("SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = "
                   "i.indrelid AND a.attnum = ANY (i.indkey) WHERE i.indrelid = "
                   "'tidemark.tidemark_heartbeat'::regclass AND i.indisprimary"),
            "pipeline");

  // One upsert per interval: three distinct values take a little over two intervals.
  std::set<std::string> seen;
  ASSERT_EVENTUALLY(collectTs(seen) >= 3 || !p->running(), seconds(6))
      << "distinct ts values seen: " << seen.size() << "\n"
      << p->describe();
  ASSERT_TRUE(p->running()) << p->describe();
  EXPECT_EQ(scalar("SELECT count(*) FROM tidemark.tidemark_heartbeat"), "1")
      << "one row per pipeline";

  // They come through the stream (nothing else is written, so this is the heartbeat)...
  StatusResult last;
  std::string trail;
  EXPECT_TRUE(statusEventually(
      config,
      [](const StatusResult& s) {
        return s.json && isNonNull(jsonAt(*s.json, "heartbeat.last_observed_written_at"));
      },
      seconds(20), &last, &trail))
      << describeStatus(last, trail);

  // ... and are measured, not delivered.
  ASSERT_NO_FATAL_FAILURE(confirmAndStop(*p));
  EXPECT_TRUE(heartbeatTableFiles().empty()) << "heartbeat rows were delivered: " << outDirListing();
  EXPECT_TRUE(events("public.orders").empty());
}

TEST_F(HeartbeatTest, TableModeRowsAreDeliveredWhenDeliverIsTrue) {
  sql("CREATE TABLE orders (id int PRIMARY KEY, note text)");
  auto config = writeConfig(
      TidemarkConfig({"public.orders"}).withHeartbeat("interval: 1s\nmode: table\ndeliver: true"));
  std::unique_ptr<Process> p;
  ASSERT_NO_FATAL_FAILURE(startStreaming(config, p));

  auto deliveredRows = [&] {
    std::vector<json> out;
    for (const auto& f : heartbeatTableFiles()) {
      for (auto& line : readJsonLines(f)) {
        json value = line.contains("value") && line.contains("key") ? line["value"] : line;
        if (!value.is_null()) out.push_back(value);
      }
    }
    return out;
  };
  ASSERT_EVENTUALLY(deliveredRows().size() >= 2 || !p->running(), seconds(30))
      << "files: " << outDirListing() << "\n"
      << p->describe();
  ASSERT_NO_FATAL_FAILURE(confirmAndStop(*p));

  auto rows = deliveredRows();
  ASSERT_GE(rows.size(), 2u);
  EXPECT_EQ(topicFile("tidemark.tidemark_heartbeat").filename(), heartbeatTableFiles().at(0).filename())
      << "the heartbeat table's topic is named like any other table's";
  for (const auto& r : rows) {
    ASSERT_TRUE(r.contains("after")) << r.dump();
    EXPECT_EQ(r["after"]["pipeline"], "t1") << r.dump();
    EXPECT_TRUE(r["after"].contains("ts")) << r.dump();
    EXPECT_EQ(r["source"]["schema"], "tidemark") << r.dump();
    EXPECT_EQ(r["source"]["table"], "tidemark_heartbeat") << r.dump();
  }
}

TEST_F(HeartbeatTest, TableThatCannotBeCreatedWarnsWithTheSqlAndTheRunKeepsStreaming) {
  sql("CREATE TABLE orders (id int PRIMARY KEY, note text)");
  sql("CREATE PUBLICATION t1_pub FOR TABLE orders");
  const std::string role = readerRole("hbnoddl", {"orders"});
  auto config = writeConfig(
      TidemarkConfig({"public.orders"}).withUser(role).withHeartbeat("interval: 1s\nmode: table"));
  std::unique_ptr<Process> p;
  ASSERT_NO_FATAL_FAILURE(startStreaming(config, p));

  sql("INSERT INTO orders VALUES (1, 'streamed without a heartbeat table')");
  ASSERT_EVENTUALLY(!events("public.orders").empty() || !p->running(), seconds(30))
      << p->describe();
  auto ev = events("public.orders");
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0]["after"]["note"], "streamed without a heartbeat table");

  // A warning with the SQL to run.
  ASSERT_EVENTUALLY(!recordsWith(p->stderrText(), {"CREATE TABLE", "tidemark_heartbeat"}).empty() ||
                        !p->running(),
                    seconds(30))
      << p->describe();
  auto warnings = recordsWith(p->stderrText(), {"CREATE TABLE", "tidemark_heartbeat"});
  ASSERT_FALSE(warnings.empty()) << p->describe();
  EXPECT_NE(warnings[0].find(" WARN "), std::string::npos)
      << "expected a warning, got: " << warnings[0];
  RecordProperty("warning", warnings[0]);

  StatusResult last;
  std::string trail;
  EXPECT_TRUE(statusEventually(
      config,
      [](const StatusResult& s) {
        if (!s.json) return false;
        auto problem = jsonAt(*s.json, "heartbeat.problem");
        return problem && problem->is_string() && !problem->get<std::string>().empty();
      },
      seconds(20), &last, &trail))
      << describeStatus(last, trail);
  if (last.json) {
    EXPECT_EQ(jsonAt(*last.json, "state").value_or(nullptr), "running") << last.json->dump();
    RecordProperty("problem", jsonAt(*last.json, "heartbeat.problem").value_or(nullptr).dump());
  }

  EXPECT_TRUE(p->running()) << p->describe();
  EXPECT_FALSE(schemaExists("tidemark"));
  p->signal(SIGTERM);
  RunResult r = finish(*p, seconds(60));
  EXPECT_EQ(r.exitCode, 0) << r.description;
}

// The warning's SQL is "the exact SQL to run": an administrator runs it, and after a restart
// Layer 2 works for the same role and the same (pre-existing) publication. Should a further
// problem come up after the first fix, its SQL is run too (up to three rounds), so the test
// still shows whether the fixes converge; but one round is what a user should need.
TEST_F(HeartbeatTest, TheSqlInTheProblemMakesLayer2WorkOnceAnAdministratorRunsIt) {
  sql("CREATE TABLE orders (id int PRIMARY KEY, note text)");
  sql("CREATE PUBLICATION t1_pub FOR TABLE orders");
  const std::string role = readerRole("hbfix", {"orders"});
  auto config = writeConfig(
      TidemarkConfig({"public.orders"}).withUser(role).withHeartbeat("interval: 1s\nmode: table"));

  std::vector<std::string> fixes;
  bool works = false;
  StatusResult last;
  std::string trail;
  for (int round = 0; round < 3 && !works; ++round) {
    std::unique_ptr<Process> p;
    ASSERT_NO_FATAL_FAILURE(startStreaming(config, p));
    const pid_t pid = p->pid();
    // Either a problem, or Layer 2 working, for this run.
    trail.clear();
    ASSERT_TRUE(statusEventually(
        config,
        [pid](const StatusResult& s) {
          if (!s.json || jsonAt(*s.json, "pid") != json(pid)) return false;
          auto problem = jsonAt(*s.json, "heartbeat.problem");
          return (problem && problem->is_string()) ||
                 isNonNull(jsonAt(*s.json, "heartbeat.last_observed_written_at"));
        },
        seconds(30), &last, &trail))
        << describeStatus(last, trail);
    auto problem = jsonAt(*last.json, "heartbeat.problem");
    if (!problem || !problem->is_string()) {
      works = true;
      ASSERT_NO_FATAL_FAILURE(confirmAndStop(*p));
      break;
    }
    const std::string text = problem->get<std::string>();
    p->signal(SIGTERM);
    RunResult r = finish(*p, seconds(60));
    ASSERT_EQ(r.exitCode, 0) << r.description;
    // The SQL is what follows "run:" (the problem explains first).
    const auto at = text.find("run:");
    ASSERT_NE(at, std::string::npos) << "no SQL to run in: " << text;
    fixes.push_back(text.substr(at + 4));
    ASSERT_NO_THROW(sql(fixes.back())) << fixes.back();
  }
  std::string applied;
  for (const auto& f : fixes) applied += "  " + f + "\n";
  ASSERT_TRUE(works) << "Layer 2 still does not work after running:\n" << applied
                     << describeStatus(last, trail);
  EXPECT_EQ(fixes.size(), 1u) << "the first problem's SQL did not fix it; SQL run, in order:\n"
                              << applied;
  EXPECT_TRUE(heartbeatTs().has_value());
  EXPECT_TRUE(heartbeatTableInPublication());
}

// ---- Layer 2, mode message ----

TEST_F(HeartbeatTest, MessageModeNeedsNoTableAndMeasuresTheLag) {
  sql("CREATE TABLE orders (id int PRIMARY KEY, note text)");
  auto config =
      writeConfig(TidemarkConfig({"public.orders"}).withHeartbeat("interval: 1s\nmode: message"));
  // A slot of the test's own, made before tidemark writes anything, to read the messages as
  // the server logged them.
  sql("SELECT pg_create_logical_replication_slot('" + slot() + "_peek', 'test_decoding')");
  const int64_t startMs = nowMs();
  std::unique_ptr<Process> p;
  ASSERT_NO_FATAL_FAILURE(startStreaming(config, p));

  StatusResult last;
  std::string trail;
  ASSERT_TRUE(statusEventually(
      config,
      [](const StatusResult& s) {
        if (!s.json) return false;
        auto lag = jsonAt(*s.json, "heartbeat.e2e_lag_ms");
        return isNonNull(jsonAt(*s.json, "heartbeat.last_observed_written_at")) && isNumber(lag) &&
               lag->get<double>() <= 2000;
      },
      seconds(30), &last, &trail))
      << describeStatus(last, trail);
  EXPECT_EQ(jsonAt(*last.json, "heartbeat.mode").value_or(nullptr), "message");
  EXPECT_EQ(jsonAt(*last.json, "heartbeat.problem").value_or("(missing)"), nullptr);

  // The messages: transactional, prefix tidemark_heartbeat, {"pipeline":"t1","ts_us":...}.
  const std::string peek =
      "SELECT data FROM pg_logical_slot_peek_changes('" + slot() + "_peek', NULL, NULL)";
  auto hasMessage = [&] {
    for (const auto& row : sql(peek)) {
      if (row[0].value_or("").rfind("message:", 0) == 0) return true;
    }
    return false;
  };
  EXPECT_EVENTUALLY(hasMessage(), seconds(10));
  auto changes = sql(peek);
  int messages = 0;
  for (const auto& row : changes) {
    const std::string data = row[0].value_or("");
    if (data.rfind("message:", 0) != 0) continue;
    ++messages;
    EXPECT_NE(data.find("transactional: 1"), std::string::npos) << data;
    EXPECT_NE(data.find("prefix: tidemark_heartbeat,"), std::string::npos) << data;
    const auto content = data.find("content:");
    ASSERT_NE(content, std::string::npos) << data;
    json payload = json::parse(data.substr(content + 8), nullptr, false);
    ASSERT_TRUE(payload.is_object()) << data;
    EXPECT_EQ(payload["pipeline"], "t1") << data;
    ASSERT_TRUE(payload["ts_us"].is_number_integer()) << data;
    const int64_t tsMs = payload["ts_us"].get<int64_t>() / 1000;
    EXPECT_GE(tsMs, startMs - 5000) << data;
    EXPECT_LE(tsMs, nowMs() + 5000) << data;
  }
  EXPECT_GE(messages, 1) << "no heartbeat message in the WAL";

  ASSERT_NO_FATAL_FAILURE(confirmAndStop(*p));
  EXPECT_FALSE(schemaExists("tidemark")) << "mode message must not create the heartbeat schema";
  EXPECT_FALSE(std::filesystem::exists(messageFile()))
      << "heartbeat messages are measured, not delivered";
}

// ---- Layer 2, mode query ----

TEST_F(HeartbeatTest, QueryModeRunsTheQueryEveryInterval) {
  sql("CREATE TABLE orders (id int PRIMARY KEY, note text)");
  sql("CREATE TABLE hb_query_log (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())");
  auto config = writeConfig(TidemarkConfig({"public.orders"})
                                .withHeartbeat("interval: 1s\nmode: query\n"
                                               "query: \"INSERT INTO public.hb_query_log DEFAULT VALUES\""));
  std::unique_ptr<Process> p;
  ASSERT_NO_FATAL_FAILURE(startStreaming(config, p));
  ASSERT_EVENTUALLY(std::stoi(scalar("SELECT count(*) FROM hb_query_log")) >= 3 || !p->running(),
                    seconds(15))
      << p->describe();
  // Not a burst: the runs are spread over the intervals.
  EXPECT_GE(std::stod(scalar("SELECT extract(epoch FROM max(at) - min(at)) FROM hb_query_log")), 1.0);
  ASSERT_NO_FATAL_FAILURE(confirmAndStop(*p));
  EXPECT_FALSE(std::filesystem::exists(topicFile("public.hb_query_log")));
}

// ---- hibernation ----

TEST_F(HeartbeatTest, HibernateSkipsTableWritesWhileCapturedTablesChange) {
  sql("CREATE TABLE orders (id bigint PRIMARY KEY, note text)");
  // Hibernation needs a captured commit decoded within every interval: 2 s against a commit
  // every 100 ms leaves room for a loaded machine's slow fsync, and still lets a broken
  // hibernation write twice in the 5 s watched below.
  auto config =
      writeConfig(TidemarkConfig({"public.orders"}).withHeartbeat("interval: 2s\nmode: table"));
  std::unique_ptr<Process> p;
  ASSERT_NO_FATAL_FAILURE(startStreaming(config, p));
  std::set<std::string> seen;
  ASSERT_EVENTUALLY(collectTs(seen) >= 2 || !p->running(), seconds(30)) << p->describe();

  // Captured traffic: a commit every 100 ms.
  BackgroundWriter traffic(
      pg().dsn(db()),
      [](int64_t batch) {
        return "INSERT INTO orders VALUES (" + std::to_string(batch + 1) + ", 'traffic')";
      },
      std::numeric_limits<int64_t>::max(), milliseconds(100));
  // One write may already be under way when the traffic starts; after that, none.
  ASSERT_EVENTUALLY(events("public.orders").size() >= 10 || !p->running(), seconds(30))
      << p->describe();
  std::this_thread::sleep_for(milliseconds(2500));  // let an in-flight heartbeat land
  const auto hibernating = heartbeatTs();
  ASSERT_TRUE(hibernating.has_value());
  EXPECT_FALSE(eventually([&] { return heartbeatTs() != hibernating; }, seconds(5)))
      << "the heartbeat row was written while the captured table had traffic: " << *hibernating
      << " -> " << heartbeatTs().value_or("(none)");
  // The commits of the captured table measure the lag meanwhile.
  StatusResult last;
  std::string trail;
  EXPECT_TRUE(statusEventually(
      config,
      [](const StatusResult& s) {
        if (!s.json) return false;
        auto age = jsonAt(*s.json, "heartbeat.age_ms");
        return isNumber(age) && age->get<double>() <= 2000;
      },
      seconds(10), &last, &trail))
      << describeStatus(last, trail);
  traffic.stop();
  EXPECT_EQ(traffic.error(), "");

  // Traffic stopped: the heartbeat resumes.
  EXPECT_EVENTUALLY(heartbeatTs() != hibernating, seconds(10));
  ASSERT_NO_FATAL_FAILURE(confirmAndStop(*p));
}

TEST_F(HeartbeatTest, WithoutHibernationTableWritesGoOnDuringTraffic) {
  sql("CREATE TABLE orders (id bigint PRIMARY KEY, note text)");
  auto config = writeConfig(TidemarkConfig({"public.orders"})
                                .withHeartbeat("interval: 1s\nmode: table\nhibernate: false"));
  std::unique_ptr<Process> p;
  ASSERT_NO_FATAL_FAILURE(startStreaming(config, p));
  ASSERT_EVENTUALLY(heartbeatTs().has_value() || !p->running(), seconds(30)) << p->describe();
  BackgroundWriter traffic(
      pg().dsn(db()),
      [](int64_t batch) {
        return "INSERT INTO orders VALUES (" + std::to_string(batch + 1) + ", 'traffic')";
      },
      std::numeric_limits<int64_t>::max(), milliseconds(100));
  ASSERT_EVENTUALLY(events("public.orders").size() >= 10 || !p->running(), seconds(30))
      << p->describe();
  std::set<std::string> seen;
  EXPECT_EVENTUALLY(collectTs(seen) >= 3, seconds(6));
  traffic.stop();
  EXPECT_EQ(traffic.error(), "");
  ASSERT_NO_FATAL_FAILURE(confirmAndStop(*p));
}

// ---- Layer 1 ----

void expectLayer1Lines(const std::vector<json>& lines, bool withKey, int64_t startMs) {
  int64_t previous = 0;
  for (const auto& line : lines) {
    json value = line;
    if (withKey) {
      ASSERT_TRUE(line.is_object() && line.contains("key") && line.contains("value")) << line.dump();
      EXPECT_EQ(line["key"], json({{"serverName", "t1"}})) << line.dump();
      value = line["value"];
    }
    ASSERT_TRUE(value.is_object()) << line.dump();
    EXPECT_EQ(value.size(), 1u) << "the value is {\"ts_ms\": ...}: " << line.dump();
    ASSERT_TRUE(value.contains("ts_ms") && value["ts_ms"].is_number_integer()) << line.dump();
    const int64_t ts = value["ts_ms"].get<int64_t>();
    EXPECT_GE(ts, startMs - 5000) << line.dump();
    EXPECT_LE(ts, nowMs() + 5000) << line.dump();
    EXPECT_GE(ts, previous) << "ts_ms goes backwards: " << line.dump();
    previous = ts;
  }
}

TEST_F(HeartbeatTest, Layer1EventsHaveTheDebeziumShapeWithKey) {
  sql("CREATE TABLE orders (id int PRIMARY KEY, note text)");
  auto config = writeConfig(TidemarkConfig({"public.orders"}).withKeys().withHeartbeat("interval: 1s"));
  const int64_t startMs = nowMs();
  std::unique_ptr<Process> p;
  ASSERT_NO_FATAL_FAILURE(startStreaming(config, p));
  ASSERT_EVENTUALLY(readJsonLines(heartbeatFile()).size() >= 3 || !p->running(), seconds(15))
      << "files: " << outDirListing() << "\n"
      << p->describe();
  auto lines = readJsonLines(heartbeatFile());
  expectLayer1Lines(lines, true, startMs);
  // Every interval, not a burst.
  EXPECT_GE(lines[2]["value"]["ts_ms"].get<int64_t>() - lines[0]["value"]["ts_ms"].get<int64_t>(),
            1000);
  ASSERT_NO_FATAL_FAILURE(confirmAndStop(*p));
}

TEST_F(HeartbeatTest, Layer1EventsWithoutKeyAreTheValueOnly) {
  sql("CREATE TABLE orders (id int PRIMARY KEY, note text)");
  auto config =
      writeConfig(TidemarkConfig({"public.orders"}).withHeartbeat("interval: 1s\nmode: off"));
  const int64_t startMs = nowMs();
  std::unique_ptr<Process> p;
  ASSERT_NO_FATAL_FAILURE(startStreaming(config, p));
  ASSERT_EVENTUALLY(readJsonLines(heartbeatFile()).size() >= 3 || !p->running(), seconds(15))
      << "files: " << outDirListing() << "\n"
      << p->describe();
  expectLayer1Lines(readJsonLines(heartbeatFile()), false, startMs);
  ASSERT_NO_FATAL_FAILURE(confirmAndStop(*p));
  EXPECT_FALSE(schemaExists("tidemark")) << "mode off writes nothing to the source";
}

TEST_F(HeartbeatTest, Layer1EventsOffWritesNoHeartbeatTopic) {
  sql("CREATE TABLE orders (id int PRIMARY KEY, note text)");
  auto config = writeConfig(
      TidemarkConfig({"public.orders"}).withHeartbeat("interval: 1s\nevents: false"));
  std::unique_ptr<Process> p;
  ASSERT_NO_FATAL_FAILURE(startStreaming(config, p));
  // Several intervals pass: the Layer 2 row has taken three values.
  std::set<std::string> seen;
  ASSERT_EVENTUALLY(collectTs(seen) >= 3 || !p->running(), seconds(30)) << p->describe();
  ASSERT_NO_FATAL_FAILURE(confirmAndStop(*p));
  EXPECT_FALSE(std::filesystem::exists(heartbeatFile())) << outDirListing();
  EXPECT_TRUE(allEvents().empty()) << outDirListing();
}

// ---- read-only source ----

// A statement a session ran, as log_statement = all and log_replication_commands log it.
struct LoggedStatement {
  std::string user;
  std::string app;
  std::string text;  // the SQL or replication command
  std::string record;
};

std::vector<LoggedStatement> loggedStatements(const std::string& log) {
  // log_line_prefix '%m [%p] %u@%d app=%a ': "2026-01-02 03:04:05.678 UTC [123] u@db app=x LOG:  ..."
  // Only the short head goes through the regex (libstdc++'s recursion is no friend of long
  // statements).
  static const std::regex head(R"(^\S+ \S+ \S+ \[\d+\] (\S*)@\S* app=(\S*) LOG:  $)");
  std::vector<LoggedStatement> out;
  for (auto& r : logRecords(log)) {
    const size_t at = r.find(" LOG:  ");
    if (at == std::string::npos) continue;
    std::smatch m;
    const std::string prefix = r.substr(0, at + 7);
    if (!std::regex_match(prefix, m, head)) continue;
    const std::string rest = r.substr(at + 7);
    std::string text;
    if (rest.rfind("statement: ", 0) == 0) {
      text = rest.substr(11);
    } else if (rest.rfind("received replication command: ", 0) == 0) {
      text = rest.substr(30);
    } else if (rest.rfind("execute ", 0) == 0 && rest.find(": ") != std::string::npos) {
      text = rest.substr(rest.find(": ") + 2);
    } else {
      continue;
    }
    out.push_back({m[1], m[2], text, r});
  }
  return out;
}

// Whether `word` occurs in `text` as a whole word, case-insensitively.
bool containsWord(const std::string& text, const std::string& word) {
  const std::string lower = lowerCase(text);
  auto isWordChar = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
  for (size_t pos = lower.find(word); pos != std::string::npos; pos = lower.find(word, pos + 1)) {
    const bool startOk = pos == 0 || !isWordChar(lower[pos - 1]);
    const bool endOk = pos + word.size() >= lower.size() || !isWordChar(lower[pos + word.size()]);
    if (startOk && endOk) return true;
  }
  return false;
}

// Whether `text` only reads: its first keyword is one of a query, a session setting, a
// transaction boundary, or a replication command that writes no table.
bool onlyReads(const std::string& text) {
  static const std::set<std::string> kAllowed = {
      "select", "show", "set", "reset", "begin", "start", "commit", "end", "rollback",
      "declare", "fetch", "close", "deallocate", "discard", "table", "values",
      "identify_system", "start_replication", "create_replication_slot", "read_replication_slot",
      "timeline_history"};
  static const std::vector<std::string> kWriteWords = {
      "insert", "update", "delete", "merge", "create", "alter", "drop", "truncate", "copy",
      "grant", "revoke", "comment"};
  static const std::vector<std::string> kWriteFunctions = {"pg_logical_emit_message", "nextval",
                                                           "setval"};
  size_t i = text.find_first_not_of(" \t\n(");
  if (i == std::string::npos) return true;
  size_t j = i;
  while (j < text.size() && (std::isalnum(static_cast<unsigned char>(text[j])) || text[j] == '_')) ++j;
  const std::string first = lowerCase(text.substr(i, j - i));
  const bool replication = first == "identify_system" || first == "start_replication" ||
                           first == "create_replication_slot" ||
                           first == "read_replication_slot" || first == "timeline_history";
  if (replication) return true;
  if (first == "with") {
    for (const auto& w : kWriteWords) {
      if (containsWord(text, w)) return false;
    }
  } else if (kAllowed.count(first) == 0) {
    return false;
  }
  // A query can still write through a function.
  for (const auto& f : kWriteFunctions) {
    if (containsWord(text, f)) return false;
  }
  return true;
}

TEST_F(HeartbeatTest, ReadOnlySourceIsNotWrittenAndFreshnessComesFromTheExternalWriter) {
  sql("CREATE TABLE orders (id int PRIMARY KEY, note text)");
  sql("CREATE SCHEMA tidemark");
  sql("CREATE TABLE tidemark.tidemark_heartbeat (pipeline text PRIMARY KEY, ts timestamptz NOT NULL)");
  sql("CREATE PUBLICATION t1_pub FOR TABLE orders, tidemark.tidemark_heartbeat");
  const std::string role = readerRole("hbro", {"orders", "tidemark.tidemark_heartbeat"});
  sql("GRANT USAGE ON SCHEMA tidemark TO " + role);
  // Belt and braces: even a write tidemark tried would fail, and show in the log as an error.
  sql("ALTER ROLE " + role + " SET default_transaction_read_only = on");

  setSystem("log_line_prefix", "'%m [%p] %u@%d app=%a '");
  setSystem("log_statement", "'all'");
  const size_t logStart = pg().logSize();

  // The job outside tidemark: an upsert of this pipeline's row every second.
  BackgroundWriter job(
      pg().dsn(db()),
      [](int64_t) {
        return std::string(
            "INSERT INTO tidemark.tidemark_heartbeat (pipeline, ts) VALUES ('t1', now()) "
            "ON CONFLICT (pipeline) DO UPDATE SET ts = excluded.ts");
      },
      std::numeric_limits<int64_t>::max(), seconds(1));

  auto config = writeConfig(TidemarkConfig({"public.orders"})
                                .withUser(role)
                                .withSourceExtra("read_only: true")
                                .withHeartbeat("interval: 1s\nmode: table"));
  std::unique_ptr<Process> p;
  ASSERT_NO_FATAL_FAILURE(startStreaming(config, p));
  sql("INSERT INTO orders VALUES (1, 'read-only source')");
  ASSERT_EVENTUALLY(!events("public.orders").empty() || !p->running(), seconds(30))
      << p->describe();

  // Freshness from the rows the job writes.
  StatusResult last;
  std::string trail;
  ASSERT_TRUE(statusEventually(
      config,
      [](const StatusResult& s) {
        if (!s.json) return false;
        auto age = jsonAt(*s.json, "heartbeat.age_ms");
        return isNonNull(jsonAt(*s.json, "heartbeat.last_observed_written_at")) && isNumber(age) &&
               age->get<double>() < 3000;
      },
      seconds(30), &last, &trail))
      << describeStatus(last, trail);
  EXPECT_TRUE(isNonNull(jsonAt(*last.json, "heartbeat.last_written_at")))
      << "read-only: last_written_at is read back from the heartbeat table\n"
      << last.json->dump();
  EXPECT_EQ(jsonAt(*last.json, "heartbeat.problem").value_or("(missing)"), nullptr)
      << last.json->dump();
  // And it stays so while the job writes (the run saves its status when a heartbeat comes
  // through, so a reading is at most about one job period old).
  StatusResult stale;
  EXPECT_FALSE(statusEventually(
      config,
      [](const StatusResult& s) {
        auto age = s.json ? jsonAt(*s.json, "heartbeat.age_ms") : std::nullopt;
        return !isNumber(age) || age->get<double>() >= 3000;
      },
      seconds(6), &stale))
      << "age_ms went to 3000 or more while the job wrote every second\n"
      << describeStatus(stale);

  ASSERT_NO_FATAL_FAILURE(confirmAndStop(*p));
  job.stop();
  EXPECT_EQ(job.error(), "");

  // What tidemark ran, from the server log.
  const std::string log = pg().logSince(logStart);
  int tidemarkStatements = 0;
  int replicationCommands = 0;
  int jobWrites = 0;
  std::string offending;
  for (const auto& s : loggedStatements(log)) {
    // tidemark's connections: application_name tidemark, tidemark-monitor, tidemark-status...
    const bool fromTidemark = s.user == role || s.app.rfind("tidemark", 0) == 0;
    if (!fromTidemark) {
      if (s.text.find("INSERT INTO tidemark.tidemark_heartbeat") != std::string::npos) ++jobWrites;
      continue;
    }
    ++tidemarkStatements;
    if (s.record.find("received replication command") != std::string::npos) ++replicationCommands;
    if (!onlyReads(s.text)) offending += "  " + s.record + "\n";
  }
  // The log did record statements: the job's, tidemark's queries and its replication commands.
  EXPECT_GE(jobWrites, 2) << "log_statement = all did not take effect?\n" << log.substr(0, 3000);
  EXPECT_GT(tidemarkStatements, replicationCommands)
      << "no SQL statement of tidemark's (role " << role << ") in the log";
  EXPECT_GE(replicationCommands, 2) << "no replication command of tidemark's in the log";
  EXPECT_EQ(offending, "") << "tidemark wrote to a read-only source";
  const auto readOnlyErrors = recordsWith(log, {role + "@", "read-only transaction"});
  EXPECT_TRUE(readOnlyErrors.empty()) << "tidemark tried to write: " << readOnlyErrors[0];
  EXPECT_EQ(scalar("SELECT count(*) FROM tidemark.tidemark_heartbeat"), "1");
}

// Read-only, tidemark reads the heartbeat row back; when it cannot (the table has other
// columns), the status says so, not only the log.
TEST_F(HeartbeatTest, ReadOnlyHeartbeatTableThatCannotBeReadIsTheStatusProblem) {
  sql("CREATE TABLE orders (id int PRIMARY KEY)");
  sql("CREATE SCHEMA tidemark");
  sql("CREATE TABLE tidemark.tidemark_heartbeat (name text PRIMARY KEY, stamp timestamptz NOT NULL)");
  sql("CREATE PUBLICATION t1_pub FOR TABLE orders, tidemark.tidemark_heartbeat WITH (publish_via_partition_root = true)");
  const std::string role = readerRole("hbbad", {"orders", "tidemark.tidemark_heartbeat"});
  sql("GRANT USAGE ON SCHEMA tidemark TO " + role);
  auto config = writeConfig(TidemarkConfig({"public.orders"})
                                .withUser(role)
                                .withSourceExtra("read_only: true")
                                .withHeartbeat("interval: 1s\nmode: table"));
  std::unique_ptr<Process> p;
  ASSERT_NO_FATAL_FAILURE(startStreaming(config, p));
  StatusResult last;
  ASSERT_TRUE(statusEventually(
      config,
      [](const StatusResult& s) {
        auto problem = s.json ? jsonAt(*s.json, "heartbeat.problem") : std::nullopt;
        return problem && problem->is_string();
      },
      seconds(30), &last))
      << describeStatus(last) << p->describe();
  const std::string problem = jsonAt(*last.json, "heartbeat.problem")->get<std::string>();
  EXPECT_NE(problem.find("reading the Layer 2 heartbeat failed"), std::string::npos) << problem;
  EXPECT_NE(problem.find("columns pipeline text and ts timestamptz"), std::string::npos) << problem;
  ASSERT_NO_FATAL_FAILURE(confirmAndStop(*p));
}

}  // namespace
}  // namespace tidemark::test
