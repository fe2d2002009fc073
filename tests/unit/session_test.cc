// The durability protocol of a pipeline session, driven frame by frame with a fake source,
// sink and store. The fake source checks guarantee 1 on every status update it receives:
// the flush position it is told never passes what the store saved, nor what the sink made
// durable.
#include <gtest/gtest.h>

#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <thread>

#include <nlohmann/json.hpp>

#include "base/byte_reader.h"
#include "pipeline/log_appender.h"
#include "source/postgres/capture.h"
#include "source/postgres/position.h"
#include "source/postgres/session.h"
#include "support/bytes.h"
#include "support/file_size_limit.h"
#include "support/temp_dir.h"

namespace tidemark::pg {
namespace {

using test::Bytes;

// The events the log holds durably, as a sink would keep them: a transaction's events once its
// end is read, none of one that was aborted.
std::vector<std::string> committedEvents(const changelog::LocalLog& log) {
  std::vector<std::string> out, open;
  auto reader = log.reader(log.startOffset());
  while (const changelog::StoredRecord* r = reader->next()) {
    if (changelog::isTransactionEnd(r->record)) {
      out.insert(out.end(), open.begin(), open.end());
      open.clear();
    } else if (changelog::isTransactionAbort(r->record)) {
      open.clear();
    } else if (changelog::isControl(r->record)) {
      continue;  // a table's schema
    } else {
      open.emplace_back(r->record.value.value_or(""));
    }
  }
  return out;
}

// Checks, at every save, that the log committed everything appended before it: a position
// saved ahead of the log's data would survive a crash that the data does not.
struct FakeStore final : state::OffsetStore {
  std::optional<state::StoredPosition> load() override { return saved; }
  void save(const state::StoredPosition& p) override {
    if (log != nullptr) {
      EXPECT_EQ(log->pendingBytes(), 0u) << "saved " << p.source.readable << " before the log committed";
      EXPECT_EQ(p.log_end, log->endOffset());
    }
    saved = p;
    ++saves;
  }
  void saveSink(const std::string&, const state::SinkProgress&) override {}
  void saveStatus(const std::string& json) override { status = json; }
  std::vector<state::CapturedTable> loadCapture() override { return capture; }
  void saveCapture(const std::vector<state::CapturedTable>& tables) override { capture = tables; }
  void saveTableSchema(const core::TableSchema&) override {}
  std::vector<core::TableSchema> loadTableSchemas() override { return {}; }
  std::optional<state::StoredPosition> saved;
  // The LSN of the position saved last (the PostgreSQL source's).
  Lsn savedLsn() const { return saved ? pg::decodePosition(saved->source).lsn : Lsn{}; }
  std::vector<state::CapturedTable> capture;
  std::string status;
  const changelog::LocalLog* log = nullptr;
  int saves = 0;
};

class FakeSource final : public pg::ReplicationSource {
 public:
  /// `log`: the fixture's, which a test may open again (as a new process would).
  FakeSource(FakeStore& store, const std::unique_ptr<changelog::LocalLog>& log, std::atomic<bool>& stop)
      : store_(store), log_(log), stop_(stop) {}

  // Frames, in order. Commits record how many events the sink must hold once their end LSN
  // is confirmed.
  void data(Lsn lsn, Bytes bytes) { frames_.push_back(Queued{lsn, std::move(bytes), {}, false}); }
  void keepalive(Lsn wal_end, bool reply = false) {
    frames_.push_back(Queued{wal_end, {}, pg::Keepalive{wal_end, 0, reply}, true});
  }
  void expectEventsThrough(Lsn end, size_t events) { events_through_[end] = events; }
  /// Runs `fn` just before the frame queued `index`-th (0-based) is read.
  void beforeFrame(size_t index, std::function<void()> fn) { hooks_[index] = std::move(fn); }
  /// Once the queue is drained, keep returning timeouts this many times, then request a stop.
  void stopWhenDrainedAfter(int timeouts) { timeouts_before_stop_ = timeouts; }

  pg::Frame read(std::chrono::milliseconds) override {
    if (frames_.empty()) {
      if (timeouts_before_stop_-- <= 0) stop_.store(true);
      // A real read waits before it times out; so time passes here too.
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      return pg::Timeout{};
    }
    if (auto hook = hooks_.find(read_); hook != hooks_.end()) hook->second();
    ++read_;
    current_ = std::move(frames_.front());
    frames_.pop_front();
    if (current_.is_keepalive) return current_.keepalive;
    std::string_view payload = current_.bytes;
    return pg::XLogData{current_.lsn, current_.lsn, 0, payload};
  }

  void sendStatus(Lsn write, Lsn flush, bool) override {
    statuses.push_back({write, flush});
    // Guarantee 1, checked at the moment of confirming.
    Lsn saved = store_.savedLsn();
    EXPECT_LE(flush, saved) << "confirmed " << flush.str() << " but the store holds " << saved.str();
    for (const auto& [end, events] : events_through_) {
      if (end <= flush) {
        EXPECT_GE(committedEvents(*log_).size(), events)
            << "confirmed " << flush.str() << " past a commit whose events are not durable";
      }
    }
  }
  void finish() override { ++finishes; }

  struct Status {
    Lsn write;
    Lsn flush;
  };
  std::vector<Status> statuses;
  int finishes = 0;

 private:
  struct Queued {
    Lsn lsn;
    Bytes bytes;
    pg::Keepalive keepalive;
    bool is_keepalive;
  };
  FakeStore& store_;
  const std::unique_ptr<changelog::LocalLog>& log_;
  std::atomic<bool>& stop_;
  std::deque<Queued> frames_;
  Queued current_;
  std::map<Lsn, size_t> events_through_;
  std::map<size_t, std::function<void()>> hooks_;
  size_t read_ = 0;
  int timeouts_before_stop_ = 3;
};

Bytes relation() { return test::ordersRelationMessage(); }
Bytes begin(uint64_t final_lsn, uint32_t xid) { return std::move(Bytes().ch('B').u64(final_lsn).u64(0).u32(xid)); }
Bytes commit(uint64_t commit_lsn, uint64_t end_lsn) {
  return std::move(Bytes().ch('C').u8(0).u64(commit_lsn).u64(end_lsn).u64(0));
}
Bytes insert(std::string_view id) { return std::move(Bytes().ch('I').u32(16384).ch('N').u16(2).text(id).text("n")); }

// The heartbeat table's Relation message (relid 16390) and a row of it.
Bytes heartbeatRelation() {
  Bytes b;
  b.ch('R').u32(16390).cstr("tidemark").cstr("tidemark_heartbeat").ch('d').u16(2);
  b.u8(1).cstr("pipeline").u32(25).u32(0xFFFFFFFF);
  b.u8(0).cstr("ts").u32(1184).u32(0xFFFFFFFF);
  return b;
}
Bytes heartbeatRow(std::string_view pipeline, std::string_view ts) {
  return std::move(Bytes().ch('U').u32(16390).ch('N').u16(2).text(pipeline).text(ts));
}

class SessionTest : public ::testing::Test {
 protected:
  SessionTest() {
    cfg.name = cfg.topic_prefix = "t";
    cfg.source.tables = {{"public", "orders"}};
    cfg.delivery.flush_interval = std::chrono::milliseconds(0);
    cfg.heartbeat.events = false;
    openLog();
    source = std::make_unique<FakeSource>(store, log, stop);
    start.system_identifier = "1";
    start.slot = "s";
    start.lsn = Lsn(0x100);
    store.save(state::StoredPosition{pg::encodePosition(start), 0, {}});
  }

  // The relation, then transaction 7 with one insert, committed at 0x1F0 and ending at 0x200.
  void firstTransaction() {
    source->data(Lsn(0x110), relation());
    source->data(Lsn(0x110), begin(0x1F0, 7));
    source->data(Lsn(0x120), insert("1"));
    source->data(Lsn(0x1F0), commit(0x1F0, 0x200));
    source->expectEventsThrough(Lsn(0x200), 1);
  }

  // The log and its appender, as a new process would open them (after a crash: whatever the
  // directory holds).
  void openLog(uint64_t spill_bytes = 4 << 20) {
    delivery.reset();
    log.reset();
    log = std::make_unique<changelog::LocalLog>(changelog::LocalLog::Options{tmp.path() / "log"});
    store.log = log.get();
    delivery = std::make_unique<pipeline::LogAppender>(*log, store, pipeline::LogAppender::Options{spill_bytes, 1ull << 30, "shop"}, nullptr);
  }
  std::vector<std::string> events() const { return committedEvents(*log); }
  std::filesystem::path segmentPath() const {
    std::filesystem::path last;
    for (const auto& e : std::filesystem::directory_iterator(tmp.path() / "log")) last = std::max(last, e.path());
    return last;
  }

  Session session() {
    events::Catalog catalog;
    catalog.type = [](TypeOid) { return std::optional<events::CatalogType>(); };
    catalog.attributes = [](RelationId) { return std::vector<events::CatalogAttribute>{}; };
    return Session(cfg, until_lsn, *delivery, *source, catalog, capture.classifier(), "db", start,
                   Logger("test"));
  }

  config::PipelineConfig cfg;
  // The captured tables by name only, as no catalog resolved them.
  CaptureSet capture{cfg, {{"public", "orders", RelationId{}}}};
  std::optional<Lsn> until_lsn;  // --until-lsn
  test::TempDir tmp{"tidemark-session"};
  FakeStore store;
  std::unique_ptr<changelog::LocalLog> log;
  std::unique_ptr<pipeline::LogAppender> delivery;
  std::unique_ptr<FakeSource> source;
  std::atomic<bool> stop{false};
  pg::Position start;
};

TEST_F(SessionTest, ConfirmsACommitOnlyAfterItsEventsAreFlushedAndSaved) {
  source->data(Lsn(0x110), relation());
  source->data(Lsn(0x110), begin(0x1F0, 7));
  source->data(Lsn(0x120), insert("1"));
  source->data(Lsn(0x130), insert("2"));
  source->data(Lsn(0x1F0), commit(0x1F0, 0x200));
  source->expectEventsThrough(Lsn(0x200), 2);
  Session s = session();
  EXPECT_EQ(s.stream(stop), StopReason::Requested);
  ASSERT_FALSE(source->statuses.empty());
  EXPECT_EQ(source->statuses.back().flush, Lsn(0x200));
  EXPECT_EQ(store.savedLsn(), Lsn(0x200));
  EXPECT_EQ(events().size(), 2u);
  EXPECT_EQ(source->finishes, 1);
}

TEST_F(SessionTest, StatusUpdatesBeforeAFlushIsDueConfirmOnlyTheDurablePosition) {
  cfg.delivery.flush_interval = std::chrono::hours(1);  // nothing becomes durable by time
  cfg.source.status_interval = std::chrono::milliseconds(0);  // a status update every turn
  firstTransaction();
  source->keepalive(Lsn(0x300), true);
  source->keepalive(Lsn(0x400), true);
  Session s = session();
  s.stream(stop);
  ASSERT_GE(source->statuses.size(), 3u);
  // Every update before the final one reports what was received, but confirms only 0x100.
  for (size_t i = 0; i + 1 < source->statuses.size(); ++i) {
    EXPECT_EQ(source->statuses[i].flush, Lsn(0x100));
  }
  EXPECT_EQ(source->statuses[source->statuses.size() - 2].write, Lsn(0x400));
  // The clean stop makes everything durable, then confirms it.
  EXPECT_EQ(source->statuses.back().flush, Lsn(0x400));
}

TEST_F(SessionTest, KeepaliveMovesThePositionWhileNoTransactionIsOpen) {
  source->keepalive(Lsn(0x500));
  Session s = session();
  s.stream(stop);
  EXPECT_EQ(store.savedLsn(), Lsn(0x500));
  EXPECT_EQ(source->statuses.back().flush, Lsn(0x500));
}

TEST_F(SessionTest, KeepaliveInsideATransactionDoesNotMoveThePosition) {
  firstTransaction();
  source->data(Lsn(0x210), begin(0x9F0, 8));
  source->data(Lsn(0x220), insert("2"));
  source->keepalive(Lsn(0x900));  // the open transaction commits later, at 0x9F0
  Session s = session();
  s.stream(stop);  // stopped with the second transaction still open
  for (const auto& st : source->statuses) EXPECT_LE(st.flush, Lsn(0x200));
  EXPECT_EQ(store.savedLsn(), Lsn(0x200));
}

TEST_F(SessionTest, CleanStopInsideATransactionDropsItsPartialOutput) {
  firstTransaction();
  source->data(Lsn(0x210), begin(0x9F0, 8));
  source->data(Lsn(0x220), insert("2"));
  source->data(Lsn(0x230), insert("3"));
  Session s = session();
  s.stream(stop);
  EXPECT_EQ(events().size(), 1u);
  EXPECT_EQ(log->endOffset(), 3u) << "the open transaction's events were committed";
  EXPECT_EQ(source->statuses.back().flush, Lsn(0x200));
}

TEST_F(SessionTest, MalformedMessageStopsWithoutConfirmingIt) {
  firstTransaction();
  source->data(Lsn(0x210), begin(0x9F0, 8));
  Bytes bad;
  bad.ch('I').u32(16384).ch('N').u16(2).ch('t').u32(1000).raw("short");
  source->data(Lsn(0x220), bad);
  Session s = session();
  EXPECT_THROW(s.stream(stop), WireError);
  for (const auto& st : source->statuses) EXPECT_LE(st.flush, Lsn(0x200));
  s.salvage();
  EXPECT_EQ(store.savedLsn(), Lsn(0x200));
  EXPECT_EQ(events().size(), 1u);
}

TEST_F(SessionTest, UntilLsnStopsBeforeATransactionCommittedAfterIt) {
  until_lsn = Lsn(0x300);
  firstTransaction();
  source->data(Lsn(0x400), begin(0x4F0, 8));
  source->data(Lsn(0x410), insert("2"));
  source->data(Lsn(0x4F0), commit(0x4F0, 0x500));
  source->stopWhenDrainedAfter(1000000);  // only --until-lsn may end this run
  Session s = session();
  EXPECT_EQ(s.stream(stop), StopReason::Until);
  EXPECT_EQ(events().size(), 1u);
  EXPECT_EQ(store.savedLsn(), Lsn(0x200));
  EXPECT_EQ(source->statuses.back().flush, Lsn(0x200));
}

TEST_F(SessionTest, AnswersAServerRequestForAReplyAtOnce) {
  cfg.source.status_interval = std::chrono::hours(1);
  cfg.delivery.flush_interval = std::chrono::hours(1);
  source->keepalive(Lsn(0x150), true);
  source->stopWhenDrainedAfter(0);
  Session s = session();
  s.stream(stop);
  // One reply for the request, one final update on stop.
  ASSERT_EQ(source->statuses.size(), 2u);
  EXPECT_EQ(source->statuses[0].write, Lsn(0x150));
  EXPECT_EQ(source->statuses[0].flush, Lsn(0x100));  // not yet durable: write and flush differ
  EXPECT_EQ(source->statuses[1].flush, Lsn(0x150));
}

TEST_F(SessionTest, HeartbeatRowsOfThisPipelineAreMeasuredNotDelivered) {
  source->data(Lsn(0x110), heartbeatRelation());
  source->data(Lsn(0x110), begin(0x1F0, 7));
  source->data(Lsn(0x120), heartbeatRow("other_pipeline", "2030-01-01 00:00:00+00"));
  source->data(Lsn(0x130), heartbeatRow("t", "2026-11-21 06:00:00.5+00"));
  source->data(Lsn(0x1F0), commit(0x1F0, 0x200));
  Session s = session();
  s.stream(stop);
  EXPECT_TRUE(events().empty());
  SessionStatus st = s.status();
  ASSERT_TRUE(st.freshness.heartbeat_written_us);
  EXPECT_EQ(*st.freshness.heartbeat_written_us, 1795240800500000LL);
  EXPECT_EQ(st.freshness.observed_written_us, st.freshness.heartbeat_written_us);
  // Durable once its commit was: delivered.
  EXPECT_EQ(st.freshness.delivered_written_us, st.freshness.heartbeat_written_us);
}

TEST_F(SessionTest, HeartbeatRowsAreDeliveredWhenAskedTo) {
  cfg.heartbeat.deliver = true;
  source->data(Lsn(0x110), heartbeatRelation());
  source->data(Lsn(0x110), begin(0x1F0, 7));
  source->data(Lsn(0x130), heartbeatRow("t", "2026-11-21 06:00:00+00"));
  source->data(Lsn(0x1F0), commit(0x1F0, 0x200));
  Session s = session();
  s.stream(stop);
  ASSERT_EQ(events().size(), 1u);
  EXPECT_NE(events()[0].find("\"table\":\"tidemark_heartbeat\""), std::string::npos);
}

TEST_F(SessionTest, CapturedCommitsMeasureFreshnessByTheirCommitTime) {
  source->data(Lsn(0x110), relation());
  // Commit time 1,000,000 us after 2000-01-01.
  source->data(Lsn(0x110), std::move(Bytes().ch('B').u64(0x1F0).u64(1000000).u32(7)));
  source->data(Lsn(0x120), insert("1"));
  source->data(Lsn(0x1F0), std::move(Bytes().ch('C').u8(0).u64(0x1F0).u64(0x200).u64(1000000)));
  Session s = session();
  s.stream(stop);
  EXPECT_EQ(s.status().freshness.observed_written_us, 946684801000000LL);
  EXPECT_FALSE(s.status().freshness.heartbeat_written_us);
}

TEST_F(SessionTest, LayerOneHeartbeatEventIsWrittenAndCommittedWithThePosition) {
  cfg.heartbeat.events = true;
  cfg.heartbeat.interval = std::chrono::milliseconds(1);
  cfg.delivery.flush_interval = std::chrono::hours(1);  // only the heartbeat commits
  source->keepalive(Lsn(0x500));
  Session s = session();
  s.stream(stop);
  ASSERT_FALSE(events().empty());
  EXPECT_EQ(events().front().rfind("{\"ts_ms\":", 0), 0u) << events().front();
  EXPECT_EQ(store.savedLsn(), Lsn(0x500));
}

TEST_F(SessionTest, WithoutKeepaliveConfirmationOnlyDataCommitsMoveThePosition) {
  cfg.source.confirm_keepalives = false;
  firstTransaction();
  source->keepalive(Lsn(0x900));
  Session s = session();
  s.stream(stop);
  EXPECT_EQ(store.savedLsn(), Lsn(0x200));
  EXPECT_EQ(source->statuses.back().flush, Lsn(0x200));
  EXPECT_EQ(source->statuses.back().write, Lsn(0x900));
}

TEST_F(SessionTest, SkipsATransactionThatCommittedBeforeTheStartPosition) {
  source->data(Lsn(0x10), relation());
  source->data(Lsn(0x10), begin(0x50, 3));
  source->data(Lsn(0x20), insert("old"));
  source->data(Lsn(0x50), commit(0x50, 0x60));
  Session s = session();
  s.stream(stop);
  EXPECT_TRUE(events().empty());
  EXPECT_EQ(store.savedLsn(), Lsn(0x100));
}

// Each captured table's schema goes into the log ahead of its first event, again when its
// columns change, and each event names the version it follows.
TEST_F(SessionTest, TheLogHoldsATablesSchemaAheadOfTheEventsThatReferToIt) {
  firstTransaction();
  source->data(Lsn(0x210), begin(0x2F0, 8));
  source->data(Lsn(0x220), insert("2"));
  source->data(Lsn(0x2F0), commit(0x2F0, 0x300));
  Bytes wider;  // the table gains a column
  wider.ch('R').u32(16384).cstr("public").cstr("orders").ch('d').u16(3);
  wider.u8(1).cstr("id").u32(23).u32(0xFFFFFFFF);
  wider.u8(0).cstr("note").u32(25).u32(0xFFFFFFFF);
  wider.u8(0).cstr("added").u32(20).u32(0xFFFFFFFF);
  source->data(Lsn(0x310), wider);
  source->data(Lsn(0x310), begin(0x3F0, 9));
  source->data(Lsn(0x320), std::move(Bytes().ch('I').u32(16384).ch('N').u16(3).text("3").text("n").text("7")));
  source->data(Lsn(0x3F0), commit(0x3F0, 0x400));
  Session s = session();
  s.stream(stop);
  std::vector<std::string> versions;  // in log order: "schema:<v>" and "event:<v>"
  std::vector<nlohmann::json> schemas;
  auto reader = log->reader(0);
  while (const changelog::StoredRecord* r = reader->next()) {
    if (changelog::isTableSchema(r->record)) {
      versions.push_back("schema:" + std::string(*changelog::headerValue(r->record, changelog::kSchemaVersionHeader)));
      schemas.push_back(nlohmann::json::parse(*r->record.value));
      EXPECT_EQ(changelog::headerValue(r->record, changelog::kTopicHeader), "t.public.orders");
    } else if (!changelog::isControl(r->record)) {
      versions.push_back("event:" + std::string(changelog::headerValue(r->record, changelog::kSchemaVersionHeader).value_or("")));
    }
  }
  ASSERT_EQ(schemas.size(), 2u);
  const std::string v1 = schemas[0]["version"], v2 = schemas[1]["version"];
  EXPECT_NE(v1, v2);
  EXPECT_EQ(versions, (std::vector<std::string>{"schema:" + v1, "event:" + v1, "event:" + v1, "schema:" + v2, "event:" + v2}));
  EXPECT_EQ(schemas[0]["key"], nlohmann::json::array({"id"}));
  EXPECT_EQ(schemas[1]["columns"].size(), 3u);
  EXPECT_EQ(schemas[1]["columns"][2]["name"], "added");
  EXPECT_EQ(schemas[1]["columns"][2]["type_oid"], 20);
  EXPECT_EQ(schemas[1]["table"], "orders");
}

// The log cannot take a commit (a full disk under state_dir): what it dropped must not be
// covered by a saved position, or the source would never send it again.
TEST_F(SessionTest, ACommitTheLogCouldNotWriteIsNeverSavedOrConfirmed) {
  firstTransaction();  // frames 0-3
  source->data(Lsn(0x210), begin(0x2F0, 8));
  source->data(Lsn(0x220), insert("2"));
  source->data(Lsn(0x2F0), commit(0x2F0, 0x300));
  std::unique_ptr<test::FileSizeLimit> full;
  source->beforeFrame(4, [&] {
    // Transaction 7 is durable; from now on no file may grow.
    full = std::make_unique<test::FileSizeLimit>(std::filesystem::file_size(segmentPath()));
  });
  Session s = session();
  EXPECT_THROW(s.stream(stop), Error);
  s.salvage();
  full.reset();
  EXPECT_EQ(store.savedLsn(), Lsn(0x200));
  for (const auto& st : source->statuses) EXPECT_LE(st.flush, Lsn(0x200));
  EXPECT_EQ(events().size(), 1u);
  EXPECT_EQ(s.durable(), Lsn(0x200));
}

TEST_F(SessionTest, ALargeTransactionAbandonedHalfWayIsAbortedInTheLog) {
  openLog(/*spill_bytes=*/64);  // every event goes to disk at once
  firstTransaction();
  source->data(Lsn(0x210), begin(0x9F0, 8));
  source->data(Lsn(0x220), insert("2"));
  source->data(Lsn(0x230), insert("3"));
  Session s = session();
  s.stream(stop);  // stopped with the second transaction open: its first part is on disk
  EXPECT_GT(log->endOffset(), 4u) << "the large transaction was not committed in parts";
  EXPECT_EQ(events().size(), 1u);
  EXPECT_EQ(source->statuses.back().flush, Lsn(0x200));
}

TEST_F(SessionTest, APartOfATransactionLeftByACrashIsAbortedAtTheNextStart) {
  openLog(/*spill_bytes=*/64);
  firstTransaction();
  source->data(Lsn(0x210), begin(0x9F0, 8));
  source->data(Lsn(0x220), insert("2"));
  {
    Session s = session();
    source->stopWhenDrainedAfter(1000000);
    source->data(Lsn(0x230), Bytes().ch('X'));  // an unknown message: the session fails here
    EXPECT_THROW(s.stream(stop), Error);
    // No salvage: the process died. The first part of transaction 8 is on disk.
  }
  ASSERT_TRUE(log->inTransaction());
  openLog();
  EXPECT_FALSE(log->inTransaction());
  EXPECT_EQ(events().size(), 1u);
  // The source sends transaction 8 again, whole.
  start.lsn = Lsn(0x200);
  source = std::make_unique<FakeSource>(store, log, stop);
  source->data(Lsn(0x110), relation());
  source->data(Lsn(0x210), begin(0x9F0, 8));
  source->data(Lsn(0x220), insert("2"));
  source->data(Lsn(0x9F0), commit(0x9F0, 0xA00));
  Session again = session();
  again.stream(stop);
  ASSERT_EQ(events().size(), 2u);
  EXPECT_NE(events()[1].find("\"op\":\"c\""), std::string::npos) << events()[1];
}

}  // namespace
}  // namespace tidemark::pg
