#include "pipeline/retry.h"

#include <algorithm>

#include "base/clock.h"

namespace tidemark::pipeline {

RetryPolicy::RetryPolicy(const config::RetryConfig& cfg, uint64_t seed) : cfg_(cfg), rng_(seed) {}

std::optional<std::chrono::milliseconds> RetryPolicy::failed(uint64_t durable, Clock::time_point now) {
  if (!stuck_at_ || durable > *stuck_at_) {
    // The first error, or one past the position of the last: a new window.
    stuck_at_ = durable;
    since_ = now;
    since_unix_us_ = unixMicrosNow();
    attempt_ = 0;
    backoff_ = kFirstBackoff;
  }
  ++attempt_;
  const auto ends = since_ + cfg_.window;
  if (now >= ends) return std::nullopt;
  const auto bound = std::min(backoff_, cfg_.max_backoff);
  std::uniform_int_distribution<int64_t> draw(bound.count() / 2, bound.count());
  auto wait = std::chrono::milliseconds(draw(rng_));
  // The last attempt is at the end of the window, not after it.
  wait = std::min(wait, std::chrono::ceil<std::chrono::milliseconds>(ends - now));
  backoff_ = std::min(backoff_ * 2, cfg_.max_backoff);
  return wait;
}

int64_t RetryPolicy::givesUpAtUnixMicros() const {
  return since_unix_us_ + std::chrono::duration_cast<std::chrono::microseconds>(cfg_.window).count();
}

}  // namespace tidemark::pipeline
