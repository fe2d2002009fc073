// `tidemark setup` against a real server: --apply on a fresh database leaves a role that is
// not a superuser and with which `tidemark run` captures changes; applying twice is a no-op;
// the printed script does the same through psql; hostile names survive.
#include <gtest/gtest.h>

#include <fstream>

#include "support/pipeline_fixture.h"

namespace tidemark::test {
namespace {

class SetupTest : public PgPipelineTest {
 protected:
  void TearDown() override {
    PgPipelineTest::TearDown();
    // Roles are cluster-wide; drop the test's once its database (and every grant in it) is gone.
    for (const auto& role : roles_) {
      try {
        pg().exec("postgres", "DROP ROLE IF EXISTS " + quoteIdent(role));
      } catch (const std::exception& e) {
        ADD_FAILURE() << "cleanup of role " << role << " failed: " << e.what();
      }
    }
  }

  static std::string quoteIdent(const std::string& name) {
    std::string out = "\"";
    for (char c : name) out += c == '"' ? std::string("\"\"") : std::string(1, c);
    return out + "\"";
  }
  static std::string quoteLit(const std::string& value) {
    std::string out = "'";
    for (char c : value) out += c == '\'' ? std::string("''") : std::string(1, c);
    return out + "'";
  }

  // A role name of this test (roles are shared by all tests on the server).
  std::string newRole(const std::string& prefix) {
    roles_.push_back(prefix + db());
    return roles_.back();
  }

  RunResult setupApply(const std::filesystem::path& config) {
    return runTidemark({"setup", "-c", config.string(), "--apply", "--admin-dsn", pg().dsn(db())});
  }

  std::string roleAttribute(const std::string& role, const std::string& column) {
    return scalar("SELECT " + column + " FROM pg_roles WHERE rolname = " + quoteLit(role));
  }

 private:
  std::vector<std::string> roles_;
};

TEST_F(SetupTest, ApplyOnAFreshDatabaseThenRunAsTheCreatedRoleCapturesAnInsert) {
  sql("CREATE TABLE orders (id int PRIMARY KEY, note text)");
  const std::string role = newRole("cap_");
  auto config = writeConfig(TidemarkConfig({"public.orders"}).withUser(role));

  RunResult first = setupApply(config);
  ASSERT_EQ(first.exitCode, 0) << first.description;
  EXPECT_NE(first.out.find("role: ok"), std::string::npos) << first.description;
  EXPECT_NE(first.out.find("replication slot: ok"), std::string::npos) << first.description;
  EXPECT_EQ(roleAttribute(role, "rolsuper"), "f");
  EXPECT_EQ(roleAttribute(role, "rolreplication"), "t");
  EXPECT_EQ(roleAttribute(role, "rolcanlogin"), "t");
  EXPECT_TRUE(slotExists());
  EXPECT_EQ(scalar("SELECT count(*) FROM pg_publication_tables WHERE pubname = 't1_pub'"), "3");
  EXPECT_EQ(scalar("SELECT pg_get_userbyid(pubowner) FROM pg_publication WHERE pubname = 't1_pub'"),
            "postgres");

  RunResult again = setupApply(config);
  ASSERT_EQ(again.exitCode, 0) << again.description;
  for (const char* block : {"role", "replication privilege", "captured tables", "heartbeat table",
                            "signal table", "publication", "replication slot"}) {
    EXPECT_NE(again.out.find(std::string(block) + ": skipped (already present)"), std::string::npos)
        << block << "\n" << again.description;
  }

  sql("INSERT INTO orders VALUES (1, 'after setup')");
  RunResult run = runUntil(config, currentLsn());
  ASSERT_EQ(run.exitCode, 0) << run.description;
  auto events = this->events("public.orders");
  ASSERT_EQ(events.size(), 1u) << run.description;
  EXPECT_EQ(events[0]["after"]["note"], "after setup");
  EXPECT_EQ(run.err.find("permission denied"), std::string::npos) << run.description;
  // The heartbeat table was found and published: no fall-back to Layer 1 only.
  EXPECT_EQ(run.err.find("Layer 1 heartbeats only"), std::string::npos) << run.description;
  // And the role may write its heartbeat row, as the pipeline does while the tables are idle.
  PgConnection asRole = pg().connect(db(), role);
  asRole.exec("INSERT INTO tidemark.tidemark_heartbeat (pipeline, ts) VALUES ('t1', now()) "
              "ON CONFLICT (pipeline) DO UPDATE SET ts = excluded.ts");
  EXPECT_EQ(asRole.scalar("SELECT count(*) FROM tidemark.tidemark_heartbeat"), "1");
}

TEST_F(SetupTest, PrintedScriptPipedIntoPsqlSetsUpTheSameWay) {
  sql("CREATE TABLE orders (id int PRIMARY KEY, note text)");
  const std::string role = newRole("psql_");
  auto config = writeConfig(TidemarkConfig({"public.orders"}).withUser(role));

  RunResult printed = runTidemark({"setup", "-c", config.string()});
  ASSERT_EQ(printed.exitCode, 0) << printed.description;
  // The role does not exist yet, so printing could not ask the server and says so.
  EXPECT_NE(printed.out.find("Not checked against the server"), std::string::npos) << printed.out;
  const auto script = tmp().path() / "setup.sql";
  std::ofstream(script) << printed.out;

  for (int pass = 0; pass < 2; ++pass) {
    Process psql({"psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", pg().dsn(db()), "-f", script.string()});
    ASSERT_EQ(psql.waitExit(std::chrono::seconds(60)), 0) << "pass " << pass << "\n" << psql.describe();
  }
  EXPECT_EQ(roleAttribute(role, "rolsuper"), "f");
  ASSERT_TRUE(slotExists());

  sql("INSERT INTO orders VALUES (7, 'via psql')");
  RunResult run = runUntil(config, currentLsn());
  ASSERT_EQ(run.exitCode, 0) << run.description;
  auto events = this->events("public.orders");
  ASSERT_EQ(events.size(), 1u) << run.description;
  EXPECT_EQ(events[0]["after"]["note"], "via psql");
}

TEST_F(SetupTest, HostileNamesAreQuotedAndWork) {
  sql("CREATE SCHEMA \"My Schema\"");
  sql("CREATE TABLE \"My Schema\".\"we\"\"ird\" (id int PRIMARY KEY, note text)");
  const std::string role = newRole("Cap Role ");
  auto config = writeConfig(
      TidemarkConfig({"'\"My Schema\".\"we\"\"ird\"'"})
          .withDsn("host=127.0.0.1 port=" + std::to_string(pg().port()) + " dbname=" + db() +
                   " user='" + role + "'"));

  RunResult applied = setupApply(config);
  ASSERT_EQ(applied.exitCode, 0) << applied.description;
  EXPECT_EQ(roleAttribute(role, "rolsuper"), "f");
  EXPECT_EQ(scalar("SELECT has_table_privilege(" + quoteLit(role) +
                   ", '\"My Schema\".\"we\"\"ird\"', 'SELECT')"),
            "t");

  sql("INSERT INTO \"My Schema\".\"we\"\"ird\" VALUES (1, 'odd names')");
  RunResult run = runUntil(config, currentLsn());
  ASSERT_EQ(run.exitCode, 0) << run.description;
  size_t found = 0;
  for (const auto& e : allEvents()) {
    if (e.contains("after") && e["after"].is_object() && e["after"].value("note", "") == "odd names") ++found;
  }
  EXPECT_EQ(found, 1u) << run.description;
}

TEST_F(SetupTest, ApplyAsARoleThatIsNotAnAdministratorStopsWithTheBlockAndAHint) {
  sql("CREATE TABLE orders (id int PRIMARY KEY)");
  const std::string weak = newRole("weak_");
  sql("CREATE ROLE " + weak + " LOGIN");
  auto config = writeConfig(TidemarkConfig({"public.orders"}).withUser(weak));
  RunResult r = runTidemark({"setup", "-c", config.string(), "--apply"});
  EXPECT_EQ(r.exitCode, 2) << r.description;
  EXPECT_NE(r.err.find("SQLSTATE 42501"), std::string::npos) << r.description;
  EXPECT_NE(r.err.find("--admin-dsn"), std::string::npos) << r.description;
  EXPECT_NE(r.out.find(": FAILED"), std::string::npos) << r.description;
}

TEST_F(SetupTest, ApplyRefusesToPublishATableWithoutReplicaIdentity) {
  sql("CREATE TABLE events (at timestamptz, what text)");
  const std::string role = newRole("ri_");
  auto config = writeConfig(TidemarkConfig({"public.events"}).withUser(role));
  RunResult r = setupApply(config);
  EXPECT_EQ(r.exitCode, 1) << r.description;
  EXPECT_NE(r.err.find("ALTER TABLE \"public\".\"events\" REPLICA IDENTITY FULL"), std::string::npos)
      << r.description;
  EXPECT_EQ(scalar("SELECT count(*) FROM pg_publication"), "0");

  sql("ALTER TABLE events REPLICA IDENTITY FULL");
  RunResult ok = setupApply(config);
  EXPECT_EQ(ok.exitCode, 0) << ok.description;
}

TEST_F(SetupTest, ReadOnlyApplyWithoutPgCronWarnsAndLeavesTheJobToTheAdministrator) {
  sql("CREATE TABLE orders (id int PRIMARY KEY)");
  const std::string role = newRole("ro_");
  auto config = writeConfig(TidemarkConfig({"public.orders"}).withUser(role).withSourceExtra("read_only: true"));
  RunResult r = setupApply(config);
  ASSERT_EQ(r.exitCode, 0) << r.description;
  EXPECT_NE(r.out.find("heartbeat job (pg_cron): not run"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("WARNING: pg_cron is not installed"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("SELECT cron.schedule('tidemark-heartbeat-t1'"), std::string::npos) << r.out;
  EXPECT_EQ(scalar("SELECT has_table_privilege(" + quoteLit(role) + ", 'tidemark.tidemark_heartbeat', 'INSERT')"), "f");
}

TEST_F(SetupTest, PrintingAgainstTheServerShowsParametersAndTheRole) {
  sql("CREATE TABLE orders (id int PRIMARY KEY)");
  auto config = writeConfig(TidemarkConfig({"public.orders"}));
  RunResult r = runTidemark({"setup", "-c", config.string()});
  ASSERT_EQ(r.exitCode, 0) << r.description;
  EXPECT_NE(r.out.find("Checked against the server"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("wal_level: logical -- now: logical, ok"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("WARNING: \"postgres\" is a superuser"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace tidemark::test
