// A source that goes away for a minute: run keeps retrying (status says so, with the error and
// when it gives up), and when the server is back it goes on from where it was, losing nothing
// and writing nothing twice.
#include <gtest/gtest.h>
#include <signal.h>

#include <set>
#include <string>
#include <thread>

#include "support/pipeline_fixture.h"
#include "support/poll.h"

namespace tidemark::test {
namespace {

using namespace std::chrono_literals;

class SourceOutageTest : public PgPipelineTest {};

TEST_F(SourceOutageTest, ASourceDownForAMinuteIsRetriedAndNothingIsLost) {
  sql("CREATE TABLE c (id int PRIMARY KEY)");
  const auto config = writeConfig(TidemarkConfig({"public.c"}).withTopLevel("retry:\n  max_backoff: 4s"));
  ASSERT_NO_FATAL_FAILURE(initPipeline(config));
  std::unique_ptr<Process> run;
  ASSERT_NO_FATAL_FAILURE(startStreaming(config, run));
  sql("INSERT INTO c SELECT generate_series(1, 100)");
  ASSERT_EVENTUALLY(events("public.c").size() == 100, 30s) << run->describe();

  pg().halt();
  StatusResult st;
  ASSERT_TRUE(statusEventually(
      config, [](const StatusResult& s) { return s.json && (*s.json)["state"] == "retrying"; }, 30s, &st))
      << describeStatus(st) << run->describe();
  // Well past the six attempts (about 16 s) that used to end the run.
  std::this_thread::sleep_for(60s);
  ASSERT_TRUE(run->running()) << "run gave up on a source down for a minute\n" << run->describe();
  st = status(config);
  ASSERT_TRUE(st.json) << st.description;
  EXPECT_EQ((*st.json)["state"], "retrying") << describeStatus(st);
  EXPECT_GE(jsonAt(*st.json, "retry.attempt").value_or(0).get<int>(), 5) << describeStatus(st);
  EXPECT_TRUE(isNonNull(jsonAt(*st.json, "retry.last_error"))) << describeStatus(st);
  EXPECT_TRUE(isNonNull(jsonAt(*st.json, "retry.gives_up_at"))) << describeStatus(st);

  pg().start();
  sql("INSERT INTO c SELECT generate_series(101, 200)");
  ASSERT_EVENTUALLY(events("public.c").size() >= 200, 60s) << run->describe();
  ASSERT_TRUE(statusEventually(
      config, [](const StatusResult& s) { return s.json && (*s.json)["state"] == "running"; }, 30s, &st))
      << describeStatus(st);
  EXPECT_TRUE(jsonAt(*st.json, "retry").value_or(nullptr).is_null()) << describeStatus(st);
  run->signal(SIGTERM);
  RunResult r = finish(*run);
  ASSERT_EQ(r.exitCode, 0) << r.description;
  std::multiset<int> ids;
  for (const auto& e : events("public.c")) ids.insert(e["after"]["id"].get<int>());
  EXPECT_EQ(ids.size(), 200u);
  for (int i = 1; i <= 200; ++i) EXPECT_EQ(ids.count(i), 1u) << "id " << i;
}

}  // namespace
}  // namespace tidemark::test
