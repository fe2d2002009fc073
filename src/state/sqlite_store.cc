#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>
#include <utility>

#include <fmt/format.h>

#include "base/error.h"
#include "state/sqlite_store.h"

namespace tidemark::state {

namespace {

// The state directory's lock: an open file description lock (Linux), so that, as with flock,
// a second open of the file in the same process conflicts too, and so that a reader can test
// it (F_OFD_GETLK) without taking it.
struct flock wholeFile(short type) {
  struct flock l {};
  l.l_type = type;
  l.l_whence = SEEK_SET;
  l.l_start = 0;
  l.l_len = 0;  // to the end, however large
  return l;
}

bool lockWholeFile(int fd) {
  struct flock l = wholeFile(F_WRLCK);
  return ::fcntl(fd, F_OFD_SETLK, &l) == 0;
}

bool wholeFileLocked(int fd) {
  struct flock l = wholeFile(F_WRLCK);
  return ::fcntl(fd, F_OFD_GETLK, &l) == 0 && l.l_type != F_UNLCK;
}

constexpr const char* kCapturedTableDdl =
    "CREATE TABLE IF NOT EXISTS captured_table ("
    " schema_name TEXT NOT NULL, table_name TEXT NOT NULL, relid INTEGER NOT NULL,"
    " PRIMARY KEY (schema_name, table_name))";
constexpr const char* kSelectCaptured =
    "SELECT schema_name, table_name, relid FROM captured_table ORDER BY schema_name, table_name";

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct StmtFinalizer {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using Stmt = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

CapturedTable capturedRow(sqlite3_stmt* s) {
  auto text = [&](int col) {
    const unsigned char* t = sqlite3_column_text(s, col);
    return std::string(t ? reinterpret_cast<const char*>(t) : "");
  };
  return CapturedTable{text(0), text(1), RelationId{static_cast<uint32_t>(sqlite3_column_int64(s, 2))}};
}

// What an SQLite failure means for the operator: the class (a full disk may be freed, a
// damaged file will not mend) and what to do.
Error storeError(sqlite3* db, const std::string& path, std::string message) {
  const int code = db != nullptr ? (sqlite3_errcode(db) & 0xff) : SQLITE_ERROR;
  if (code == SQLITE_FULL || code == SQLITE_IOERR) {
    return Error(ErrorClass::Retriable, std::move(message),
                 fmt::format("free disk space on the file system of {} (state_dir); tidemark retries "
                             "within retry.window and confirms nothing it could not save",
                             std::filesystem::path(path).parent_path().string()));
  }
  if (code == SQLITE_NOTADB || code == SQLITE_CORRUPT) {
    return Error(ErrorClass::Fatal, std::move(message),
                 fmt::format("{} is damaged or is not tidemark's state store. If a backup of the "
                             "state directory exists, restore it. Otherwise the position is lost: "
                             "move the state directory and the sink output aside and run again, which "
                             "starts a new slot (reload the tables to fill the gap)",
                             path));
  }
  return Error(ErrorClass::Fatal, std::move(message));
}

constexpr const char* kSelectPosition = "SELECT source_token, source_readable, log_end FROM position WHERE id = 1";
constexpr const char* kSelectSinks = "SELECT sink, cursor, checkpoint FROM sink_checkpoint";

// A position row as stores written before positions were opaque hold it (PostgreSQL's fields
// in columns of their own; those versions read PostgreSQL only), read as the token the
// PostgreSQL source writes (source/postgres/position.h) and its readable LSN.
#define TIDEMARK_LEGACY_LSN "printf('%X/%X', lsn >> 32, lsn & 4294967295)"
constexpr const char* kLegacyPosition =
    "json_object('system_identifier', system_identifier, 'timeline', timeline, 'slot', slot, 'lsn', "
    TIDEMARK_LEGACY_LSN "), " TIDEMARK_LEGACY_LSN;
#undef TIDEMARK_LEGACY_LSN
// What readPosition tries, in order: the current layout, then the legacy ones (with and
// without the change log's end offset).
const std::string kSelectPositionAnyLayout[] = {
    kSelectPosition,
    std::string("SELECT ") + kLegacyPosition + ", log_end FROM position WHERE id = 1",
    std::string("SELECT ") + kLegacyPosition + ", 0 FROM position WHERE id = 1",
};

std::string columnText(sqlite3_stmt* s, int col) {
  const unsigned char* t = sqlite3_column_text(s, col);
  return t ? reinterpret_cast<const char*>(t) : "";
}

StoredPosition positionRow(sqlite3_stmt* s) {
  StoredPosition p;
  p.source.token = columnText(s, 0);
  p.source.readable = columnText(s, 1);
  p.log_end = static_cast<uint64_t>(sqlite3_column_int64(s, 2));
  return p;
}

void addSinkRow(StoredPosition& p, sqlite3_stmt* s) {
  p.sinks[columnText(s, 0)] = SinkProgress{static_cast<uint64_t>(sqlite3_column_int64(s, 1)), columnText(s, 2)};
}

class SqliteStore final : public OffsetStore {
 public:
  explicit SqliteStore(const std::filesystem::path& dir) : path_((dir / "state.db").string()) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) {
      throw Error(ErrorClass::Config,
                  fmt::format("cannot create state directory {}: {}", dir.string(), ec.message()),
                  "set state_dir to a directory tidemark can write");
    }
    std::string lock_path = (dir / "lock").string();
    lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock_fd_ < 0) {
      throw Error(ErrorClass::Config,
                  fmt::format("cannot open {}: {}", lock_path, std::strerror(errno)));
    }
    if (!lockWholeFile(lock_fd_)) {
      throw Error(ErrorClass::Config,
                  fmt::format("state directory {} is in use by another tidemark process", dir.string()),
                  "stop the other `tidemark run` of this pipeline first, or give this one its own state_dir");
    }
    sqlite3* raw = nullptr;
    if (sqlite3_open_v2(path_.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) != SQLITE_OK) {
      Error e = storeError(raw, path_, fmt::format("cannot open state store {}: {}", path_,
                                                   raw ? sqlite3_errmsg(raw) : "out of memory"));
      if (raw) sqlite3_close_v2(raw);
      throw e;
    }
    db_.reset(raw);
    // First, so that a `tidemark status` reading at this moment makes the next statements wait
    // for it instead of failing with "database is locked".
    sqlite3_busy_timeout(db_.get(), 5000);
    // WAL with synchronous=FULL: every commit is durable when it returns.
    exec("PRAGMA journal_mode=WAL");
    exec("PRAGMA synchronous=FULL");
    exec("CREATE TABLE IF NOT EXISTS position ("
         " id INTEGER PRIMARY KEY CHECK (id = 1),"
         " source_token TEXT NOT NULL, source_readable TEXT NOT NULL,"
         " log_end INTEGER NOT NULL, updated_at INTEGER NOT NULL)");
    exec("CREATE TABLE IF NOT EXISTS sink_checkpoint ("
         " sink TEXT PRIMARY KEY, checkpoint TEXT NOT NULL)");
    // What a store from before the change log lacks, and the position's legacy layout.
    addColumnIfMissing("sink_checkpoint", "cursor");
    migrateLegacyPosition();
    exec("CREATE TABLE IF NOT EXISTS status ("
         " id INTEGER PRIMARY KEY CHECK (id = 1), json TEXT NOT NULL)");
    exec(kCapturedTableDdl);
    exec("CREATE TABLE IF NOT EXISTS table_schema ("
         " version TEXT PRIMARY KEY, topic TEXT NOT NULL, json TEXT NOT NULL, saved_at INTEGER NOT NULL)");
    identity_ = fileIdentity();
  }

  ~SqliteStore() override {
    db_.reset();
    if (lock_fd_ >= 0) ::close(lock_fd_);
  }

  std::optional<StoredPosition> load() override {
    std::lock_guard lock(mutex_);
    Stmt s = prepare(kSelectPosition);
    int rc = sqlite3_step(s.get());
    if (rc == SQLITE_DONE) return std::nullopt;
    check(rc, SQLITE_ROW, "reading the position");
    StoredPosition p = positionRow(s.get());
    Stmt c = prepare(kSelectSinks);
    while ((rc = sqlite3_step(c.get())) == SQLITE_ROW) addSinkRow(p, c.get());
    check(rc, SQLITE_DONE, "reading sink checkpoints");
    return p;
  }

  void saveStatus(const std::string& json) override {
    std::lock_guard lock(mutex_);
    Stmt s = prepare(
        "INSERT INTO status (id, json) VALUES (1, ?1) "
        "ON CONFLICT (id) DO UPDATE SET json = excluded.json");
    sqlite3_bind_text(s.get(), 1, json.c_str(), -1, SQLITE_TRANSIENT);
    check(sqlite3_step(s.get()), SQLITE_DONE, "saving the status");
  }

  // The state directory removed, or its store replaced, while the pipeline runs: a position
  // saved now would go into a file nobody will read, and the next start would be a first run.
  void checkStillThere() {
    if (fileIdentity() == identity_) return;
    throw Error(ErrorClass::Fatal,
                fmt::format("the state store {} was removed or replaced while tidemark ran; positions "
                            "can no longer be saved, so nothing more is confirmed",
                            path_),
                "if the state directory was moved, move it back and run again; if it is gone, the "
                "position is lost: move the sink output aside and run again, which starts a new "
                "slot (reload the tables to fill the gap)");
  }

  std::vector<CapturedTable> loadCapture() override {
    std::lock_guard lock(mutex_);
    Stmt s = prepare(kSelectCaptured);
    std::vector<CapturedTable> out;
    int rc;
    while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) out.push_back(capturedRow(s.get()));
    check(rc, SQLITE_DONE, "reading the captured tables");
    return out;
  }

  void saveCapture(const std::vector<CapturedTable>& tables) override {
    std::lock_guard lock(mutex_);
    checkStillThere();
    exec("BEGIN IMMEDIATE");
    try {
      exec("DELETE FROM captured_table");
      for (const auto& t : tables) {
        Stmt s = prepare("INSERT INTO captured_table (schema_name, table_name, relid) VALUES (?1, ?2, ?3)");
        sqlite3_bind_text(s.get(), 1, t.schema.c_str(), -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(s.get(), 2, t.table.c_str(), -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(s.get(), 3, t.relid.value);
        check(sqlite3_step(s.get()), SQLITE_DONE, "saving a captured table");
      }
      exec("COMMIT");
    } catch (...) {
      sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  }

  void saveTableSchema(const core::TableSchema& schema) override {
    std::lock_guard lock(mutex_);
    checkStillThere();
    Stmt s = prepare(
        "INSERT INTO table_schema (version, topic, json, saved_at) VALUES (?1, ?2, ?3, strftime('%s','now')) "
        "ON CONFLICT (version) DO NOTHING");
    sqlite3_bind_text(s.get(), 1, schema.version.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s.get(), 2, schema.topic.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s.get(), 3, schema.json.c_str(), -1, SQLITE_TRANSIENT);
    check(sqlite3_step(s.get()), SQLITE_DONE, "saving a table schema");
  }

  std::vector<core::TableSchema> loadTableSchemas() override {
    std::lock_guard lock(mutex_);
    Stmt s = prepare("SELECT topic, version, json FROM table_schema ORDER BY rowid");
    std::vector<core::TableSchema> out;
    int rc;
    while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
      auto text = [&](int col) {
        const unsigned char* t = sqlite3_column_text(s.get(), col);
        return t ? std::string(reinterpret_cast<const char*>(t)) : std::string();
      };
      out.push_back(core::TableSchema{.topic = text(0), .version = text(1), .json = text(2), .text_form = {}});
    }
    check(rc, SQLITE_DONE, "reading table schemas");
    return out;
  }

  void save(const StoredPosition& p) override {
    std::lock_guard lock(mutex_);
    checkStillThere();
    exec("BEGIN IMMEDIATE");
    try {
      Stmt s = prepare(
          "INSERT INTO position (id, source_token, source_readable, log_end, updated_at) "
          "VALUES (1, ?1, ?2, ?3, strftime('%s','now')) ON CONFLICT (id) DO UPDATE SET "
          "source_token = excluded.source_token, source_readable = excluded.source_readable, "
          "log_end = excluded.log_end, updated_at = excluded.updated_at");
      sqlite3_bind_text(s.get(), 1, p.source.token.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(s.get(), 2, p.source.readable.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_int64(s.get(), 3, static_cast<sqlite3_int64>(p.log_end));
      check(sqlite3_step(s.get()), SQLITE_DONE, "saving the position");
      for (const auto& [sink, progress] : p.sinks) upsertSink(sink, progress);
      exec("COMMIT");
    } catch (...) {
      sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  }

  void saveSink(const std::string& sink, const SinkProgress& progress) override {
    std::lock_guard lock(mutex_);
    checkStillThere();
    // One statement: atomic and, with synchronous=FULL, durable when it returns.
    upsertSink(sink, progress);
  }

 private:
  void upsertSink(const std::string& sink, const SinkProgress& progress) {
    Stmt c = prepare(
        "INSERT INTO sink_checkpoint (sink, cursor, checkpoint) VALUES (?1, ?2, ?3) "
        "ON CONFLICT (sink) DO UPDATE SET cursor = excluded.cursor, checkpoint = excluded.checkpoint");
    sqlite3_bind_text(c.get(), 1, sink.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(c.get(), 2, static_cast<sqlite3_int64>(progress.cursor));
    sqlite3_bind_text(c.get(), 3, progress.checkpoint.c_str(), -1, SQLITE_TRANSIENT);
    check(sqlite3_step(c.get()), SQLITE_DONE, "saving a sink's progress");
  }

  bool hasColumn(const char* table, const char* column) {
    Stmt s = prepare(fmt::format("SELECT 1 FROM pragma_table_info('{}') WHERE name = '{}'", table, column).c_str());
    return sqlite3_step(s.get()) == SQLITE_ROW;
  }

  void addColumnIfMissing(const char* table, const char* column) {
    if (hasColumn(table, column)) return;
    exec(fmt::format("ALTER TABLE {} ADD COLUMN {} INTEGER NOT NULL DEFAULT 0", table, column).c_str());
  }

  // A store written before positions were opaque: its position row moves to the current
  // layout, in one transaction.
  void migrateLegacyPosition() {
    if (!hasColumn("position", "system_identifier")) return;
    addColumnIfMissing("position", "log_end");
    exec("BEGIN IMMEDIATE");
    try {
      exec("CREATE TABLE position_opaque (id INTEGER PRIMARY KEY CHECK (id = 1),"
           " source_token TEXT NOT NULL, source_readable TEXT NOT NULL,"
           " log_end INTEGER NOT NULL, updated_at INTEGER NOT NULL)");
      exec(fmt::format("INSERT INTO position_opaque SELECT id, {}, log_end, updated_at FROM position",
                       kLegacyPosition)
               .c_str());
      exec("DROP TABLE position");
      exec("ALTER TABLE position_opaque RENAME TO position");
      exec("COMMIT");
    } catch (...) {
      sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  }

  void exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_.get(), sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : "unknown error";
      sqlite3_free(err);
      throw storeError(db_.get(), path_, fmt::format("state store {}: {} failed: {}", path_, sql, msg));
    }
  }
  Stmt prepare(const char* sql) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db_.get(), sql, -1, &s, nullptr) != SQLITE_OK) {
      throw storeError(db_.get(), path_, fmt::format("state store {}: {}", path_, sqlite3_errmsg(db_.get())));
    }
    return Stmt(s);
  }
  void check(int rc, int expected, std::string_view what) {
    if (rc != expected) {
      throw storeError(db_.get(), path_,
                       fmt::format("state store {}: {} failed: {}", path_, what, sqlite3_errmsg(db_.get())));
    }
  }
  // Device and inode of state.db as the path names it now; (0, 0) when it is gone.
  std::pair<dev_t, ino_t> fileIdentity() const {
    struct stat st {};
    if (::stat(path_.c_str(), &st) != 0) return {0, 0};
    return {st.st_dev, st.st_ino};
  }
  std::string path_;
  std::mutex mutex_;  // one statement or transaction at a time on the one connection
  int lock_fd_ = -1;
  std::unique_ptr<sqlite3, DbCloser> db_;
  std::pair<dev_t, ino_t> identity_{0, 0};
};

}  // namespace

std::unique_ptr<OffsetStore> openSqliteStore(const std::filesystem::path& state_dir) {
  return std::make_unique<SqliteStore>(state_dir);
}

namespace {

// Readers beside a running pipeline open the store read-only and take no lock; SQLite's WAL
// mode lets them read the last committed state while the pipeline writes.
std::unique_ptr<sqlite3, DbCloser> openReadOnly(const std::string& db_path) {
  sqlite3* raw = nullptr;
  if (sqlite3_open_v2(db_path.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    std::string msg = raw ? sqlite3_errmsg(raw) : "out of memory";
    if (raw) sqlite3_close_v2(raw);
    throw Error(ErrorClass::Fatal, fmt::format("cannot open state store {}: {}", db_path, msg));
  }
  std::unique_ptr<sqlite3, DbCloser> db(raw);
  sqlite3_busy_timeout(db.get(), 5000);
  return db;
}

}  // namespace

StatusRecord readStatus(const std::filesystem::path& state_dir) {
  StatusRecord record;
  const std::string db_path = (state_dir / "state.db").string();
  if (!std::filesystem::exists(db_path)) return record;

  // A running pipeline holds a write lock on this file. Only test it: taking even a shared
  // lock, however briefly, would make a `tidemark run` starting at that moment fail.
  const std::string lock_path = (state_dir / "lock").string();
  int fd = ::open(lock_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    record.running = wholeFileLocked(fd);
    ::close(fd);
  }

  std::unique_ptr<sqlite3, DbCloser> db = openReadOnly(db_path);
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db.get(), "SELECT json FROM status WHERE id = 1", -1, &stmt, nullptr) != SQLITE_OK) {
    // A state store from before status was saved, or one never written: no status.
    return record;
  }
  Stmt s(stmt);
  if (sqlite3_step(s.get()) == SQLITE_ROW) {
    const unsigned char* t = sqlite3_column_text(s.get(), 0);
    if (t) record.json = reinterpret_cast<const char*>(t);
  }
  return record;
}

std::vector<CapturedTable> readCapture(const std::filesystem::path& state_dir) {
  const std::string db_path = (state_dir / "state.db").string();
  std::vector<CapturedTable> out;
  if (!std::filesystem::exists(db_path)) return out;
  std::unique_ptr<sqlite3, DbCloser> db = openReadOnly(db_path);
  sqlite3_stmt* stmt = nullptr;
  // No such table: a store from before captured tables were kept.
  if (sqlite3_prepare_v2(db.get(), kSelectCaptured, -1, &stmt, nullptr) != SQLITE_OK) return out;
  Stmt s(stmt);
  while (sqlite3_step(s.get()) == SQLITE_ROW) out.push_back(capturedRow(s.get()));
  return out;
}

std::optional<StoredPosition> readPosition(const std::filesystem::path& state_dir) {
  const std::string db_path = (state_dir / "state.db").string();
  if (!std::filesystem::exists(db_path)) return std::nullopt;
  std::unique_ptr<sqlite3, DbCloser> db = openReadOnly(db_path);
  auto prepare = [&](const char* sql) -> Stmt {
    sqlite3_stmt* stmt = nullptr;
    // No such table: a store created but never written holds no position.
    if (sqlite3_prepare_v2(db.get(), sql, -1, &stmt, nullptr) != SQLITE_OK) return Stmt();
    return Stmt(stmt);
  };
  Stmt s;
  for (const std::string& sql : kSelectPositionAnyLayout) {
    if ((s = prepare(sql.c_str()))) break;
  }
  if (!s) return std::nullopt;
  int rc = sqlite3_step(s.get());
  if (rc == SQLITE_DONE) return std::nullopt;
  if (rc != SQLITE_ROW) {
    throw Error(ErrorClass::Fatal, fmt::format("state store {}: reading the position failed: {}",
                                               db_path, sqlite3_errmsg(db.get())));
  }
  StoredPosition p = positionRow(s.get());
  if (Stmt c = prepare(kSelectSinks)) {
    while (sqlite3_step(c.get()) == SQLITE_ROW) addSinkRow(p, c.get());
  }
  return p;
}

}  // namespace tidemark::state
