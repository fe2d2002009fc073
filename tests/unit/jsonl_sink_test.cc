#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <atomic>
#include <thread>

#include "common/error.h"
#include "sinks/jsonl_sink.h"
#include "state/offset_store.h"
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

events::Event ev(std::string_view topic, std::string_view value, std::string_view key = {}) {
  return events::Event{topic, key, value};
}

TEST(JsonlSink, WritesOneFilePerTopicOneLinePerEvent) {
  tidemark::test::TempDir tmp;
  JsonlSink sink(sinkConfig(tmp.path()));
  sink.recover(std::nullopt);
  sink.write(ev("p.public.a", R"({"n":1})"));
  sink.write(ev("p.public.b", R"({"n":2})"));
  sink.write(ev("p.public.a", R"({"n":3})"));
  sink.markTransactionEnd();
  sink.flush();
  EXPECT_EQ(slurp(tmp.path() / "p.public.a.jsonl"), "{\"n\":1}\n{\"n\":3}\n");
  EXPECT_EQ(slurp(tmp.path() / "p.public.b.jsonl"), "{\"n\":2}\n");
  EXPECT_EQ(sink.checkpoint(), R"({"p.public.a":16,"p.public.b":8})");
}

TEST(JsonlSink, WithKeyWrapsKeyAndValue) {
  tidemark::test::TempDir tmp;
  JsonlSink sink(sinkConfig(tmp.path(), true));
  sink.recover(std::nullopt);
  sink.write(ev("t", R"({"v":1})", R"({"id":1})"));
  sink.write(ev("t", R"({"v":2})"));
  sink.markTransactionEnd();
  sink.flush();
  EXPECT_EQ(slurp(tmp.path() / "t.jsonl"),
            "{\"key\":{\"id\":1},\"value\":{\"v\":1}}\n{\"key\":null,\"value\":{\"v\":2}}\n");
}

TEST(JsonlSink, RecoverCutsWhatWasWrittenAfterTheCheckpoint) {
  tidemark::test::TempDir tmp;
  std::string checkpoint;
  {
    JsonlSink sink(sinkConfig(tmp.path()));
    sink.recover(std::nullopt);
    sink.write(ev("t", "1"));
    sink.markTransactionEnd();
    sink.flush();
    checkpoint = sink.checkpoint();
    // Written and even flushed, but the state store never recorded it (a crash in between).
    sink.write(ev("t", "2"));
    sink.write(ev("new", "x"));
    sink.markTransactionEnd();
    sink.flush();
  }
  JsonlSink again(sinkConfig(tmp.path()));
  again.recover(checkpoint);
  EXPECT_EQ(slurp(tmp.path() / "t.jsonl"), "1\n");
  EXPECT_EQ(slurp(tmp.path() / "new.jsonl"), "");
  again.write(ev("t", "2"));
  again.markTransactionEnd();
  again.flush();
  EXPECT_EQ(slurp(tmp.path() / "t.jsonl"), "1\n2\n");
}

TEST(JsonlSink, FirstRunKeepsExistingFilesAndCheckpointsThem) {
  tidemark::test::TempDir tmp;
  { std::ofstream(tmp.path() / "old.jsonl") << "keep\n"; }
  JsonlSink sink(sinkConfig(tmp.path()));
  sink.recover(std::nullopt);
  sink.markTransactionEnd();
  sink.flush();
  EXPECT_EQ(sink.checkpoint(), R"({"old":5})");
  EXPECT_EQ(slurp(tmp.path() / "old.jsonl"), "keep\n");
}

TEST(JsonlSink, RollbackToMarkDropsAPartialTransactionBufferedOrWritten) {
  tidemark::test::TempDir tmp;
  JsonlSink sink(sinkConfig(tmp.path()));
  sink.recover(std::nullopt);
  sink.write(ev("t", "committed"));
  sink.markTransactionEnd();
  // A partial transaction larger than the write threshold, so part of it reached the file.
  std::string big(300000, 'x');
  for (int i = 0; i < 5; ++i) sink.write(ev("t", big));
  sink.rollbackToMark();
  sink.flush();
  EXPECT_EQ(slurp(tmp.path() / "t.jsonl"), "committed\n");
  EXPECT_EQ(sink.pendingBytes(), 0u);
}

TEST(SqliteStore, SavesAndLoadsPositionWithCheckpointsAtomically) {
  tidemark::test::TempDir tmp;
  {
    auto store = state::openSqliteStore(tmp.path() / "state");
    EXPECT_FALSE(store->load());
    state::StoredPosition p;
    p.system_identifier = "7300000000000000001";
    p.timeline = 1;
    p.slot = "s";
    p.lsn = Lsn(0x1234);
    p.sinks["files"] = R"({"t":10})";
    store->save(p);
    p.lsn = Lsn(0x5678);
    p.sinks["files"] = R"({"t":20})";
    store->save(p);
  }
  auto store = state::openSqliteStore(tmp.path() / "state");
  auto loaded = store->load();
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->lsn, Lsn(0x5678));
  EXPECT_EQ(loaded->sinks.at("files"), R"({"t":20})");
  EXPECT_EQ(loaded->system_identifier, "7300000000000000001");
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

TEST(SqliteStore, RefusesASecondProcessOnTheSameStateDirectory) {
  tidemark::test::TempDir tmp;
  auto first = state::openSqliteStore(tmp.path() / "state");
  EXPECT_THROW(state::openSqliteStore(tmp.path() / "state"), tidemark::Error);
}

}  // namespace
}  // namespace tidemark::sinks
