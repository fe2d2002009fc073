// Large values stored out of line (TOAST): pgoutput does not resend an unchanged one in an
// update, so the event must say it is unavailable, not invent a value (or NULL), unless the
// old row carries it (REPLICA IDENTITY FULL).
#include <gtest/gtest.h>

#include <string>

#include <nlohmann/json.hpp>

#include "support/jsonl.h"
#include "support/pipeline_fixture.h"
#include "support/test_decoding.h"

namespace tidemark::test {
namespace {

using nlohmann::json;

class ToastTest : public PgPipelineTest {
 protected:
  // 100 kB of chained md5 hex: no repeats for pglz to find. STORAGE EXTERNAL keeps it out of
  // line and uncompressed whatever the compressor would have made of it.
  void createDocs(bool fullIdentity) {
    sql("CREATE TABLE docs (id int PRIMARY KEY, body text, note text)");
    sql("ALTER TABLE docs ALTER COLUMN body SET STORAGE EXTERNAL");
    if (fullIdentity) sql("ALTER TABLE docs REPLICA IDENTITY FULL");
  }
  void insertDoc() {
    sql("INSERT INTO docs SELECT 1, string_agg(md5(i::text || 'salt'), '' ORDER BY i), 'v1' "
        "FROM generate_series(1, 3200) i");
  }
  std::string body() { return scalar("SELECT body FROM docs WHERE id = 1"); }
};

TEST_F(ToastTest, UnchangedToastedValueIsUnavailablePlaceholderInUpdate) {
  createDocs(false);
  auto config = writeConfig(TidemarkConfig({"public.docs"}));
  ASSERT_NO_FATAL_FAILURE(initPipeline(config));
  insertDoc();
  const std::string expected = body();
  ASSERT_EQ(expected.size(), 102400u);
  ASSERT_EQ(scalar("SELECT pg_column_size(body) >= 102400 FROM docs"), "t")
      << "the body was compressed; the test needs an out-of-line, uncompressed value";
  sql("UPDATE docs SET note = 'v2' WHERE id = 1");
  RunResult r = runUntil(config, currentLsn());
  ASSERT_EQ(r.exitCode, 0) << r.description;

  auto ev = events("public.docs");
  ASSERT_EQ(ev.size(), 2u) << r.description;
  EXPECT_EQ(ev[0]["op"], "c");
  EXPECT_TRUE(ev[0]["after"]["body"] == expected) << "the inserted body differs";
  EXPECT_EQ(ev[1]["op"], "u");
  EXPECT_EQ(ev[1]["after"]["note"], "v2");
  EXPECT_EQ(ev[1]["after"]["body"], "__debezium_unavailable_value");
}

TEST_F(ToastTest, ReplicaIdentityFullFillsUnchangedToastedValueFromOldRow) {
  createDocs(true);
  auto config = writeConfig(TidemarkConfig({"public.docs"}));
  ASSERT_NO_FATAL_FAILURE(initPipeline(config));
  insertDoc();
  const std::string expected = body();
  sql("UPDATE docs SET note = 'v2' WHERE id = 1");
  sql("DELETE FROM docs WHERE id = 1");
  RunResult r = runUntil(config, currentLsn());
  ASSERT_EQ(r.exitCode, 0) << r.description;

  auto ev = events("public.docs");
  ASSERT_EQ(ev.size(), 3u) << r.description;
  EXPECT_EQ(ev[1]["op"], "u");
  EXPECT_TRUE(ev[1]["before"]["body"] == expected) << "before.body: " << ev[1]["before"]["body"].dump().substr(0, 200);
  EXPECT_TRUE(ev[1]["after"]["body"] == expected) << "after.body: " << ev[1]["after"]["body"].dump().substr(0, 200);
  EXPECT_EQ(ev[1]["before"]["note"], "v1");
  EXPECT_EQ(ev[1]["after"]["note"], "v2");
  EXPECT_EQ(ev[2]["op"], "d");
  EXPECT_TRUE(ev[2]["before"]["body"] == expected) << "delete before.body: " << ev[2]["before"]["body"].dump().substr(0, 200);
}

TEST_F(ToastTest, ChangedToastedValueIsSentInFull) {
  createDocs(false);
  auto config = writeConfig(TidemarkConfig({"public.docs"}));
  ASSERT_NO_FATAL_FAILURE(initPipeline(config));
  insertDoc();
  sql("UPDATE docs SET body = body || 'tail' WHERE id = 1");
  const std::string expected = body();
  RunResult r = runUntil(config, currentLsn());
  ASSERT_EQ(r.exitCode, 0) << r.description;
  auto ev = events("public.docs");
  ASSERT_EQ(ev.size(), 2u) << r.description;
  EXPECT_TRUE(ev[1]["after"]["body"] == expected) << ev[1]["after"]["body"].dump().substr(0, 200);
}

// A key value stored out of line and left unchanged is not resent: the server sends the old
// key beside the new row's "unchanged" marker. One update under the old key, whatever the
// replica identity, as test_decoding shows it.
class ToastedKeyTest : public PgPipelineTest,
                       public ::testing::WithParamInterface<std::string> {};

TEST_P(ToastedKeyTest, UpdateThatKeepsAToastedKeyIsOneUpdateUnderThatKey) {
  sql("CREATE TABLE tk (id text NOT NULL, v int)");
  sql("ALTER TABLE tk ALTER COLUMN id SET STORAGE EXTERNAL");
  const std::string identity = GetParam();
  if (identity == "primary key") sql("ALTER TABLE tk ADD PRIMARY KEY (id)");
  if (identity == "using index") {
    sql("CREATE UNIQUE INDEX tk_id ON tk (id)");
    sql("ALTER TABLE tk REPLICA IDENTITY USING INDEX tk_id");
  }
  if (identity == "full") {
    sql("ALTER TABLE tk ADD PRIMARY KEY (id)");
    sql("ALTER TABLE tk REPLICA IDENTITY FULL");
  }
  auto config = writeConfig(TidemarkConfig({"public.tk"}).withKeys());
  ASSERT_NO_FATAL_FAILURE(initPipeline(config));
  TestDecodingSlot server(pg(), db(), slot() + "_td");
  sql("INSERT INTO tk SELECT string_agg(md5(i::text), '' ORDER BY i), 0 FROM generate_series(1, 78) i");
  const std::string key = scalar("SELECT id FROM tk");
  sql("UPDATE tk SET v = 1");
  RunResult r = runUntil(config, currentLsn());
  ASSERT_EQ(r.exitCode, 0) << r.description;

  std::vector<DecodedChange> decoded = server.changes({"public.tk"});
  ASSERT_EQ(decoded.size(), 2u);
  const DecodedColumn* id = DecodedChange::find(decoded[1].new_tuple, "id");
  ASSERT_TRUE(id != nullptr && id->unchanged_toast) << "the key was resent; the test needs it out of line";
  auto lines = readJsonLines(topicFile("public.tk"));
  ASSERT_EQ(lines.size(), 2u) << r.description;
  EXPECT_EQ(lines[1]["value"]["op"], "u");
  EXPECT_TRUE(lines[1]["key"] == json({{"id", key}})) << lines[1]["key"].dump().substr(0, 200);
  EXPECT_TRUE(lines[1]["value"]["after"]["id"] == key);
  EXPECT_EQ(lines[1]["value"]["after"]["v"], 1);
  EXPECT_TRUE(sameChanges(decoded, events("public.tk"), {"id"}));
}

INSTANTIATE_TEST_SUITE_P(EveryIdentity, ToastedKeyTest,
                         ::testing::Values("primary key", "using index", "full"),
                         [](const ::testing::TestParamInfo<std::string>& param) {
                           std::string n = param.param;
                           for (auto& c : n) c = c == ' ' ? '_' : c;
                           return n;
                         });

TEST_F(ToastTest, KeyChangeUnderFullIdentityKeepsTheUnchangedToastedValue) {
  createDocs(true);
  auto config = writeConfig(TidemarkConfig({"public.docs"}));
  ASSERT_NO_FATAL_FAILURE(initPipeline(config));
  insertDoc();
  const std::string expected = body();
  sql("UPDATE docs SET id = 2 WHERE id = 1");
  RunResult r = runUntil(config, currentLsn());
  ASSERT_EQ(r.exitCode, 0) << r.description;
  auto ev = events("public.docs");
  ASSERT_EQ(ev.size(), 3u) << r.description;
  EXPECT_EQ(ev[1]["op"], "d");
  EXPECT_EQ(ev[2]["op"], "c");
  EXPECT_EQ(ev[2]["after"]["id"], 2);
  EXPECT_TRUE(ev[2]["after"]["body"] == expected) << ev[2]["after"]["body"].dump().substr(0, 200);
}

}  // namespace
}  // namespace tidemark::test
