// The change log's own write and read rates, beside SQLite doing the same work, so that the
// choice of storage rests on a measurement (make bench runs it; bench/README.md).
//
//   log_bench DIR [RECORDS] [VALUE_BYTES] [RECORDS_PER_COMMIT]
//
// Both store RECORDS records of a Debezium-sized value with a key, a topic and a position
// header, one fdatasync (SQLite: synchronous=FULL in WAL mode) per RECORDS_PER_COMMIT records:
// group commit, as the pipeline commits many transactions at once. Prints one JSON line.
#include <sqlite3.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include <fmt/format.h>

#include "log/local/local_log.h"

namespace {

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

void check(int rc, sqlite3* db, const char* what) {
  if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
    std::fprintf(stderr, "sqlite %s: %s\n", what, sqlite3_errmsg(db));
    std::exit(1);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: log_bench DIR [RECORDS] [VALUE_BYTES] [RECORDS_PER_COMMIT]\n");
    return 1;
  }
  const std::filesystem::path dir = argv[1];
  const long records = argc > 2 ? std::stol(argv[2]) : 1'000'000;
  const size_t value_bytes = argc > 3 ? std::stoul(argv[3]) : 500;
  const long per_commit = argc > 4 ? std::stol(argv[4]) : 5000;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);

  std::string value(value_bytes, 'v');
  const std::string topic = "bench.public.orders";
  double bytes = 0;

  // The local log: write, then read everything back.
  const auto log_start = Clock::now();
  {
    tidemark::changelog::LocalLog log({dir / "log"});
    for (long i = 0; i < records; ++i) {
      const std::string key = fmt::format("{{\"id\":{}}}", i);
      const std::string position = fmt::format("0/{:X}", 0x1000000 + i * 64);
      log.append({topic, key, value, {{"position", position}}});
      bytes += static_cast<double>(key.size() + value.size() + topic.size() + position.size());
      if ((i + 1) % per_commit == 0) log.commit();
    }
    log.commit();
  }
  const double log_write = secondsSince(log_start);
  const auto read_start = Clock::now();
  long read = 0;
  {
    tidemark::changelog::LocalLog log({dir / "log"});
    auto reader = log.reader(0);
    while (reader->next() != nullptr) ++read;
  }
  const double log_read = secondsSince(read_start);
  if (read != records) {
    std::fprintf(stderr, "the log gave back %ld records of %ld\n", read, records);
    return 1;
  }

  // SQLite: the same records as rows, in WAL mode with synchronous=FULL.
  const auto sqlite_start = Clock::now();
  {
    sqlite3* db = nullptr;
    check(sqlite3_open((dir / "log.db").c_str(), &db), db, "open");
    check(sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
                           "CREATE TABLE log (offset INTEGER PRIMARY KEY, topic TEXT, key BLOB, "
                           "value BLOB, position TEXT)",
                       nullptr, nullptr, nullptr),
          db, "create");
    sqlite3_stmt* insert = nullptr;
    check(sqlite3_prepare_v2(db, "INSERT INTO log VALUES (?, ?, ?, ?, ?)", -1, &insert, nullptr), db,
          "prepare");
    check(sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr), db, "begin");
    for (long i = 0; i < records; ++i) {
      const std::string key = fmt::format("{{\"id\":{}}}", i);
      const std::string position = fmt::format("0/{:X}", 0x1000000 + i * 64);
      sqlite3_bind_int64(insert, 1, i);
      sqlite3_bind_text(insert, 2, topic.data(), static_cast<int>(topic.size()), SQLITE_STATIC);
      sqlite3_bind_blob(insert, 3, key.data(), static_cast<int>(key.size()), SQLITE_TRANSIENT);
      sqlite3_bind_blob(insert, 4, value.data(), static_cast<int>(value.size()), SQLITE_STATIC);
      sqlite3_bind_text(insert, 5, position.data(), static_cast<int>(position.size()), SQLITE_TRANSIENT);
      check(sqlite3_step(insert), db, "insert");
      sqlite3_reset(insert);
      if ((i + 1) % per_commit == 0) {
        check(sqlite3_exec(db, "COMMIT; BEGIN", nullptr, nullptr, nullptr), db, "commit");
      }
    }
    check(sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr), db, "commit");
    sqlite3_finalize(insert);
    sqlite3_close(db);
  }
  const double sqlite_write = secondsSince(sqlite_start);
  std::filesystem::remove_all(dir);

  const double mib = bytes / (1024.0 * 1024.0);
  std::printf(
      "{\"records\":%ld,\"value_bytes\":%zu,\"records_per_commit\":%ld,"
      "\"local_log\":{\"write_s\":%.3f,\"records_per_s\":%.0f,\"mib_per_s\":%.1f,"
      "\"read_s\":%.3f,\"read_records_per_s\":%.0f},"
      "\"sqlite\":{\"write_s\":%.3f,\"records_per_s\":%.0f,\"mib_per_s\":%.1f}}\n",
      records, value_bytes, per_commit, log_write, static_cast<double>(records) / log_write, mib / log_write,
      log_read, static_cast<double>(records) / log_read, sqlite_write,
      static_cast<double>(records) / sqlite_write, mib / sqlite_write);
  return 0;
}
