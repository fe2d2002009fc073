// Waiting for a condition under a deadline, instead of sleeping and then asserting: the wait
// ends as soon as the condition holds, and a failure says what was waited for and how long.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <thread>

namespace tidemark::test {

/// Evaluates `pred` every `step` until it returns true (-> true) or `deadline` has passed
/// (-> false). `pred` is evaluated once more at the deadline, so a slow step cannot make a
/// condition that holds in time look like a timeout.
inline bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds deadline,
                       std::chrono::milliseconds step = std::chrono::milliseconds(50)) {
  const auto end = std::chrono::steady_clock::now() + deadline;
  for (;;) {
    if (pred()) return true;
    const auto now = std::chrono::steady_clock::now();
    if (now >= end) return false;
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(step, end - now));
    if (std::chrono::steady_clock::now() >= end) return pred();
  }
}

}  // namespace tidemark::test

/// ASSERT_EVENTUALLY(what, deadline): fails the test (and returns) when the expression `what`
/// has not become true within `deadline` (a std::chrono duration); the message quotes it.
#define ASSERT_EVENTUALLY(what, deadline)                                                   \
  ASSERT_TRUE(::tidemark::test::eventually([&] { return static_cast<bool>(what); },         \
                                            std::chrono::duration_cast<std::chrono::milliseconds>(deadline))) \
      << "waited " << std::chrono::duration_cast<std::chrono::milliseconds>(deadline).count() \
      << " ms for: " #what

/// EXPECT_EVENTUALLY(what, deadline): as ASSERT_EVENTUALLY, but the test goes on.
#define EXPECT_EVENTUALLY(what, deadline)                                                   \
  EXPECT_TRUE(::tidemark::test::eventually([&] { return static_cast<bool>(what); },         \
                                            std::chrono::duration_cast<std::chrono::milliseconds>(deadline))) \
      << "waited " << std::chrono::duration_cast<std::chrono::milliseconds>(deadline).count() \
      << " ms for: " #what
