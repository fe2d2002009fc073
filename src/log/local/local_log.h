// The local change log: an append-only, crash-safe log of records in the state directory,
// between the source and the sinks. The source appends a transaction's events and commits
// them; once commit() returns they are on disk, and only then may the source confirm their
// position. Each sink reads from its own offset at its own pace.
//
// Records are held as Kafka holds them (topic, key bytes, value bytes, headers), so that a
// Kafka-backed log can take this one's place and a sink never knows which one it reads.
//
// On disk: segment files `<base offset, 20 digits>.log`, each a run of frames
//
//   u32 body length | u32 CRC-32C of the body | body
//   body: u64 offset | u16 topic length, topic | i32 key length (-1: null), key |
//         i32 value length (-1: null), value | u16 header count | per header:
//         u16 name length, name, u32 value length, value
//
// little-endian. One writer thread appends and commits (a commit is one write and one
// fdatasync for everything appended since the last: group commit). Readers on other threads
// see only committed records. Opening the log cuts back a torn tail: a frame cut short or
// failing its checksum at the end of the last segment, which only a crash between a write and
// its fdatasync leaves. A bad frame anywhere else is an error, never skipped.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tidemark::changelog {

struct Header {
  std::string_view name;
  std::string_view value;
};

/// One record to append. Views: the log copies what it keeps.
struct RecordView {
  std::string_view topic;
  std::optional<std::string_view> key;    // nullopt: a null key
  std::optional<std::string_view> value;  // nullopt: a null value (a tombstone)
  std::vector<Header> headers;
};

/// One record read back; its views stay valid until the reader's next call.
struct StoredRecord {
  uint64_t offset = 0;
  RecordView record;
};

/// The value of header `name`, if the record has one.
std::optional<std::string_view> headerValue(const RecordView& record, std::string_view name);

/// Records the pipeline writes for itself, between the events: an empty topic and this header
/// saying what they mark. A transaction's events are followed by its end, whose position
/// header holds the source position after it (the commit's end LSN).
inline constexpr std::string_view kControlHeader = "tidemark.control";
inline constexpr std::string_view kTransactionEnd = "transaction_end";
inline constexpr std::string_view kPositionHeader = "tidemark.position";

inline constexpr std::string_view kTransactionAbort = "transaction_abort";
inline constexpr std::string_view kTableSchema = "table_schema";
/// On a table-schema record: the topic it describes. On an event: the version of its topic's
/// schema record (both records of the same log).
inline constexpr std::string_view kTopicHeader = "tidemark.topic";
inline constexpr std::string_view kSchemaVersionHeader = "tidemark.schema_version";
/// On an event: the positions of the columns whose value the source did not resend
/// (core::Event::unchanged).
inline constexpr std::string_view kUnchangedHeader = "tidemark.unchanged";
/// On an event of a table whose schema has a text_form: its row as the source printed it
/// (core/text_row.h; core::Event::text).
inline constexpr std::string_view kTextHeader = "tidemark.text";

/// The end of a transaction whose source position after it is `position`.
RecordView transactionEnd(std::string_view position);
/// Whether `record` is the end of a transaction.
bool isTransactionEnd(const RecordView& record);
/// Drops the records since the last transaction end: a large transaction, committed to the log
/// in parts before its end arrived, was abandoned half-way (a lost connection, a crash). The
/// source sends it again whole after this record.
RecordView transactionAbort();
bool isTransactionAbort(const RecordView& record);
/// A table's schema (columns, source types, key; JSON in the value) under `version`, ahead of
/// the first event of `topic` that refers to it (header kSchemaVersionHeader).
RecordView tableSchema(std::string_view topic, std::string_view version, std::string_view json);
bool isTableSchema(const RecordView& record);
/// Whether `record` is one of the pipeline's own (an empty topic) rather than an event.
inline bool isControl(const RecordView& record) { return record.topic.empty(); }

class LogReader;

class LocalLog {
 public:
  struct Options {
    std::filesystem::path dir;
    /// A segment is closed and a new one begun once a commit leaves it at least this large.
    uint64_t segment_bytes = uint64_t{64} << 20;
  };

  /// What opening the log found and did.
  struct Recovery {
    uint64_t cut_bytes = 0;  // bytes of a torn tail cut back
    std::string segment;     // the segment they were cut from
  };

  /// Opens the log in options.dir, creating it when missing, and cuts back a torn tail.
  /// Throws Error when the directory cannot be used or its segments do not follow each other.
  explicit LocalLog(Options options);
  ~LocalLog();
  LocalLog(const LocalLog&) = delete;
  LocalLog& operator=(const LocalLog&) = delete;

  const Recovery& recovery() const { return recovery_; }

  // --- the writer's thread

  /// Appends a record after the last; returns its offset. Readers see it after commit().
  uint64_t append(const RecordView& record);
  /// Bytes appended since the last commit.
  uint64_t pendingBytes() const { return pending_.size(); }
  /// Writes and fdatasyncs everything appended since the last commit; then readers see it.
  /// Throws Error (Retriable for a full disk) after putting the log back as the last commit
  /// left it: the records appended since are dropped.
  void commit();
  /// Drops the records appended since the last commit.
  void rollback();
  /// A point among the records appended since the last commit (a transaction's start), to
  /// drop what was appended after it with rollbackTo() (a transaction abandoned half-way).
  /// What the records up to some point say of transactions.
  struct Tail {
    std::optional<std::string> position;  // of the last transaction end
    bool open = false;  // records of a transaction follow it (no end or abort yet)
    void note(const RecordView& record);
  };
  struct Mark {
    size_t pending_bytes = 0;
    uint64_t next_offset = 0;
    Tail tail;
  };
  Mark mark() const { return {pending_.size(), next_offset_, pending_tail_}; }
  void rollbackTo(const Mark& mark);
  /// The position of the last transaction end committed (its kPositionHeader): where the
  /// source resumes so that nothing the log holds is appended twice. Nothing in an empty log.
  const std::optional<std::string>& lastPosition() const { return committed_tail_.position; }
  /// Whether the records appended so far end inside a transaction: its first part was
  /// committed (or appended) without its end. After rollback(), whether the committed records
  /// do, as a crash in the middle of a large transaction leaves them: the writer then appends
  /// transactionAbort() before anything else.
  bool inTransaction() const { return pending_tail_.open; }
  /// Deletes the segments whose records all lie before `offset` (every reader is past them);
  /// the segment being written is kept. Returns how many were deleted.
  size_t removeBefore(uint64_t offset);

  // --- any thread

  /// The offset the next committed record will have: everything below it is on disk.
  uint64_t endOffset() const { return end_.load(std::memory_order_acquire); }
  /// The oldest offset still held.
  uint64_t startOffset() const;
  /// Bytes of committed records on disk.
  uint64_t sizeBytes() const;
  /// Waits until endOffset() > `offset` or the timeout passes; true when it is.
  bool waitBeyond(uint64_t offset, std::chrono::milliseconds timeout) const;
  /// A reader from `offset` (startOffset() to endOffset()). Throws Error when it is outside.
  std::unique_ptr<LogReader> reader(uint64_t offset) const;

 private:
  friend class LogReader;
  struct Segment {
    uint64_t base = 0;          // offset of its first record
    std::filesystem::path path;
    uint64_t size = 0;          // committed bytes
  };

  void openSegments();
  void recoverLast();
  /// What the records of the segment at `path` below `size` bytes end with.
  Tail tailOf(const std::filesystem::path& path, uint64_t size) const;
  void startSegment(uint64_t base);
  /// The segment holding `offset` (or the last, for the end), and its committed size.
  std::optional<Segment> segmentFor(uint64_t offset) const;
  std::optional<Segment> segmentAfter(uint64_t base) const;

  Options options_;
  Recovery recovery_;
  int fd_ = -1;                  // the last segment, open for writing
  std::string pending_;          // frames appended since the last commit
  uint64_t next_offset_ = 0;     // offset of the next append
  Tail pending_tail_;    // of the records appended
  Tail committed_tail_;  // of the records committed

  mutable std::mutex mutex_;     // guards segments_
  mutable std::condition_variable committed_;
  std::vector<Segment> segments_;
  std::atomic<uint64_t> end_{0};
};

/// Reads committed records in order from a position; one thread per reader.
class LogReader {
 public:
  LogReader(const LocalLog& log, uint64_t offset);
  ~LogReader();
  LogReader(const LogReader&) = delete;
  LogReader& operator=(const LogReader&) = delete;

  /// The next committed record, or nullptr when caught up. Throws Error when a frame fails its
  /// checksum or is out of sequence (the log was damaged on disk).
  const StoredRecord* next();
  /// The offset of the record next() returns next.
  uint64_t position() const { return offset_; }

 private:
  friend class LocalLog;
  class Frames;  // frames of one segment file, read in chunks

  void openSegment(uint64_t base, const std::filesystem::path& path, uint64_t size);
  [[noreturn]] void damaged(const std::string& what) const;

  const LocalLog& log_;
  uint64_t offset_;
  int fd_ = -1;
  std::filesystem::path path_;
  uint64_t segment_base_ = 0;
  uint64_t segment_size_ = 0;  // committed bytes of the open segment, as last looked up
  std::unique_ptr<Frames> frames_;
  StoredRecord current_;
};

}  // namespace tidemark::changelog
