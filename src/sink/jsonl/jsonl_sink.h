// The jsonl sink: one file per topic, <path>/<topic>.jsonl, one value envelope per line
// (or {"key":...,"value":...} with with_key). Lines are buffered in memory up to a bound,
// then written; flush() writes the rest and fsyncs every file it touched, and the directory
// when it created files.
//
// The checkpoint is, for every file, its size at the last flush and a fingerprint of the bytes
// before that point (the last 4 KiB). On recovery a file must still hold those bytes; what
// follows them is removed only when it reads as tidemark's own lines (whole JSON objects, a
// last one cut short by a crash). A file cut, changed, removed, or holding bytes tidemark did
// not write stops the pipeline with the file named and the ways on. While running, a file
// whose size is not what tidemark wrote (another program appended or cut it), or that was
// deleted, stops the pipeline at the next flush, before anything past it is confirmed. The
// directory belongs to the sink: do not write other .jsonl files into it.
#pragma once

#include <map>
#include <string>
#include <unordered_map>

#include "base/log.h"
#include "core/sink.h"

namespace tidemark::sinks {

class JsonlSink final : public Sink {
 public:
  explicit JsonlSink(const config::SinkConfig& cfg);
  ~JsonlSink() override;

  const std::string& name() const override { return name_; }
  std::optional<uint64_t> recover(const std::optional<std::string>& checkpoint, RecoverMode mode) override;
  void write(const core::Event& event) override;
  void markTransactionEnd(uint64_t cursor) override;
  void rollbackToMark() override;
  void rollbackTo(const std::string& checkpoint) override;
  void flush() override;
  std::string checkpoint() const override;
  uint64_t pendingBytes() const override { return pending_bytes_; }

  /// What the checkpoint records of one file.
  struct Durable {
    uint64_t size = 0;
    std::string fingerprint;  // of the bytes before `size`; empty when not recorded
    bool operator==(const Durable&) const = default;
  };

 private:
  struct File {
    int fd = -1;
    std::string path;
    std::string buffer;       // lines not yet written to the fd
    uint64_t written = 0;     // bytes in the file: what tidemark wrote to it
    uint64_t marked = 0;      // logical size (written + buffered) at the last mark
    Durable durable;          // at the last flush
    bool dirty = false;       // written to since the last fsync
  };

  File& open(std::string_view topic);
  void writeBuffer(File& f);
  void truncate(File& f, uint64_t size);
  /// Throws when the file is not what tidemark wrote: another program appended to it or cut
  /// it, or it was deleted.
  void checkUntouched(const File& f) const;
  void recoverFile(const std::string& topic, const std::string& path, const Durable* stored,
                   RecoverMode mode, bool& changed);
  [[noreturn]] void refuse(std::string message, std::string hint) const;
  std::map<std::string, Durable> parseCheckpoint(const std::string& checkpoint) const;

  std::string name_;
  std::string dir_;
  bool with_key_;
  Logger log_;
  std::unordered_map<std::string, File> files_;  // by topic
  std::map<std::string, Durable> recovered_;      // durable state of files not open, by topic
  bool created_files_ = false;
  uint64_t pending_bytes_ = 0;
};

}  // namespace tidemark::sinks
