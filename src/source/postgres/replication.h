// The client side of PostgreSQL's streaming replication protocol for logical slots: the
// replication commands (IDENTIFY_SYSTEM, CREATE_REPLICATION_SLOT, START_REPLICATION) and the
// CopyBoth frames (XLogData 'w', primary keepalive 'k', standby status update 'r'), as in
// src/backend/replication/walsender.c and src/bin/pg_basebackup/pg_recvlogical.c. Frames are
// parsed with the checked ByteReader; what the payload means is pgoutput's business.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "base/lsn.h"
#include "postgres/connection.h"

namespace tidemark::pg {

struct SystemInfo {
  std::string system_identifier;  // a 64-bit number as text
  uint32_t timeline = 0;
  Lsn xlogpos;
  std::string dbname;
};

/// An XLogData frame: WAL data starting at data_start; payload is one pgoutput message.
struct XLogData {
  Lsn data_start;
  Lsn wal_end;
  int64_t send_time;
  std::string_view payload;  // valid until the next read()
};

/// A primary keepalive: the server has sent everything up to wal_end.
struct Keepalive {
  Lsn wal_end;
  int64_t send_time;
  bool reply_requested;
};

struct Timeout {};   // nothing arrived before the deadline
struct StreamEnd {}; // the server ended the copy (e.g. shutdown)

using Frame = std::variant<XLogData, Keepalive, Timeout, StreamEnd>;

/// One CopyData message of the stream as a frame: XLogData ('w') or a primary keepalive ('k').
/// The payload views `frame`. Throws WireError for anything else, or a frame cut short.
Frame parseCopyData(std::string_view frame);

/// Where a pipeline's frames come from and where its positions go: the I/O seam between the
/// pipeline and the server. ReplicationStream is the real one; tests drive the pipeline with
/// their own. One thread reads; sendStatus() may also be called from another thread on a
/// source that says so (ReplicationStream does).
class ReplicationSource {
 public:
  virtual ~ReplicationSource() = default;

  /// Waits up to `timeout` for the next frame. An XLogData payload is valid until the next call.
  virtual Frame read(std::chrono::milliseconds timeout) = 0;

  /// Sends a standby status update. write: everything received; flush/apply: what is
  /// durable. The server confirms `flush` to the slot.
  virtual void sendStatus(Lsn write, Lsn flush, bool reply_requested = false) = 0;

  /// Ends the stream cleanly (after the final status update).
  virtual void finish() = 0;
};

class ReplicationStream final : public ReplicationSource {
 public:
  /// Opens a replication=database connection.
  static ReplicationStream open(ConnectOptions options);

  SystemInfo identifySystem();

  /// Creates a logical slot with the pgoutput plugin; returns its consistent point.
  Lsn createSlot(const std::string& slot);

  /// Starts streaming from `start` with pgoutput proto_version 1 and messages on.
  void start(const std::string& slot, Lsn start, const std::string& publication);

  Frame read(std::chrono::milliseconds timeout) override;
  void sendStatus(Lsn write, Lsn flush, bool reply_requested = false) override;
  /// Ends the copy and drains the server's reply.
  void finish() override;

  Connection& connection() { return conn_; }

 private:
  explicit ReplicationStream(Connection conn) : conn_(std::move(conn)) {}
  void freeBuffer();

  Connection conn_;
  std::unique_ptr<char, decltype(&PQfreemem)> buffer_{nullptr, &PQfreemem};
  bool streaming_ = false;
  // libpq allows one thread in a connection at a time. The reader holds this only inside
  // libpq calls, not while it waits on the socket, so a status update from another thread
  // (while the reader is blocked in a slow sink) goes out at once.
  std::unique_ptr<std::mutex> io_ = std::make_unique<std::mutex>();
};

/// Microseconds since 2000-01-01 UTC, now (the protocol's clock).
int64_t pgNow();

}  // namespace tidemark::pg
