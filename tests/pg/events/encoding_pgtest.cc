// Databases that are not UTF-8. tidemark asks every connection for UTF-8, whatever the dsn or
// the environment say, so the server converts text (compared with test_decoding read as
// UTF-8). A SQL_ASCII database converts nothing: bytes that are not UTF-8 stop the pipeline
// naming the row, or are escaped when asked.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "support/assertions.h"
#include "support/pipeline_fixture.h"
#include "support/test_decoding.h"

namespace tidemark::test {
namespace {

using nlohmann::json;

class EncodingTest : public PgPipelineTest {
 protected:
  void TearDown() override {
    if (!other_db_.empty()) pg().dropDatabase(other_db_);
    PgPipelineTest::TearDown();
  }

  // A database of its own with `encoding`, for this test; the pipeline's config points at it.
  std::filesystem::path useDatabase(const std::string& encoding, TidemarkConfig config) {
    other_db_ = db() + "_" + encoding.substr(0, 3);
    for (auto& c : other_db_) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    pg().exec("postgres", "DROP DATABASE IF EXISTS " + other_db_);
    pg().exec("postgres", "CREATE DATABASE " + other_db_ + " ENCODING '" + encoding +
                              "' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0");
    return writeConfig(config.withDsn(pg().dsn(other_db_)));
  }
  // Runs SQL in that database from a UTF-8 client.
  void utf8Sql(const std::string& statement) {
    PgConnection conn = pg().connect(other_db_);
    conn.exec("SET client_encoding = 'UTF8'");
    conn.exec(statement);
  }
  std::string currentLsnThere() { return pg().scalar(other_db_, "SELECT pg_current_wal_lsn()"); }
  void initThere(const std::filesystem::path& config) {
    RunResult r = runUntil(config, currentLsnThere());
    ASSERT_EQ(r.exitCode, 0) << r.description;
  }
  std::string fileText(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  std::string other_db_;
};

TEST_F(EncodingTest, Latin1DatabaseTextArrivesAsUtf8WhateverTheClientEnvironmentSays) {
  const auto config = useDatabase("LATIN1", TidemarkConfig({"public.enc"}));
  utf8Sql("CREATE TABLE enc (id int PRIMARY KEY, v text)");
  initThere(config);
  TestDecodingSlot server(pg(), other_db_, slot() + "_td");
  utf8Sql("INSERT INTO enc VALUES (1, 'café ÀÉÎÕÜ ß ½ ÿ')");
  // The environment asks for LATIN1: tidemark must ask for UTF-8 anyway.
  setTidemarkEnv("PGCLIENTENCODING", "LATIN1");
  RunResult r = runUntil(config, currentLsnThere());
  ASSERT_EQ(r.exitCode, 0) << r.description;
  auto ev = events("public.enc");
  ASSERT_EQ(ev.size(), 1u) << r.description;
  EXPECT_EQ(ev[0]["after"]["v"], "café ÀÉÎÕÜ ß ½ ÿ");
  EXPECT_TRUE(sameChanges(server.changes({"public.enc"}), ev, {"id"}));
}

TEST_F(EncodingTest, SqlAsciiBytesThatAreNotUtf8StopNamingTheRowOrAreEscaped) {
  const auto config = useDatabase("SQL_ASCII", TidemarkConfig({"public.enc"}));
  utf8Sql("CREATE TABLE enc (id int PRIMARY KEY, v text)");
  initThere(config);
  const std::string confirmed = pg().scalar(
      other_db_, "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '" + slot() + "'");
  utf8Sql("INSERT INTO enc VALUES (1, 'ok'); INSERT INTO enc VALUES (2, E'caf\\xe9')");

  RunResult r = runUntil(config, currentLsnThere());
  EXPECT_EQ(r.exitCode, 2) << r.description;
  EXPECT_TRUE(contains(r.err, "public.enc (key id=2)"));
  EXPECT_TRUE(contains(r.err, "column \"v\": not valid UTF-8"));
  EXPECT_TRUE(contains(r.err, "source.invalid_utf8: escape"));
  EXPECT_EQ(pg().scalar(other_db_, "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '" +
                                       slot() + "'"),
            confirmed)
      << "the slot moved past a row that was never written";

  const json encoding = checkEntry(config, "encoding");
  EXPECT_EQ(encoding["outcome"], "warn") << encoding.dump();
  EXPECT_TRUE(contains(encoding.value("saw", ""), "SQL_ASCII"));

  // Escaped, the byte goes on as a lone surrogate a reader can turn back into 0xE9.
  const auto escaping = writeConfig(
      TidemarkConfig({"public.enc"}).withDsn(pg().dsn(other_db_)).withSourceExtra("invalid_utf8: escape"));
  r = runUntil(escaping, currentLsnThere());
  ASSERT_EQ(r.exitCode, 0) << r.description;
  const std::string written = fileText(topicFile("public.enc"));
  EXPECT_TRUE(contains(written, R"("after":{"id":1,"v":"ok"})"));
  EXPECT_TRUE(contains(written, R"("after":{"id":2,"v":"caf\udce9"})"));
}

}  // namespace
}  // namespace tidemark::test
