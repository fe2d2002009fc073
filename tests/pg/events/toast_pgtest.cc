// Large values stored out of line (TOAST): pgoutput does not resend an unchanged one in an
// update, so the event must say it is unavailable, not invent a value (or NULL), unless the
// old row carries it (REPLICA IDENTITY FULL).
#include <gtest/gtest.h>

#include <string>

#include <nlohmann/json.hpp>

#include "support/pipeline_fixture.h"

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

}  // namespace
}  // namespace tidemark::test
