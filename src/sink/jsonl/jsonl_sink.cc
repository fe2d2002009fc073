#include "sink/jsonl/jsonl_sink.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/json_writer.h"

namespace tidemark::sinks {

namespace {

// Lines are written to the file once this much is buffered for it; memory stays bounded
// however large a transaction is.
constexpr size_t kWriteThreshold = 1 << 20;
// The checkpoint fingerprints this much of a file before its durable size.
constexpr uint64_t kFingerprintBytes = 4096;
// Bytes after the durable size that recovery reads to tell whether tidemark wrote them: a
// crash leaves at most what was written since the last flush.
constexpr uint64_t kMaxTailBytes = uint64_t{1} << 30;

[[noreturn]] void ioFail(std::string_view what, const std::string& path) {
  int err = errno;
  throw Error(err == ENOSPC || err == EDQUOT ? ErrorClass::Retriable : ErrorClass::Fatal,
              fmt::format("jsonl sink: {} {} failed: {}", what, path, std::strerror(err)),
              err == ENOSPC || err == EDQUOT
                  ? "free disk space in the sink directory; tidemark retries within retry.window, "
                    "from the last durable position"
                  : "");
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

// Bytes [from, to) of the file.
std::string readRange(int fd, uint64_t from, uint64_t to, const std::string& path) {
  std::string out(static_cast<size_t>(to - from), '\0');
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(from + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      ioFail("read", path);
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  out.resize(done);
  return out;
}

// FNV-1a (64 bits) of the last kFingerprintBytes before `size`, as hex: enough to tell the
// file tidemark made durable from one changed behind its back.
std::string fingerprint(int fd, uint64_t size, const std::string& path) {
  std::string bytes = readRange(fd, size > kFingerprintBytes ? size - kFingerprintBytes : 0, size, path);
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return fmt::format("{:016x}", h);
}

// Whether `bytes` read as lines tidemark writes: each a JSON object, the last one possibly cut
// short by a crash (then it must at least begin like one).
bool readsAsOwnLines(std::string_view bytes) {
  while (!bytes.empty()) {
    size_t nl = bytes.find('\n');
    std::string_view line = bytes.substr(0, nl);
    if (line.empty() || line.front() != '{') return false;
    if (nl == std::string_view::npos) return true;  // cut short
    if (line.back() != '}' || !nlohmann::json::accept(line)) return false;
    bytes.remove_prefix(nl + 1);
  }
  return true;
}

bool endsWithNewline(int fd, uint64_t size, const std::string& path) {
  return size == 0 || readRange(fd, size - 1, size, path) == "\n";
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

void JsonlSink::refuse(std::string message, std::string hint) const {
  throw Error(ErrorClass::Fatal, fmt::format("jsonl sink \"{}\": {}", name_, message), std::move(hint));
}

std::map<std::string, JsonlSink::Durable> JsonlSink::parseCheckpoint(const std::string& checkpoint) const {
  std::map<std::string, Durable> out;
  try {
    const nlohmann::json parsed = nlohmann::json::parse(checkpoint);
    if (!parsed.is_object()) throw Error(ErrorClass::Fatal, "not a JSON object");
    for (auto it = parsed.begin(); it != parsed.end(); ++it) {
      Durable d;
      if (it.value().is_object()) {  // {"size": N, "tail": "..."}
        d.size = it.value().at("size").get<uint64_t>();
        d.fingerprint = it.value().value("tail", "");
      } else {  // a bare size, as checkpoints were before fingerprints
        d.size = it.value().get<uint64_t>();
      }
      out[it.key()] = d;
    }
  } catch (const std::exception& e) {
    throw Error(ErrorClass::Fatal, fmt::format("jsonl sink \"{}\": stored checkpoint is unreadable: {}", name_, e.what()));
  }
  return out;
}

std::optional<uint64_t> JsonlSink::recover(const std::optional<std::string>& checkpoint, RecoverMode mode) {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) {
    throw Error(ErrorClass::Config,
                fmt::format("jsonl sink \"{}\": cannot create directory {}: {}", name_, dir_, ec.message()),
                "set sinks[].path to a directory tidemark can write");
  }
  std::map<std::string, Durable> stored;
  if (checkpoint && mode == RecoverMode::Resume) stored = parseCheckpoint(*checkpoint);
  bool changed = false;
  std::map<std::string, std::string> present;  // topic -> path
  for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
    if (!entry.is_regular_file() || entry.path().extension() != ".jsonl") continue;
    present[entry.path().stem().string()] = entry.path().string();
  }
  for (const auto& [topic, path] : present) {
    auto it = stored.find(topic);
    recoverFile(topic, path, it == stored.end() ? nullptr : &it->second, mode, changed);
  }
  for (const auto& [topic, d] : stored) {
    if (present.count(topic) || d.size == 0) continue;
    const std::string path = fmt::format("{}/{}.jsonl", dir_, topic);
    refuse(fmt::format("{} is missing, though tidemark made {} bytes of events durable in it", path, d.size),
           fmt::format("restore the file to go on where it was; or accept its loss with tidemark run "
                       "--reset-sink {} (a new file is started; the events it held stay lost: reload "
                       "the table into the destination to fill the gap)",
                       name_));
  }
  if (changed) fsyncPath(dir_, true);
  return std::nullopt;
}

void JsonlSink::recoverFile(const std::string& topic, const std::string& path, const Durable* stored,
                            RecoverMode mode, bool& changed) {
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) ioFail("open", path);
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) ioFail("stat", path);
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  const std::string accept_hint = fmt::format("tidemark run --reset-sink {}", name_);

  if (mode == RecoverMode::FirstRun && size > 0) {
    refuse(fmt::format("{} holds {} bytes, but the state store has no position for this pipeline "
                       "(state_dir/state.db is new, empty, or was removed), so what the file holds "
                       "cannot be tied to a position in the source",
                       path, size),
           fmt::format("if the state directory was lost, restore it; to start over, move the sink's "
                       "files aside (and reload the tables); to append to them anyway, run once with "
                       "{}",
                       accept_hint));
  }
  if (mode != RecoverMode::Resume) {
    // Kept as they are; new events start on a line of their own.
    uint64_t kept = size;
    if (!endsWithNewline(fd, size, path)) {
      log_.warn("{} ends in a cut line; new events start on the next line", path);
      if (::pwrite(fd, "\n", 1, static_cast<off_t>(size)) != 1) ioFail("write", path);
      if (::fsync(fd) != 0) ioFail("fsync", path);
      kept = size + 1;
      changed = true;
    }
    recovered_[topic] = Durable{kept, fingerprint(fd, kept, path)};
    return;
  }

  const Durable keep = stored != nullptr ? *stored : Durable{};
  const std::string ways = fmt::format(
      "restore the file to what tidemark wrote to go on where it was; or accept it as it is now "
      "with {} (events missing from it stay missing: reload the table into the destination)",
      accept_hint);
  if (size < keep.size) {
    refuse(fmt::format("{} holds {} bytes, fewer than the {} bytes of events tidemark made durable in "
                       "it: something cut it, and the events in between are gone from it",
                       path, size, keep.size),
           ways);
  }
  if (!keep.fingerprint.empty() && fingerprint(fd, keep.size, path) != keep.fingerprint) {
    refuse(fmt::format("{} is not what tidemark made durable: the bytes before offset {} changed "
                       "behind its back",
                       path, keep.size),
           ways);
  }
  if (size > keep.size) {
    const uint64_t extra = size - keep.size;
    if (extra > kMaxTailBytes || !readsAsOwnLines(readRange(fd, keep.size, size, path))) {
      refuse(fmt::format("{} has {} bytes after the {} bytes tidemark made durable that do not read "
                         "as tidemark's events (did another program write to it?); tidemark removes "
                         "only what it can tell it wrote",
                         path, extra, keep.size),
             fmt::format("look at them (tail -c {} {}); to drop them and go on, the source sending "
                         "again what was not durable: truncate -s {} {}; to keep the file as it is: "
                         "{}",
                         extra, path, keep.size, path, accept_hint));
    }
    // Written after the last durable position: the source sends it again.
    log_.info("{}: removing {} bytes written after the last durable position", path, extra);
    if (::ftruncate(fd, static_cast<off_t>(keep.size)) != 0) ioFail("truncate", path);
    if (::fsync(fd) != 0) ioFail("fsync", path);
    changed = true;
  }
  recovered_[topic] = Durable{keep.size, keep.fingerprint.empty() ? fingerprint(fd, keep.size, path) : keep.fingerprint};
}

JsonlSink::File& JsonlSink::open(std::string_view topic) {
  auto it = files_.find(std::string(topic));
  if (it != files_.end()) return it->second;
  File f;
  f.path = fmt::format("{}/{}.jsonl", dir_, topic);
  f.fd = ::open(f.path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (f.fd < 0) ioFail("open", f.path);
  struct stat st {};
  if (::fstat(f.fd, &st) != 0) ioFail("stat", f.path);
  f.written = f.marked = static_cast<uint64_t>(st.st_size);
  auto known = recovered_.find(std::string(topic));
  if (known == recovered_.end()) {
    // A file recovery did not see: new (the usual case), or put there since.
    created_files_ = true;
    if (f.written > 0) {
      ::close(f.fd);
      refuse(fmt::format("{} appeared with {} bytes after tidemark started; the directory belongs to "
                         "the sink",
                         f.path, f.written),
             "move the file out of the sink's directory, then run again");
    }
    f.durable = Durable{0, {}};
  } else {
    if (f.written != known->second.size) {
      ::close(f.fd);
      refuse(fmt::format("{} holds {} bytes, but recovery left it at {}: another program changed it "
                         "since",
                         f.path, f.written, known->second.size),
             "stop the other program (the directory belongs to the sink), then run again: recovery "
             "says what to do with the file");
    }
    f.durable = known->second;
    recovered_.erase(known);
  }
  return files_.emplace(std::string(topic), std::move(f)).first->second;
}

void JsonlSink::checkUntouched(const File& f) const {
  struct stat st {};
  if (::fstat(f.fd, &st) != 0) ioFail("stat", f.path);
  if (st.st_nlink == 0) {
    refuse(fmt::format("{} was deleted while tidemark wrote it; the events it held are gone", f.path),
           fmt::format("restore it to go on where it was; or run again with --reset-sink {} to start a "
                       "new file (reload the table into the destination to fill the gap)",
                       name_));
  }
  if (static_cast<uint64_t>(st.st_size) != f.written) {
    refuse(fmt::format("{} holds {} bytes, but tidemark wrote {}: another program wrote to it or cut "
                       "it while tidemark ran; nothing after the last durable position ({} bytes) is "
                       "confirmed",
                       f.path, st.st_size, f.written, f.durable.size),
           "stop the other program (the directory belongs to the sink), then run again: recovery "
           "says what to do with the file");
  }
}

void JsonlSink::write(const core::Event& event) {
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
  size_t done = 0;
  while (done < f.buffer.size()) {
    ssize_t n = ::write(f.fd, f.buffer.data() + done, f.buffer.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      // What did reach the file is counted, so that a rollback cuts exactly that.
      const int err = errno;
      f.written += done;
      f.buffer.erase(0, done);
      f.dirty = true;
      errno = err;
      ioFail("write", f.path);
    }
    done += static_cast<size_t>(n);
  }
  f.written += f.buffer.size();
  f.buffer.clear();
  f.dirty = true;
}

void JsonlSink::markTransactionEnd(uint64_t) {
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
  for (auto& [topic, f] : files_) pending_bytes_ += f.marked - f.durable.size;
}

void JsonlSink::rollbackTo(const std::string& checkpoint) {
  const std::map<std::string, Durable> saved = parseCheckpoint(checkpoint);
  for (auto& [topic, f] : files_) {
    f.buffer.clear();
    auto it = saved.find(topic);
    const Durable target = it == saved.end() ? Durable{} : it->second;  // created since: empty
    struct stat st {};
    if (::fstat(f.fd, &st) != 0) ioFail("stat", f.path);
    // A file another program changed is left as it is: recovery sorts it out, naming it.
    if (st.st_nlink > 0 && static_cast<uint64_t>(st.st_size) == f.written && f.written > target.size) {
      truncate(f, target.size);
      if (::fsync(f.fd) != 0) ioFail("fsync", f.path);
      f.dirty = false;
    }
    f.written = f.marked = target.size;
    f.durable = target;
  }
  pending_bytes_ = 0;
}

void JsonlSink::flush() {
  for (auto& [topic, f] : files_) {
    if (!f.buffer.empty()) writeBuffer(f);
    if (f.dirty) {
      checkUntouched(f);
      if (::fdatasync(f.fd) != 0) ioFail("fsync", f.path);
      f.dirty = false;
      f.durable = Durable{f.written, fingerprint(f.fd, f.written, f.path)};
    }
  }
  if (created_files_) {
    // A new file's name is durable only once its directory is.
    fsyncPath(dir_, true);
    created_files_ = false;
  }
  pending_bytes_ = 0;
}

std::string JsonlSink::checkpoint() const {
  std::map<std::string, Durable> all = recovered_;
  for (const auto& [topic, f] : files_) all[topic] = f.durable;
  std::string out = "{";
  for (const auto& [topic, d] : all) {
    if (out.size() > 1) out += ',';
    JsonWriter::appendQuoted(out, topic);
    out += ":{\"size\":";
    out += std::to_string(d.size);
    out += ",\"tail\":";
    JsonWriter::appendQuoted(out, d.fingerprint);
    out += '}';
  }
  out += '}';
  return out;
}

}  // namespace tidemark::sinks
