// `tidemark status -c FILE --json` (docs/STATUS.md): the contract while a run goes on in
// another process and after it stopped, the freshness figures of an idle pipeline, a stalled
// stream (its walsender frozen with SIGSTOP) that is detected and recovered. (A blocked sink:
// tests/pg/changelog.)
#include <gtest/gtest.h>

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/log_records.h"
#include "support/pipeline_fixture.h"
#include "support/poll.h"

namespace tidemark::test {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;


constexpr int kStatusOk = 0;
constexpr int kStatusNoStatus = 1;
constexpr int kStatusUnhealthy = 2;

class StatusTest : public PgPipelineTest {
 protected:
  std::optional<int> walsenderPid() {
    auto v = pg().maybeScalar("postgres", "SELECT active_pid FROM pg_replication_slots WHERE "
                                          "slot_name = '" + slot() + "'");
    if (!v) return std::nullopt;
    return std::stoi(*v);
  }

  static std::string stateOf(const StatusResult& s) {
    if (!s.json) return "";
    auto st = jsonAt(*s.json, "state");
    return st && st->is_string() ? st->get<std::string>() : "";
  }

};

// Every key docs/STATUS.md lists (scripts may rely on them).
const std::vector<std::string> kDocumentedKeys = {
    "pipeline", "state", "reason", "updated_at", "pid",
    "heartbeat.mode", "heartbeat.interval_ms", "heartbeat.last_written_at",
    "heartbeat.last_observed_at", "heartbeat.last_observed_written_at", "heartbeat.age_ms",
    "heartbeat.e2e_lag_ms", "heartbeat.problem", "heartbeat.sinks",
    "slot.name", "slot.confirmed_flush_lsn", "slot.restart_lsn", "slot.retained_wal_bytes",
    "slot.wal_status", "slot.safe_wal_size", "slot.active", "slot.checked_at",
    "positions.received_lsn", "positions.durable_lsn", "positions.acknowledged_lsn",
    "events.delivered"};

TEST_F(StatusTest, WithoutAnyRunThereIsNoStatus) {
  sql("CREATE TABLE orders (id int PRIMARY KEY)");
  auto config = writeConfig(TidemarkConfig({"public.orders"}).withHeartbeat("interval: 1s"));
  StatusResult s = status(config);
  EXPECT_EQ(s.exitCode, kStatusNoStatus) << s.description;
  EXPECT_FALSE(slotExists()) << "status must not touch the source";
}

TEST_F(StatusTest, WhileRunningAndAfterTheRunStopped) {
  sql("CREATE TABLE orders (id int PRIMARY KEY, note text)");
  auto config = writeConfig(TidemarkConfig({"public.orders"}).withHeartbeat("interval: 1s"));
  ASSERT_EQ(status(config).exitCode, kStatusNoStatus);

  std::unique_ptr<Process> p;
  ASSERT_NO_FATAL_FAILURE(startStreaming(config, p));
  sql("INSERT INTO orders VALUES (1, 'one')");
  ASSERT_EVENTUALLY(events("public.orders").size() == 1 || !p->running(), seconds(30))
      << p->describe();

  const pid_t pid = p->pid();
  StatusResult last;
  std::string trail;
  ASSERT_TRUE(statusEventually(
      config,
      [pid](const StatusResult& s) {
        if (s.exitCode != kStatusOk || !s.json) return false;
        const json& j = *s.json;
        return jsonAt(j, "state") == json("running") && jsonAt(j, "pid") == json(pid) &&
               isNumber(jsonAt(j, "heartbeat.age_ms")) &&
               isNumber(jsonAt(j, "heartbeat.e2e_lag_ms")) &&
               isNonNull(jsonAt(j, "slot.confirmed_flush_lsn")) &&
               isNumber(jsonAt(j, "slot.retained_wal_bytes")) &&
               jsonAt(j, "events.delivered").value_or(0).is_number() &&
               jsonAt(j, "events.delivered")->get<double>() >= 1;
      },
      seconds(30), &last, &trail))
      << describeStatus(last, trail);
  const json& j = *last.json;
  for (const auto& key : kDocumentedKeys) {
    EXPECT_TRUE(jsonAt(j, key).has_value()) << "missing key " << key << " in " << j.dump();
  }
  EXPECT_EQ(jsonAt(j, "pipeline").value_or(nullptr), "t1");
  EXPECT_EQ(jsonAt(j, "reason").value_or("(missing)"), nullptr);
  EXPECT_TRUE(jsonAt(j, "updated_at").value_or(nullptr).is_string());
  EXPECT_EQ(jsonAt(j, "heartbeat.mode").value_or(nullptr), "table");
  EXPECT_EQ(jsonAt(j, "heartbeat.interval_ms").value_or(nullptr), 1000);
  EXPECT_EQ(jsonAt(j, "heartbeat.problem").value_or("(missing)"), nullptr);
  EXPECT_TRUE(jsonAt(j, "heartbeat.sinks.files.delivered_at").has_value()) << j.dump();
  EXPECT_EQ(jsonAt(j, "slot.name").value_or(nullptr), slot());
  EXPECT_EQ(jsonAt(j, "slot.active").value_or(nullptr), true);
  EXPECT_NO_THROW(parseLsn(jsonAt(j, "slot.confirmed_flush_lsn")->get<std::string>())) << j.dump();
  EXPECT_GE(jsonAt(j, "slot.retained_wal_bytes")->get<double>(), 0);
  for (const char* key : {"positions.received_lsn", "positions.durable_lsn", "positions.acknowledged_lsn"}) {
    auto v = jsonAt(j, key);
    ASSERT_TRUE(v && v->is_string()) << key << " in " << j.dump();
    EXPECT_NO_THROW(parseLsn(v->get<std::string>())) << key << " in " << j.dump();
  }
  EXPECT_LE(parseLsn(jsonAt(j, "positions.acknowledged_lsn")->get<std::string>()),
            parseLsn(jsonAt(j, "positions.durable_lsn")->get<std::string>()))
      << "acknowledged_lsn is never beyond durable_lsn: " << j.dump();

  p->signal(SIGTERM);
  RunResult r = finish(*p, seconds(60));
  ASSERT_EQ(r.exitCode, 0) << r.description;

  StatusResult after = status(config);
  EXPECT_EQ(after.exitCode, kStatusOk) << after.description;
  ASSERT_TRUE(after.json.has_value()) << after.description;
  EXPECT_EQ(jsonAt(*after.json, "state").value_or(nullptr), "stopped") << after.json->dump();
  EXPECT_EQ(jsonAt(*after.json, "pid").value_or("(missing)"), nullptr) << after.json->dump();
  for (const auto& key : kDocumentedKeys) {
    EXPECT_TRUE(jsonAt(*after.json, key).has_value()) << "missing key " << key << " in "
                                                      << after.json->dump();
  }
}

TEST_F(StatusTest, IdlePipelineLagIsWithinTheIntervalPlusASecond) {
  sql("CREATE TABLE orders (id int PRIMARY KEY, note text)");
  auto config =
      writeConfig(TidemarkConfig({"public.orders"}).withHeartbeat("interval: 1s\nmode: table"));
  std::unique_ptr<Process> p;
  ASSERT_NO_FATAL_FAILURE(startStreaming(config, p));

  auto fresh = [](const StatusResult& s) {
    if (!s.json) return false;
    auto lag = jsonAt(*s.json, "heartbeat.e2e_lag_ms");
    auto age = jsonAt(*s.json, "heartbeat.age_ms");
    return isNumber(lag) && isNumber(age) && lag->get<double>() <= 2000 &&
           age->get<double>() <= 2000 && lag->get<double>() >= 0;
  };
  StatusResult last;
  std::string trail;
  ASSERT_TRUE(statusEventually(config, fresh, seconds(30), &last, &trail))
      << describeStatus(last, trail);
  // And it stays so: no reading over the next seconds is staler.
  double maxAge = 0;
  double maxLag = 0;
  int readings = 0;
  std::string worst;
  eventually(
      [&] {
        StatusResult s = status(config);
        auto age = s.json ? jsonAt(*s.json, "heartbeat.age_ms") : std::nullopt;
        auto lag = s.json ? jsonAt(*s.json, "heartbeat.e2e_lag_ms") : std::nullopt;
        ++readings;
        if (!isNumber(age) || !isNumber(lag)) {
          maxAge = 1e12;
          worst = describeStatus(s);
          return false;
        }
        if (age->get<double>() > maxAge) worst = s.json->dump();
        maxAge = std::max(maxAge, age->get<double>());
        maxLag = std::max(maxLag, lag->get<double>());
        return false;
      },
      seconds(6), milliseconds(100));
  EXPECT_LE(maxAge, 2000) << "the stalest of " << readings << " readings over 6 s: " << worst;
  EXPECT_LE(maxLag, 2000) << "over " << readings << " readings";
  RecordProperty("max_age_ms", std::to_string(maxAge));
  RecordProperty("max_e2e_lag_ms", std::to_string(maxLag));
  EXPECT_TRUE(p->running()) << p->describe();
  p->signal(SIGTERM);
  RunResult r = finish(*p, seconds(60));
  EXPECT_EQ(r.exitCode, 0) << r.description;
}

// Resumes a SIGSTOPped process when the scope ends, however the test leaves it.
class ContinueGuard {
 public:
  explicit ContinueGuard(pid_t pid) : pid_(pid) {}
  ~ContinueGuard() { release(); }
  ContinueGuard(const ContinueGuard&) = delete;
  ContinueGuard& operator=(const ContinueGuard&) = delete;
  void release() {
    if (pid_ > 0) ::kill(pid_, SIGCONT);
    pid_ = -1;
  }

 private:
  pid_t pid_;
};

TEST_F(StatusTest, StalledStreamIsReportedAndRecovers) {
  sql("CREATE TABLE orders (id int PRIMARY KEY, note text)");
  auto config = writeConfig(TidemarkConfig({"public.orders"})
                                .withHeartbeat("interval: 1s\nmode: table\nstall_timeout: 3s"));
  std::unique_ptr<Process> p;
  ASSERT_NO_FATAL_FAILURE(startStreaming(config, p));

  // Healthy first: heartbeats come through.
  StatusResult last;
  std::string trail;
  ASSERT_TRUE(statusEventually(
      config,
      [](const StatusResult& s) {
        return s.json && jsonAt(*s.json, "state") == json("running") &&
               isNonNull(jsonAt(*s.json, "heartbeat.last_observed_written_at"));
      },
      seconds(30), &last, &trail))
      << describeStatus(last, trail);

  auto frozen = walsenderPid();
  ASSERT_TRUE(frozen.has_value());
  const size_t stderrBefore = p->stderrText().size();
  std::string stallTrail;
  {
    ASSERT_EQ(::kill(*frozen, SIGSTOP), 0) << "cannot stop walsender " << *frozen;
    ContinueGuard guard(*frozen);

    StatusResult stalled;
    ASSERT_TRUE(statusEventually(
        config, [](const StatusResult& s) { return stateOf(s) == "stalled"; }, seconds(30),
        &stalled, &stallTrail, milliseconds(50)))
        << describeStatus(stalled, stallTrail) << "\n" << p->describe();
    EXPECT_EQ(stalled.exitCode, kStatusUnhealthy) << stalled.description;
    EXPECT_TRUE(isNonNull(jsonAt(*stalled.json, "reason"))) << stalled.json->dump();
    ASSERT_EVENTUALLY(!recordsWith(p->stderrText().substr(stderrBefore), {"stall"}).empty(),
                      seconds(10))
        << p->describe();
    const auto stallRecords = recordsWith(p->stderrText().substr(stderrBefore), {"stall"});
    bool error = false;
    for (const auto& r : stallRecords) error = error || r.find(" ERROR ") != std::string::npos;
    EXPECT_TRUE(error) << "the stall is logged as an error naming what to check:\n"
                       << stallRecords[0];
    EXPECT_TRUE(p->running()) << p->describe();
    guard.release();
  }

  // The frozen walsender goes away once it runs again and sees its client gone; the
  // pipeline reconnects and heartbeats flow again.
  StatusResult recovered;
  std::string recoverTrail;
  ASSERT_TRUE(statusEventually(
      config, [](const StatusResult& s) { return stateOf(s) == "running"; }, seconds(60),
      &recovered, &recoverTrail))
      << describeStatus(recovered, recoverTrail) << "\n" << p->describe();
  EXPECT_EQ(recovered.exitCode, kStatusOk);
  EXPECT_NE(walsenderPid().value_or(0), *frozen);

  sql("INSERT INTO orders VALUES (1, 'after the stall')");
  ASSERT_EVENTUALLY(!events("public.orders").empty() || !p->running(), seconds(30))
      << p->describe();
  auto ev = events("public.orders");
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0]["after"]["note"], "after the stall");
  RecordProperty("stall_trail", stallTrail);
  p->signal(SIGTERM);
  RunResult r = finish(*p, seconds(60));
  EXPECT_EQ(r.exitCode, 0) << r.description;
}

}  // namespace
}  // namespace tidemark::test
