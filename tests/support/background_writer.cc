#include "support/background_writer.h"

#include <algorithm>
#include <exception>

#include "support/pg_cluster.h"

namespace tidemark::test {

BackgroundWriter::BackgroundWriter(std::string conninfo,
                                   std::function<std::string(int64_t)> statementFor,
                                   int64_t maxBatches, std::chrono::milliseconds pause)
    : thread_(&BackgroundWriter::run, this, std::move(conninfo), std::move(statementFor),
              maxBatches, pause) {}

BackgroundWriter::~BackgroundWriter() { stop(); }

void BackgroundWriter::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

std::string BackgroundWriter::error() const {
  std::lock_guard lock(mu_);
  return error_;
}

void BackgroundWriter::run(std::string conninfo, std::function<std::string(int64_t)> statementFor,
                           int64_t maxBatches, std::chrono::milliseconds pause) {
  try {
    PgConnection conn(conninfo);
    for (int64_t batch = 0; batch < maxBatches && !stop_.load(); ++batch) {
      conn.exec(statementFor(batch));
      committed_.store(batch + 1);
      const auto until = std::chrono::steady_clock::now() + pause;
      while (!stop_.load() && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(
            std::min<std::chrono::steady_clock::duration>(std::chrono::milliseconds(10),
                                                          until - std::chrono::steady_clock::now()));
      }
    }
  } catch (const std::exception& e) {
    std::lock_guard lock(mu_);
    error_ = e.what();
  }
  finished_ = true;
}

}  // namespace tidemark::test
