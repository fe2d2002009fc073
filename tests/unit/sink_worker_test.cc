#include "pipeline/sink_worker.h"

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "base/error.h"
#include "log/local/local_log.h"
#include "support/poll.h"
#include "support/temp_dir.h"

namespace tidemark::pipeline {
namespace {

using namespace std::chrono_literals;

// A sink in memory that keeps what it made durable apart from what it was given, and fails
// its flushes while `failing` is set (after taking the writes: what a full disk does).
class MemorySink final : public sinks::Sink {
 public:
  const std::string& name() const override { return name_; }
  std::optional<uint64_t> recover(const std::optional<std::string>&, sinks::RecoverMode) override {
    return std::nullopt;
  }
  void write(const core::Event& e) override {
    std::lock_guard lock(mutex_);
    written_.push_back(std::string(e.key) + "=" + std::string(e.value));
  }
  void markTransactionEnd(uint64_t) override { mark_ = written_.size(); }
  void rollbackToMark() override { written_.resize(mark_); }
  void rollbackTo(const std::string& checkpoint) override {
    std::lock_guard lock(mutex_);
    written_.resize(std::stoul(checkpoint));
    mark_ = written_.size();
  }
  void flush() override {
    if (failing.load()) throw Error(ErrorClass::Retriable, "disk full (in a test)");
    std::lock_guard lock(mutex_);
    durable_ = written_;
  }
  std::string checkpoint() const override { return std::to_string(durable_.size()); }
  uint64_t pendingBytes() const override { return 0; }

  std::vector<std::string> durable() const {
    std::lock_guard lock(mutex_);
    return durable_;
  }

  std::atomic<bool> failing{false};

 private:
  std::string name_ = "memory";
  mutable std::mutex mutex_;
  std::vector<std::string> written_;
  std::vector<std::string> durable_;
  size_t mark_ = 0;
};

// Appends one transaction of `keys` and its end, and commits.
void transaction(changelog::LocalLog& log, const std::vector<std::string>& keys) {
  for (const auto& k : keys) log.append({"t", k, "v" + k, {}});
  log.append(changelog::transactionEnd("0/1"));
  log.commit();
}

class SinkWorkerTest : public ::testing::Test {
 protected:
  SinkWorker::Options options() {
    SinkWorker::Options o;
    o.flush_interval = 10ms;
    o.retry.window = 60s;
    o.retry.max_backoff = 50ms;
    return o;
  }
  std::function<void(const SinkProgress&)> saver() {
    return [this](const SinkProgress& p) {
      std::lock_guard lock(mutex_);
      saved_.push_back(p.cursor);
      last_ = p;
    };
  }
  std::vector<uint64_t> saved() {
    std::lock_guard lock(mutex_);
    return saved_;
  }

  test::TempDir tmp_;
  changelog::LocalLog log_{{tmp_.path() / "log"}};
  MemorySink sink_;
  std::mutex mutex_;
  std::vector<uint64_t> saved_;
  SinkProgress last_;
};

TEST_F(SinkWorkerTest, DeliversCommittedTransactionsAndSavesOnlyAtTheirEnds) {
  SinkWorker worker(sink_, log_, {0, "0"}, options(), saver(), Logger("test"));
  transaction(log_, {"1", "2", "3"});
  transaction(log_, {"4"});
  ASSERT_TRUE(worker.waitDurable(log_.endOffset(), 10s));
  EXPECT_EQ(sink_.durable(), (std::vector<std::string>{"1=v1", "2=v2", "3=v3", "4=v4"}));
  // Every saved cursor is the end of a transaction: offsets 4 (after 0-2 and the end at 3)
  // and 6 (after 4 and the end at 5).
  for (uint64_t c : saved()) EXPECT_TRUE(c == 4 || c == 6) << c;
  EXPECT_EQ(saved().back(), 6u);
  EXPECT_EQ(worker.status().state, "running");
}

TEST_F(SinkWorkerTest, ASinkThatFailsIsRetriedFromItsLastSaveAndRepeatsNothing) {
  SinkWorker worker(sink_, log_, {0, "0"}, options(), saver(), Logger("test"));
  transaction(log_, {"1", "2"});
  ASSERT_TRUE(worker.waitDurable(3, 10s));
  sink_.failing = true;
  transaction(log_, {"3", "4"});
  transaction(log_, {"5"});
  // Capture goes on: the log takes the transactions while the sink fails.
  ASSERT_EVENTUALLY(worker.status().state == "retrying", 10s);
  EXPECT_NE(worker.status().error.find("disk full"), std::string::npos);
  EXPECT_FALSE(worker.waitDurable(log_.endOffset(), 100ms));
  sink_.failing = false;
  ASSERT_TRUE(worker.waitDurable(log_.endOffset(), 10s));
  EXPECT_EQ(sink_.durable(), (std::vector<std::string>{"1=v1", "2=v2", "3=v3", "4=v4", "5=v5"}));
  EXPECT_EQ(worker.status().state, "running");
}

TEST_F(SinkWorkerTest, AfterACleanStopTheNextWorkerGoesOnWithoutRepeats) {
  {
    SinkWorker worker(sink_, log_, {0, "0"}, options(), saver(), Logger("test"));
    transaction(log_, {"1", "2"});
    ASSERT_TRUE(worker.waitDurable(log_.endOffset(), 10s));
    worker.stop();
  }
  transaction(log_, {"3"});
  SinkWorker again(sink_, log_, last_, options(), saver(), Logger("test"));
  ASSERT_TRUE(again.waitDurable(log_.endOffset(), 10s));
  EXPECT_EQ(sink_.durable(), (std::vector<std::string>{"1=v1", "2=v2", "3=v3"}));
}

TEST_F(SinkWorkerTest, GivesUpAfterTheRetryWindowAndSaysWhy) {
  auto o = options();
  o.retry.window = 200ms;
  SinkWorker worker(sink_, log_, {0, "0"}, o, saver(), Logger("test"));
  sink_.failing = true;
  transaction(log_, {"1"});
  ASSERT_EVENTUALLY(worker.failure().has_value(), 10s);
  EXPECT_EQ(worker.status().state, "failed");
  EXPECT_NE(std::string(worker.failure()->what()).find("disk full"), std::string::npos);
  EXPECT_FALSE(worker.waitDurable(log_.endOffset(), 10ms));
  EXPECT_TRUE(sink_.durable().empty());
}

}  // namespace
}  // namespace tidemark::pipeline
