#include "state/dlq_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <mutex>

#include <fmt/format.h>

#include "base/clock.h"
#include "base/error.h"

namespace tidemark::state {

namespace {

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct StmtFinalizer {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using Stmt = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

class DlqStore final : public core::DeadLetters {
 public:
  explicit DlqStore(const std::filesystem::path& state_dir) : path_((state_dir / "dlq.db").string()) {
    std::error_code ec;
    std::filesystem::create_directories(state_dir, ec);
    sqlite3* raw = nullptr;
    if (sqlite3_open_v2(path_.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) != SQLITE_OK) {
      std::string why = raw ? sqlite3_errmsg(raw) : "out of memory";
      if (raw) sqlite3_close_v2(raw);
      throw Error(ErrorClass::Config, fmt::format("cannot open the dead letter queue {}: {}", path_, why),
                  "set state_dir to a directory tidemark can write");
    }
    db_.reset(raw);
    sqlite3_busy_timeout(db_.get(), 10000);
    exec("PRAGMA journal_mode=WAL");
    exec("PRAGMA synchronous=FULL");
    exec("CREATE TABLE IF NOT EXISTS dead_letter ("
         " id INTEGER PRIMARY KEY AUTOINCREMENT, sink TEXT NOT NULL, log_offset INTEGER NOT NULL,"
         " topic TEXT NOT NULL, target TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,"
         " schema TEXT NOT NULL, unchanged TEXT NOT NULL, position TEXT NOT NULL, error TEXT NOT NULL,"
         " state TEXT NOT NULL DEFAULT 'pending', note TEXT NOT NULL DEFAULT '',"
         " created_at TEXT NOT NULL, UNIQUE (sink, log_offset))");
  }

  void add(const core::DeadLetter& d) override {
    std::lock_guard lock(mutex_);
    Stmt s = prepare(
        "INSERT INTO dead_letter (sink, log_offset, topic, target, key, value, schema, position, error, created_at,"
        " unchanged) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT (sink, log_offset) DO NOTHING");
    bind(s, 1, d.sink);
    sqlite3_bind_int64(s.get(), 2, static_cast<int64_t>(d.offset));
    bind(s, 3, d.topic);
    bind(s, 4, d.table);
    bind(s, 5, d.key);
    bind(s, 6, d.value);
    bind(s, 7, d.schema);
    bind(s, 8, d.position);
    bind(s, 9, d.error);
    bind(s, 10, isoTime(unixMicrosNow()));
    bind(s, 11, d.unchanged);
    step(s, "setting a change aside");
  }

  uint64_t pending(const std::string& sink) override {
    std::lock_guard lock(mutex_);
    Stmt s = prepare("SELECT count(*) FROM dead_letter WHERE sink = ?1 AND state = 'pending'");
    bind(s, 1, sink);
    if (sqlite3_step(s.get()) != SQLITE_ROW) fail("counting set-aside changes");
    return static_cast<uint64_t>(sqlite3_column_int64(s.get(), 0));
  }

  std::vector<core::DeadLetter> list(const std::string& sink, const std::vector<int64_t>& ids) override {
    std::lock_guard lock(mutex_);
    Stmt s = prepare(
        "SELECT id, sink, log_offset, topic, target, key, value, schema, position, error, state, created_at, unchanged"
        " FROM dead_letter WHERE (?1 = '' OR sink = ?1) ORDER BY log_offset, id");
    bind(s, 1, sink);
    std::vector<core::DeadLetter> out;
    int rc;
    while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
      core::DeadLetter d;
      d.id = sqlite3_column_int64(s.get(), 0);
      if (!ids.empty() && std::find(ids.begin(), ids.end(), d.id) == ids.end()) continue;
      d.sink = text(s, 1);
      d.offset = static_cast<uint64_t>(sqlite3_column_int64(s.get(), 2));
      d.topic = text(s, 3);
      d.table = text(s, 4);
      d.key = text(s, 5);
      d.value = text(s, 6);
      d.schema = text(s, 7);
      d.position = text(s, 8);
      d.error = text(s, 9);
      d.state = text(s, 10);
      d.created_at = text(s, 11);
      d.unchanged = text(s, 12);
      out.push_back(std::move(d));
    }
    if (rc != SQLITE_DONE) fail("reading set-aside changes");
    return out;
  }

  void setState(int64_t id, const std::string& state, const std::string& note) override {
    std::lock_guard lock(mutex_);
    Stmt s = prepare("UPDATE dead_letter SET state = ?2, note = ?3 WHERE id = ?1");
    sqlite3_bind_int64(s.get(), 1, id);
    bind(s, 2, state);
    bind(s, 3, note);
    step(s, "updating a set-aside change");
  }

 private:
  [[noreturn]] void fail(std::string_view what) const {
    throw Error(ErrorClass::Retriable, fmt::format("{} in {}: {}", what, path_, sqlite3_errmsg(db_.get())),
                "check that the state directory's disk is writable and not full");
  }
  void exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_.get(), sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string why = err ? err : "unknown error";
      sqlite3_free(err);
      throw Error(ErrorClass::Config, fmt::format("cannot set up the dead letter queue {}: {}", path_, why));
    }
  }
  Stmt prepare(const char* sql) {
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v2(db_.get(), sql, -1, &raw, nullptr) != SQLITE_OK) fail("preparing a statement");
    return Stmt(raw);
  }
  static void bind(Stmt& s, int i, const std::string& v) {
    sqlite3_bind_text(s.get(), i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
  static std::string text(Stmt& s, int col) {
    const unsigned char* t = sqlite3_column_text(s.get(), col);
    return t ? std::string(reinterpret_cast<const char*>(t), static_cast<size_t>(sqlite3_column_bytes(s.get(), col)))
             : std::string();
  }
  void step(Stmt& s, std::string_view what) {
    if (sqlite3_step(s.get()) != SQLITE_DONE) fail(what);
  }

  std::string path_;
  std::unique_ptr<sqlite3, DbCloser> db_;
  std::mutex mutex_;
};

}  // namespace

std::unique_ptr<core::DeadLetters> openDeadLetters(const std::filesystem::path& state_dir) {
  return std::make_unique<DlqStore>(state_dir);
}

}  // namespace tidemark::state
