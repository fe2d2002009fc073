// A large backlog shows its progress: in `tidemark status` (bytes behind, rates, ETA) and on
// the terminal (a "catching up" line).
#include <gtest/gtest.h>

#include "support/pipeline_fixture.h"
#include "support/poll.h"

namespace tidemark::test {
namespace {

using namespace std::chrono_literals;

class ProgressTest : public PgPipelineTest {};

TEST_F(ProgressTest, LargeBacklogShowsBytesBehindRateAndEtaInStatusAndOnTheTerminal) {
  sql("CREATE TABLE orders (id bigint PRIMARY KEY, note text)");
  auto config = writeConfig(TidemarkConfig({"public.orders"}));
  ASSERT_NO_FATAL_FAILURE(initPipeline(config));
  // About 250 MiB of WAL waiting for the next run: several seconds of catching up.
  sql("INSERT INTO orders SELECT g, repeat(md5(g::text), 6) FROM generate_series(1, 1000000) g");
  std::string until = currentLsn();

  auto run = startRun(config, until);
  StatusResult seen;
  bool behind = statusEventually(
      config,
      [](const StatusResult& s) {
        auto backlog = s.json ? jsonAt(*s.json, "progress.backlog_bytes") : std::nullopt;
        auto eta = s.json ? jsonAt(*s.json, "progress.eta_seconds") : std::nullopt;
        return backlog && backlog->is_number() && backlog->get<int64_t>() > (16 << 20) && eta &&
               eta->is_number();
      },
      60s, &seen, nullptr, 200ms);
  RunResult r = finish(*run);
  ASSERT_EQ(r.exitCode, 0) << r.description;
  EXPECT_TRUE(behind) << seen.description;
  EXPECT_NE(r.err.find("catching up: "), std::string::npos) << r.err;
  EXPECT_EQ(countLines(topicFile("public.orders")), 1000000u);
}

}  // namespace
}  // namespace tidemark::test
