// When `run` tries again after an error that may pass (the source down, a full disk), and when
// it gives up (retry.window). The window runs from the first error at a durable position and
// starts again once the pipeline gets past that position: a pipeline that keeps failing at the
// same place gives up after the window, however often it reconnects in between (a sink whose
// disk stays full), while one that moves on between errors never does. Waits grow
// exponentially from 500 ms to retry.max_backoff, each drawn between half and all of the
// current bound (jitter), so that pipelines failing together do not retry in step.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <random>

#include "base/lsn.h"
#include "config/config.h"

namespace tidemark::pipeline {

class RetryPolicy {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::milliseconds kFirstBackoff{500};

  RetryPolicy(const config::RetryConfig& cfg, uint64_t seed);

  /// An error happened while the pipeline was durable up to `durable`. Returns how long to wait
  /// before the next attempt, or nothing when the window is over.
  std::optional<std::chrono::milliseconds> failed(Lsn durable, Clock::time_point now) {
    return failed(durable.value(), now);
  }
  /// The same for any position that only grows as the work moves on (a change log offset).
  std::optional<std::chrono::milliseconds> failed(uint64_t durable, Clock::time_point now);

  /// Attempts since the window started (the one that just failed included).
  int attempt() const { return attempt_; }
  /// When the window started, and when it ends: on this machine's clock, and as Unix
  /// microseconds for the status.
  Clock::time_point since() const { return since_; }
  int64_t sinceUnixMicros() const { return since_unix_us_; }
  int64_t givesUpAtUnixMicros() const;

 private:
  config::RetryConfig cfg_;
  std::mt19937_64 rng_;
  std::optional<uint64_t> stuck_at_;
  Clock::time_point since_;
  int64_t since_unix_us_ = 0;
  int attempt_ = 0;
  std::chrono::milliseconds backoff_ = kFirstBackoff;
};

}  // namespace tidemark::pipeline
