#include "sinks/jsonl_sink.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/json_writer.h"

namespace tidemark::sinks {

namespace {

// Lines are written to the file once this much is buffered for it; memory stays bounded
// however large a transaction is.
constexpr size_t kWriteThreshold = 1 << 20;

[[noreturn]] void ioFail(std::string_view what, const std::string& path) {
  int err = errno;
  throw Error(err == ENOSPC || err == EDQUOT ? ErrorClass::Retriable : ErrorClass::Fatal,
              fmt::format("jsonl sink: {} {} failed: {}", what, path, std::strerror(err)),
              err == ENOSPC ? "free disk space in the sink directory" : "");
}

void fsyncPath(const std::string& path, bool directory) {
  int fd = ::open(path.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_WRONLY) | O_CLOEXEC);
  if (fd < 0) ioFail("open", path);
  if (::fsync(fd) != 0) {
    ::close(fd);
    ioFail("fsync", path);
  }
  ::close(fd);
}

}  // namespace

JsonlSink::JsonlSink(const config::SinkConfig& cfg)
    : name_(cfg.name),
      dir_(cfg.path.string()),
      with_key_(cfg.with_key),
      log_("sink", {{"sink", cfg.name}}) {}

JsonlSink::~JsonlSink() {
  for (auto& [topic, f] : files_) {
    if (f.fd >= 0) ::close(f.fd);
  }
}

void JsonlSink::recover(const std::optional<std::string>& checkpoint) {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) {
    throw Error(ErrorClass::Config,
                fmt::format("jsonl sink \"{}\": cannot create directory {}: {}", name_, dir_, ec.message()),
                "set sinks[].path to a directory tidemark can write");
  }
  std::map<std::string, uint64_t> stored;
  if (checkpoint) {
    try {
      const nlohmann::json parsed = nlohmann::json::parse(*checkpoint);
      if (!parsed.is_object()) throw Error(ErrorClass::Fatal, "not a JSON object");
      for (auto it = parsed.begin(); it != parsed.end(); ++it) stored[it.key()] = it.value().get<uint64_t>();
    } catch (const std::exception& e) {
      throw Error(ErrorClass::Fatal,
                  fmt::format("jsonl sink \"{}\": stored checkpoint is unreadable: {}", name_, e.what()));
    }
  }
  bool changed = false;
  for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
    if (!entry.is_regular_file() || entry.path().extension() != ".jsonl") continue;
    std::string topic = entry.path().stem().string();
    std::string path = entry.path().string();
    uint64_t size = entry.file_size();
    uint64_t keep = size;
    if (checkpoint) {
      auto it = stored.find(topic);
      keep = it == stored.end() ? 0 : it->second;
    }
    if (size > keep) {
      // Written after the last durable position: the source sends it again.
      log_.info("{}: removing {} bytes written after the last durable position", path, size - keep);
      if (::truncate(path.c_str(), static_cast<off_t>(keep)) != 0) ioFail("truncate", path);
      fsyncPath(path, false);
      changed = true;
    } else if (size < keep) {
      log_.warn("{} is {} bytes, shorter than the {} bytes tidemark made durable: something else "
                "truncated it; events are missing from this file",
                path, size, keep);
      keep = size;
    }
    recovered_[topic] = keep;
  }
  if (changed) fsyncPath(dir_, true);
}

JsonlSink::File& JsonlSink::open(std::string_view topic) {
  auto it = files_.find(std::string(topic));
  if (it != files_.end()) return it->second;
  File f;
  f.path = fmt::format("{}/{}.jsonl", dir_, topic);
  f.fd = ::open(f.path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (f.fd < 0) ioFail("open", f.path);
  struct stat st {};
  if (::fstat(f.fd, &st) != 0) ioFail("stat", f.path);
  f.written = f.marked = f.durable = static_cast<uint64_t>(st.st_size);
  if (!recovered_.count(std::string(topic))) created_files_ = true;
  return files_.emplace(std::string(topic), std::move(f)).first->second;
}

void JsonlSink::write(const events::Event& event) {
  File& f = open(event.topic);
  size_t before = f.buffer.size();
  if (with_key_) {
    f.buffer += "{\"key\":";
    if (event.key.empty()) f.buffer += "null";
    else f.buffer += event.key;
    f.buffer += ",\"value\":";
    f.buffer += event.value;
    f.buffer += "}\n";
  } else {
    f.buffer += event.value;
    f.buffer += '\n';
  }
  pending_bytes_ += f.buffer.size() - before;
  if (f.buffer.size() >= kWriteThreshold) writeBuffer(f);
}

void JsonlSink::writeBuffer(File& f) {
  const char* p = f.buffer.data();
  size_t left = f.buffer.size();
  while (left > 0) {
    ssize_t n = ::write(f.fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      ioFail("write", f.path);
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  f.written += f.buffer.size();
  f.buffer.clear();
  f.dirty = true;
}

void JsonlSink::markTransactionEnd() {
  for (auto& [topic, f] : files_) f.marked = f.written + f.buffer.size();
}

void JsonlSink::truncate(File& f, uint64_t size) {
  if (::ftruncate(f.fd, static_cast<off_t>(size)) != 0) ioFail("truncate", f.path);
  f.written = size;
  f.dirty = true;
}

void JsonlSink::rollbackToMark() {
  for (auto& [topic, f] : files_) {
    if (f.written + f.buffer.size() <= f.marked) continue;
    if (f.written <= f.marked) {
      f.buffer.resize(f.marked - f.written);
    } else {
      f.buffer.clear();
      truncate(f, f.marked);
    }
  }
  pending_bytes_ = 0;
  for (auto& [topic, f] : files_) pending_bytes_ += f.marked - f.durable;
}

void JsonlSink::flush() {
  for (auto& [topic, f] : files_) {
    if (!f.buffer.empty()) writeBuffer(f);
    if (f.dirty) {
      if (::fdatasync(f.fd) != 0) ioFail("fsync", f.path);
      f.dirty = false;
    }
    f.durable = f.written;
  }
  if (created_files_) {
    // A new file's name is durable only once its directory is.
    fsyncPath(dir_, true);
    created_files_ = false;
    for (const auto& [topic, f] : files_) recovered_[topic] = f.durable;
  }
  pending_bytes_ = 0;
}

std::string JsonlSink::checkpoint() const {
  std::map<std::string, uint64_t> sizes = recovered_;
  for (const auto& [topic, f] : files_) sizes[topic] = f.durable;
  std::string out = "{";
  for (const auto& [topic, size] : sizes) {
    if (out.size() > 1) out += ',';
    JsonWriter::appendQuoted(out, topic);
    out += ':';
    out += std::to_string(size);
  }
  out += '}';
  return out;
}

}  // namespace tidemark::sinks
