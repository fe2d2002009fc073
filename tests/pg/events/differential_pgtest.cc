// tidemark against PostgreSQL's own decoding, under a random concurrent workload: writers
// insert, update, move between partitions, change keys and delete, in transactions of one to
// four statements, on a partitioned table, a REPLICA IDENTITY FULL table with TOASTed values
// and a table with a TOASTed text key, while tidemark streams. Every change test_decoding
// reads from a sibling slot must come out once, in order, with its values.
//
// The seed is random; a failure prints it, and TIDEMARK_TEST_SEED=<seed> replays it.
#include <gtest/gtest.h>
#include <signal.h>

#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "support/background_writer.h"
#include "support/pipeline_fixture.h"
#include "support/poll.h"
#include "support/test_decoding.h"

namespace tidemark::test {
namespace {

using namespace std::chrono_literals;

// One writer's rows and the statements it makes of them; ids are its own, so writers never
// wait for each other's row locks.
class RandomWriter {
 public:
  RandomWriter(int writer, uint64_t seed) : base_(writer * 1000000), rng_(seed) {}

  std::string transaction() {
    std::string sql;
    const int statements = 1 + static_cast<int>(rng_() % 4);
    for (int i = 0; i < statements; ++i) sql += statement() + ";";
    return sql;
  }

 private:
  struct Measurement {
    int id;
    int ts;
  };

  int pick(size_t n) { return static_cast<int>(rng_() % n); }
  std::string big(int id) {
    return "repeat(md5('" + std::to_string(id) + "'), 100) || md5(random()::text)";  // 3.2 kB
  }

  std::string statement() {
    switch (pick(10)) {
      case 0:
      case 1: {
        Measurement m{base_ + next_++, pick(300)};
        measurements_.push_back(m);
        return "INSERT INTO measurements VALUES (" + std::to_string(m.id) + ", " + std::to_string(m.ts) +
               ", 'v" + std::to_string(pick(1000)) + "')";
      }
      case 2:
        if (measurements_.empty()) return "SELECT 1";
        {
          Measurement& m = measurements_[static_cast<size_t>(pick(measurements_.size()))];
          const int old_ts = m.ts;
          m.ts = pick(300);  // often into another partition: a delete and an insert
          return "UPDATE measurements SET ts = " + std::to_string(m.ts) + ", v = 'moved' WHERE id = " +
                 std::to_string(m.id) + " AND ts = " + std::to_string(old_ts);
        }
      case 3:
        if (measurements_.empty()) return "SELECT 1";
        {
          const size_t k = static_cast<size_t>(pick(measurements_.size()));
          Measurement m = measurements_[k];
          measurements_.erase(measurements_.begin() + static_cast<long>(k));
          return "DELETE FROM measurements WHERE id = " + std::to_string(m.id) + " AND ts = " + std::to_string(m.ts);
        }
      case 4: {
        const int id = base_ + next_++;
        docs_.push_back(id);
        return "INSERT INTO docs VALUES (" + std::to_string(id) + ", " + big(id) + ", 'n0')";
      }
      case 5:
        if (docs_.empty()) return "SELECT 1";
        // The body is left alone: unchanged and TOASTed, it is not resent.
        return "UPDATE docs SET note = 'n" + std::to_string(pick(1000)) + "' WHERE id = " +
               std::to_string(docs_[static_cast<size_t>(pick(docs_.size()))]);
      case 6:
        if (docs_.empty()) return "SELECT 1";
        {
          int& id = docs_[static_cast<size_t>(pick(docs_.size()))];
          const int old_id = id;
          id = base_ + next_++;
          return "UPDATE docs SET id = " + std::to_string(id) + " WHERE id = " + std::to_string(old_id);
        }
      case 7:
        if (docs_.empty()) return "SELECT 1";
        {
          const size_t k = static_cast<size_t>(pick(docs_.size()));
          const int id = docs_[k];
          docs_.erase(docs_.begin() + static_cast<long>(k));
          return "DELETE FROM docs WHERE id = " + std::to_string(id);
        }
      case 8: {
        const int id = base_ + next_++;
        keys_.push_back(id);
        return "INSERT INTO tk VALUES (repeat(md5('" + std::to_string(id) + "'), 80), 0)";
      }
      default:
        if (keys_.empty()) return "SELECT 1";
        // The key is TOASTed and left alone: the server sends the old key.
        return "UPDATE tk SET v = v + 1 WHERE id = repeat(md5('" +
               std::to_string(keys_[static_cast<size_t>(pick(keys_.size()))]) + "'), 80)";
    }
  }

  const int base_;
  int next_ = 1;
  std::mt19937_64 rng_;
  std::vector<Measurement> measurements_;
  std::vector<int> docs_;
  std::vector<int> keys_;
};

class DifferentialTest : public PgPipelineTest {};

TEST_F(DifferentialTest, RandomConcurrentWorkloadComesOutAsTheServerDecodesIt) {
  uint64_t seed = std::random_device{}();
  if (const char* s = std::getenv("TIDEMARK_TEST_SEED")) seed = std::stoull(s);
  SCOPED_TRACE("TIDEMARK_TEST_SEED=" + std::to_string(seed));

  sql("CREATE TABLE measurements (id int, ts int, v text, PRIMARY KEY (id, ts)) PARTITION BY RANGE (ts)");
  sql("CREATE TABLE p0 PARTITION OF measurements FOR VALUES FROM (0) TO (100)");
  sql("CREATE TABLE p1 PARTITION OF measurements FOR VALUES FROM (100) TO (200)");
  sql("CREATE TABLE p2 PARTITION OF measurements FOR VALUES FROM (200) TO (300)");
  sql("CREATE TABLE docs (id int PRIMARY KEY, body text, note text)");
  sql("ALTER TABLE docs ALTER COLUMN body SET STORAGE EXTERNAL");
  sql("ALTER TABLE docs REPLICA IDENTITY FULL");
  sql("CREATE TABLE tk (id text PRIMARY KEY, v int)");
  sql("ALTER TABLE tk ALTER COLUMN id SET STORAGE EXTERNAL");
  const auto config = writeConfig(TidemarkConfig({"public.measurements", "public.docs", "public.tk"}));
  ASSERT_NO_FATAL_FAILURE(initPipeline(config));
  TestDecodingSlot server(pg(), db(), slot() + "_td");

  std::unique_ptr<Process> run;
  ASSERT_NO_FATAL_FAILURE(startStreaming(config, run));
  constexpr int kWriters = 3;
  constexpr int64_t kTransactions = 150;
  std::vector<std::unique_ptr<RandomWriter>> plans;
  std::vector<std::unique_ptr<BackgroundWriter>> writers;
  for (int w = 0; w < kWriters; ++w) {
    plans.push_back(std::make_unique<RandomWriter>(w + 1, seed + static_cast<uint64_t>(w)));
    RandomWriter* plan = plans.back().get();
    writers.push_back(std::make_unique<BackgroundWriter>(
        pg().dsn(db()), [plan](int64_t) { return plan->transaction(); }, kTransactions));
  }
  for (auto& w : writers) {
    ASSERT_TRUE(eventually([&] { return w->finished(); }, 120s)) << "a writer did not finish";
    ASSERT_EQ(w->error(), "");
  }

  // One read: the slot hands each change out once.
  std::vector<DecodedChange> measurements, docs, tk;
  for (auto& c : server.changes()) {
    if (c.table == "public.docs") docs.push_back(std::move(c));
    else if (c.table == "public.tk") tk.push_back(std::move(c));
    else if (c.table.starts_with("public.p")) measurements.push_back(std::move(c));
  }
  // Each change is at least one event; a key change or a partition move, two.
  const size_t at_least = measurements.size() + docs.size() + tk.size();
  ASSERT_TRUE(eventually(
      [&] {
        return events("public.measurements").size() + events("public.docs").size() + events("public.tk").size() >=
               at_least;
      },
      60s));
  // Caught up with the server: every change the writers committed has been delivered.
  const std::string lsn = currentLsn();
  ASSERT_TRUE(eventually([&] { return slotConfirmedFlushLsn() && parseLsn(*slotConfirmedFlushLsn()) >= parseLsn(lsn); },
                         60s))
      << run->describe();
  run->signal(SIGTERM);
  RunResult r = finish(*run);
  ASSERT_EQ(r.exitCode, 0) << r.description;

  EXPECT_TRUE(sameChanges(measurements, events("public.measurements"), {"id", "ts"}));
  EXPECT_TRUE(sameChanges(docs, events("public.docs"), {"id"}));
  EXPECT_TRUE(sameChanges(tk, events("public.tk"), {"id"}));
  // Under FULL, a body left unchanged comes from the old row, never as the placeholder.
  for (const auto& e : events("public.docs")) {
    if (e["after"].is_null()) continue;
    EXPECT_NE(e["after"]["body"], "__debezium_unavailable_value") << e.dump().substr(0, 300);
  }
}

}  // namespace
}  // namespace tidemark::test
