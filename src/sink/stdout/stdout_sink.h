// The stdout sink: one line per event on standard output, for trying things out and piping.
// Standard output is not durable storage: flush() only flushes the stream, and lines of a
// transaction abandoned mid-way (a lost connection) cannot be taken back, so they may appear
// again when the transaction is re-sent.
#pragma once

#include "core/sink.h"

namespace tidemark::sinks {

class StdoutSink final : public Sink {
 public:
  explicit StdoutSink(const config::SinkConfig& cfg) : name_(cfg.name), with_key_(cfg.with_key) {}

  const std::string& name() const override { return name_; }
  std::optional<uint64_t> recover(const std::optional<std::string>&, RecoverMode) override { return std::nullopt; }
  void write(const core::Event& event) override;
  void markTransactionEnd(uint64_t) override {}
  void rollbackToMark() override {}
  void rollbackTo(const std::string&) override {}
  void flush() override;
  std::string checkpoint() const override { return "{}"; }
  uint64_t pendingBytes() const override { return pending_bytes_; }

 private:
  std::string name_;
  bool with_key_;
  std::string line_;
  uint64_t pending_bytes_ = 0;
};

}  // namespace tidemark::sinks
