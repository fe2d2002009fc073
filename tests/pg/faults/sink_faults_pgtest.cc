// Faults under the sink: a full disk (a 4 MiB tmpfs), freed while tidemark retries or left
// full, and sink files changed behind tidemark's back, while it runs and between runs.
// Nothing confirmed may be lost, nothing written twice, no line torn, and nothing tidemark did
// not write removed.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "support/assertions.h"
#include "support/jsonl.h"
#include "support/pipeline_fixture.h"
#include "support/poll.h"

namespace tidemark::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// A small tmpfs on `dir` for as long as it lives (the tests run as root in CI).
class SmallDisk {
 public:
  explicit SmallDisk(std::filesystem::path dir) : dir_(std::move(dir)) {
    std::filesystem::create_directories(dir_);
    if (::mount("tmpfs", dir_.c_str(), "tmpfs", 0, "size=4m") != 0) {
      throw std::runtime_error("mount tmpfs on " + dir_.string() + ": " + std::strerror(errno) +
                               " (these tests need root, as CI runs them)");
    }
  }
  ~SmallDisk() { ::umount2(dir_.c_str(), MNT_DETACH); }
  // Fills the disk up to `free_bytes` left, with a file the sink does not read.
  void fillLeaving(uint64_t free_bytes) {
    const auto space = std::filesystem::space(dir_);
    std::ofstream filler(dir_ / "filler.bin", std::ios::binary);
    const std::string block(64 * 1024, 'f');
    for (uint64_t n = 0; n + free_bytes + block.size() <= space.available; n += block.size()) filler << block;
  }
  void free() { std::filesystem::remove(dir_ / "filler.bin"); }

 private:
  std::filesystem::path dir_;
};

class SinkFaultTest : public PgPipelineTest {
 protected:
  // One transaction of `rows` rows, each event about 1.3 kB: 2000 make 2.6 MB, more than the
  // sink buffers (1 MiB), so the disk fills while writing; 600 make 0.8 MB, written at the
  // flush, so the disk fills while flushing.
  void bigTransaction(int rows = 2000) {
    sql("INSERT INTO c SELECT i, repeat(md5(i::text), 31) FROM generate_series(1, " + std::to_string(rows) + ") i");
  }
  // Every id once, every line whole (readJsonLines throws on a torn complete line).
  ::testing::AssertionResult eachRowOnce(size_t rows) {
    std::multiset<int> ids;
    for (const auto& e : events("public.c")) ids.insert(e["after"]["id"].get<int>());
    for (int i = 1; i <= static_cast<int>(rows); ++i) {
      if (ids.count(i) != 1) return ::testing::AssertionFailure() << "id " << i << " is there " << ids.count(i) << " times";
    }
    if (ids.size() != rows) return ::testing::AssertionFailure() << ids.size() << " events for " << rows << " rows";
    return ::testing::AssertionSuccess();
  }
};

TEST_F(SinkFaultTest, FullDiskFreedWhileRetryingLosesNothingAndTearsNoLine) {
  sql("CREATE TABLE c (id int PRIMARY KEY, v text)");
  SmallDisk disk(outDir());
  const auto config = writeConfig(TidemarkConfig({"public.c"}));
  ASSERT_NO_FATAL_FAILURE(initPipeline(config));
  disk.fillLeaving(600 * 1024);
  std::unique_ptr<Process> run;
  ASSERT_NO_FATAL_FAILURE(startStreaming(config, run));
  bigTransaction();

  StatusResult st;
  ASSERT_TRUE(statusEventually(
      config, [](const StatusResult& s) { return s.json && (*s.json)["state"] == "retrying"; }, 60s, &st))
      << describeStatus(st) << run->describe();
  EXPECT_TRUE(contains((*st.json)["reason"].get<std::string>(), "No space left on device"));
  EXPECT_TRUE(isNonNull(jsonAt(*st.json, "retry.gives_up_at"))) << describeStatus(st);

  disk.free();
  ASSERT_EVENTUALLY(events("public.c").size() >= 2000, 90s) << run->describe();
  ASSERT_TRUE(statusEventually(
      config, [](const StatusResult& s) { return s.json && (*s.json)["state"] == "running"; }, 30s, &st))
      << describeStatus(st);
  run->signal(SIGTERM);
  RunResult r = finish(*run);
  ASSERT_EQ(r.exitCode, 0) << r.description;
  EXPECT_TRUE(eachRowOnce(2000));

  // The next start removes nothing that was confirmed.
  RunResult again = runUntil(config, currentLsn());
  ASSERT_EQ(again.exitCode, 0) << again.description;
  EXPECT_FALSE(contains(again.err, "removing"));
  EXPECT_TRUE(eachRowOnce(2000));
}

TEST_F(SinkFaultTest, FullDiskWhileFlushingGoesBackToTheSavedCheckpoint) {
  sql("CREATE TABLE c (id int PRIMARY KEY, v text)");
  SmallDisk disk(outDir());
  const auto config = writeConfig(TidemarkConfig({"public.c"}));
  ASSERT_NO_FATAL_FAILURE(initPipeline(config));
  disk.fillLeaving(300 * 1024);
  std::unique_ptr<Process> run;
  ASSERT_NO_FATAL_FAILURE(startStreaming(config, run));
  bigTransaction(600);
  StatusResult st;
  ASSERT_TRUE(statusEventually(
      config, [](const StatusResult& s) { return s.json && (*s.json)["state"] == "retrying"; }, 60s, &st))
      << describeStatus(st) << run->describe();
  disk.free();
  ASSERT_EVENTUALLY(events("public.c").size() >= 600, 90s) << run->describe();
  run->signal(SIGTERM);
  RunResult r = finish(*run);
  ASSERT_EQ(r.exitCode, 0) << r.description;
  EXPECT_TRUE(contains(r.err, "the sink goes back to what it last made durable"));
  EXPECT_TRUE(eachRowOnce(600));
}

// The sink's disk stays full: the sink gives up after retry.window and, as it was the only one,
// so does the run. The source was never held back: the slot moved past the transaction the
// sink could not take, which waits in the change log and reaches the sink once there is room.
TEST_F(SinkFaultTest, FullDiskLeftFullGivesUpAfterTheRetryWindowAndResumesExactlyOnce) {
  sql("CREATE TABLE c (id int PRIMARY KEY, v text)");
  SmallDisk disk(outDir());
  const auto config = writeConfig(TidemarkConfig({"public.c"}).withTopLevel("retry:\n  window: 10s\n  max_backoff: 2s"));
  ASSERT_NO_FATAL_FAILURE(initPipeline(config));
  disk.fillLeaving(600 * 1024);
  std::unique_ptr<Process> run = startRun(config);
  bigTransaction();
  const uint64_t bigEnd = parseLsn(currentLsn());
  StatusResult st;
  ASSERT_TRUE(statusEventually(
      config, [](const StatusResult& s) { return s.json && (*s.json)["state"] == "retrying"; }, 60s, &st))
      << describeStatus(st) << run->describe();
  RunResult r = finish(*run, 90s);
  EXPECT_EQ(r.exitCode, 2) << r.description;
  EXPECT_TRUE(contains(r.err, "gave up after retrying for 10s (retry.window)"));
  EXPECT_TRUE(contains(r.err, "No space left on device"));
  EXPECT_GE(parseLsn(slotConfirmedFlushLsn().value_or("0/0")), bigEnd)
      << "the slot waited for the sink: its transaction is durable in the change log";
  st = status(config);
  ASSERT_TRUE(st.json) << st.description;
  EXPECT_EQ((*st.json)["state"], "failed");

  disk.free();
  RunResult after = runUntil(config, currentLsn());
  ASSERT_EQ(after.exitCode, 0) << after.description;
  EXPECT_TRUE(eachRowOnce(2000));
}

// The change log's disk (the state directory) fills while a large transaction comes in: the
// commit fails, nothing it held is confirmed, and once there is room again the source sends it
// again and the sink gets every row once.
TEST_F(SinkFaultTest, FullDiskUnderTheChangeLogFreedWhileRetryingLosesNothing) {
  sql("CREATE TABLE c (id int PRIMARY KEY, v text)");
  SmallDisk disk(stateDir());
  const auto config = writeConfig(TidemarkConfig({"public.c"}));
  ASSERT_NO_FATAL_FAILURE(initPipeline(config));
  disk.fillLeaving(600 * 1024);
  std::unique_ptr<Process> run;
  ASSERT_NO_FATAL_FAILURE(startStreaming(config, run));
  bigTransaction();
  // The transaction's commit record ends at or before this position; tidemark may confirm
  // positions up to its commit (keepalives while it is written), never the commit itself.
  const uint64_t bigEnd = parseLsn(currentLsn());

  StatusResult st;
  ASSERT_TRUE(statusEventually(
      config, [](const StatusResult& s) { return s.json && (*s.json)["state"] == "retrying"; }, 60s, &st))
      << describeStatus(st) << run->describe();
  EXPECT_LT(parseLsn(slotConfirmedFlushLsn().value_or("0/0")), bigEnd) << "confirmed what the change log could not hold";
  disk.free();
  ASSERT_EVENTUALLY(events("public.c").size() >= 2000, 90s) << run->describe();
  run->signal(SIGTERM);
  RunResult r = finish(*run);
  ASSERT_EQ(r.exitCode, 0) << r.description;
  EXPECT_TRUE(contains(r.err, "No space left on device")) << r.err;
  EXPECT_TRUE(eachRowOnce(2000));
}

class TamperTest : public PgPipelineTest {
 protected:
  void SetUp() override {
    PgPipelineTest::SetUp();
    sql("CREATE TABLE c (id int PRIMARY KEY)");
    config_ = writeConfig(TidemarkConfig({"public.c"}));
    ASSERT_NO_FATAL_FAILURE(initPipeline(config_));
  }
  void rows(int from, int to) {
    for (int i = from; i <= to; ++i) sql("INSERT INTO c VALUES (" + std::to_string(i) + ")");
  }
  std::vector<int> ids() {
    std::vector<int> out;
    for (const auto& e : events("public.c")) out.push_back(e["after"]["id"].get<int>());
    return out;
  }
  std::filesystem::path file() const { return topicFile("public.c"); }

  std::filesystem::path config_;
};

TEST_F(TamperTest, AnotherProgramAppendingWhileRunningStopsBeforeAnythingPastItIsConfirmed) {
  std::unique_ptr<Process> run;
  ASSERT_NO_FATAL_FAILURE(startStreaming(config_, run));
  rows(1, 1);
  ASSERT_EVENTUALLY(ids().size() == 1, 30s) << run->describe();
  const std::string durable_size = std::to_string(std::filesystem::file_size(file()));
  { std::ofstream(file(), std::ios::app) << "an appended log line\n"; }
  rows(2, 2);
  RunResult r = finish(*run, 30s);
  ASSERT_EQ(r.exitCode, 2) << r.description;
  EXPECT_TRUE(contains(r.err, "another program wrote to it or cut it while tidemark ran"));

  // The next start will not remove what it did not write, and says how to go on.
  RunResult again = runUntil(config_, currentLsn());
  ASSERT_EQ(again.exitCode, 2) << again.description;
  EXPECT_TRUE(contains(again.err, "that do not read as tidemark's events"));
  std::smatch m;
  ASSERT_TRUE(std::regex_search(again.err, m, std::regex("truncate -s (\\d+) (\\S+);"))) << again.err;
  EXPECT_EQ(m[1], durable_size);
  std::filesystem::resize_file(m[2].str(), std::stoull(m[1]));  // the fix it named
  RunResult fixed = runUntil(config_, currentLsn());
  ASSERT_EQ(fixed.exitCode, 0) << fixed.description;
  EXPECT_EQ(ids(), (std::vector<int>{1, 2}));
}

TEST_F(TamperTest, AFileCutMidLineBetweenRunsStopsUntilRestoredOrAccepted) {
  rows(1, 2);
  ASSERT_EQ(runUntil(config_, currentLsn()).exitCode, 0);
  const std::string whole = [&] {
    std::ifstream in(file());
    return std::string(std::istreambuf_iterator<char>(in), {});
  }();
  std::filesystem::resize_file(file(), whole.size() - 5);
  rows(3, 3);
  RunResult r = runUntil(config_, currentLsn());
  ASSERT_EQ(r.exitCode, 2) << r.description;
  EXPECT_TRUE(contains(r.err, file().string() + " holds " + std::to_string(whole.size() - 5) + " bytes, fewer than the " +
                                  std::to_string(whole.size()) + " bytes of events tidemark made durable"));
  EXPECT_TRUE(contains(r.err, "--reset-sink files"));
  EXPECT_EQ(std::filesystem::file_size(file()), whole.size() - 5) << "the file was changed";

  // Restored, it goes on where it was.
  { std::ofstream(file(), std::ios::trunc | std::ios::binary) << whole; }
  RunResult restored = runUntil(config_, currentLsn());
  ASSERT_EQ(restored.exitCode, 0) << restored.description;
  EXPECT_EQ(ids(), (std::vector<int>{1, 2, 3}));
}

TEST_F(TamperTest, AFileCutAndAcceptedGetsNewEventsOnALineOfTheirOwn) {
  rows(1, 2);
  ASSERT_EQ(runUntil(config_, currentLsn()).exitCode, 0);
  std::filesystem::resize_file(file(), std::filesystem::file_size(file()) - 5);
  rows(3, 3);
  RunResult r = runTidemark({"run", "-c", config_.string(), "--reset-sink", "files", "--until-lsn", currentLsn()});
  ASSERT_EQ(r.exitCode, 0) << r.description;
  std::ifstream in(file());
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(json::parse(lines[0])["after"]["id"], 1);
  EXPECT_FALSE(json::accept(lines[1])) << "the cut line stays as it was";
  EXPECT_EQ(json::parse(lines[2])["after"]["id"], 3);
}

TEST_F(TamperTest, AFileDeletedBetweenRunsStopsUntilAccepted) {
  rows(1, 1);
  ASSERT_EQ(runUntil(config_, currentLsn()).exitCode, 0);
  std::filesystem::remove(file());
  rows(2, 2);
  RunResult r = runUntil(config_, currentLsn());
  ASSERT_EQ(r.exitCode, 2) << r.description;
  EXPECT_TRUE(contains(r.err, file().string() + " is missing, though tidemark made"));
  EXPECT_FALSE(std::filesystem::exists(file())) << "a new file was started without a word";
  RunResult accepted = runTidemark({"run", "-c", config_.string(), "--reset-sink", "files", "--until-lsn", currentLsn()});
  ASSERT_EQ(accepted.exitCode, 0) << accepted.description;
  EXPECT_EQ(ids(), (std::vector<int>{2}));
}

TEST_F(TamperTest, StateDirectoryRemovedWhileRunningStopsAtTheNextSave) {
  std::unique_ptr<Process> run;
  ASSERT_NO_FATAL_FAILURE(startStreaming(config_, run));
  rows(1, 1);
  ASSERT_EVENTUALLY(ids().size() == 1, 30s) << run->describe();
  ASSERT_EVENTUALLY(slotConfirmedFlushLsn() && parseLsn(*slotConfirmedFlushLsn()) >= parseLsn(currentLsn()), 30s);
  const std::string confirmed = *slotConfirmedFlushLsn();
  std::filesystem::remove_all(stateDir());
  rows(2, 2);
  RunResult r = finish(*run, 30s);
  ASSERT_EQ(r.exitCode, 2) << r.description;
  EXPECT_TRUE(contains(r.err, "was removed or replaced while tidemark ran"));
  EXPECT_EQ(*slotConfirmedFlushLsn(), confirmed) << "a position was confirmed that no state store holds";
}

TEST_F(TamperTest, AnEmptyOrDamagedStateStoreWithSinkFilesStopsNamingThem) {
  rows(1, 1);
  ASSERT_EQ(runUntil(config_, currentLsn()).exitCode, 0);
  for (const char* f : {"state.db-wal", "state.db-shm"}) std::filesystem::remove(stateDir() / f);
  std::filesystem::resize_file(stateDir() / "state.db", 0);
  RunResult empty = runUntil(config_, currentLsn());
  ASSERT_EQ(empty.exitCode, 2) << empty.description;
  EXPECT_TRUE(contains(empty.err, file().string() + " holds"));
  EXPECT_TRUE(contains(empty.err, "but the state store has no position"));

  { std::ofstream(stateDir() / "state.db", std::ios::trunc) << std::string(8192, 'g'); }
  for (const char* f : {"state.db-wal", "state.db-shm"}) std::filesystem::remove(stateDir() / f);
  RunResult damaged = runUntil(config_, currentLsn());
  ASSERT_EQ(damaged.exitCode, 2) << damaged.description;
  EXPECT_TRUE(contains(damaged.err, "file is not a database"));
  EXPECT_TRUE(contains(damaged.err, "is damaged or is not tidemark's state store"));
}

}  // namespace
}  // namespace tidemark::test
