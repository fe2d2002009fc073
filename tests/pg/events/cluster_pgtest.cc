// The test harness's own PostgreSQL: if these fail, every other *_pgtest fails for the same
// reason, so they say so first.
#include <gtest/gtest.h>

#include <string>

#include "support/pg_cluster.h"

namespace tidemark::test {
namespace {

TEST(PgClusterTest, CreatesDatabaseAndRunsSql) {
  PgCluster& pg = PgCluster::shared();
  ASSERT_TRUE(pg.running());
  ASSERT_GT(pg.port(), 0);
  pg.createDatabase("cluster_smoke");
  pg.exec("cluster_smoke", "CREATE TABLE t (id int PRIMARY KEY, note text)");
  pg.exec("cluster_smoke", "INSERT INTO t VALUES (1, 'one'), (2, NULL)");
  PgRows rows = pg.exec("cluster_smoke", "SELECT id, note FROM t ORDER BY id");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0][0], "1");
  EXPECT_EQ(rows[0][1], "one");
  EXPECT_EQ(rows[1][0], "2");
  EXPECT_FALSE(rows[1][1].has_value());
  EXPECT_EQ(pg.scalar("cluster_smoke", "SELECT count(*) FROM t"), "2");
}

TEST(PgClusterTest, HasLogicalWalLevel) {
  PgCluster& pg = PgCluster::shared();
  EXPECT_EQ(pg.scalar("postgres", "SHOW wal_level"), "logical");
  EXPECT_EQ(pg.scalar("postgres", "SHOW max_replication_slots"), "20");
  EXPECT_EQ(pg.scalar("postgres", "SHOW listen_addresses"), "127.0.0.1");
}

TEST(PgClusterTest, SqlErrorCarriesServerMessage) {
  PgCluster& pg = PgCluster::shared();
  try {
    pg.exec("postgres", "SELECT * FROM no_such_table");
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("no_such_table"), std::string::npos) << e.what();
  }
}

TEST(PgClusterTest, PasswordUserConnectsWithRightPassword) {
  PgCluster& pg = PgCluster::shared();
  PgConnection c(pg.dsn("postgres", PgCluster::kPasswordUser) + " password=" +
                 PgCluster::kPasswordUserPassword);
  EXPECT_EQ(c.scalar("SELECT current_user"), PgCluster::kPasswordUser);
}

TEST(PgClusterTest, PasswordUserIsRejectedWithWrongPassword) {
  PgCluster& pg = PgCluster::shared();
  try {
    PgConnection c(pg.dsn("postgres", PgCluster::kPasswordUser) + " password=wrong-password");
    FAIL() << "connected with a wrong password";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("password authentication failed"), std::string::npos)
        << e.what();
  }
}

TEST(PgClusterTest, RestartKeepsPortAndData) {
  PgCluster& pg = PgCluster::shared();
  pg.createDatabase("cluster_restart");
  pg.exec("cluster_restart", "CREATE TABLE t (id int); INSERT INTO t VALUES (42)");
  const int port = pg.port();
  pg.restart();
  EXPECT_EQ(pg.port(), port);
  EXPECT_EQ(pg.scalar("cluster_restart", "SELECT id FROM t"), "42");
  pg.dropDatabase("cluster_restart");
}

}  // namespace
}  // namespace tidemark::test
