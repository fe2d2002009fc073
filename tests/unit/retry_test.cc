// When run tries again, and when it gives up: retry.window runs while the pipeline fails at one
// durable position, however often it reconnects, and starts again once it gets past it.
#include "pipeline/retry.h"

#include <gtest/gtest.h>

namespace tidemark::pipeline {
namespace {

using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

config::RetryConfig window(std::chrono::milliseconds w, std::chrono::milliseconds cap = seconds(30)) {
  config::RetryConfig c;
  c.window = w;
  c.max_backoff = cap;
  return c;
}

TEST(RetryPolicy, WaitsGrowWithJitterUpToTheCap) {
  RetryPolicy p(window(minutes(30), seconds(8)), 42);
  auto t = RetryPolicy::Clock::time_point{} + seconds(1000);
  milliseconds bound = RetryPolicy::kFirstBackoff;
  for (int i = 0; i < 12; ++i) {
    auto wait = p.failed(Lsn(100), t);
    ASSERT_TRUE(wait);
    EXPECT_GE(*wait, bound / 2) << "attempt " << i + 1;
    EXPECT_LE(*wait, bound) << "attempt " << i + 1;
    t += *wait;
    bound = std::min<milliseconds>(bound * 2, seconds(8));
  }
  EXPECT_EQ(p.attempt(), 12);
}

TEST(RetryPolicy, GivesUpAfterTheWindowAtOnePositionHoweverOftenItReconnects) {
  RetryPolicy p(window(seconds(60)), 7);
  const auto start = RetryPolicy::Clock::time_point{} + seconds(1000);
  auto t = start;
  int attempts = 0;
  while (auto wait = p.failed(Lsn(100), t)) {
    ++attempts;
    EXPECT_LE(t + *wait, start + seconds(60)) << "a wait that ends after the window";
    t += *wait + milliseconds(5);  // a reconnect that works for a moment, then the same error
  }
  EXPECT_GE(t, start + seconds(60));
  EXPECT_GT(attempts, 5);
  EXPECT_EQ(p.givesUpAtUnixMicros() - p.sinceUnixMicros(), 60'000'000);
}

TEST(RetryPolicy, ProgressPastThePositionStartsTheWindowAgain) {
  RetryPolicy p(window(seconds(60)), 7);
  auto t = RetryPolicy::Clock::time_point{} + seconds(1000);
  ASSERT_TRUE(p.failed(Lsn(100), t));
  t += seconds(50);
  ASSERT_TRUE(p.failed(Lsn(100), t));
  EXPECT_EQ(p.attempt(), 2);
  // The pipeline got past 100 before failing again: a new window, short waits again.
  t += seconds(30);
  auto wait = p.failed(Lsn(200), t);
  ASSERT_TRUE(wait);
  EXPECT_LE(*wait, RetryPolicy::kFirstBackoff);
  EXPECT_EQ(p.attempt(), 1);
  EXPECT_EQ(p.since(), t);
  t += seconds(59);
  EXPECT_TRUE(p.failed(Lsn(200), t));
  t += seconds(2);
  EXPECT_FALSE(p.failed(Lsn(200), t));
}

}  // namespace
}  // namespace tidemark::pipeline
