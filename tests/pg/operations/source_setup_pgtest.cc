// What tidemark does to the source before streaming: the publication it creates or checks,
// and the errors that say what to run when it cannot.
#include <gtest/gtest.h>

#include "support/pipeline_fixture.h"

namespace tidemark::test {
namespace {

class SourceSetupTest : public PgPipelineTest {
 protected:
  static constexpr int kExitUsage = 1;

  void SetUp() override {
    PgPipelineTest::SetUp();
    sql("CREATE TABLE orders (id int PRIMARY KEY, note text)");
    sql("CREATE TABLE customers (id int PRIMARY KEY)");
    sql("CREATE TABLE other (id int PRIMARY KEY)");
  }

  // A login role with REPLICATION that may read the tables but owns none of them. Roles are
  // cluster-wide, so the name carries the test's database.
  std::string replicationRole() {
    std::string role = "rep_" + db();
    sql("CREATE ROLE " + role + " LOGIN REPLICATION");
    sql("GRANT SELECT ON ALL TABLES IN SCHEMA public TO " + role);
    return role;
  }
};

TEST_F(SourceSetupTest, PublicationThatTheRoleMayNotCreateIsAConfigErrorWithTheSql) {
  auto config = writeConfig(TidemarkConfig({"public.orders"}).withUser(replicationRole()));
  RunResult r = runUntil(config, currentLsn());
  EXPECT_EQ(r.exitCode, kExitUsage) << r.description;
  EXPECT_NE(r.err.find("permission denied"), std::string::npos) << r.description;
  EXPECT_NE(r.err.find("CREATE PUBLICATION \"t1_pub\" FOR TABLE \"public\".\"orders\""), std::string::npos)
      << r.description;
  EXPECT_FALSE(slotExists());
}

TEST_F(SourceSetupTest, ExistingPublicationMissingATableIsAConfigErrorWithTheFix) {
  sql("CREATE PUBLICATION t1_pub FOR TABLE orders");
  auto config = writeConfig(TidemarkConfig({"public.orders", "public.customers"}));
  RunResult r = runUntil(config, currentLsn());
  EXPECT_EQ(r.exitCode, kExitUsage) << r.description;
  EXPECT_NE(r.err.find("ALTER PUBLICATION \"t1_pub\" ADD TABLE \"public\".\"customers\""), std::string::npos)
      << r.description;
  EXPECT_FALSE(slotExists());
}

TEST_F(SourceSetupTest, MissingTableIsAConfigErrorNamingIt) {
  auto config = writeConfig(TidemarkConfig({"public.orders", "public.nosuchtable"}));
  RunResult r = runUntil(config, currentLsn());
  EXPECT_EQ(r.exitCode, kExitUsage) << r.description;
  EXPECT_NE(r.err.find("nosuchtable"), std::string::npos) << r.description;
}

TEST_F(SourceSetupTest, RunsAsAReplicationRoleThatIsNotASuperuser) {
  sql("CREATE PUBLICATION t1_pub FOR TABLE orders");
  auto config = writeConfig(TidemarkConfig({"public.orders"}).withUser(replicationRole()));
  ASSERT_NO_FATAL_FAILURE(initPipeline(config));
  sql("INSERT INTO orders VALUES (1, 'as a replication role')");
  RunResult r = runUntil(config, currentLsn());
  ASSERT_EQ(r.exitCode, 0) << r.description;
  auto events = this->events("public.orders");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["after"]["note"], "as a replication role");
}

TEST_F(SourceSetupTest, TablesThePublicationCoversButTheConfigurationDoesNotAreNotDelivered) {
  sql("CREATE PUBLICATION t1_pub FOR ALL TABLES");
  auto config = writeConfig(TidemarkConfig({"public.orders"}));
  ASSERT_NO_FATAL_FAILURE(initPipeline(config));
  sql("INSERT INTO other VALUES (1)");
  sql("INSERT INTO orders VALUES (2, 'captured')");
  sql("TRUNCATE other");
  RunResult r = runUntil(config, currentLsn());
  ASSERT_EQ(r.exitCode, 0) << r.description;
  EXPECT_EQ(events("public.orders").size(), 1u);
  EXPECT_FALSE(std::filesystem::exists(topicFile("public.other")));
}

}  // namespace
}  // namespace tidemark::test
