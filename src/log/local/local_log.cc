#include "log/local/local_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include <fmt/format.h>

#include "base/error.h"
#include "log/local/crc32c.h"

namespace tidemark::changelog {

namespace {

constexpr size_t kFrameHeader = 8;              // body length, checksum
constexpr uint32_t kMaxBody = uint32_t{1} << 30;  // no record is larger; a longer length is damage
constexpr size_t kReadChunk = size_t{1} << 20;
constexpr std::string_view kSuffix = ".log";
constexpr size_t kBaseDigits = 20;

[[noreturn]] void ioFail(std::string_view what, const std::filesystem::path& path, int err) {
  const bool full = err == ENOSPC || err == EDQUOT;
  throw Error(full ? ErrorClass::Retriable : ErrorClass::Fatal,
              fmt::format("change log: {} {} failed: {}", what, path.string(), std::strerror(err)),
              full ? "free disk space under state_dir; tidemark retries within retry.window, and "
                     "nothing that was not yet in the log was confirmed to the source"
                   : "");
}

void fsyncDirectory(const std::filesystem::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) ioFail("open", dir, errno);
  if (::fsync(fd) != 0) {
    int err = errno;
    ::close(fd);
    ioFail("fsync", dir, err);
  }
  ::close(fd);
}

void put16(std::string& out, uint16_t v) {
  out += static_cast<char>(v & 0xFF);
  out += static_cast<char>(v >> 8);
}

void put32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out += static_cast<char>((v >> (8 * i)) & 0xFF);
}

void put64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out += static_cast<char>((v >> (8 * i)) & 0xFF);
}

void store32(char* at, uint32_t v) {
  for (int i = 0; i < 4; ++i) at[i] = static_cast<char>((v >> (8 * i)) & 0xFF);
}

uint64_t load(const char* at, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(at[i]);
  return v;
}

void putBytes(std::string& out, std::optional<std::string_view> bytes) {
  if (!bytes) {
    put32(out, 0xFFFFFFFF);  // -1
    return;
  }
  put32(out, static_cast<uint32_t>(bytes->size()));
  out.append(*bytes);
}

// A bounds-checked cursor over one frame's body.
class BodyReader {
 public:
  explicit BodyReader(std::string_view body) : body_(body) {}
  bool ok() const { return ok_; }
  bool atEnd() const { return pos_ == body_.size(); }
  uint64_t number(int bytes) {
    if (!ok_ || body_.size() - pos_ < static_cast<size_t>(bytes)) {
      ok_ = false;
      return 0;
    }
    uint64_t v = load(body_.data() + pos_, bytes);
    pos_ += static_cast<size_t>(bytes);
    return v;
  }
  std::string_view bytes(uint64_t n) {
    if (!ok_ || body_.size() - pos_ < n) {
      ok_ = false;
      return {};
    }
    std::string_view v = body_.substr(pos_, n);
    pos_ += n;
    return v;
  }
  std::optional<std::string_view> nullableBytes() {
    const auto n = static_cast<uint32_t>(number(4));
    if (n == 0xFFFFFFFF) return std::nullopt;
    return bytes(n);
  }

 private:
  std::string_view body_;
  size_t pos_ = 0;
  bool ok_ = true;
};

// Decodes a frame's body (its checksum already checked) into `out`; false when it does not
// parse.
bool decodeBody(std::string_view body, StoredRecord& out) {
  BodyReader in(body);
  out.offset = in.number(8);
  out.record.topic = in.bytes(in.number(2));
  out.record.key = in.nullableBytes();
  out.record.value = in.nullableBytes();
  const auto headers = in.number(2);
  out.record.headers.clear();
  for (uint64_t i = 0; i < headers && in.ok(); ++i) {
    Header h;
    h.name = in.bytes(in.number(2));
    h.value = in.bytes(in.number(4));
    out.record.headers.push_back(h);
  }
  return in.ok() && in.atEnd();
}

std::optional<uint64_t> segmentBase(const std::filesystem::path& file) {
  const std::string name = file.filename().string();
  if (name.size() != kBaseDigits + kSuffix.size() || !name.ends_with(kSuffix)) return std::nullopt;
  uint64_t base = 0;
  for (size_t i = 0; i < kBaseDigits; ++i) {
    if (name[i] < '0' || name[i] > '9') return std::nullopt;
    if (base > (std::numeric_limits<uint64_t>::max() - 9) / 10) return std::nullopt;
    base = base * 10 + static_cast<uint64_t>(name[i] - '0');
  }
  return base;
}

}  // namespace

// Frames read from one segment file, up to a limit that may grow (the committed size).
class LogReader::Frames {
 public:
  enum class Result { Frame, End, Damaged };

  Frames(int fd, std::filesystem::path path) : fd_(fd), path_(std::move(path)) {}

  /// The next frame below `limit`: End when no whole frame header is left; Damaged (with
  /// `why`) when a frame does not fit, fails its checksum or does not parse.
  Result next(uint64_t limit, StoredRecord& out, std::string& why) {
    if (!fill(kFrameHeader, limit)) return Result::End;
    const char* at = buf_.data() + pos_;
    const auto length = static_cast<uint32_t>(load(at, 4));
    const auto crc = static_cast<uint32_t>(load(at + 4, 4));
    if (length == 0 || length > kMaxBody) {
      why = fmt::format("a frame of length {}", length);
      return Result::Damaged;
    }
    if (!fill(kFrameHeader + length, limit)) {
      why = fmt::format("a frame of {} bytes cut short", length);
      return Result::Damaged;
    }
    const std::string_view body(buf_.data() + pos_ + kFrameHeader, length);
    if (crc32c(body) != crc) {
      why = "a frame that fails its checksum";
      return Result::Damaged;
    }
    if (!decodeBody(body, out)) {
      why = "a frame whose record does not parse";
      return Result::Damaged;
    }
    pos_ += kFrameHeader + length;
    return Result::Frame;
  }

  /// File position of the next frame.
  uint64_t position() const { return file_pos_ + pos_; }

 private:
  // Makes `need` bytes from pos_ available, reading below `limit`; false when they are not
  // all there.
  bool fill(size_t need, uint64_t limit) {
    if (buf_.size() - pos_ >= need) return true;
    buf_.erase(0, pos_);
    file_pos_ += pos_;
    pos_ = 0;
    const uint64_t end = file_pos_ + buf_.size();
    if (limit <= end) return false;
    const size_t want = static_cast<size_t>(std::min<uint64_t>(std::max(need - buf_.size(), kReadChunk), limit - end));
    const size_t old = buf_.size();
    buf_.resize(old + want);
    size_t done = 0;
    while (done < want) {
      ssize_t n = ::pread(fd_, buf_.data() + old + done, want - done, static_cast<off_t>(end + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        ioFail("read", path_, errno);
      }
      if (n == 0) break;
      done += static_cast<size_t>(n);
    }
    buf_.resize(old + done);
    return buf_.size() >= need;
  }

  int fd_;
  std::filesystem::path path_;
  std::string buf_;
  size_t pos_ = 0;
  uint64_t file_pos_ = 0;
};

std::optional<std::string_view> headerValue(const RecordView& record, std::string_view name) {
  for (const Header& h : record.headers) {
    if (h.name == name) return h.value;
  }
  return std::nullopt;
}

RecordView transactionEnd(std::string_view position) {
  return RecordView{{}, std::nullopt, std::nullopt, {{kControlHeader, kTransactionEnd}, {kPositionHeader, position}}};
}

bool isTransactionEnd(const RecordView& record) {
  return record.topic.empty() && headerValue(record, kControlHeader) == kTransactionEnd;
}

RecordView transactionAbort() {
  return RecordView{{}, std::nullopt, std::nullopt, {{kControlHeader, kTransactionAbort}}};
}

bool isTransactionAbort(const RecordView& record) {
  return record.topic.empty() && headerValue(record, kControlHeader) == kTransactionAbort;
}

RecordView tableSchema(std::string_view topic, std::string_view version, std::string_view json) {
  return RecordView{{}, topic, json,
                    {{kControlHeader, kTableSchema}, {kTopicHeader, topic}, {kSchemaVersionHeader, version}}};
}

bool isTableSchema(const RecordView& record) {
  return record.topic.empty() && headerValue(record, kControlHeader) == kTableSchema;
}

void LocalLog::Tail::note(const RecordView& record) {
  if (isTransactionEnd(record)) {
    position = std::string(headerValue(record, kPositionHeader).value_or(""));
    open = false;
  } else if (isTransactionAbort(record)) {
    open = false;
  } else if (!record.topic.empty()) {
    open = true;
  }
}

// ---------------------------------------------------------------------------------------------
// LocalLog

LocalLog::LocalLog(Options options) : options_(std::move(options)) {
  std::error_code ec;
  std::filesystem::create_directories(options_.dir, ec);
  if (ec) {
    throw Error(ErrorClass::Fatal,
                fmt::format("change log: cannot create {}: {}", options_.dir.string(), ec.message()),
                "check that state_dir is writable by the user tidemark runs as");
  }
  openSegments();
  recoverLast();
}

LocalLog::~LocalLog() {
  if (fd_ >= 0) ::close(fd_);
}

void LocalLog::openSegments() {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(options_.dir, ec)) {
    auto base = segmentBase(entry.path());
    if (!base || !entry.is_regular_file()) continue;
    segments_.push_back(Segment{*base, entry.path(), entry.file_size()});
  }
  if (ec) {
    throw Error(ErrorClass::Fatal,
                fmt::format("change log: cannot list {}: {}", options_.dir.string(), ec.message()), "");
  }
  std::sort(segments_.begin(), segments_.end(),
            [](const Segment& a, const Segment& b) { return a.base < b.base; });
  if (segments_.empty()) startSegment(0);
}

void LocalLog::recoverLast() {
  Segment& last = segments_.back();
  int fd = ::open(last.path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) ioFail("open", last.path, errno);
  fd_ = fd;
  LogReader::Frames frames(fd_, last.path);
  StoredRecord record;
  std::string why;
  uint64_t expected = last.base;
  const uint64_t size = last.size;
  for (;;) {
    const auto result = frames.next(size, record, why);
    if (result == LogReader::Frames::Result::Frame && record.offset == expected) {
      ++expected;
      committed_tail_.note(record.record);
      continue;
    }
    break;
  }
  const uint64_t good = frames.position();
  if (good < size) {
    // Only what was written after the last fdatasync can be torn: a crash in the middle of a
    // commit. Cut it back; the source sends it again, as its position was never confirmed.
    if (::ftruncate(fd_, static_cast<off_t>(good)) != 0) ioFail("truncate", last.path, errno);
    if (::fsync(fd_) != 0) ioFail("fsync", last.path, errno);
    recovery_.cut_bytes = size - good;
    recovery_.segment = last.path.string();
    last.size = good;
  }
  next_offset_ = expected;
  end_.store(expected, std::memory_order_release);
  // A segment begun at the last commit holds nothing yet: how the records end is in the one
  // before, up to its last commit.
  if (segments_.size() > 1 && last.size == 0) {
    const Segment& before = segments_[segments_.size() - 2];
    committed_tail_ = tailOf(before.path, before.size);
  } else if (!committed_tail_.position && segments_.size() > 1) {
    // The last segment began inside a long transaction: its end is further back.
    for (size_t i = segments_.size() - 1; i-- > 0 && !committed_tail_.position;) {
      committed_tail_.position = tailOf(segments_[i].path, segments_[i].size).position;
    }
  }
  pending_tail_ = committed_tail_;
}

LocalLog::Tail LocalLog::tailOf(const std::filesystem::path& path, uint64_t size) const {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) ioFail("open", path, errno);
  LogReader::Frames frames(fd, path);
  StoredRecord record;
  std::string why;
  Tail tail;
  LogReader::Frames::Result result;
  while ((result = frames.next(size, record, why)) == LogReader::Frames::Result::Frame) tail.note(record.record);
  ::close(fd);
  if (result == LogReader::Frames::Result::Damaged) {
    throw Error(ErrorClass::Fatal, fmt::format("change log: {} in {}", why, path.string()),
                "the change log under state_dir was damaged or changed behind tidemark's back");
  }
  return tail;
}

void LocalLog::startSegment(uint64_t base) {
  const auto path = options_.dir / fmt::format("{:0{}}{}", base, kBaseDigits, kSuffix);
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) ioFail("create", path, errno);
  try {
    fsyncDirectory(options_.dir);
  } catch (...) {
    ::close(fd);
    throw;
  }
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
  std::lock_guard lock(mutex_);
  segments_.push_back(Segment{base, path, 0});
}

uint64_t LocalLog::append(const RecordView& r) {
  if (r.topic.size() > 0xFFFF || r.headers.size() > 0xFFFF) {
    throw Error(ErrorClass::Fatal,
                fmt::format("change log: a record's topic ({} bytes) or header count ({}) is too large",
                            r.topic.size(), r.headers.size()),
                "this is a bug in tidemark; please report it");
  }
  const size_t start = pending_.size();
  pending_.append(kFrameHeader, '\0');
  const uint64_t offset = next_offset_++;
  put64(pending_, offset);
  put16(pending_, static_cast<uint16_t>(r.topic.size()));
  pending_.append(r.topic);
  putBytes(pending_, r.key);
  putBytes(pending_, r.value);
  put16(pending_, static_cast<uint16_t>(r.headers.size()));
  for (const Header& h : r.headers) {
    put16(pending_, static_cast<uint16_t>(std::min<size_t>(h.name.size(), 0xFFFF)));
    pending_.append(h.name.substr(0, 0xFFFF));
    put32(pending_, static_cast<uint32_t>(h.value.size()));
    pending_.append(h.value);
  }
  const size_t body = pending_.size() - start - kFrameHeader;
  if (body > kMaxBody) {
    pending_.resize(start);
    --next_offset_;
    throw Error(ErrorClass::Poison, fmt::format("change log: a record of {} bytes is larger than 1 GiB", body),
                "");
  }
  pending_tail_.note(r);
  store32(pending_.data() + start, static_cast<uint32_t>(body));
  store32(pending_.data() + start + 4, crc32c(0, pending_.data() + start + kFrameHeader, body));
  return offset;
}

void LocalLog::commit() {
  if (pending_.empty()) return;
  Segment& last = segments_.back();  // only this thread changes the last segment
  const uint64_t at = last.size;
  size_t done = 0;
  int err = 0;
  while (done < pending_.size()) {
    ssize_t n = ::pwrite(fd_, pending_.data() + done, pending_.size() - done, static_cast<off_t>(at + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      err = errno;
      break;
    }
    done += static_cast<size_t>(n);
  }
  if (err == 0 && ::fdatasync(fd_) != 0) err = errno;
  if (err != 0) {
    // Back to what the last commit left; a later commit writes at the same place again.
    (void)::ftruncate(fd_, static_cast<off_t>(at));
    rollback();
    ioFail("write", last.path, err);
  }
  {
    std::lock_guard lock(mutex_);
    last.size += pending_.size();
    end_.store(next_offset_, std::memory_order_release);
  }
  committed_tail_ = pending_tail_;
  committed_.notify_all();
  pending_.clear();
  if (last.size >= options_.segment_bytes) startSegment(next_offset_);
}

void LocalLog::rollback() {
  pending_.clear();
  next_offset_ = end_.load(std::memory_order_relaxed);
  pending_tail_ = committed_tail_;
}

void LocalLog::rollbackTo(const Mark& mark) {
  pending_.resize(mark.pending_bytes);
  next_offset_ = mark.next_offset;
  pending_tail_ = mark.tail;
}

size_t LocalLog::removeBefore(uint64_t offset) {
  std::vector<std::filesystem::path> doomed;
  {
    std::lock_guard lock(mutex_);
    while (segments_.size() > 1 && segments_[1].base <= offset) {
      doomed.push_back(segments_.front().path);
      segments_.erase(segments_.begin());
    }
  }
  for (const auto& path : doomed) {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) ioFail("remove", path, errno);
  }
  if (!doomed.empty()) fsyncDirectory(options_.dir);
  return doomed.size();
}

uint64_t LocalLog::startOffset() const {
  std::lock_guard lock(mutex_);
  return segments_.front().base;
}

uint64_t LocalLog::sizeBytes() const {
  std::lock_guard lock(mutex_);
  uint64_t total = 0;
  for (const Segment& s : segments_) total += s.size;
  return total;
}

bool LocalLog::waitBeyond(uint64_t offset, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  return committed_.wait_for(lock, timeout, [&] { return end_.load(std::memory_order_acquire) > offset; });
}

std::optional<LocalLog::Segment> LocalLog::segmentFor(uint64_t offset) const {
  std::lock_guard lock(mutex_);
  auto it = std::upper_bound(segments_.begin(), segments_.end(), offset,
                             [](uint64_t o, const Segment& s) { return o < s.base; });
  if (it == segments_.begin()) return std::nullopt;
  return *std::prev(it);
}

std::optional<LocalLog::Segment> LocalLog::segmentAfter(uint64_t base) const {
  std::lock_guard lock(mutex_);
  auto it = std::upper_bound(segments_.begin(), segments_.end(), base,
                             [](uint64_t o, const Segment& s) { return o < s.base; });
  if (it == segments_.end()) return std::nullopt;
  return *it;
}

std::unique_ptr<LogReader> LocalLog::reader(uint64_t offset) const {
  if (offset < startOffset() || offset > endOffset()) {
    throw Error(ErrorClass::Fatal,
                fmt::format("change log: offset {} is not held (the log holds {} to {})", offset,
                            startOffset(), endOffset()),
                "");
  }
  return std::make_unique<LogReader>(*this, offset);
}

// ---------------------------------------------------------------------------------------------
// LogReader

LogReader::LogReader(const LocalLog& log, uint64_t offset) : log_(log), offset_(offset) {
  auto segment = log_.segmentFor(offset);
  if (!segment) damaged(fmt::format("no segment holds offset {}", offset));
  openSegment(segment->base, segment->path, segment->size);
  // Skip to `offset` from the segment's start.
  std::string why;
  for (uint64_t o = segment->base; o < offset; ++o) {
    if (frames_->next(segment->size, current_, why) != Frames::Result::Frame) {
      damaged(why.empty() ? "the segment ends before the offset" : why);
    }
    if (current_.offset != o) damaged(fmt::format("record {} where {} belongs", current_.offset, o));
  }
}

LogReader::~LogReader() {
  if (fd_ >= 0) ::close(fd_);
}

void LogReader::openSegment(uint64_t base, const std::filesystem::path& path, uint64_t size) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) ioFail("open", path, errno);
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
  path_ = path;
  segment_base_ = base;
  segment_size_ = size;
  frames_ = std::make_unique<Frames>(fd_, path_);
}

const StoredRecord* LogReader::next() {
  for (;;) {
    if (offset_ >= log_.endOffset()) return nullptr;
    std::string why;
    switch (frames_->next(segment_size_, current_, why)) {
      case Frames::Result::Frame:
        if (current_.offset != offset_) {
          damaged(fmt::format("record {} where {} belongs", current_.offset, offset_));
        }
        ++offset_;
        return &current_;
      case Frames::Result::Damaged:
        damaged(why);
      case Frames::Result::End:
        break;
    }
    // The bytes last known committed are read: look at the segment's size again. A commit
    // changes it and the end under one lock, so it is at least as new as the end read above.
    auto segment = log_.segmentFor(segment_base_);
    if (!segment || segment->base != segment_base_) {
      // Deleted once every reader was past it (removeBefore): this one read it to its end,
      // and goes on in the next.
      auto next = log_.segmentFor(offset_);
      if (!next || next->base != offset_) damaged("the segment was removed while being read");
      openSegment(next->base, next->path, next->size);
      continue;
    }
    if (segment->size > segment_size_) {
      segment_size_ = segment->size;
      continue;
    }
    // This segment is read to its end, and committed records lie beyond: in the next one.
    auto following = log_.segmentAfter(segment_base_);
    if (!following) damaged("committed records are missing from the segment");
    if (following->base != offset_) {
      damaged(fmt::format("the next segment begins at offset {}", following->base));
    }
    openSegment(following->base, following->path, following->size);
  }
}

void LogReader::damaged(const std::string& what) const {
  throw Error(ErrorClass::Fatal,
              fmt::format("change log: {} in {} (reading offset {})", what, path_.string(), offset_),
              "the change log under state_dir was damaged or changed behind tidemark's back; its "
              "records from here on cannot be trusted");
}

}  // namespace tidemark::changelog
