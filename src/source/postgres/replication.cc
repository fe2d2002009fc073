#include "source/postgres/replication.h"

#include <poll.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "base/byte_reader.h"

namespace tidemark::pg {

int64_t pgNow() {
  auto now = std::chrono::system_clock::now().time_since_epoch();
  return std::chrono::duration_cast<std::chrono::microseconds>(now).count() -
         946684800LL * 1000000LL;
}

ReplicationStream ReplicationStream::open(ConnectOptions options) {
  options.replication = true;
  return ReplicationStream(Connection::open(options));
}

SystemInfo ReplicationStream::identifySystem() {
  Result r = conn_.exec("IDENTIFY_SYSTEM", "IDENTIFY_SYSTEM");
  if (PQntuples(r.get()) != 1 || PQnfields(r.get()) < 4) {
    throw Error(ErrorClass::Fatal,
                fmt::format("IDENTIFY_SYSTEM returned {} rows and {} fields, expected 1 and 4",
                            PQntuples(r.get()), PQnfields(r.get())));
  }
  SystemInfo info;
  info.system_identifier = value(r.get(), 0, 0).value_or("");
  info.timeline = static_cast<uint32_t>(std::stoul(value(r.get(), 0, 1).value_or("0")));
  auto pos = Lsn::parse(value(r.get(), 0, 2).value_or(""));
  if (!pos) throw Error(ErrorClass::Fatal, "IDENTIFY_SYSTEM returned an unreadable xlogpos");
  info.xlogpos = *pos;
  info.dbname = value(r.get(), 0, 3).value_or("");
  if (info.dbname.empty()) {
    throw Error(ErrorClass::Config, "the replication connection is not bound to a database",
                "source.dsn must name a database (dbname=...)");
  }
  return info;
}

namespace {

// "logical decoding requires wal_level >= logical" (55000): a server setting, not a passing
// error, with the one fix there is.
[[noreturn]] void rethrowWithWalLevelHint(const ServerError& e) {
  if (e.sqlstate() == "55000" && std::string_view(e.what()).find("wal_level") != std::string_view::npos) {
    throw ServerError(ErrorClass::Config, e.what(), e.sqlstate(),
                      "as a superuser: ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL "
                      "(a reload is not enough); on a managed service, in the provider's console "
                      "(tidemark setup --flavor prints how)");
  }
  throw e;
}

}  // namespace

Lsn ReplicationStream::createSlot(const std::string& slot) {
  // The pre-PG15 syntax, which PG15 still accepts, so the same command works on 10 and later.
  Result r;
  try {
    r = conn_.exec(fmt::format("CREATE_REPLICATION_SLOT {} LOGICAL pgoutput NOEXPORT_SNAPSHOT",
                               conn_.quoteIdentifier(slot)),
                   fmt::format("creating replication slot \"{}\"", slot));
  } catch (const ServerError& e) {
    rethrowWithWalLevelHint(e);
  }
  auto pos = Lsn::parse(value(r.get(), 0, 1).value_or(""));
  if (!pos) throw Error(ErrorClass::Fatal, "CREATE_REPLICATION_SLOT returned no consistent point");
  return *pos;
}

void ReplicationStream::start(const std::string& slot, Lsn start, const std::string& publication) {
  std::string cmd = fmt::format(
      "START_REPLICATION SLOT {} LOGICAL {} (proto_version '1', publication_names {}, "
      "messages 'true')",
      conn_.quoteIdentifier(slot), start.str(), conn_.quoteLiteral(conn_.quoteIdentifier(publication)));
  Result r(PQexec(conn_.raw(), cmd.c_str()));
  if (!r || PQresultStatus(r.get()) != PGRES_COPY_BOTH) {
    if (!r) throw Error(ErrorClass::Retriable, fmt::format("START_REPLICATION failed: {}", conn_.lastError()));
    ServerError e = errorFromResult(r.get(), fmt::format("START_REPLICATION on slot \"{}\"", slot));
    if (e.sqlstate() == "55006") {
      // object_in_use: another process streams from the slot. Retriable: after a stall, the
      // old walsender may hold the slot a while longer.
      throw ServerError(ErrorClass::Retriable, e.what(), e.sqlstate(),
                        "another process is reading this slot; stop it (see active_pid in "
                        "pg_replication_slots) or give this pipeline its own source.slot");
    }
    rethrowWithWalLevelHint(e);
  }
  streaming_ = true;
}

void ReplicationStream::freeBuffer() { buffer_.reset(); }

Frame parseCopyData(std::string_view frame) {
  const char kind = frame.empty() ? '\0' : frame[0];
  if (kind == 'w') {
    ByteReader r(frame, "XLogData");
    r.readU8("type");
    XLogData d;
    d.data_start = Lsn{r.readU64("dataStart")};
    d.wal_end = Lsn{r.readU64("walEnd")};
    d.send_time = r.readI64("sendTime");
    d.payload = r.readRest();
    return d;
  }
  if (kind == 'k') {
    ByteReader r(frame, "primary keepalive");
    r.readU8("type");
    Keepalive k;
    k.wal_end = Lsn{r.readU64("walEnd")};
    k.send_time = r.readI64("sendTime");
    k.reply_requested = r.readU8("replyRequested") != 0;
    r.expectEnd();
    return k;
  }
  ByteReader(frame, "CopyData").fail(
      frame.empty() ? std::string("an empty frame")
                    : fmt::format("unknown frame type 0x{:02x}", static_cast<unsigned char>(kind)));
}

Frame ReplicationStream::read(std::chrono::milliseconds timeout) {
  freeBuffer();
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    char* raw = nullptr;
    int len;
    {
      std::lock_guard lock(*io_);
      len = PQgetCopyData(conn_.raw(), &raw, 1);
    }
    if (len > 0) {
      buffer_.reset(raw);
      return parseCopyData(std::string_view(raw, static_cast<size_t>(len)));
    }
    if (len == -1) {
      // The server ended the copy. Collect the final result to tell a clean end from an error.
      streaming_ = false;
      std::lock_guard lock(*io_);
      Result r(PQgetResult(conn_.raw()));
      if (r && PQresultStatus(r.get()) == PGRES_FATAL_ERROR) {
        ServerError e = errorFromResult(r.get(), "replication stream");
        throw ServerError(ErrorClass::Retriable, e.what(), e.sqlstate());
      }
      return StreamEnd{};
    }
    if (len == -2) {
      throw Error(ErrorClass::Retriable,
                  fmt::format("replication stream failed: {}", conn_.lastError()));
    }
    // Nothing buffered: wait for the socket until the deadline.
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return Timeout{};
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count();
    pollfd pfd{PQsocket(conn_.raw()), POLLIN, 0};
    int rc = ::poll(&pfd, 1, static_cast<int>(std::max<int64_t>(1, wait)));
    if (rc < 0 && errno != EINTR) {
      throw Error(ErrorClass::Retriable, fmt::format("poll on the replication socket failed: {}",
                                                     std::strerror(errno)));
    }
    if (rc == 0) return Timeout{};
    if (rc < 0) return Timeout{};  // a signal: let the caller look at its stop flag
    std::lock_guard lock(*io_);
    if (PQconsumeInput(conn_.raw()) == 0) {
      throw Error(ErrorClass::Retriable,
                  fmt::format("replication stream failed: {}", conn_.lastError()));
    }
  }
}

void ReplicationStream::sendStatus(Lsn write, Lsn flush, bool reply_requested) {
  char buf[1 + 8 * 4 + 1];
  size_t pos = 0;
  auto put64 = [&](uint64_t v) {
    for (int i = 7; i >= 0; --i) buf[pos++] = static_cast<char>((v >> (i * 8)) & 0xFF);
  };
  buf[pos++] = 'r';
  put64(write.value());
  put64(flush.value());
  put64(flush.value());  // apply: tidemark applies what it has made durable
  put64(static_cast<uint64_t>(pgNow()));
  buf[pos++] = reply_requested ? 1 : 0;
  std::lock_guard lock(*io_);
  if (PQputCopyData(conn_.raw(), buf, static_cast<int>(pos)) <= 0 || PQflush(conn_.raw()) != 0) {
    throw Error(ErrorClass::Retriable,
                fmt::format("sending a status update failed: {}", conn_.lastError()));
  }
}

void ReplicationStream::finish() {
  std::lock_guard lock(*io_);
  freeBuffer();
  if (!streaming_) return;
  streaming_ = false;
  if (PQputCopyEnd(conn_.raw(), nullptr) <= 0 || PQflush(conn_.raw()) != 0) return;
  // Drain until the server acknowledges the end of the copy; data still in flight is
  // discarded, which is safe because nothing past the confirmed position was acknowledged.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (;;) {
    char* raw = nullptr;
    int len = PQgetCopyData(conn_.raw(), &raw, 1);
    if (raw) PQfreemem(raw);
    if (len == -1 || len == -2) break;
    if (len == 0) {
      if (std::chrono::steady_clock::now() >= deadline) return;
      pollfd pfd{PQsocket(conn_.raw()), POLLIN, 0};
      ::poll(&pfd, 1, 100);
      if (PQconsumeInput(conn_.raw()) == 0) return;
    }
  }
  while (Result r{PQgetResult(conn_.raw())}) {
  }
}

}  // namespace tidemark::pg
