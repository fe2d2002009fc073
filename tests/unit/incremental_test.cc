// Incremental snapshot signals applied to the stored state, and that state's round trip
// through the stored position.
#include <gtest/gtest.h>

#include "source/postgres/incremental.h"
#include "source/postgres/position.h"

namespace tidemark::pg {
namespace {

bool capturedTable(const std::string& schema, const std::string& table) {
  return schema == "public" && (table == "a" || table == "b" || table == "we.ird");
}

SignalOutcome apply(std::optional<IncrementalState>& state, const std::string& id, const std::string& type,
                    const std::string& data) {
  return applySignal(state, Signal{id, type, data}, capturedTable);
}

TEST(IncrementalSignals, ExecuteQueuesTablesOnceWithTheirFilters) {
  std::optional<IncrementalState> state;
  SignalOutcome r = apply(state, "s1", "execute-snapshot",
                          R"({"data-collections": ["public.a", "public.b"], "type": "incremental",
                              "additional-conditions": [{"data-collection": "public.b", "filter": "v > 'x'"}]})");
  ASSERT_TRUE(r.ok) << r.message;
  ASSERT_TRUE(state);
  EXPECT_EQ(state->id, "s1");
  ASSERT_EQ(state->tables.size(), 2u);
  EXPECT_EQ(state->tables[0].table, "a");
  EXPECT_FALSE(state->tables[0].filter);
  EXPECT_EQ(state->tables[1].filter, "v > 'x'");
  // The same signal again (its transaction streamed again after a restart): nothing more.
  r = apply(state, "s1", "execute-snapshot", R"({"data-collections": ["public.a"]})");
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(state->tables.size(), 2u);
  // Another one queues behind; a table name with a dot splits at the first one.
  r = apply(state, "s2", "execute-snapshot", R"({"data-collections": ["public.we.ird"], "surrogate-key": "k"})");
  ASSERT_TRUE(r.ok) << r.message;
  EXPECT_EQ(state->tables.back().table, "we.ird");
  EXPECT_EQ(state->tables.back().surrogate_key, "k");
}

TEST(IncrementalSignals, StopPauseAndResume) {
  std::optional<IncrementalState> state;
  ASSERT_TRUE(apply(state, "s1", "execute-snapshot", R"({"data-collections": ["public.a", "public.b"]})").ok);
  EXPECT_TRUE(apply(state, "p", "pause-snapshot", "").ok);
  EXPECT_TRUE(state->paused);
  EXPECT_TRUE(apply(state, "r", "resume-snapshot", R"({"type": "incremental"})").ok);
  EXPECT_FALSE(state->paused);
  EXPECT_TRUE(apply(state, "x", "stop-snapshot", R"({"data-collections": ["public.a"]})").ok);
  ASSERT_TRUE(state);
  ASSERT_EQ(state->tables.size(), 1u);
  EXPECT_EQ(state->tables[0].table, "b");
  EXPECT_TRUE(apply(state, "y", "stop-snapshot", "{}").ok);
  EXPECT_FALSE(state);
  EXPECT_TRUE(apply(state, "z", "pause-snapshot", "").ok);  // nothing under way: said, no harm
  EXPECT_FALSE(state);
}

TEST(IncrementalSignals, RefusesWhatItCannotTakeAndLeavesTheStateAlone) {
  std::optional<IncrementalState> state;
  ASSERT_TRUE(apply(state, "s1", "execute-snapshot", R"({"data-collections": ["public.a"]})").ok);
  const IncrementalState before = *state;
  for (const auto& [type, data, why] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"execute-snapshot", "not json", "not JSON"},
           {"execute-snapshot", "[1]", "not a JSON object"},
           {"execute-snapshot", R"({"data-collections": []})", "names no table"},
           {"execute-snapshot", R"({"data-collections": ["public.c"]})", "not a captured table"},
           {"execute-snapshot", R"({"data-collections": ["nodot"]})", "not schema.table"},
           {"execute-snapshot", R"({"data-collections": ["public.a"], "type": "blocking"})", "only incremental"},
           {"execute-snapshot",
            R"({"data-collections": ["public.a"], "additional-conditions": [{"data-collection": "public.a", "filter": "1=1; DROP TABLE a"}]})",
            "has a ';'"},
           {"execute-snapshot",
            R"({"data-collections": ["public.a"], "additional-conditions": [{"data-collection": "public.b", "filter": "true"}]})",
            "which data-collections does not"},
           {"execute-snapshot", R"({"data-collections": "public.a"})", "malformed"},
           {"launch", "{}", "unknown signal type"}}) {
    SignalOutcome r = apply(state, "bad", type, data);
    EXPECT_FALSE(r.ok) << data;
    EXPECT_NE(r.message.find(why), std::string::npos) << r.message;
    EXPECT_EQ(*state, before) << data;
  }
}

TEST(IncrementalSignals, StateReadsBackFromThePosition) {
  Position p{"7301", 1, "s", Lsn{0x3000}, std::nullopt, false, {}, 0, std::nullopt};
  IncrementalState state;
  state.id = "s1";
  state.paused = true;
  state.taken = {"s1", "s2"};
  state.tables = {{"public", "a", "v > ';'", std::nullopt, std::vector<std::string>{"7", "x,'y\""},
                   std::vector<std::string>{"9", "z"}, 500},
                  {"public", "b", std::nullopt, "k", std::nullopt, std::nullopt, 0}};
  p.incremental = state;
  EXPECT_EQ(decodePosition(encodePosition(p)).incremental, p.incremental);
  p.incremental.reset();
  EXPECT_FALSE(decodePosition(encodePosition(p)).incremental);
}

}  // namespace
}  // namespace tidemark::pg
