// A transaction larger than any buffer should be: a million rows in one commit arrive
// complete, once each, with the process's memory bounded.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/pipeline_fixture.h"

namespace tidemark::test {
namespace {

using nlohmann::json;

class LargeTransactionTest : public PgPipelineTest {};

TEST_F(LargeTransactionTest, MillionRowTransactionArrivesCompleteWithPeakRssBelow128MiB) {
  constexpr int64_t kRows = 1000000;
  constexpr long kRssLimitKiB = 128 * 1024;
  sql("CREATE TABLE big (id int PRIMARY KEY, v int, note text)");
  auto config = writeConfig(TidemarkConfig({"public.big"}));
  ASSERT_NO_FATAL_FAILURE(initPipeline(config));
  sql("INSERT INTO big SELECT g, g * 7, md5(g::text) FROM generate_series(1, " +
      std::to_string(kRows) + ") g");

  RunResult r = runUntil(config, currentLsn(), std::chrono::minutes(15));
  ASSERT_EQ(r.exitCode, 0) << r.description;

  std::vector<bool> seen(kRows + 1, false);
  int64_t lines = 0;
  int64_t duplicates = 0;
  int64_t outOfRange = 0;
  int64_t wrongValue = 0;
  std::optional<int64_t> txId;
  bool oneTx = true;
  int64_t previousId = 0;
  bool ascending = true;
  forEachJsonLine(topicFile("public.big"), [&](const json& e) {
    ++lines;
    const int64_t id = e.at("after").at("id").get<int64_t>();
    if (id < 1 || id > kRows) {
      ++outOfRange;
      return;
    }
    if (seen[static_cast<size_t>(id)]) ++duplicates;
    seen[static_cast<size_t>(id)] = true;
    if (e["after"]["v"] != id * 7) ++wrongValue;
    const int64_t tx = e.at("source").at("txId").get<int64_t>();
    if (!txId) txId = tx;
    oneTx = oneTx && tx == *txId;
    // generate_series inserts in order, and a transaction's changes keep their order.
    ascending = ascending && id > previousId;
    previousId = id;
  });
  EXPECT_EQ(lines, kRows);
  EXPECT_EQ(duplicates, 0);
  EXPECT_EQ(outOfRange, 0);
  EXPECT_EQ(wrongValue, 0);
  EXPECT_TRUE(oneTx) << "events of one transaction carry different txIds";
  EXPECT_TRUE(ascending) << "events of the transaction are out of order";

  ASSERT_TRUE(r.maxRssKiB.has_value());
  EXPECT_LT(*r.maxRssKiB, kRssLimitKiB) << "peak RSS " << *r.maxRssKiB / 1024 << " MiB";
  RecordProperty("peak_rss_kib", std::to_string(*r.maxRssKiB));
}

}  // namespace
}  // namespace tidemark::test
