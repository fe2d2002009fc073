// Guarantee 3: a clean stop (SIGTERM/SIGINT) repeats nothing and loses nothing on resume;
// after a crash (SIGKILL) nothing is lost and only what came after the last acknowledged
// position can repeat. The load runs while tidemark stops, so the stop lands mid-stream.
#include <gtest/gtest.h>

#include <signal.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/background_writer.h"
#include "support/pipeline_fixture.h"
#include "support/poll.h"

namespace tidemark::test {
namespace {

using nlohmann::json;
using std::chrono::seconds;

class ResumeTest : public PgPipelineTest {
 protected:
  static constexpr int64_t kRowsPerTx = 100;

  // A writer that inserts ids batch*kRowsPerTx+1 .. (batch+1)*kRowsPerTx, one transaction each.
  std::unique_ptr<BackgroundWriter> startWriter(int64_t rowsPerTx, int64_t maxBatches) {
    return std::make_unique<BackgroundWriter>(
        pg().dsn(db()),
        [rowsPerTx](int64_t batch) {
          const int64_t first = batch * rowsPerTx + 1;
          return "INSERT INTO orders SELECT g, md5(g::text) FROM generate_series(" +
                 std::to_string(first) + ", " + std::to_string(first + rowsPerTx - 1) + ") g";
        },
        maxBatches);
  }

  // The source LSN of every event, by row id.
  std::map<int64_t, std::vector<uint64_t>> lsnsById() {
    std::map<int64_t, std::vector<uint64_t>> out;
    forEachJsonLine(topicFile("public.orders"), [&](const json& e) {
      out[e.at("after").at("id").get<int64_t>()].push_back(e.at("source").at("lsn").get<uint64_t>());
    });
    return out;
  }

  void cleanStopAndResume(int sig) {
    sql("CREATE TABLE orders (id bigint PRIMARY KEY, note text)");
    auto config = writeConfig(TidemarkConfig({"public.orders"}));
    ASSERT_NO_FATAL_FAILURE(initPipeline(config));

    auto p = startRun(config);
    ASSERT_EVENTUALLY(slotActive() || !p->running(), seconds(60)) << p->describe();
    ASSERT_TRUE(p->running()) << p->describe();
    auto writer = startWriter(kRowsPerTx, 100000);
    ASSERT_EVENTUALLY(countLines(topicFile("public.orders")) >= 3000 || !p->running(), seconds(60))
        << p->describe();
    p->signal(sig);
    RunResult first = finish(*p, seconds(60));
    ASSERT_EQ(first.exitCode, 0) << "a clean stop must exit 0\n" << first.description;

    // The writer goes on after the stop, so the resumed run has new work too.
    const int64_t atStop = writer->committed();
    ASSERT_EVENTUALLY(writer->committed() >= atStop + 20 || writer->finished(), seconds(60));
    writer->stop();
    ASSERT_EQ(writer->error(), "");
    const int64_t total = writer->committed() * kRowsPerTx;

    // A clean stop confirms everything it wrote.
    auto byIdAtStop = lsnsById();
    ASSERT_FALSE(byIdAtStop.empty());
    uint64_t lastWritten = 0;
    for (auto& [id, lsns] : byIdAtStop) {
      for (uint64_t l : lsns) lastWritten = std::max(lastWritten, l);
    }
    auto confirmed = slotConfirmedFlushLsn();
    ASSERT_TRUE(confirmed.has_value());
    EXPECT_GT(parseLsn(*confirmed), lastWritten)
        << "the slot was not confirmed past the last event written before the stop";

    RunResult second = runUntil(config, currentLsn(), seconds(300));
    ASSERT_EQ(second.exitCode, 0) << second.description;

    auto byId = lsnsById();
    int64_t missing = 0;
    int64_t repeated = 0;
    for (int64_t id = 1; id <= total; ++id) {
      auto it = byId.find(id);
      if (it == byId.end()) {
        ++missing;
      } else if (it->second.size() > 1) {
        ++repeated;
      }
    }
    EXPECT_EQ(missing, 0) << "of " << total << " rows";
    EXPECT_EQ(repeated, 0) << "a clean stop must not repeat events";
    EXPECT_EQ(static_cast<int64_t>(byId.size()), total);
  }
};

TEST_F(ResumeTest, SigtermStopsCleanlyAndResumeNeitherRepeatsNorLoses) {
  cleanStopAndResume(SIGTERM);
}

TEST_F(ResumeTest, SigintStopsCleanlyAndResumeNeitherRepeatsNorLoses) {
  cleanStopAndResume(SIGINT);
}

TEST_F(ResumeTest, KillMidStreamLosesNothingAndRepeatsOnlyAfterConfirmedPosition) {
  sql("CREATE TABLE orders (id bigint PRIMARY KEY, note text)");
  auto config = writeConfig(TidemarkConfig({"public.orders"}));
  ASSERT_NO_FATAL_FAILURE(initPipeline(config));

  constexpr int64_t kRows = 1000;
  constexpr int64_t kBatches = 300;
  auto p = startRun(config);
  ASSERT_EVENTUALLY(slotActive() || !p->running(), seconds(60)) << p->describe();
  ASSERT_TRUE(p->running()) << p->describe();
  auto writer = startWriter(kRows, kBatches);
  ASSERT_EVENTUALLY(countLines(topicFile("public.orders")) >= 30000 || !p->running(), seconds(120))
      << p->describe();
  ASSERT_TRUE(p->running()) << p->describe();
  p->signal(SIGKILL);
  ASSERT_EQ(p->waitExit(seconds(30)), 128 + SIGKILL);
  const bool loadStillRunning = !writer->finished();

  // Read the acknowledged position once the server has processed every reply the killed
  // process sent: that is when its walsender has gone and released the slot.
  ASSERT_EVENTUALLY(!slotActive(), seconds(60));
  auto confirmedText = slotConfirmedFlushLsn();
  ASSERT_TRUE(confirmedText.has_value());
  const uint64_t confirmed = parseLsn(*confirmedText);
  const size_t linesAtKill = countLines(topicFile("public.orders"));

  ASSERT_EVENTUALLY(writer->finished(), seconds(300));
  ASSERT_EQ(writer->error(), "");
  const int64_t total = writer->committed() * kRows;
  ASSERT_EQ(total, kRows * kBatches);

  RunResult r = runUntil(config, currentLsn(), seconds(600));
  ASSERT_EQ(r.exitCode, 0) << r.description;

  // The writer's transactions never interleave, so an event below the confirmed LSN belongs
  // to a transaction committed at or before it: one that was acknowledged and must not repeat.
  auto byId = lsnsById();
  int64_t missing = 0;
  int64_t repeatedAfterAck = 0;
  int64_t repeatedBeforeAck = 0;
  int64_t firstBadId = 0;
  for (int64_t id = 1; id <= total; ++id) {
    auto it = byId.find(id);
    if (it == byId.end()) {
      ++missing;
      continue;
    }
    if (it->second.size() < 2) continue;
    bool beforeAck = false;
    for (uint64_t l : it->second) beforeAck = beforeAck || l < confirmed;
    if (beforeAck) {
      ++repeatedBeforeAck;
      if (firstBadId == 0) firstBadId = id;
    } else {
      ++repeatedAfterAck;
    }
  }
  EXPECT_EQ(missing, 0) << "of " << total << " rows";
  EXPECT_EQ(repeatedBeforeAck, 0) << "events of acknowledged transactions repeated, first id "
                                  << firstBadId << ", confirmed_flush_lsn " << *confirmedText;
  EXPECT_EQ(static_cast<int64_t>(byId.size()), total);
  RecordProperty("lines_at_kill", std::to_string(linesAtKill));
  RecordProperty("repeated_after_ack", std::to_string(repeatedAfterAck));
  RecordProperty("load_running_at_kill", loadStillRunning ? "yes" : "no");
}

TEST_F(ResumeTest, ServerRestartMidStreamIsRetriedWithoutLoss) {
  sql("CREATE TABLE orders (id bigint PRIMARY KEY, note text)");
  auto config = writeConfig(TidemarkConfig({"public.orders"}));
  ASSERT_NO_FATAL_FAILURE(initPipeline(config));

  auto p = startRun(config);
  ASSERT_EVENTUALLY(slotActive() || !p->running(), seconds(60)) << p->describe();
  auto before = startWriter(kRowsPerTx, 50);
  ASSERT_EVENTUALLY(before->finished(), seconds(60));
  ASSERT_EQ(before->error(), "");

  // Fast shutdown ends the walsender under tidemark's feet; a restarted server is the
  // textbook retriable error.
  pg().restart();
  ASSERT_TRUE(p->running()) << "tidemark gave up on a server restart\n" << p->describe();

  // Ids continue after the first writer's.
  BackgroundWriter after(
      pg().dsn(db()),
      [](int64_t batch) {
        const int64_t first = 50 * kRowsPerTx + batch * kRowsPerTx + 1;
        return "INSERT INTO orders SELECT g, md5(g::text) FROM generate_series(" +
               std::to_string(first) + ", " + std::to_string(first + kRowsPerTx - 1) + ") g";
      },
      50);
  ASSERT_EVENTUALLY(after.finished(), seconds(60));
  ASSERT_EQ(after.error(), "");
  const int64_t total = 100 * kRowsPerTx;

  ASSERT_EVENTUALLY(lsnsById().size() >= static_cast<size_t>(total) || !p->running(),
                    seconds(120))
      << "rows delivered: " << lsnsById().size() << " of " << total << "\n"
      << p->describe();
  ASSERT_TRUE(p->running()) << p->describe();
  p->signal(SIGTERM);
  RunResult r = finish(*p, seconds(60));
  EXPECT_EQ(r.exitCode, 0) << r.description;

  auto byId = lsnsById();
  int64_t missing = 0;
  for (int64_t id = 1; id <= total; ++id) missing += byId.count(id) == 0 ? 1 : 0;
  EXPECT_EQ(missing, 0) << "of " << total << " rows";
}

}  // namespace
}  // namespace tidemark::test
