// Load on the source while tidemark runs: a thread with its own connection that commits one
// statement per transaction, one after another, so the transactions never interleave (tests
// rely on that to reason about which ones a confirmed LSN covers).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <mutex>
#include <string>
#include <thread>

namespace tidemark::test {

class BackgroundWriter {
 public:
  /// Runs statementFor(0), statementFor(1), ... each as its own transaction, until stop()
  /// or after `maxBatches`, waiting `pause` after each one (a paced writer, e.g. a heartbeat
  /// job committing once a second).
  BackgroundWriter(std::string conninfo, std::function<std::string(int64_t batch)> statementFor,
                   int64_t maxBatches = std::numeric_limits<int64_t>::max(),
                   std::chrono::milliseconds pause = std::chrono::milliseconds(0));
  /// Stops and joins.
  ~BackgroundWriter();

  BackgroundWriter(const BackgroundWriter&) = delete;
  BackgroundWriter& operator=(const BackgroundWriter&) = delete;

  /// Asks the thread to stop after the transaction in progress, and waits for it.
  void stop();
  /// Transactions committed so far.
  int64_t committed() const { return committed_.load(); }
  /// True once the thread has ended (maxBatches reached, stopped, or failed).
  bool finished() const { return finished_.load(); }
  /// The error that ended the thread early; empty when none.
  std::string error() const;

 private:
  void run(std::string conninfo, std::function<std::string(int64_t)> statementFor,
           int64_t maxBatches, std::chrono::milliseconds pause);

  std::atomic<bool> stop_{false};
  std::atomic<bool> finished_{false};
  std::atomic<int64_t> committed_{0};
  mutable std::mutex mu_;
  std::string error_;
  std::thread thread_;
};

}  // namespace tidemark::test
