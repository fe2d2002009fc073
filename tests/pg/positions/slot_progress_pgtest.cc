// A slot whose captured tables are idle must still advance while other tables take writes,
// or the server keeps all that WAL for it.
#include <gtest/gtest.h>

#include <signal.h>

#include <chrono>
#include <string>

#include "support/background_writer.h"
#include "support/pipeline_fixture.h"
#include "support/poll.h"

namespace tidemark::test {
namespace {

using std::chrono::seconds;

class SlotProgressTest : public PgPipelineTest {};

TEST_F(SlotProgressTest, ConfirmedFlushAdvancesWhileOnlyUncapturedTablesChange) {
  sql("CREATE TABLE orders (id int PRIMARY KEY)");
  sql("CREATE TABLE noise (id bigserial PRIMARY KEY, payload text)");
  auto config = writeConfig(TidemarkConfig({"public.orders"}));
  ASSERT_NO_FATAL_FAILURE(initPipeline(config));

  auto p = startRun(config);
  ASSERT_EVENTUALLY(slotActive() || !p->running(), seconds(60)) << p->describe();
  ASSERT_TRUE(p->running()) << p->describe();
  const auto startConfirmed = slotConfirmedFlushLsn();
  ASSERT_TRUE(startConfirmed.has_value());

  BackgroundWriter writer(pg().dsn(db()), [](int64_t) {
    return std::string("INSERT INTO noise (payload) SELECT md5(g::text) FROM generate_series(1, 200) g");
  });
  ASSERT_EVENTUALLY(writer.committed() >= 50 || writer.finished(), seconds(60));
  const std::string target = currentLsn();
  ASSERT_GT(parseLsn(target), parseLsn(*startConfirmed));

  // The writes go on while we wait: the slot has to follow a moving target, as in production.
  ASSERT_EVENTUALLY(parseLsn(slotConfirmedFlushLsn().value_or("0/0")) >= parseLsn(target) ||
                        !p->running(),
                    seconds(90))
      << "confirmed_flush_lsn stayed at " << slotConfirmedFlushLsn().value_or("(none)")
      << ", wanted at least " << target << "\n"
      << p->describe();
  EXPECT_TRUE(p->running()) << p->describe();
  writer.stop();
  EXPECT_EQ(writer.error(), "");

  p->signal(SIGTERM);
  RunResult r = finish(*p, seconds(60));
  EXPECT_EQ(r.exitCode, 0) << r.description;
  EXPECT_TRUE(events("public.orders").empty());
  EXPECT_FALSE(std::filesystem::exists(topicFile("public.noise")));
}

}  // namespace
}  // namespace tidemark::test
