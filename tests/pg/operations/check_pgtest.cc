// `tidemark check -c FILE --json`: a source set up as `tidemark setup` sets it up passes, and
// each condition an operator meets in practice (wal_level replica, a table left out of the
// publication, a heartbeat table the role may not write, a slot held by another client, an
// unguarded WAL retention, a slot moved past the stored position, an unreachable server) is
// produced on purpose and gives its warning or failure with the right fix.
#include <gtest/gtest.h>

#include <signal.h>

#include <chrono>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "source/postgres/source_setup.h"
#include "support/assertions.h"
#include "support/pipeline_fixture.h"
#include "support/poll.h"

namespace tidemark::test {
namespace {

using nlohmann::json;
using std::chrono::seconds;

constexpr int kCheckOk = 0;
constexpr int kCheckFailed = 2;

const std::vector<std::string> kCheckIds = {
    "connection", "server_version", "wal_level", "replication_capacity", "encoding",
    "role_privileges", "publication", "captured_tables", "slot", "stored_position",
    "heartbeat_table", "signal_table", "retention_guard", "wal_sender_timeout",
    "replica_identity", "sinks"};

struct CheckRun {
  std::optional<int> exitCode;
  json doc;                 // the --json document (null when stdout was not JSON)
  std::string description;  // for assertion messages

  // The entry of check `id`; an empty object when it is missing.
  json check(const std::string& id) const {
    if (doc.is_object() && doc.contains("checks")) {
      for (const auto& c : doc["checks"]) {
        if (c.value("id", "") == id) return c;
      }
    }
    return json::object();
  }
  std::string outcome(const std::string& id) const { return check(id).value("outcome", "(missing)"); }
  std::string saw(const std::string& id) const { return check(id).value("saw", ""); }
  std::string fix(const std::string& id) const {
    json c = check(id);
    return c.contains("fix") && c["fix"].is_string() ? c["fix"].get<std::string>() : "";
  }
};

class CheckTest : public PgPipelineTest {
 protected:
  void TearDown() override {
    PgPipelineTest::TearDown();
    // Roles are cluster-wide; the database holding their grants is gone now.
    for (const auto& role : roles_) {
      try {
        pg().exec("postgres", "DROP ROLE IF EXISTS " + role);
      } catch (const std::exception& e) {
        ADD_FAILURE() << "cannot drop role " << role << ": " << e.what();
      }
    }
  }

  CheckRun check(const std::filesystem::path& config) {
    RunResult r = runTidemark({"check", "-c", config.string(), "--json"}, seconds(60));
    CheckRun c;
    c.exitCode = r.exitCode;
    c.description = r.description;
    try {
      c.doc = json::parse(r.out);
    } catch (const json::parse_error&) {
    }
    return c;
  }

  // A login role with REPLICATION that may read `tables`, and nothing else.
  std::string createRole(const std::vector<std::string>& tables) {
    const std::string role = db() + "_role";
    roles_.push_back(role);
    pg().exec("postgres", "DROP ROLE IF EXISTS " + role);
    pg().exec("postgres", "CREATE ROLE " + role + " LOGIN REPLICATION");
    for (const auto& t : tables) sql("GRANT SELECT ON " + t + " TO " + role);
    return role;
  }

  // What `tidemark setup --apply` creates for a pipeline on the default settings: the captured
  // table's publication with the heartbeat and signal tables in it, and the slot.
  void arrangeAsSetupWould() {
    const config::TableName heartbeat{"tidemark", "tidemark_heartbeat"};
    const config::TableName signal{"tidemark", "tidemark_signal"};
    sql(pg::heartbeatTableDdl(heartbeat));
    sql(pg::signalTableDdl(signal));
    sql("CREATE PUBLICATION " + publication() +
        " FOR TABLE public.orders, tidemark.tidemark_heartbeat, tidemark.tidemark_signal");
    sql("SELECT pg_create_logical_replication_slot('" + slot() + "', 'pgoutput')");
  }

 private:
  std::vector<std::string> roles_;
};

TEST_F(CheckTest, SourceSetUpAsSetupDoesPassesWithEveryCheckListed) {
  sql("CREATE TABLE orders (id int PRIMARY KEY, note text)");
  ASSERT_NO_FATAL_FAILURE(arrangeAsSetupWould());
  const auto config = writeConfig(TidemarkConfig({"public.orders"}));

  CheckRun c = check(config);
  ASSERT_EQ(c.exitCode, kCheckOk) << c.doc.dump(2) << "\n" << c.description;
  ASSERT_TRUE(c.doc.is_object()) << c.description;
  ASSERT_EQ(c.doc["checks"].size(), kCheckIds.size()) << c.doc.dump(2);
  for (size_t i = 0; i < kCheckIds.size(); ++i) {
    const json& entry = c.doc["checks"][i];
    EXPECT_EQ(entry.value("id", ""), kCheckIds[i]);
    EXPECT_NE(entry.value("outcome", ""), "fail") << entry.dump();
    EXPECT_TRUE(entry.contains("title") && entry.contains("saw") && entry.contains("fix")) << entry.dump();
  }
  for (const char* id : {"connection", "server_version", "wal_level", "replication_capacity",
                         "encoding", "role_privileges", "publication", "captured_tables", "slot",
                         "stored_position",
                         "heartbeat_table", "signal_table", "wal_sender_timeout",
                         "replica_identity", "sinks"}) {
    EXPECT_EQ(c.outcome(id), "pass") << id << ": " << c.check(id).dump();
  }
  EXPECT_EQ(c.doc["failed"], 0);
  EXPECT_EQ(c.doc["passed"].get<int>() + c.doc["warned"].get<int>(), static_cast<int>(kCheckIds.size()));

  // The text form: one line per check, a fix line under each warning, and the summary.
  RunResult text = runTidemark({"check", "-c", config.string()}, seconds(60));
  ASSERT_EQ(text.exitCode, kCheckOk) << text.description;
  EXPECT_TRUE(contains(text.out, "PASS  wal_level: logical\n"));
  EXPECT_TRUE(contains(text.out, "passed, "));
  EXPECT_TRUE(contains(text.out, " warned, 0 failed\n"));
}

TEST_F(CheckTest, SetupApplyThenCheckPassesAndRunWorksAsTheCreatedLeastPrivilegeRole) {
  sql("CREATE TABLE orders (id int PRIMARY KEY, note text)");
  // Role names are cluster-wide and at most 63 bytes: derive a short one from the database.
  const std::string role = "tm_" + db().substr(db().size() - 8);
  const auto config = writeConfig(TidemarkConfig({"public.orders"}).withUser(role));

  RunResult setup = runTidemark({"setup", "-c", config.string(), "--apply", "--admin-dsn", pg().dsn(db())},
                                seconds(60));
  ASSERT_EQ(setup.exitCode, 0) << setup.description;
  EXPECT_EQ(scalar("SELECT rolsuper::text FROM pg_roles WHERE rolname = '" + role + "'"), "false");

  CheckRun c = check(config);
  ASSERT_EQ(c.exitCode, kCheckOk) << c.doc.dump(2) << "\n" << c.description;
  EXPECT_EQ(c.doc["failed"], 0) << c.doc.dump(2);
  for (const char* id : {"connection", "wal_level", "role_privileges", "publication", "slot", "signal_table"}) {
    EXPECT_EQ(c.outcome(id), "pass") << id << ": " << c.check(id).dump();
  }

  ASSERT_NO_FATAL_FAILURE(initPipeline(config));
  sql("INSERT INTO orders VALUES (1, 'as the role setup made')");
  RunResult r = runUntil(config, currentLsn());
  ASSERT_EQ(r.exitCode, 0) << r.description;
  auto events = this->events("public.orders");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["after"]["note"], "as the role setup made");
}

TEST_F(CheckTest, WalLevelReplicaFailsWithTheSettingAndARestart) {
  PgCluster replica;
  replica.start();
  replica.exec("postgres", "ALTER SYSTEM SET wal_level = replica");
  replica.restart();
  ASSERT_EQ(replica.scalar("postgres", "SHOW wal_level"), "replica");
  replica.createDatabase(db());
  replica.exec(db(), "CREATE TABLE orders (id int PRIMARY KEY)");
  const auto config = writeConfig(TidemarkConfig({"public.orders"}).withDsn(replica.dsn(db())));

  CheckRun c = check(config);
  EXPECT_EQ(c.exitCode, kCheckFailed) << c.description;
  EXPECT_EQ(c.outcome("wal_level"), "fail") << c.doc.dump(2);
  EXPECT_TRUE(contains(c.saw("wal_level"), "replica"));
  EXPECT_TRUE(contains(c.fix("wal_level"), "ALTER SYSTEM SET wal_level = logical"));
  EXPECT_TRUE(contains(c.fix("wal_level"), "restart PostgreSQL"));

  // setup --apply checks first and changes nothing; run names the fix.
  RunResult setup = runTidemark({"setup", "-c", config.string(), "--apply"});
  EXPECT_EQ(setup.exitCode, 1) << setup.description;
  EXPECT_TRUE(contains(setup.err, "wal_level is replica on this server; logical decoding needs logical, so "
                                  "setup --apply changed nothing"));
  EXPECT_EQ(replica.scalar(db(), "SELECT count(*) FROM pg_publication"), "0");
  EXPECT_EQ(replica.scalar(db(), "SELECT count(*) FROM pg_namespace WHERE nspname = 'tidemark'"), "0");
  RunResult run = runTidemark({"run", "-c", config.string()}, seconds(30));
  EXPECT_EQ(run.exitCode, 1) << run.description;
  EXPECT_TRUE(contains(run.err, "wal_level"));
  EXPECT_TRUE(contains(run.err, "Hint: as a superuser: ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL"));

  // Set but not yet in effect: the fix is the restart alone.
  replica.exec("postgres", "ALTER SYSTEM SET wal_level = logical");
  replica.exec("postgres", "SELECT pg_reload_conf()");
  ASSERT_EVENTUALLY(replica.scalar("postgres", "SELECT pending_restart::text FROM pg_settings "
                                               "WHERE name = 'wal_level'") == "true",
                    seconds(30));
  c = check(config);
  EXPECT_EQ(c.outcome("wal_level"), "fail") << c.doc.dump(2);
  EXPECT_TRUE(contains(c.saw("wal_level"), "waits for a restart"));
  EXPECT_TRUE(contains(c.fix("wal_level"), "restart PostgreSQL"));
  EXPECT_FALSE(contains(c.fix("wal_level"), "ALTER SYSTEM"));
}

TEST_F(CheckTest, TableMissingFromThePublicationFailsWithAlterPublication) {
  sql("CREATE TABLE orders (id int PRIMARY KEY); CREATE TABLE customers (id int PRIMARY KEY)");
  sql("CREATE PUBLICATION " + publication() + " FOR TABLE orders");
  const auto config = writeConfig(TidemarkConfig({"public.orders", "public.customers"}));

  CheckRun c = check(config);
  EXPECT_EQ(c.exitCode, kCheckFailed) << c.description;
  EXPECT_EQ(c.outcome("captured_tables"), "fail") << c.doc.dump(2);
  EXPECT_TRUE(contains(c.saw("captured_tables"), "public.customers"));
  EXPECT_TRUE(contains(c.fix("captured_tables"),
                       "ALTER PUBLICATION \"t1_pub\" ADD TABLE \"public\".\"customers\";"));
  EXPECT_FALSE(contains(c.fix("captured_tables"), "\"orders\""));

  // The fix, applied, is the whole fix.
  sql("ALTER PUBLICATION \"t1_pub\" ADD TABLE \"public\".\"customers\"");
  c = check(config);
  EXPECT_EQ(c.outcome("captured_tables"), "pass") << c.doc.dump(2);
}

TEST_F(CheckTest, HeartbeatTableTheRoleMayNotWriteFailsWithTheGrant) {
  sql("CREATE TABLE orders (id int PRIMARY KEY)");
  sql(pg::heartbeatTableDdl({"tidemark", "tidemark_heartbeat"}));
  const std::string role = createRole({"public.orders"});
  sql("GRANT USAGE ON SCHEMA tidemark TO " + role);
  sql("GRANT SELECT ON tidemark.tidemark_heartbeat TO " + role);
  const auto config = writeConfig(TidemarkConfig({"public.orders"}).withUser(role));

  CheckRun c = check(config);
  EXPECT_EQ(c.exitCode, kCheckFailed) << c.description;
  EXPECT_EQ(c.outcome("heartbeat_table"), "fail") << c.doc.dump(2);
  EXPECT_TRUE(contains(c.saw("heartbeat_table"), "lacks INSERT, UPDATE"));
  EXPECT_TRUE(contains(c.fix("heartbeat_table"),
                       "GRANT SELECT, INSERT, UPDATE ON \"tidemark\".\"tidemark_heartbeat\" TO \"" +
                           role + "\";"));
  EXPECT_EQ(c.outcome("role_privileges"), "pass") << c.check("role_privileges").dump();

  sql("GRANT INSERT, UPDATE ON tidemark.tidemark_heartbeat TO " + role);
  c = check(config);
  EXPECT_EQ(c.outcome("heartbeat_table"), "pass") << c.doc.dump(2);
}

TEST_F(CheckTest, RoleWithoutReplicationOrSelectFailsWithTheGrants) {
  sql("CREATE TABLE orders (id int PRIMARY KEY)");
  const std::string role = createRole({});
  pg().exec("postgres", "ALTER ROLE " + role + " NOREPLICATION");
  const auto config = writeConfig(TidemarkConfig({"public.orders"}).withUser(role));

  CheckRun c = check(config);
  EXPECT_EQ(c.exitCode, kCheckFailed) << c.description;
  EXPECT_EQ(c.outcome("role_privileges"), "fail") << c.doc.dump(2);
  EXPECT_TRUE(contains(c.fix("role_privileges"), "ALTER ROLE \"" + role + "\" WITH REPLICATION;"));
  EXPECT_TRUE(contains(c.fix("role_privileges"), "GRANT SELECT ON \"public\".\"orders\" TO \"" + role + "\";"));
}

TEST_F(CheckTest, SlotHeldByAnotherClientFailsNamingItsPid) {
  sql("CREATE TABLE orders (id int PRIMARY KEY)");
  const auto config = writeConfig(TidemarkConfig({"public.orders"}));
  ASSERT_NO_FATAL_FAILURE(initPipeline(config));

  // Another consumer streams from the slot, as a forgotten pg_recvlogical would.
  PgConnection other(pg().dsn(db()) + " replication=database application_name=other_consumer");
  const std::string start = "START_REPLICATION SLOT " + slot() +
                            " LOGICAL 0/0 (proto_version '1', publication_names '" + publication() + "')";
  PGresult* res = PQexec(other.get(), start.c_str());
  ASSERT_EQ(PQresultStatus(res), PGRES_COPY_BOTH) << PQerrorMessage(other.get());
  PQclear(res);
  ASSERT_EVENTUALLY(slotActive(), seconds(30));
  const std::string pid = scalar("SELECT active_pid::text FROM pg_replication_slots WHERE slot_name = '" + slot() + "'");

  CheckRun c = check(config);
  EXPECT_EQ(c.exitCode, kCheckFailed) << c.description;
  EXPECT_EQ(c.outcome("slot"), "fail") << c.doc.dump(2);
  EXPECT_TRUE(contains(c.saw("slot"), "pid " + pid));
  EXPECT_TRUE(contains(c.saw("slot"), "other_consumer"));
  EXPECT_TRUE(contains(c.fix("slot"), "SELECT pg_terminate_backend(" + pid + ");"));
  EXPECT_EQ(c.outcome("stored_position"), "pass") << c.check("stored_position").dump();
}

TEST_F(CheckTest, SlotHeldByThisPipelinesOwnRunPasses) {
  sql("CREATE TABLE orders (id int PRIMARY KEY)");
  const auto config = writeConfig(TidemarkConfig({"public.orders"}));
  ASSERT_NO_FATAL_FAILURE(initPipeline(config));
  auto run = startRun(config);
  ASSERT_EVENTUALLY(slotActive() || !run->running(), seconds(60)) << run->describe();
  ASSERT_TRUE(run->running()) << run->describe();

  CheckRun c = check(config);
  EXPECT_EQ(c.outcome("slot"), "pass") << c.doc.dump(2);
  EXPECT_TRUE(contains(c.saw("slot"), "held by this pipeline's running tidemark"));

  run->signal(SIGTERM);
  RunResult r = finish(*run);
  EXPECT_EQ(r.exitCode, 0) << r.description;
}

TEST_F(CheckTest, UnguardedRetentionWarnsAndASetLimitPasses) {
  sql("CREATE TABLE orders (id int PRIMARY KEY)");
  ASSERT_NO_FATAL_FAILURE(arrangeAsSetupWould());
  const auto config = writeConfig(TidemarkConfig({"public.orders"}));
  ASSERT_EQ(scalar("SHOW max_slot_wal_keep_size"), "-1");

  CheckRun c = check(config);
  EXPECT_EQ(c.exitCode, kCheckOk) << c.description << c.doc.dump(2);
  EXPECT_EQ(c.outcome("retention_guard"), "warn") << c.doc.dump(2);
  EXPECT_TRUE(contains(c.saw("retention_guard"), "unguarded"));
  EXPECT_TRUE(contains(c.fix("retention_guard"), "ALTER SYSTEM SET max_slot_wal_keep_size = '"));
  EXPECT_TRUE(contains(c.fix("retention_guard"), "SELECT pg_reload_conf();"));

  setSystem("max_slot_wal_keep_size", "'2GB'");
  c = check(config);
  EXPECT_EQ(c.outcome("retention_guard"), "pass") << c.doc.dump(2);
  EXPECT_TRUE(contains(c.saw("retention_guard"), "max_slot_wal_keep_size = 2GB"));
  EXPECT_TRUE(contains(c.saw("slot"), "safe_wal_size")) << c.saw("slot");
}

TEST_F(CheckTest, WalSenderTimeoutShorterThanTwoStatusIntervalsWarns) {
  sql("CREATE TABLE orders (id int PRIMARY KEY)");
  const auto config =
      writeConfig(TidemarkConfig({"public.orders"}).withSourceExtra("status_interval: 40s"));
  CheckRun c = check(config);
  EXPECT_EQ(c.outcome("wal_sender_timeout"), "warn") << c.doc.dump(2);
  EXPECT_TRUE(contains(c.fix("wal_sender_timeout"), "source.status_interval: 20000ms"));
}

TEST_F(CheckTest, SlotConfirmedBeyondTheStoredPositionFailsWithResnapshot) {
  sql("CREATE TABLE orders (id int PRIMARY KEY)");
  const auto config = writeConfig(TidemarkConfig({"public.orders"}));
  ASSERT_NO_FATAL_FAILURE(initPipeline(config));
  // Another client consumed changes tidemark never delivered: the silent-loss case.
  sql("INSERT INTO orders SELECT g FROM generate_series(1, 10) g");
  sql("SELECT pg_replication_slot_advance('" + slot() + "', pg_current_wal_lsn())");

  CheckRun c = check(config);
  EXPECT_EQ(c.exitCode, kCheckFailed) << c.description;
  EXPECT_EQ(c.outcome("stored_position"), "fail") << c.doc.dump(2);
  EXPECT_TRUE(contains(c.saw("stored_position"), "beyond the stored position"));
  EXPECT_TRUE(contains(c.fix("stored_position"), "re-snapshot"));

  sql("SELECT pg_drop_replication_slot('" + slot() + "')");
  c = check(config);
  EXPECT_EQ(c.outcome("stored_position"), "fail") << c.doc.dump(2);
  EXPECT_TRUE(contains(c.saw("stored_position"), "does not exist"));
  EXPECT_EQ(c.outcome("slot"), "fail") << c.check("slot").dump();
}

TEST_F(CheckTest, TablesWithoutAReplicaIdentityWarnWithTheAlterTable) {
  sql("CREATE TABLE orders (id int PRIMARY KEY)");
  sql("CREATE TABLE events (code text NOT NULL, note text); CREATE UNIQUE INDEX events_code ON events (code)");
  sql("CREATE TABLE logs (line text)");
  const auto config = writeConfig(TidemarkConfig({"public.orders", "public.events", "public.logs"}));

  CheckRun c = check(config);
  EXPECT_EQ(c.outcome("replica_identity"), "warn") << c.doc.dump(2);
  EXPECT_FALSE(contains(c.saw("replica_identity"), "public.orders"));
  EXPECT_TRUE(contains(c.fix("replica_identity"),
                       "ALTER TABLE \"public\".\"events\" REPLICA IDENTITY USING INDEX \"events_code\";"));
  EXPECT_TRUE(contains(c.fix("replica_identity"), "ALTER TABLE \"public\".\"logs\" REPLICA IDENTITY FULL;"));
}

TEST_F(CheckTest, UnreachableServerFailsTheConnectionAndNeverPrintsThePassword) {
  const std::string secret = "Check-SeCrEt-9";
  const auto config = writeConfig(TidemarkConfig({"public.orders"})
                                      .withDsn("host=127.0.0.1 port=1 dbname=nowhere user=postgres")
                                      .withDsnPassword(secret));
  RunResult r = runTidemark({"check", "-c", config.string(), "--json"}, seconds(60));
  EXPECT_EQ(r.exitCode, kCheckFailed) << r.description;
  EXPECT_FALSE(contains(r.out + r.err, secret));
  json doc = json::parse(r.out);
  ASSERT_EQ(doc["checks"].size(), kCheckIds.size()) << doc.dump(2);
  EXPECT_EQ(doc["checks"][0]["outcome"], "fail");
  EXPECT_TRUE(contains(doc["checks"][0]["saw"].get<std::string>(), "Connection refused"));
  EXPECT_TRUE(contains(doc["checks"][0]["fix"].get<std::string>(), "pg_hba.conf"));
  // One failure: the checks that need the connection are skipped, not failed.
  EXPECT_EQ(doc["checks"][1]["saw"], "not checked: no connection");
  EXPECT_EQ(doc["checks"][1]["outcome"], "skip");
  EXPECT_EQ(doc["failed"], 1);
  EXPECT_EQ(doc["skipped"], static_cast<int>(kCheckIds.size()) - 2);
  EXPECT_EQ(doc["checks"].back()["id"], "sinks");
  EXPECT_EQ(doc["checks"].back()["outcome"], "pass");

  RunResult text = runTidemark({"check", "-c", config.string()}, seconds(60));
  EXPECT_FALSE(contains(text.out + text.err, secret));
  EXPECT_TRUE(contains(text.out, "SKIP  server version: not checked: no connection\n"));
  EXPECT_TRUE(contains(text.out, "1 passed, 0 warned, 1 failed, 14 skipped\n"));
}

}  // namespace
}  // namespace tidemark::test
