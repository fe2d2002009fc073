// Source positions are opaque to the core: the state store keeps what a source gives it, the
// PostgreSQL source reads back what it wrote, and a store written before positions were
// opaque resumes where it was.
#include <gtest/gtest.h>

#include <sqlite3.h>

#include <filesystem>
#include <string>

#include "base/error.h"
#include "core/offset_store.h"
#include "source/postgres/position.h"
#include "state/sqlite_store.h"
#include "support/temp_dir.h"

namespace tidemark {
namespace {

TEST(PostgresPosition, ReadsBackWhatItWrote) {
  pg::Position p{"7300000000000000001", 3, "tidemark_slot", Lsn{0x1600000016B3748}, {}, false, {}, 0, {}};
  state::SourcePosition stored = pg::encodePosition(p);
  EXPECT_EQ(stored.readable, "1600000/16B3748");
  pg::Position back = pg::decodePosition(stored);
  EXPECT_EQ(back.system_identifier, p.system_identifier);
  EXPECT_EQ(back.timeline, 3u);
  EXPECT_EQ(back.slot, "tidemark_slot");
  EXPECT_EQ(back.lsn, p.lsn);
}

// What an initial snapshot leaves for the stream: the transactions it saw, and that it is not
// finished, read back as written.
TEST(PostgresPosition, ReadsBackTheSnapshotCoverAndPending) {
  pg::Position p{"7301", 1, "s", Lsn{0x3000}, pg::SnapshotCover::parse("4294967290:4294967300:4294967295,4294967298", Lsn{0x5000}),
                 true, {}, 0, {}};
  const pg::Position back = pg::decodePosition(pg::encodePosition(p));
  ASSERT_TRUE(back.cover);
  EXPECT_EQ(*back.cover, *p.cover);
  EXPECT_TRUE(back.snapshot_pending);
  EXPECT_TRUE(back.snapshot_tables.empty());
  // How far each table got: a finished one, one part read (a two-column key, one of its
  // values with a quote and a comma), one not started, one in two ranges of its key.
  using Key = std::vector<std::string>;
  p.snapshot_tables = {{"public", "done", true, 12, std::nullopt, std::nullopt},
                       {"odd \"schema\"", "part", false, 500, Key{"7", "a,'b\""}, std::nullopt},
                       {"public", "empty", false, 0, std::nullopt, std::nullopt},
                       {"public", "split", true, 40, Key{"40"}, Key{"40"}},
                       {"public", "split", false, 3, Key{"43"}, std::nullopt}};
  EXPECT_EQ(pg::decodePosition(pg::encodePosition(p)).snapshot_tables, p.snapshot_tables);
  const pg::Position plain = pg::decodePosition(pg::encodePosition(pg::Position{"7301", 1, "s", Lsn{0x3000}, {}, false, {}, 0, {}}));
  EXPECT_FALSE(plain.cover);
  EXPECT_FALSE(plain.snapshot_pending);
}

// A transaction is in the snapshot when it committed before `through` and is visible in it:
// below xmin, or below xmax and not running. The stream's 32-bit ids are placed below xmax
// across the wraparound of the 32-bit counter.
TEST(SnapshotCover, CoversWhatTheSnapshotSaw) {
  // xmin 2^32 - 6, xmax 2^32 + 4: the 32-bit ids 4294967290.. wrap to 0..3.
  const auto c = pg::SnapshotCover::parse("4294967290:4294967300:4294967295,4294967298", Lsn{0x5000});
  EXPECT_EQ(c.xip, (std::vector<uint64_t>{4294967295, 4294967298}));
  const Lsn before{0x4000};
  EXPECT_TRUE(c.covers(4294967280u, before));   // below xmin
  EXPECT_TRUE(c.covers(4294967293u, before));   // between, not running
  EXPECT_FALSE(c.covers(4294967295u, before));  // running at the snapshot
  EXPECT_TRUE(c.covers(0u, before));            // 2^32: wrapped, committed
  EXPECT_FALSE(c.covers(2u, before));           // 2^32 + 2: running
  EXPECT_FALSE(c.covers(4u, before));           // xmax: began after
  EXPECT_FALSE(c.covers(40u, before));          // after
  EXPECT_FALSE(c.covers(4294967293u, Lsn{0x5000}));  // committed at or after `through`
  // Near the start of the counter nothing wraps below zero.
  const auto young = pg::SnapshotCover::parse("10:12:", Lsn{0x5000});
  EXPECT_TRUE(young.covers(5u, before));
  EXPECT_FALSE(young.covers(4294967295u, before));
  for (const char* bad : {"", "1:2", "a:2:", "1:2:x", "1:2:3,y"}) {
    EXPECT_THROW(pg::SnapshotCover::parse(bad, Lsn{1}), Error) << bad;
  }
}

TEST(PostgresPosition, ATokenItDidNotWriteIsAnErrorNamingTheStore) {
  for (const char* token : {"", "0/16B3748", R"({"gtid_set":"3E11FA47:1-5"})",
                            R"({"system_identifier":"1","timeline":1,"slot":"s","lsn":"nope"})"}) {
    try {
      pg::decodePosition({token, "?"});
      ADD_FAILURE() << "accepted " << token;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("state store's position"), std::string::npos) << e.what();
      EXPECT_NE(e.hint().find("state_dir"), std::string::npos);
    }
  }
}

// A state.db as versions before opaque positions wrote it: PostgreSQL's fields in columns.
void writeLegacyStore(const std::filesystem::path& dir, bool with_log_end) {
  std::filesystem::create_directories(dir);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir / "state.db").c_str(), &db), SQLITE_OK);
  std::string sql =
      "CREATE TABLE position (id INTEGER PRIMARY KEY CHECK (id = 1), system_identifier TEXT NOT NULL,"
      " timeline INTEGER NOT NULL, slot TEXT NOT NULL, lsn INTEGER NOT NULL, updated_at INTEGER NOT NULL";
  sql += with_log_end ? ", log_end INTEGER NOT NULL DEFAULT 0);" : ");";
  sql += "CREATE TABLE sink_checkpoint (sink TEXT PRIMARY KEY, checkpoint TEXT NOT NULL";
  sql += with_log_end ? ", cursor INTEGER NOT NULL DEFAULT 0);" : ");";
  sql += with_log_end
             ? "INSERT INTO position VALUES (1, '7301', 2, 's', 23803720, 0, 17);"
               "UPDATE position SET log_end = 42; INSERT INTO sink_checkpoint VALUES ('files', '{}', 40);"
             : "INSERT INTO position VALUES (1, '7301', 2, 's', 23803720, 0);"
               "INSERT INTO sink_checkpoint VALUES ('files', '{}');";
  char* err = nullptr;
  ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
  sqlite3_close(db);
}

TEST(SqliteStore, AStoreFromBeforeOpaquePositionsResumesWhereItWas) {
  for (bool with_log_end : {false, true}) {
    test::TempDir tmp;
    const auto dir = tmp.path() / "state";
    writeLegacyStore(dir, with_log_end);
    // Read beside a run (no lock, no migration), then by the run, which migrates it.
    auto beside = state::readPosition(dir);
    ASSERT_TRUE(beside.has_value());
    EXPECT_EQ(beside->source.readable, "0/16B3748");
    {
      auto store = state::openSqliteStore(dir);
      auto loaded = store->load();
      ASSERT_TRUE(loaded.has_value());
      EXPECT_EQ(loaded->source, beside->source);
      EXPECT_EQ(loaded->log_end, with_log_end ? 42u : 0u);
      EXPECT_EQ(loaded->sinks.at("files").cursor, with_log_end ? 40u : 0u);
      pg::Position p = pg::decodePosition(loaded->source);
      EXPECT_EQ(p.system_identifier, "7301");
      EXPECT_EQ(p.timeline, 2u);
      EXPECT_EQ(p.slot, "s");
      EXPECT_EQ(p.lsn, Lsn{0x16B3748});
      // It saves in the current layout from then on.
      p.lsn = Lsn{0x16B4000};
      loaded->source = pg::encodePosition(p);
      store->save(*loaded);
    }
    auto again = state::openSqliteStore(dir)->load();
    ASSERT_TRUE(again.has_value());
    EXPECT_EQ(pg::decodePosition(again->source).lsn, Lsn{0x16B4000});
    EXPECT_EQ(state::readPosition(dir)->source.readable, "0/16B4000");
  }
}

}  // namespace
}  // namespace tidemark
