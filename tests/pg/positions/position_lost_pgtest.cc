// Guarantee 2 (no silent loss): when the slot cannot continue from the stored position,
// tidemark exits 3, says what happened, and writes nothing.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "support/pg_cluster.h"
#include "support/pipeline_fixture.h"

namespace tidemark::test {
namespace {

class PositionLostTest : public PgPipelineTest {
 protected:
  static constexpr int kExitPositionLost = 3;

  // A first pipeline run that delivered something and stored its position.
  void deliverFirstBatch(std::filesystem::path& config) {
    sql("CREATE TABLE orders (id int PRIMARY KEY, note text)");
    config = writeConfig(TidemarkConfig({"public.orders"}));
    ASSERT_NO_FATAL_FAILURE(initPipeline(config));
    sql("INSERT INTO orders SELECT g, 'first' FROM generate_series(1, 10) g");
    RunResult r = runUntil(config, currentLsn());
    ASSERT_EQ(r.exitCode, 0) << r.description;
    ASSERT_EQ(events("public.orders").size(), 10u) << r.description;
  }

  // Every file under the output dir with its content, to prove a run wrote nothing.
  std::map<std::string, std::string> outputSnapshot() const {
    std::map<std::string, std::string> out;
    std::error_code ec;
    if (!std::filesystem::exists(outDir(), ec)) return out;
    for (const auto& e : std::filesystem::recursive_directory_iterator(outDir())) {
      if (!e.is_regular_file()) continue;
      std::ifstream in(e.path(), std::ios::binary);
      std::ostringstream ss;
      ss << in.rdbuf();
      out[e.path().string()] = ss.str();
    }
    return out;
  }

  void expectPositionLost(const std::filesystem::path& config) {
    const auto before = outputSnapshot();
    RunResult r = runUntil(config, currentLsn());
    EXPECT_EQ(r.exitCode, kExitPositionLost) << r.description;
    EXPECT_NE(r.err.find(slot()), std::string::npos)
        << "the message should name the slot\n" << r.description;
    EXPECT_TRUE(outputSnapshot() == before) << "a run that lost its position wrote to the sink";
  }
};

TEST_F(PositionLostTest, DroppedSlotExitsThreeAndWritesNothing) {
  std::filesystem::path config;
  ASSERT_NO_FATAL_FAILURE(deliverFirstBatch(config));
  sql("SELECT pg_drop_replication_slot('" + slot() + "')");
  sql("INSERT INTO orders SELECT g, 'second' FROM generate_series(11, 20) g");
  expectPositionLost(config);
}

TEST_F(PositionLostTest, RecreatedSlotExitsThreeAndWritesNothing) {
  std::filesystem::path config;
  ASSERT_NO_FATAL_FAILURE(deliverFirstBatch(config));
  // Changes the recreated slot can never serve.
  sql("INSERT INTO orders SELECT g, 'lost' FROM generate_series(11, 20) g");
  sql("SELECT pg_drop_replication_slot('" + slot() + "')");
  sql("SELECT pg_create_logical_replication_slot('" + slot() + "', 'pgoutput')");
  sql("INSERT INTO orders SELECT g, 'after' FROM generate_series(21, 30) g");
  expectPositionLost(config);
}

TEST_F(PositionLostTest, SlotAdvancedBeyondStoredPositionExitsThreeAndWritesNothing) {
  std::filesystem::path config;
  ASSERT_NO_FATAL_FAILURE(deliverFirstBatch(config));
  sql("INSERT INTO orders SELECT g, 'skipped' FROM generate_series(11, 20) g");
  sql("SELECT pg_replication_slot_advance('" + slot() + "', pg_current_wal_lsn())");
  sql("INSERT INTO orders SELECT g, 'after' FROM generate_series(21, 30) g");
  expectPositionLost(config);
}

TEST_F(PositionLostTest, DifferentSystemIdentifierExitsThreeAndWritesNothing) {
  std::filesystem::path config;
  ASSERT_NO_FATAL_FAILURE(deliverFirstBatch(config));

  // Another server with the same database, table, publication and slot names: only its
  // system identifier tells it apart (as after a restore or a failover to a new cluster).
  PgCluster other;
  other.start();
  other.createDatabase(db());
  other.exec(db(), "CREATE TABLE orders (id int PRIMARY KEY, note text)");
  other.exec(db(), "CREATE PUBLICATION " + publication() + " FOR TABLE orders");
  other.exec(db(), "SELECT pg_create_logical_replication_slot('" + slot() + "', 'pgoutput')");
  other.exec(db(), "INSERT INTO orders SELECT g, 'other' FROM generate_series(11, 20) g");
  ASSERT_NE(other.scalar("postgres", "SELECT system_identifier::text FROM pg_control_system()"),
            scalar("SELECT system_identifier::text FROM pg_control_system()"));

  config = writeConfig(TidemarkConfig({"public.orders"}).withDsn(other.dsn(db())), "other.yaml");
  const auto before = outputSnapshot();
  RunResult r = runUntil(config, other.scalar(db(), "SELECT pg_current_wal_lsn()"));
  EXPECT_EQ(r.exitCode, kExitPositionLost) << r.description;
  EXPECT_NE(r.err.find("system identifier"), std::string::npos) << r.description;
  EXPECT_TRUE(outputSnapshot() == before) << "a run that lost its position wrote to the sink";
}

// source.snapshot.mode when_needed, on another cluster whose positions are below the stored
// one: tidemark starts over there (a new slot, a full read of tables that are empty), and the
// next run streams from that slot's positions, not from the higher one the change log held
// last.
TEST_F(PositionLostTest, WhenNeededStartsOverOnAnotherClusterAndStreamsFromItsPositions) {
  std::filesystem::path config;
  ASSERT_NO_FATAL_FAILURE(deliverFirstBatch(config));
  for (int i = 0; i < 3; ++i) {
    sql("INSERT INTO orders VALUES (" + std::to_string(100 + i) + ", 'later')");
    sql("SELECT pg_switch_wal()");
  }
  RunResult high = runUntil(config, currentLsn());
  ASSERT_EQ(high.exitCode, 0) << high.description;

  PgCluster other;
  other.start();
  other.createDatabase(db());
  other.exec(db(), "CREATE TABLE orders (id int PRIMARY KEY, note text)");
  const std::string other_lsn = other.scalar(db(), "SELECT pg_current_wal_lsn()::text");
  ASSERT_EQ(scalar("SELECT '" + other_lsn + "'::pg_lsn < pg_current_wal_lsn()"), "t")
      << "the other cluster's positions should be below this one's";

  config = writeConfig(TidemarkConfig({"public.orders"}).withDsn(other.dsn(db())).withSnapshot("when_needed"),
                       "other.yaml");
  RunResult rebuilt = runUntil(config, other_lsn);
  ASSERT_EQ(rebuilt.exitCode, 0) << rebuilt.description;
  EXPECT_NE(rebuilt.err.find("system identifier"), std::string::npos) << rebuilt.description;
  EXPECT_NE(rebuilt.err.find("initial snapshot done: 0 row(s)"), std::string::npos) << rebuilt.description;

  other.exec(db(), "INSERT INTO orders SELECT g, 'other' FROM generate_series(11, 20) g");
  RunResult next = runUntil(config, other.scalar(db(), "SELECT pg_current_wal_lsn()::text"));
  ASSERT_EQ(next.exitCode, 0) << next.description;
  size_t from_other = 0;
  for (const auto& e : events("public.orders")) from_other += e["after"]["note"] == "other" ? 1 : 0;
  EXPECT_EQ(from_other, 10u) << next.description;
}

}  // namespace
}  // namespace tidemark::test
