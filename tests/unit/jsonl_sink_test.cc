#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <atomic>
#include <thread>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "core/offset_store.h"
#include "sink/jsonl/jsonl_sink.h"
#include "state/sqlite_store.h"
#include "support/file_size_limit.h"
#include "support/temp_dir.h"

namespace tidemark::sinks {
namespace {

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

config::SinkConfig sinkConfig(const std::filesystem::path& dir, bool with_key = false) {
  config::SinkConfig c;
  c.name = "files";
  c.kind = "jsonl";
  c.path = dir;
  c.with_key = with_key;
  return c;
}

core::Event ev(std::string_view topic, std::string_view value, std::string_view key = {}) {
  return core::Event{topic, key, value};
}

TEST(JsonlSink, WritesOneFilePerTopicOneLinePerEvent) {
  tidemark::test::TempDir tmp;
  JsonlSink sink(sinkConfig(tmp.path()));
  sink.recover(std::nullopt, RecoverMode::FirstRun);
  sink.write(ev("p.public.a", R"({"n":1})"));
  sink.write(ev("p.public.b", R"({"n":2})"));
  sink.write(ev("p.public.a", R"({"n":3})"));
  sink.markTransactionEnd(0);
  sink.flush();
  EXPECT_EQ(slurp(tmp.path() / "p.public.a.jsonl"), "{\"n\":1}\n{\"n\":3}\n");
  EXPECT_EQ(slurp(tmp.path() / "p.public.b.jsonl"), "{\"n\":2}\n");
  auto cp = nlohmann::json::parse(sink.checkpoint());
  EXPECT_EQ(cp["p.public.a"]["size"], 16);
  EXPECT_EQ(cp["p.public.b"]["size"], 8);
  EXPECT_EQ(cp["p.public.a"]["tail"].get<std::string>().size(), 16u);
}

TEST(JsonlSink, WithKeyWrapsKeyAndValue) {
  tidemark::test::TempDir tmp;
  JsonlSink sink(sinkConfig(tmp.path(), true));
  sink.recover(std::nullopt, RecoverMode::FirstRun);
  sink.write(ev("t", R"({"v":1})", R"({"id":1})"));
  sink.write(ev("t", R"({"v":2})"));
  sink.markTransactionEnd(0);
  sink.flush();
  EXPECT_EQ(slurp(tmp.path() / "t.jsonl"),
            "{\"key\":{\"id\":1},\"value\":{\"v\":1}}\n{\"key\":null,\"value\":{\"v\":2}}\n");
}

TEST(JsonlSink, RecoverCutsWhatWasWrittenAfterTheCheckpoint) {
  tidemark::test::TempDir tmp;
  std::string checkpoint;
  {
    JsonlSink sink(sinkConfig(tmp.path()));
    sink.recover(std::nullopt, RecoverMode::FirstRun);
    sink.write(ev("t", R"({"n":1})"));
    sink.markTransactionEnd(0);
    sink.flush();
    checkpoint = sink.checkpoint();
    // Written and even flushed, but the state store never recorded it (a crash in between).
    sink.write(ev("t", R"({"n":2})"));
    sink.write(ev("new", R"({"x":1})"));
    sink.markTransactionEnd(0);
    sink.flush();
  }
  JsonlSink again(sinkConfig(tmp.path()));
  again.recover(checkpoint, RecoverMode::Resume);
  EXPECT_EQ(slurp(tmp.path() / "t.jsonl"), "{\"n\":1}\n");
  EXPECT_EQ(slurp(tmp.path() / "new.jsonl"), "");
  again.write(ev("t", R"({"n":2})"));
  again.markTransactionEnd(0);
  again.flush();
  EXPECT_EQ(slurp(tmp.path() / "t.jsonl"), "{\"n\":1}\n{\"n\":2}\n");
}

TEST(JsonlSink, ASinkAddedSinceKeepsExistingFilesAndCheckpointsThem) {
  tidemark::test::TempDir tmp;
  { std::ofstream(tmp.path() / "old.jsonl") << "keep\n"; }
  { std::ofstream(tmp.path() / "cut.jsonl") << "{\"cut"; }
  JsonlSink sink(sinkConfig(tmp.path()));
  sink.recover(std::nullopt, RecoverMode::Added);
  sink.write(ev("cut", "{}"));
  sink.markTransactionEnd(0);
  sink.flush();
  auto cp = nlohmann::json::parse(sink.checkpoint());
  EXPECT_EQ(cp["old"]["size"], 5);
  EXPECT_EQ(slurp(tmp.path() / "old.jsonl"), "keep\n");
  // A cut line is ended, so new events are lines of their own.
  EXPECT_EQ(slurp(tmp.path() / "cut.jsonl"), "{\"cut\n{}\n");
}

// The state store has no position, but the sink holds events: they cannot be tied to a
// position (a state directory lost or emptied), so the pipeline stops instead of appending.
TEST(JsonlSink, FirstRunRefusesFilesThatAlreadyHoldEvents) {
  tidemark::test::TempDir tmp;
  { std::ofstream(tmp.path() / "t.jsonl") << "{\"old\":1}\n"; }
  { std::ofstream(tmp.path() / "empty.jsonl"); }
  JsonlSink sink(sinkConfig(tmp.path()));
  try {
    sink.recover(std::nullopt, RecoverMode::FirstRun);
    FAIL() << "appended to events that belong to no position";
  } catch (const tidemark::Error& e) {
    EXPECT_EQ(e.errorClass(), tidemark::ErrorClass::Fatal);
    EXPECT_NE(std::string(e.what()).find("t.jsonl holds 10 bytes, but the state store has no position"),
              std::string::npos)
        << e.what();
    EXPECT_NE(e.hint().find("--reset-sink files"), std::string::npos) << e.hint();
  }
  JsonlSink reset(sinkConfig(tmp.path()));
  reset.recover(std::nullopt, RecoverMode::Reset);
  EXPECT_EQ(slurp(tmp.path() / "t.jsonl"), "{\"old\":1}\n");
}

// A sink with one durable line in t.jsonl and its checkpoint.
std::string oneDurableLine(const std::filesystem::path& dir) {
  JsonlSink sink(sinkConfig(dir));
  sink.recover(std::nullopt, RecoverMode::FirstRun);
  sink.write(ev("t", R"({"n":1})"));
  sink.markTransactionEnd(0);
  sink.flush();
  return sink.checkpoint();
}

std::string recoverError(const std::filesystem::path& dir, const std::string& checkpoint) {
  JsonlSink sink(sinkConfig(dir));
  try {
    sink.recover(checkpoint, RecoverMode::Resume);
  } catch (const tidemark::Error& e) {
    return std::string(e.what()) + "\nHint: " + e.hint();
  }
  return {};
}

TEST(JsonlSink, RecoveryRefusesAFileCutChangedOrRemovedBehindItsBack) {
  tidemark::test::TempDir tmp;
  const std::string cp = oneDurableLine(tmp.path());
  const auto file = tmp.path() / "t.jsonl";

  std::filesystem::resize_file(file, 4);  // cut mid-line
  std::string err = recoverError(tmp.path(), cp);
  EXPECT_NE(err.find("holds 4 bytes, fewer than the 8 bytes of events tidemark made durable"), std::string::npos) << err;
  EXPECT_NE(err.find("--reset-sink files"), std::string::npos) << err;

  { std::ofstream(file, std::ios::trunc) << "{\"n\":9}\n"; }  // same size, other bytes
  err = recoverError(tmp.path(), cp);
  EXPECT_NE(err.find("is not what tidemark made durable"), std::string::npos) << err;

  std::filesystem::remove(file);
  err = recoverError(tmp.path(), cp);
  EXPECT_NE(err.find("t.jsonl is missing, though tidemark made 8 bytes of events durable in it"), std::string::npos) << err;

  // Accepted as it is, the sink goes on with a new file.
  JsonlSink reset(sinkConfig(tmp.path()));
  reset.recover(cp, RecoverMode::Reset);
  reset.write(ev("t", R"({"n":2})"));
  reset.markTransactionEnd(0);
  reset.flush();
  EXPECT_EQ(slurp(file), "{\"n\":2}\n");
}

TEST(JsonlSink, RecoveryRemovesOnlyBytesThatReadAsItsOwnLines) {
  tidemark::test::TempDir tmp;
  const std::string cp = oneDurableLine(tmp.path());
  const auto file = tmp.path() / "t.jsonl";
  // Another program appended: not tidemark's lines, so not removed.
  { std::ofstream(file, std::ios::app) << "an appended log line\n"; }
  std::string err = recoverError(tmp.path(), cp);
  EXPECT_NE(err.find("has 21 bytes after the 8 bytes tidemark made durable that do not read as tidemark's events"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("truncate -s 8 "), std::string::npos) << err;
  EXPECT_EQ(slurp(file), "{\"n\":1}\nan appended log line\n");

  // A crash after a flush the store never recorded: whole lines and a cut one, removed.
  std::filesystem::resize_file(file, 8);
  { std::ofstream(file, std::ios::app) << "{\"n\":2}\n{\"n\":3}\n{\"n\""; }
  EXPECT_EQ(recoverError(tmp.path(), cp), "");
  EXPECT_EQ(slurp(file), "{\"n\":1}\n");
}

// After a failure the sink goes back to the checkpoint last saved with the position, which may
// be older than its last flush (the save is what failed): nothing after it stays.
TEST(JsonlSink, RollbackGoesBackToTheSavedCheckpointNotTheLastFlush) {
  tidemark::test::TempDir tmp;
  JsonlSink sink(sinkConfig(tmp.path()));
  sink.recover(std::nullopt, RecoverMode::FirstRun);
  sink.write(ev("t", R"({"n":1})"));
  sink.markTransactionEnd(0);
  sink.flush();
  const std::string saved = sink.checkpoint();
  sink.write(ev("t", R"({"n":2})"));
  sink.markTransactionEnd(0);
  sink.flush();  // flushed, but the position with it was never saved
  std::string big(300000, 'x');
  for (int i = 0; i < 5; ++i) sink.write(ev("t", "{\"big\":\"" + big + "\"}"));  // part reaches the file
  sink.rollbackTo(saved);
  EXPECT_EQ(slurp(tmp.path() / "t.jsonl"), "{\"n\":1}\n");
  EXPECT_EQ(sink.pendingBytes(), 0u);
  EXPECT_EQ(sink.checkpoint(), saved);
  sink.write(ev("t", R"({"n":2})"));
  sink.markTransactionEnd(0);
  sink.flush();
  EXPECT_EQ(slurp(tmp.path() / "t.jsonl"), "{\"n\":1}\n{\"n\":2}\n");
}

TEST(JsonlSink, RollbackToMarkDropsAPartialTransactionBufferedOrWritten) {
  tidemark::test::TempDir tmp;
  JsonlSink sink(sinkConfig(tmp.path()));
  sink.recover(std::nullopt, RecoverMode::FirstRun);
  sink.write(ev("t", "{}"));
  sink.markTransactionEnd(0);
  // A partial transaction larger than the write threshold, so part of it reached the file.
  std::string big(300000, 'x');
  for (int i = 0; i < 5; ++i) sink.write(ev("t", big));
  sink.rollbackToMark();
  sink.flush();
  EXPECT_EQ(slurp(tmp.path() / "t.jsonl"), "{}\n");
  EXPECT_EQ(sink.pendingBytes(), 0u);
}

// A write that gets part of a batch out and then fails (here a file size limit; a full disk
// does the same): what reached the file is counted, so the rollback cuts exactly that. No
// torn line, nothing saved removed, and with room again the events are written once.
TEST(JsonlSink, AWriteThatFailsPartWayIsRolledBackExactly) {
  tidemark::test::TempDir tmp;
  JsonlSink sink(sinkConfig(tmp.path()));
  sink.recover(std::nullopt, RecoverMode::FirstRun);
  sink.write(ev("t", R"({"n":1})"));
  sink.markTransactionEnd(0);
  sink.flush();
  const std::string saved = sink.checkpoint();

  bool failed = false;
  {
    test::FileSizeLimit limit(100000);
    try {
      const std::string big(300000, 'x');
      for (int i = 0; i < 5; ++i) sink.write(ev("t", "{\"big\":\"" + big + "\"}"));
      sink.markTransactionEnd(0);
      sink.flush();
    } catch (const tidemark::Error&) {
      failed = true;
    }
  }
  ASSERT_TRUE(failed) << "the write did not fail";
  EXPECT_EQ(std::filesystem::file_size(tmp.path() / "t.jsonl"), 100000u) << "the write did not get part way";

  sink.rollbackTo(saved);
  EXPECT_EQ(slurp(tmp.path() / "t.jsonl"), "{\"n\":1}\n");
  sink.write(ev("t", R"({"n":2})"));
  sink.markTransactionEnd(0);
  sink.flush();
  EXPECT_EQ(slurp(tmp.path() / "t.jsonl"), "{\"n\":1}\n{\"n\":2}\n");
}

TEST(SqliteStore, SavesAndLoadsPositionWithCheckpointsAtomically) {
  tidemark::test::TempDir tmp;
  {
    auto store = state::openSqliteStore(tmp.path() / "state");
    EXPECT_FALSE(store->load());
    state::StoredPosition p;
    p.source = {R"({"at":1})", "1"};
    p.sinks["files"] = {3, R"({"t":10})"};
    store->save(p);
    p.source = {R"({"at":2})", "2"};
    p.sinks["files"] = {5, R"({"t":20})"};
    store->save(p);
  }
  auto store = state::openSqliteStore(tmp.path() / "state");
  auto loaded = store->load();
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->source, (state::SourcePosition{R"({"at":2})", "2"}));
  EXPECT_EQ(loaded->sinks.at("files"), (state::SinkProgress{5, R"({"t":20})"}));
}

TEST(SqliteStore, StatusReadersSeeTheRunAndNeverKeepItFromStarting) {
  tidemark::test::TempDir tmp;
  const auto dir = tmp.path() / "state";
  { state::openSqliteStore(dir); }  // the files exist, nothing holds them
  EXPECT_FALSE(state::readStatus(dir).running);
  {
    auto store = state::openSqliteStore(dir);
    store->saveStatus(R"({"state":"running"})");
    auto record = state::readStatus(dir);
    EXPECT_TRUE(record.running);
    EXPECT_EQ(record.json, R"({"state":"running"})");
  }
  EXPECT_FALSE(state::readStatus(dir).running);

  // `tidemark status` polled in a loop beside a run that (re)starts: opening must never fail.
  std::atomic<bool> done{false};
  std::thread reader([&] {
    while (!done.load()) state::readStatus(dir);
  });
  int refused = 0;
  for (int i = 0; i < 300; ++i) {
    try {
      auto store = state::openSqliteStore(dir);
    } catch (const tidemark::Error& e) {
      if (refused++ == 0) ADD_FAILURE() << e.what();
    }
  }
  done.store(true);
  reader.join();
  EXPECT_EQ(refused, 0);
}

// A state store that cannot grow (a full disk: here a file size limit) is an error that may
// pass, with the fix; a damaged one is not, and says what to do.
TEST(SqliteStore, AFullDiskMayPassAndADamagedFileSaysWhatToDo) {
  tidemark::test::TempDir tmp;
  const auto dir = tmp.path() / "state";
  auto store = state::openSqliteStore(dir);
  state::StoredPosition p;
  p.source = {"t", "0/10"};
  store->save(p);
  std::optional<tidemark::Error> error;
  {
    test::FileSizeLimit limit(1);  // no file may grow
    try {
      for (int i = 0; i < 200; ++i) {  // enough to need new pages
        p.sinks["s" + std::to_string(i)] = {0, std::string(1000, 'x')};
        store->save(p);
      }
    } catch (const tidemark::Error& e) {
      error = e;
    }
  }
  ASSERT_TRUE(error) << "the store grew past the limit";
  EXPECT_EQ(error->errorClass(), tidemark::ErrorClass::Retriable) << error->what();
  EXPECT_NE(error->hint().find("free disk space on the file system of"), std::string::npos) << error->hint();
  store.reset();

  for (const char* f : {"state.db-wal", "state.db-shm"}) std::filesystem::remove(dir / f);
  { std::ofstream(dir / "state.db", std::ios::trunc) << std::string(8192, 'g'); }
  try {
    auto damaged = state::openSqliteStore(dir);
    damaged->load();
    FAIL() << "a damaged store was read";
  } catch (const tidemark::Error& e) {
    EXPECT_EQ(e.errorClass(), tidemark::ErrorClass::Fatal);
    EXPECT_NE(std::string(e.what()).find("file is not a database"), std::string::npos) << e.what();
    EXPECT_NE(e.hint().find("is damaged or is not tidemark's state store"), std::string::npos) << e.hint();
  }
}

TEST(SqliteStore, RefusesASecondProcessOnTheSameStateDirectory) {
  tidemark::test::TempDir tmp;
  auto first = state::openSqliteStore(tmp.path() / "state");
  EXPECT_THROW(state::openSqliteStore(tmp.path() / "state"), tidemark::Error);
}

}  // namespace
}  // namespace tidemark::sinks
