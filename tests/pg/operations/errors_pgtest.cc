// Errors that send the user the right way: what is wrong, named as SQL names it, and the fix;
// configuration errors as such (exit 1, at once), not as an outage retried; and tidemark
// status working without the source's password.
#include <gtest/gtest.h>

#include <string>

#include <nlohmann/json.hpp>

#include "support/assertions.h"
#include "support/pipeline_fixture.h"
#include "support/poll.h"

namespace tidemark::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

class ErrorTextTest : public PgPipelineTest {};

TEST_F(ErrorTextTest, MissingTablesAreNamedOneALineWithTheTableOfThatNameInAnotherCase) {
  sql("CREATE SCHEMA \"Sales\"; CREATE TABLE \"Sales\".\"Order Items\" (id int PRIMARY KEY)");
  sql("CREATE TABLE orders (id int PRIMARY KEY)");
  const auto config =
      writeConfig(TidemarkConfig({"public.orders", "'Sales.\"Order Items\"'", "public.line_itemz"}));
  RunResult r = runUntil(config, currentLsn());
  EXPECT_EQ(r.exitCode, 1) << r.description;
  EXPECT_TRUE(contains(r.err, "table \"sales\".\"Order Items\" does not exist; did you mean \"Sales\".\"Order Items\"?\n"
                              "table \"public\".\"line_itemz\" does not exist"));
  EXPECT_FALSE(contains(r.err, "permission denied"));
  EXPECT_FALSE(slotExists());

  const json captured = checkEntry(config, "captured_tables");
  EXPECT_EQ(captured["outcome"], "fail");
  EXPECT_TRUE(contains(captured["saw"].get<std::string>(), "does not exist; did you mean \"Sales\".\"Order Items\"?\n"));
  EXPECT_TRUE(contains(captured["fix"].get<std::string>(), "'\"Sales\".\"Order Items\"'"));
  EXPECT_EQ(checkEntry(config, "role_privileges")["outcome"], "pass");
}

TEST_F(ErrorTextTest, AMisspelledDsnKeywordIsAConfigurationErrorNotAnOutage) {
  sql("CREATE TABLE orders (id int PRIMARY KEY)");
  const auto config = writeConfig(TidemarkConfig({"public.orders"}).withDsn(pg().dsn(db()) + " pasword=s3cr3t-x"));
  RunResult r = runTidemark({"run", "-c", config.string()}, 30s);
  EXPECT_EQ(r.exitCode, 1) << r.description;
  EXPECT_TRUE(contains(r.err, "unknown keyword \"pasword\" (did you mean \"password\"?)"));
  EXPECT_FALSE(contains(r.err, "retrying"));
  EXPECT_FALSE(contains(r.err, "s3cr3t-x"));
}

TEST_F(ErrorTextTest, AnUnknownCommandSaysSo) {
  RunResult r = runTidemark({"backfill", "-c", "x.yaml", "public.orders"});
  EXPECT_EQ(r.exitCode, 1) << r.description;
  EXPECT_TRUE(contains(r.err, "unknown command \"backfill\"; the commands are run, status, setup, check"));
}

TEST_F(ErrorTextTest, ASecondSetupApplyIsQuiet) {
  sql("CREATE TABLE orders (id int PRIMARY KEY)");
  const auto config = writeConfig(TidemarkConfig({"public.orders"}));
  RunResult first = runTidemark({"setup", "-c", config.string(), "--apply"});
  ASSERT_EQ(first.exitCode, 0) << first.description;
  RunResult second = runTidemark({"setup", "-c", config.string(), "--apply"});
  ASSERT_EQ(second.exitCode, 0) << second.description;
  EXPECT_FALSE(contains(second.out + second.err, "NOTICE")) << second.description;
}

// status reads the state store; the source's password is only for live slot figures, and
// status says which figures it shows.
TEST_F(ErrorTextTest, StatusWorksWithoutTheSourcePasswordAndSaysItsFiguresAreSaved) {
  sql("CREATE TABLE orders (id int PRIMARY KEY)");
  sql(std::string("GRANT SELECT ON orders TO ") + PgCluster::kPasswordUser);
  sql("CREATE PUBLICATION t1_pub FOR TABLE orders WITH (publish_via_partition_root = true)");
  const auto config = writeConfig(TidemarkConfig({"public.orders"})
                                      .withUser(PgCluster::kPasswordUser)
                                      .withPassword("${TIDEMARK_TEST_SOURCE_PASSWORD}"));
  setTidemarkEnv("TIDEMARK_TEST_SOURCE_PASSWORD", PgCluster::kPasswordUserPassword);
  ASSERT_NO_FATAL_FAILURE(initPipeline(config));

  // A shell without the variable: status still answers, from the store, and says the slot
  // figures are the saved ones.
  clearTidemarkEnv();
  RunResult st = runTidemark({"status", "-c", config.string(), "--json"});
  ASSERT_EQ(st.exitCode, 0) << st.description;
  json doc = json::parse(st.out);
  EXPECT_EQ(doc["state"], "stopped");
  EXPECT_EQ(doc["slot"]["figures"], "saved") << doc.dump(2);
  EXPECT_TRUE(contains(doc["slot"]["figures_note"].get<std::string>(), "could not be read now"));
  EXPECT_TRUE(doc["progress"]["backlog_bytes"].is_null()) << "a backlog the status cannot know";
  RunResult text = runTidemark({"status", "-c", config.string()});
  EXPECT_EQ(text.exitCode, 0) << text.description;
  EXPECT_TRUE(contains(text.out, "(saved at "));

  // With the password, live figures.
  setTidemarkEnv("TIDEMARK_TEST_SOURCE_PASSWORD", PgCluster::kPasswordUserPassword);
  st = runTidemark({"status", "-c", config.string(), "--json"});
  doc = json::parse(st.out);
  EXPECT_EQ(doc["slot"]["figures"], "live") << doc.dump(2);
  EXPECT_TRUE(doc["progress"]["backlog_bytes"].is_number()) << doc.dump(2);
}

}  // namespace
}  // namespace tidemark::test
