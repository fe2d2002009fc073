// The jsonl sink: one file per topic, <path>/<topic>.jsonl, one value envelope per line
// (or {"key":...,"value":...} with with_key). Lines are buffered in memory up to a bound,
// then written; flush() writes the rest and fsyncs every file it touched, and the directory
// when it created files. The checkpoint is the size of every file at the last flush; on
// recovery a file is cut back to its checkpointed size, and a file the checkpoint does not
// know is emptied (it was created after the last durable position). The directory belongs to
// the sink: do not write other .jsonl files into it.
#pragma once

#include <map>
#include <string>
#include <unordered_map>

#include "common/log.h"
#include "sinks/sink.h"

namespace tidemark::sinks {

class JsonlSink final : public Sink {
 public:
  explicit JsonlSink(const config::SinkConfig& cfg);
  ~JsonlSink() override;

  const std::string& name() const override { return name_; }
  void recover(const std::optional<std::string>& checkpoint) override;
  void write(const events::Event& event) override;
  void markTransactionEnd() override;
  void rollbackToMark() override;
  void flush() override;
  std::string checkpoint() const override;
  uint64_t pendingBytes() const override { return pending_bytes_; }

 private:
  struct File {
    int fd = -1;
    std::string path;
    std::string buffer;       // lines not yet written to the fd
    uint64_t written = 0;     // bytes in the file (fd) so far
    uint64_t marked = 0;      // logical size (written + buffered) at the last mark
    uint64_t durable = 0;     // size at the last flush
    bool dirty = false;       // written to since the last fsync
  };

  File& open(std::string_view topic);
  void writeBuffer(File& f);
  void truncate(File& f, uint64_t size);

  std::string name_;
  std::string dir_;
  bool with_key_;
  Logger log_;
  std::unordered_map<std::string, File> files_;  // by topic
  std::map<std::string, uint64_t> recovered_;      // checkpointed sizes, by topic
  bool created_files_ = false;
  uint64_t pending_bytes_ = 0;
};

}  // namespace tidemark::sinks
