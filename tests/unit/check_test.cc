// The parts of `tidemark check` that need no server: how results are printed (text and JSON),
// the exit code rule, the judgements with their thresholds and fix texts, the sink probe, and
// the state store's read-only position reader.
#include "ops/check/check.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "core/offset_store.h"
#include "ops/check/rules.h"
#include "state/sqlite_store.h"
#include "support/assertions.h"
#include "support/temp_dir.h"

namespace tidemark::check {
namespace {

using std::chrono::milliseconds;

using test::contains;

std::vector<CheckResult> sample() {
  return {
      {"wal_level", "wal_level", Outcome::Pass, "logical", ""},
      {"retention_guard", "WAL retention guard", Outcome::Warn, "unguarded",
       "ALTER SYSTEM SET max_slot_wal_keep_size = '10GB'; SELECT pg_reload_conf();"},
      {"publication", "publication \"p\"", Outcome::Fail, "orders missing",
       "ALTER PUBLICATION p ADD TABLE orders;"},
  };
}

TEST(CheckReportTest, TextIsOneLinePerCheckWithAFixLineUnderWarningsAndFailures) {
  EXPECT_EQ(renderText(sample()),
            "PASS  wal_level: logical\n"
            "WARN  WAL retention guard: unguarded\n"
            "      fix: ALTER SYSTEM SET max_slot_wal_keep_size = '10GB'; SELECT pg_reload_conf();\n"
            "FAIL  publication \"p\": orders missing\n"
            "      fix: ALTER PUBLICATION p ADD TABLE orders;\n"
            "1 passed, 1 warned, 1 failed\n");
}

TEST(CheckReportTest, JsonHasEveryCheckInOrderWithCountsAndNullFixOnPass) {
  auto doc = nlohmann::json::parse(renderJson(sample()));
  ASSERT_EQ(doc["checks"].size(), 3u);
  EXPECT_EQ(doc["checks"][0],
            (nlohmann::json{{"id", "wal_level"}, {"title", "wal_level"}, {"outcome", "pass"},
                            {"saw", "logical"}, {"fix", nullptr}}));
  EXPECT_EQ(doc["checks"][1]["outcome"], "warn");
  EXPECT_EQ(doc["checks"][2]["outcome"], "fail");
  EXPECT_EQ(doc["checks"][2]["fix"], "ALTER PUBLICATION p ADD TABLE orders;");
  EXPECT_EQ(doc["passed"], 1);
  EXPECT_EQ(doc["warned"], 1);
  EXPECT_EQ(doc["failed"], 1);
  // Key order is part of the output people read.
  std::string text = renderJson(sample());
  EXPECT_LT(text.find("\"checks\""), text.find("\"passed\""));
  EXPECT_LT(text.find("\"id\""), text.find("\"title\""));
}

TEST(CheckReportTest, JsonStaysValidWhenTheServerSentBytesThatAreNotUtf8) {
  std::vector<CheckResult> r = {{"x", "x", Outcome::Pass, std::string("bad \xff byte"), ""}};
  EXPECT_TRUE(nlohmann::json::accept(renderJson(r)));
}

TEST(CheckReportTest, ExitCodeIsZeroWithWarningsAndTwoWithAnyFailure) {
  auto results = sample();
  EXPECT_EQ(exitCodeFor(results), kExitRuntime);
  results.pop_back();
  EXPECT_EQ(exitCodeFor(results), kExitOk);
  EXPECT_EQ(exitCodeFor({}), kExitOk);
}

TEST(CheckRulesTest, LoopbackHostsAreRecognised) {
  for (const char* h : {"127.0.0.1", "127.1.2.3", "::1", "localhost", "/var/run/postgresql", ""}) {
    EXPECT_TRUE(isLoopbackHost(h)) << h;
  }
  for (const char* h : {"10.0.0.5", "db.example.com", "2001:db8::1", "128.0.0.1"}) {
    EXPECT_FALSE(isLoopbackHost(h)) << h;
  }
}

TEST(CheckRulesTest, PlainConnectionWarnsOffLoopbackOnly) {
  ConnectionFacts f{"127.0.0.1", "5432", "tidemark", "shop", false, ""};
  EXPECT_EQ(judgeConnection(f).outcome, Outcome::Pass);
  f.host = "db.internal";
  CheckResult r = judgeConnection(f);
  EXPECT_EQ(r.outcome, Outcome::Warn);
  EXPECT_TRUE(contains(r.fix, "sslmode=verify-full"));
  f.tls = true;
  f.tls_protocol = "TLSv1.3";
  r = judgeConnection(f);
  EXPECT_EQ(r.outcome, Outcome::Pass);
  EXPECT_TRUE(contains(r.saw, "TLSv1.3"));
}

TEST(CheckRulesTest, ConnectionFailureIsOneLineAndPointsAtPgHba) {
  CheckResult r = connectionFailed(
      "connection to server at \"10.0.0.5\", port 5432 failed: Connection refused\n\tIs the server running?",
      "check that the server is running");
  EXPECT_EQ(r.outcome, Outcome::Fail);
  EXPECT_EQ(r.saw.find('\n'), std::string::npos);
  EXPECT_TRUE(contains(r.saw, "Connection refused Is the server running?"));
  EXPECT_TRUE(contains(r.fix, "pg_hba.conf"));
}

TEST(CheckRulesTest, ServerVersionFailsBefore14AndOnAStandbyBefore16) {
  EXPECT_EQ(judgeServerVersion(150004, "15.4", false).outcome, Outcome::Pass);
  EXPECT_EQ(judgeServerVersion(130010, "13.10", false).outcome, Outcome::Fail);
  EXPECT_EQ(judgeServerVersion(90624, "9.6.24", false).outcome, Outcome::Fail);
  EXPECT_EQ(judgeServerVersion(150004, "15.4", true).outcome, Outcome::Fail);
  EXPECT_EQ(judgeServerVersion(160002, "16.2", true).outcome, Outcome::Pass);
}

TEST(CheckRulesTest, WalLevelFixDependsOnWhereTheServerRuns) {
  EXPECT_EQ(judgeWalLevel({"logical", false, false}).outcome, Outcome::Pass);
  CheckResult self = judgeWalLevel({"replica", false, false});
  EXPECT_EQ(self.outcome, Outcome::Fail);
  EXPECT_TRUE(contains(self.fix, "ALTER SYSTEM SET wal_level = logical"));
  CheckResult rds = judgeWalLevel({"replica", false, true});
  EXPECT_TRUE(contains(rds.fix, "rds.logical_replication = 1"));
  CheckResult pending = judgeWalLevel({"replica", true, false});
  EXPECT_TRUE(contains(pending.saw, "waits for a restart"));
  EXPECT_FALSE(contains(pending.fix, "ALTER SYSTEM"));
}

TEST(CheckRulesTest, CapacityFailsOnlyWhenTheMissingSlotOrSenderHasNoRoom) {
  CapacityFacts f;
  f.max_replication_slots = 2;
  f.slots_used = 2;
  f.max_wal_senders = 10;
  f.senders_active = 1;
  f.slot_exists = true;
  EXPECT_EQ(judgeCapacity(f).outcome, Outcome::Pass);  // full, but ours is among them
  f.slot_exists = false;
  f.inactive_slots = {"old_slot"};
  CheckResult r = judgeCapacity(f);
  EXPECT_EQ(r.outcome, Outcome::Fail);
  EXPECT_TRUE(contains(r.fix, "ALTER SYSTEM SET max_replication_slots = 6"));
  EXPECT_TRUE(contains(r.fix, "SELECT pg_drop_replication_slot('old_slot');"));
  f.slot_exists = true;
  f.senders_active = 10;
  r = judgeCapacity(f);
  EXPECT_EQ(r.outcome, Outcome::Fail);
  EXPECT_TRUE(contains(r.fix, "max_wal_senders"));
  f.slot_active = true;  // the pipeline streams already and holds its sender
  EXPECT_EQ(judgeCapacity(f).outcome, Outcome::Pass);
}

TEST(CheckRulesTest, RetentionUnguardedWarnsWithALimitSizedForWhatTheSlotHolds) {
  RetentionFacts f;
  CheckResult r = judgeRetentionGuard(f);
  EXPECT_EQ(r.outcome, Outcome::Warn);
  EXPECT_TRUE(contains(r.saw, "unguarded"));
  EXPECT_TRUE(contains(r.fix, "ALTER SYSTEM SET max_slot_wal_keep_size = '10GB'; SELECT pg_reload_conf();"));
  f.retained_bytes = 30ll << 30;
  EXPECT_TRUE(contains(judgeRetentionGuard(f).fix, "'60GB'"));
  f.max_slot_wal_keep_size_mb = 100 * 1024;
  r = judgeRetentionGuard(f);
  EXPECT_EQ(r.outcome, Outcome::Pass);
  EXPECT_TRUE(contains(r.saw, "max_slot_wal_keep_size = 100GB"));
  f.retained_bytes = 90ll << 30;
  EXPECT_EQ(judgeRetentionGuard(f).outcome, Outcome::Warn);
}

TEST(CheckRulesTest, WalSenderTimeoutWarnsWhenDisabledOrUnderTwoStatusIntervals) {
  EXPECT_EQ(judgeWalSenderTimeout(60000, milliseconds(10000), false).outcome, Outcome::Pass);
  CheckResult off = judgeWalSenderTimeout(0, milliseconds(10000), false);
  EXPECT_EQ(off.outcome, Outcome::Warn);
  EXPECT_TRUE(contains(off.fix, "ALTER SYSTEM SET wal_sender_timeout = '60000ms'"));
  CheckResult tight = judgeWalSenderTimeout(15000, milliseconds(10000), false);
  EXPECT_EQ(tight.outcome, Outcome::Warn);
  EXPECT_TRUE(contains(tight.fix, "source.status_interval: 5000ms"));
  EXPECT_EQ(judgeWalSenderTimeout(20000, milliseconds(10000), false).outcome, Outcome::Pass);
}

TEST(CheckRulesTest, StoredPositionFailsOnEveryWayThePositionWasLost) {
  pg::Position stored{"7301", 1, "s", Lsn{0x3000}, {}, false, {}, 0, {}};
  SlotPosition behind{Lsn{0x2000}, "reserved"};
  SlotPosition beyond{Lsn{0x4000}, "reserved"};
  SlotPosition lost{Lsn{0x2000}, "lost"};

  EXPECT_EQ(judgeStoredPosition(std::nullopt, "s", "7301", std::nullopt).outcome, Outcome::Pass);
  EXPECT_EQ(judgeStoredPosition(stored, "s", "7301", behind).outcome, Outcome::Pass);
  EXPECT_EQ(judgeStoredPosition(stored, "s", "7301", SlotPosition{Lsn{0x3000}, "reserved"}).outcome,
            Outcome::Pass);

  CheckResult r = judgeStoredPosition(stored, "s", "7301", beyond);
  EXPECT_EQ(r.outcome, Outcome::Fail);
  EXPECT_TRUE(contains(r.saw, "0/4000, beyond the stored position 0/3000"));
  EXPECT_TRUE(contains(r.fix, "re-snapshot"));
  EXPECT_EQ(judgeStoredPosition(stored, "s", "9999", behind).outcome, Outcome::Fail);
  EXPECT_TRUE(contains(judgeStoredPosition(stored, "s", "9999", behind).saw, "system identifier"));
  EXPECT_EQ(judgeStoredPosition(stored, "s", "7301", std::nullopt).outcome, Outcome::Fail);
  EXPECT_EQ(judgeStoredPosition(stored, "s", "7301", lost).outcome, Outcome::Fail);
  EXPECT_EQ(judgeStoredPosition(stored, "other", "7301", behind).outcome, Outcome::Fail);
}

TEST(CheckRulesTest, BytesAreShownAsPgSizePrettyDoes) {
  EXPECT_EQ(bytesText(512), "512 bytes");
  EXPECT_EQ(bytesText(16ll << 20), "16 MB");
  EXPECT_EQ(bytesText(3ll << 29), "1.5 GB");
}

config::SinkConfig jsonlSink(const std::filesystem::path& path) {
  config::SinkConfig s;
  s.name = "files";
  s.kind = "jsonl";
  s.path = path;
  return s;
}

TEST(CheckSinksTest, WritableDirectoryPassesAndLeavesNothingBehind) {
  test::TempDir dir;
  CheckResult r = checkSinks({jsonlSink(dir.path())});
  EXPECT_EQ(r.outcome, Outcome::Pass) << r.saw;
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

TEST(CheckSinksTest, MissingDirectoryPassesWhenItCanBeCreatedAndIsNotCreated) {
  test::TempDir dir;
  CheckResult r = checkSinks({jsonlSink(dir / "a" / "b")});
  EXPECT_EQ(r.outcome, Outcome::Pass) << r.saw;
  EXPECT_TRUE(contains(r.saw, "tidemark run creates it"));
  EXPECT_FALSE(std::filesystem::exists(dir / "a"));
}

TEST(CheckSinksTest, PathThatIsAFileFails) {
  test::TempDir dir;
  std::ofstream(dir / "f") << "x";
  CheckResult r = checkSinks({jsonlSink(dir / "f")});
  EXPECT_EQ(r.outcome, Outcome::Fail);
  EXPECT_TRUE(contains(r.saw, "not a directory"));
}

TEST(CheckSinksTest, DirectoryThatRefusesFilesFails) {
  // /proc/self refuses new files even to root, so the probe is what finds it out.
  CheckResult r = checkSinks({jsonlSink("/proc/self")});
  EXPECT_EQ(r.outcome, Outcome::Fail) << r.saw;
  EXPECT_TRUE(contains(r.saw, "cannot create a file in /proc/self"));
  EXPECT_TRUE(contains(r.fix, "write access"));
}

TEST(CheckSinksTest, StdoutPasses) {
  config::SinkConfig s;
  s.name = "out";
  s.kind = "stdout";
  EXPECT_EQ(checkSinks({s}).outcome, Outcome::Pass);
}

TEST(CheckStateTest, ReadPositionReadsWhatTheStoreSavedWithoutTakingItsLock) {
  test::TempDir dir;
  EXPECT_FALSE(state::readPosition(dir.path()).has_value());
  auto store = state::openSqliteStore(dir.path());
  EXPECT_FALSE(state::readPosition(dir.path()).has_value());
  state::StoredPosition p;
  p.source = {"opaque token", "0/16B3748"};
  p.log_end = 42;
  p.sinks["files"] = {7, "{\"x\":1}"};
  store->save(p);
  store->saveSink("other", {9, "{}"});
  // The store stays open (locked), as under a running pipeline.
  auto read = state::readPosition(dir.path());
  ASSERT_TRUE(read.has_value());
  EXPECT_EQ(read->source, p.source);
  EXPECT_EQ(read->log_end, 42u);
  EXPECT_EQ(read->sinks.at("files"), (state::SinkProgress{7, "{\"x\":1}"}));
  EXPECT_EQ(read->sinks.at("other"), (state::SinkProgress{9, "{}"}));
}

}  // namespace
}  // namespace tidemark::check
