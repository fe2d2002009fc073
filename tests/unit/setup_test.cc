// `tidemark setup` without a server: the SQL each flavor prints, quoting of hostile names,
// the read-only pg_cron job, and the constructs that make the script safe to run twice.
#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>
#include <string>
#include <vector>

#include "base/error.h"
#include "config/config.h"
#include "ops/setup/plan.h"
#include "source/postgres/source_setup.h"

namespace tidemark::setup {
namespace {

::testing::AssertionResult contains(const std::string& haystack, const std::string& needle) {
  if (haystack.find(needle) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "the script does not contain\n" << needle << "\n--- script:\n"
                                       << haystack;
}

::testing::AssertionResult lacks(const std::string& haystack, const std::string& needle) {
  if (haystack.find(needle) == std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "the script contains\n" << needle << "\n--- script:\n" << haystack;
}

config::PipelineConfig pipeline(std::vector<config::TableName> tables = {{"public", "orders"}}) {
  config::PipelineConfig cfg;
  cfg.name = "shop";
  cfg.source.dsn = "host=db.example dbname=shop user=tidemark password=Zq9-SeCrEt";
  cfg.source.tables = std::move(tables);
  return cfg;
}

DsnTarget target(const config::PipelineConfig& cfg) { return dsnTarget(cfg.source.dsn); }

Plan plan(const config::PipelineConfig& cfg, Flavor flavor = Flavor::Postgres,
          const std::optional<ServerFacts>& facts = std::nullopt) {
  return buildPlan(cfg, flavor, target(cfg), facts, "not reachable in a unit test");
}

std::string script(const config::PipelineConfig& cfg, Flavor flavor = Flavor::Postgres,
                   const std::optional<ServerFacts>& facts = std::nullopt) {
  return renderScript(plan(cfg, flavor, facts));
}

const Block* findBlock(const Plan& p, std::string_view title) {
  for (const auto& b : p.blocks) {
    if (b.title == title) return &b;
  }
  return nullptr;
}

// The script with long comment lines joined again, for phrases the renderer may have wrapped.
std::string unwrapped(const std::string& text) {
  std::string out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("--   ") && !out.empty()) {
      out.pop_back();
      out += " " + line.substr(line.find_first_not_of(" -"));
    } else {
      out += line;
    }
    out += "\n";
  }
  return out;
}

// The lines of the script that psql would execute (outside comments).
std::vector<std::string> sqlLines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && !line.starts_with("--")) lines.push_back(line);
  }
  return lines;
}

TEST(SetupDsn, TakesUserAndDatabaseFromConninfoAndUri) {
  DsnTarget a = dsnTarget("host=db port=5432 dbname=shop user=tidemark password=x");
  EXPECT_EQ(a.user, "tidemark");
  EXPECT_EQ(a.database, "shop");
  DsnTarget b = dsnTarget("postgresql://Capture%20Role:pw@db:5432/sales?sslmode=require");
  EXPECT_EQ(b.user, "Capture Role");
  EXPECT_EQ(b.database, "sales");
}

TEST(SetupDsn, WithoutDatabaseUsesTheUserNameAsLibpqDoes) {
  ::unsetenv("PGDATABASE");
  EXPECT_EQ(dsnTarget("host=db user=capture").database, "capture");
}

TEST(SetupDsn, WithoutUserIsAConfigErrorWithAHintAndNoPassword) {
  try {
    dsnTarget("host=db dbname=shop password=Zq9-SeCrEt");
    FAIL() << "a dsn without a user was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.errorClass(), ErrorClass::Config);
    EXPECT_NE(e.hint().find("user="), std::string::npos) << e.describe();
    EXPECT_EQ(e.describe().find("Zq9-SeCrEt"), std::string::npos) << e.describe();
  }
}

TEST(SetupDsn, UnparsableDsnNeverEchoesIt) {
  try {
    dsnTarget("host=db user=x password='Zq9-SeCrEt");
    FAIL() << "an unterminated quote was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.errorClass(), ErrorClass::Config);
    EXPECT_EQ(e.describe().find("Zq9-SeCrEt"), std::string::npos) << e.describe();
  }
}

TEST(SetupFlavor, ParsesEveryNameItPrints) {
  for (Flavor f : {Flavor::Postgres, Flavor::Rds, Flavor::CloudSql, Flavor::Azure, Flavor::Supabase,
                   Flavor::Neon}) {
    EXPECT_EQ(parseFlavor(flavorName(f)), f);
  }
  EXPECT_FALSE(parseFlavor("aurora"));
}

TEST(SetupScript, PostgresCreatesALoginRoleWithReplicationAndNoPassword) {
  std::string s = script(pipeline());
  EXPECT_TRUE(contains(s, "IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tidemark') THEN"));
  EXPECT_TRUE(contains(s, "CREATE ROLE \"tidemark\" LOGIN;"));
  EXPECT_TRUE(contains(s, "ALTER ROLE \"tidemark\" REPLICATION;"));
  EXPECT_TRUE(contains(s, "\\password \"tidemark\""));
  EXPECT_TRUE(lacks(s, "SUPERUSER"));
  EXPECT_TRUE(lacks(s, "Zq9-SeCrEt"));
  for (const auto& line : sqlLines(s)) EXPECT_EQ(line.find("PASSWORD"), std::string::npos) << line;
}

TEST(SetupScript, RdsGrantsRdsReplicationInsteadOfTheAttribute) {
  std::string s = script(pipeline(), Flavor::Rds);
  EXPECT_TRUE(contains(s, "GRANT rds_replication TO \"tidemark\";"));
  EXPECT_TRUE(lacks(s, "ALTER ROLE \"tidemark\" REPLICATION"));
  EXPECT_TRUE(contains(s, "rds.logical_replication = 1"));
  Plan p = plan(pipeline(), Flavor::Rds);
  const Block* b = findBlock(p, "replication privilege");
  ASSERT_NE(b, nullptr);
  EXPECT_TRUE(contains(b->present, "pg_has_role('tidemark', 'rds_replication', 'MEMBER')"));
}

TEST(SetupScript, ManagedFlavorsGrantReplicationAndSayWhoMay) {
  struct Case {
    Flavor flavor;
    std::string says;
  };
  for (const Case& c : {Case{Flavor::CloudSql, "cloudsqlsuperuser"}, Case{Flavor::CloudSql, "cloudsql.logical_decoding"},
                        Case{Flavor::Azure, "azure_pg_admin"}, Case{Flavor::Supabase, "Supabase"},
                        Case{Flavor::Supabase, "pooler"}, Case{Flavor::Neon, "neon_superuser"},
                        Case{Flavor::Neon, "project settings"}}) {
    std::string s = script(pipeline(), c.flavor);
    EXPECT_TRUE(contains(s, "ALTER ROLE \"tidemark\" REPLICATION;")) << flavorName(c.flavor);
    EXPECT_TRUE(lacks(s, "rds_replication")) << flavorName(c.flavor);
    EXPECT_TRUE(contains(s, c.says)) << flavorName(c.flavor);
  }
}

TEST(SetupScript, GrantsConnectUsageAndSelectOnlyOnWhatIsCaptured) {
  std::string s = script(pipeline({{"public", "orders"}, {"sales", "items"}, {"public", "customers"}}));
  EXPECT_TRUE(contains(s, "GRANT CONNECT ON DATABASE \"shop\" TO \"tidemark\";"));
  EXPECT_TRUE(contains(s, "GRANT USAGE ON SCHEMA \"public\" TO \"tidemark\";\nGRANT USAGE ON SCHEMA \"sales\" TO \"tidemark\";\n"));
  EXPECT_TRUE(contains(s, "GRANT SELECT ON TABLE \"public\".\"orders\", \"sales\".\"items\", \"public\".\"customers\" TO \"tidemark\";"));
  EXPECT_TRUE(lacks(s, "ALL TABLES IN SCHEMA"));
  EXPECT_TRUE(lacks(s, "GRANT CREATE"));
}

TEST(SetupScript, TidemarkTablesAreCreatedGrantedAndPublished) {
  std::string s = script(pipeline());
  EXPECT_TRUE(contains(s, "CREATE TABLE IF NOT EXISTS \"tidemark\".\"tidemark_heartbeat\""));
  EXPECT_TRUE(contains(s, "GRANT SELECT, INSERT, UPDATE ON TABLE \"tidemark\".\"tidemark_heartbeat\" TO \"tidemark\";"));
  EXPECT_TRUE(contains(s, "CREATE TABLE IF NOT EXISTS \"tidemark\".\"tidemark_signal\""));
  EXPECT_TRUE(contains(s, "GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE \"tidemark\".\"tidemark_signal\" TO \"tidemark\";"));
  EXPECT_TRUE(contains(s, "CREATE PUBLICATION \"tidemark_pub\" FOR TABLE \"public\".\"orders\", "
                          "\"tidemark\".\"tidemark_heartbeat\", \"tidemark\".\"tidemark_signal\" "
                          "WITH (publish_via_partition_root = true);"));
  EXPECT_TRUE(contains(s, "ALTER PUBLICATION \"tidemark_pub\" ADD TABLE \"tidemark\".\"tidemark_signal\";"));
}

// Membership is what ALTER PUBLICATION ... ADD TABLE sees (pg_publication_rel, FOR ALL TABLES,
// FOR TABLES IN SCHEMA): pg_publication_tables lists a partitioned table's partitions instead
// of the table when publish_via_partition_root is off, and ADD TABLE would then fail.
TEST(SetupScript, PublicationMembershipAndPartitionRoot) {
  std::string s = script(pipeline());
  EXPECT_TRUE(contains(s, "r.prrelid = to_regclass('\"public\".\"orders\"')"));
  EXPECT_TRUE(lacks(s, "pg_publication_tables"));
  EXPECT_TRUE(contains(s, "relkind = 'p') AND NOT (SELECT pubviaroot FROM pg_publication WHERE pubname = "
                          "'tidemark_pub') THEN\n    ALTER PUBLICATION \"tidemark_pub\" SET "
                          "(publish_via_partition_root = true);"));
}

TEST(SetupScript, HeartbeatModeOffLeavesTheHeartbeatTableOut) {
  config::PipelineConfig cfg = pipeline();
  cfg.heartbeat.mode = "off";
  std::string s = script(cfg);
  EXPECT_TRUE(lacks(s, "tidemark_heartbeat"));
  EXPECT_TRUE(contains(s, "FOR TABLE \"public\".\"orders\", \"tidemark\".\"tidemark_signal\" WITH"));
}

TEST(SetupScript, EveryBlockIsIdempotent) {
  config::PipelineConfig cfg = pipeline();
  cfg.source.read_only = true;
  Plan p = plan(cfg);
  std::string s = renderScript(p);
  EXPECT_TRUE(contains(s, "CREATE SCHEMA IF NOT EXISTS \"tidemark\""));
  EXPECT_TRUE(contains(s, "IF NOT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = 'tidemark_pub') THEN"));
  EXPECT_TRUE(contains(s, "SELECT pg_create_logical_replication_slot('tidemark_slot', 'pgoutput')\n"
                          "  WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = 'tidemark_slot');"));
  // A statement that is not idempotent by itself sits in a guarded DO block, or is a GRANT
  // or ALTER ROLE ... REPLICATION, which PostgreSQL lets run again.
  for (const auto& line : sqlLines(s)) {
    bool guarded = line.find("IF NOT EXISTS") != std::string::npos;
    if (!guarded && (line.starts_with("CREATE ") || line.starts_with("ALTER PUBLICATION") ||
                     line.starts_with("SELECT cron"))) {
      ADD_FAILURE() << "unguarded statement: " << line;
    }
  }
  for (const auto& b : p.blocks) {
    if (b.kind != BlockKind::Statement || b.title == "database" || b.title == "database access") continue;
    EXPECT_FALSE(b.present.empty()) << "block " << b.title << " cannot tell --apply it is done";
  }
}

TEST(SetupScript, ParametersAreInstructionsNeverStatements) {
  Plan p = plan(pipeline());
  for (const auto& b : p.blocks) {
    if (b.kind != BlockKind::Statement) continue;
    EXPECT_EQ(b.sql.find("ALTER SYSTEM"), std::string::npos) << b.title;
    EXPECT_EQ(b.sql.find("wal_level"), std::string::npos) << b.title;
  }
  std::string s = renderScript(p);
  EXPECT_TRUE(contains(s, "--   ALTER SYSTEM SET wal_level = logical;  -- then restart PostgreSQL"));
  bool restart_said = false;
  for (const auto& b : p.blocks) {
    for (const auto& note : b.notes) restart_said = restart_said || note.find("a reload is not enough") != std::string::npos;
  }
  EXPECT_TRUE(restart_said) << "wal_level needs a restart, and the script must say so";
  // The same suggestion as tidemark check's retention guard.
  EXPECT_TRUE(contains(s, "--   ALTER SYSTEM SET max_slot_wal_keep_size = '10GB';"));
  EXPECT_TRUE(lacks(s, "50GB"));
  EXPECT_TRUE(contains(s, "wal_sender_timeout"));
  for (const auto& line : sqlLines(s)) EXPECT_EQ(line.find("ALTER SYSTEM"), std::string::npos) << line;
}

TEST(SetupScript, HostileNamesAreQuotedEverywhere) {
  config::PipelineConfig cfg = pipeline({{"public", "we\"ird"}, {"My Schema", "it's"}, {"s", "x$tidemark$y"}});
  cfg.source.dsn = "host=db dbname='Sales DB' user=TideMark";
  std::string s = script(cfg);
  EXPECT_TRUE(contains(s, "CREATE ROLE \"TideMark\" LOGIN;"));
  EXPECT_TRUE(contains(s, "WHERE rolname = 'TideMark'"));
  EXPECT_TRUE(contains(s, "GRANT CONNECT ON DATABASE \"Sales DB\" TO \"TideMark\";"));
  EXPECT_TRUE(contains(s, "\"public\".\"we\"\"ird\""));
  EXPECT_TRUE(contains(s, "GRANT USAGE ON SCHEMA \"My Schema\" TO \"TideMark\";"));
  EXPECT_TRUE(contains(s, "to_regclass('\"My Schema\".\"it''s\"')"));
  EXPECT_TRUE(contains(s, "n.nspname = 'My Schema'"));
  EXPECT_TRUE(contains(s, "to_regclass('\"public\".\"we\"\"ird\"')"));
  // The publication's DO block holds "$tidemark$" in a name, so it is quoted with another tag.
  EXPECT_TRUE(contains(s, "DO $tidemark1$"));
}

TEST(SetupScript, NamesWithNewlinesCannotEscapeAComment) {
  config::PipelineConfig cfg = pipeline({{"public", "x\nDROP TABLE y; --"}});
  ServerFacts facts;
  facts.database = "shop";
  TableFacts t;
  t.name = cfg.source.tables[0];
  facts.tables.push_back(t);  // does not exist: named in a comment
  std::string s = script(cfg, Flavor::Postgres, facts);
  EXPECT_TRUE(contains(s, "-- DROP TABLE y; -- does not exist"));
  EXPECT_TRUE(lacks(s, "\nDROP TABLE y; -- does not exist"));
}

TEST(SetupScript, ReadOnlyPrintsThePgCronJobAndGrantsOnlyReads) {
  config::PipelineConfig cfg = pipeline();
  cfg.source.read_only = true;
  std::string s = script(cfg);
  EXPECT_TRUE(contains(s, "PERFORM cron.schedule('tidemark-heartbeat-shop', '* * * * *', $hb$INSERT INTO "
                          "\"tidemark\".\"tidemark_heartbeat\" (pipeline, ts) VALUES ('shop', now()) ON "
                          "CONFLICT (pipeline) DO UPDATE SET ts = excluded.ts$hb$);"));
  EXPECT_TRUE(contains(s, "shared_preload_libraries"));
  EXPECT_TRUE(contains(s, "IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN"));
  EXPECT_TRUE(contains(s, "GRANT SELECT ON TABLE \"tidemark\".\"tidemark_heartbeat\" TO \"tidemark\";"));
  EXPECT_TRUE(lacks(s, "GRANT SELECT, INSERT, UPDATE ON TABLE \"tidemark\".\"tidemark_heartbeat\""));
  Plan p = plan(cfg);
  const Block* job = findBlock(p, "heartbeat job (pg_cron)");
  ASSERT_NE(job, nullptr);
  EXPECT_FALSE(job->precondition.empty());
}

TEST(SetupScript, ReadOnlyWithAShortIntervalMentionsSecondsSchedules) {
  config::PipelineConfig cfg = pipeline();
  cfg.source.read_only = true;
  cfg.heartbeat.interval = std::chrono::seconds(30);
  EXPECT_TRUE(contains(unwrapped(script(cfg)), "'30 seconds'"));
}

TEST(SetupScript, NotReadOnlyHasNoCronJob) {
  EXPECT_TRUE(lacks(script(pipeline()), "cron.schedule"));
}

TEST(SetupScript, WithoutAServerSaysWhatWasNotChecked) {
  std::string s = script(pipeline());
  EXPECT_TRUE(contains(s, "Not checked against the server (not reachable in a unit test)"));
  EXPECT_TRUE(contains(s, "NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)"));
}

TEST(SetupScript, ServerFactsShowParametersAndAdviseReplicaIdentity) {
  config::PipelineConfig cfg = pipeline({{"public", "orders"}, {"public", "audit_log"}});
  ServerFacts facts;
  facts.database = "shop";
  facts.server_version = "15.4";
  facts.connected_as = "tidemark";
  facts.settings = {{"wal_level", "replica"}, {"wal_sender_timeout", "1min"},
                    {"max_slot_wal_keep_size", "-1"}, {"max_replication_slots", "10"},
                    {"max_wal_senders", "10"}};
  TableFacts orders{{"public", "orders"}, true, true, 'd'};
  TableFacts audit{{"public", "audit_log"}, true, false, 'd'};
  facts.tables = {orders, audit};
  std::string s = script(cfg, Flavor::Postgres, facts);
  std::string flat = unwrapped(s);
  EXPECT_TRUE(contains(flat, "wal_level: logical -- now: replica, CHANGE IT"));
  EXPECT_TRUE(contains(s, "wal_sender_timeout: "));
  EXPECT_TRUE(contains(flat, "now: 1min, ok"));
  EXPECT_TRUE(contains(s, "--   ALTER TABLE \"public\".\"audit_log\" REPLICA IDENTITY FULL;"));
  EXPECT_TRUE(lacks(s, "\"public\".\"orders\" REPLICA IDENTITY FULL"));
  EXPECT_TRUE(contains(flat, "WARNING: public.audit_log has no primary key"));
  for (const auto& line : sqlLines(s)) EXPECT_EQ(line.find("REPLICA IDENTITY"), std::string::npos) << line;
}

TEST(SetupScript, ShortWalSenderTimeoutIsFlagged) {
  ServerFacts facts;
  facts.database = "shop";
  facts.settings = {{"wal_sender_timeout", "15s"}};
  EXPECT_TRUE(contains(unwrapped(script(pipeline(), Flavor::Postgres, facts)), "now: 15s, CHANGE IT"));
}

TEST(SetupScript, SuperuserRoleIsWarnedAbout) {
  ServerFacts facts;
  facts.database = "shop";
  facts.role = RoleFacts{true, true, true};
  EXPECT_TRUE(contains(script(pipeline(), Flavor::Postgres, facts), "WARNING: \"tidemark\" is a superuser"));
}

TEST(SetupDollarQuote, PicksATagTheBodyDoesNotContain) {
  EXPECT_EQ(dollarQuote("select 1", "tidemark"), "$tidemark$select 1$tidemark$");
  EXPECT_EQ(dollarQuote("a $tidemark$ b", "tidemark"), "$tidemark1$a $tidemark$ b$tidemark1$");
  EXPECT_EQ(dollarQuote("x $$ y", ""), "$q1$x $$ y$q1$");
  // A body ending in '$' would merge with "$$".
  EXPECT_EQ(dollarQuote("x$", ""), "$q1$x$$q1$");
}

TEST(SetupCron, ScheduleFollowsTheHeartbeatInterval) {
  using std::chrono::minutes;
  using std::chrono::seconds;
  // One schedule for setup's job and check's fix, so that setup --apply finds the job check
  // proposed and does not schedule it again.
  EXPECT_EQ(pg::heartbeatCronSchedule(std::chrono::milliseconds(300)), "1 seconds");
  EXPECT_EQ(pg::heartbeatCronSchedule(seconds(10)), "10 seconds");
  EXPECT_EQ(pg::heartbeatCronSchedule(seconds(59)), "59 seconds");
  EXPECT_EQ(pg::heartbeatCronSchedule(minutes(1)), "* * * * *");
  EXPECT_EQ(pg::heartbeatCronSchedule(seconds(90)), "* * * * *");
  EXPECT_EQ(pg::heartbeatCronSchedule(minutes(5)), "*/5 * * * *");
  EXPECT_EQ(pg::heartbeatCronSchedule(std::chrono::hours(2)), "0 * * * *");
}

}  // namespace
}  // namespace tidemark::setup
