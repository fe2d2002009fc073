// The status document, the Prometheus metrics, and the HTTP endpoint's token comparison.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <regex>
#include <sstream>

#include <nlohmann/json.hpp>

#include "base/clock.h"
#include "ops/http/server.h"
#include "pipeline/status.h"

namespace tidemark::pipeline {
namespace {

config::PipelineConfig pipelineConfig() {
  config::PipelineConfig cfg;
  cfg.name = "shop";
  cfg.source.slot = "tidemark_slot";
  config::SinkConfig sink;
  sink.name = "files";
  sink.kind = "jsonl";
  cfg.sinks.push_back(sink);
  return cfg;
}

StatusInput sampleInput(const std::string& sink_name = "files") {
  StatusInput in;
  in.state = PipelineState::Running;
  in.pid = 42;
  in.now_us = 1'800'000'000'000'000;
  in.session.received = Lsn(0x3000);
  in.session.durable = Lsn(0x2000);
  in.session.acknowledged = Lsn(0x1000);
  in.session.events_delivered = 7;
  in.session.freshness.observed_written_us = in.now_us - 1'500'000;
  in.session.freshness.observed_at_us = in.now_us - 1'490'000;
  in.session.freshness.delivered_written_us = in.now_us - 1'500'000;
  in.session.freshness.delivered_at_us = in.now_us - 1'400'000;
  in.session.freshness.delivered_offset = 40;
  SinkStatus sink;
  sink.name = sink_name;
  sink.kind = "jsonl";
  sink.log_end = 50;
  sink.worker.state = "running";
  sink.worker.durable_cursor = 45;
  sink.worker.read_cursor = 50;
  sink.worker.caught_up_at_us = in.now_us - 3'000'000;
  // Saved past offset 40 at now - 1.4 s: delivered 100 ms after it was written.
  sink.worker.saves = {{30, in.now_us - 2'000'000}, {45, in.now_us - 1'400'000}};
  in.sinks.push_back(sink);
  in.log = LogFigures{8192, 1 << 20, 0, 50, 45, sink_name};
  pg::SlotFigures slot;
  slot.confirmed_flush_lsn = Lsn(0x1000);
  slot.restart_lsn = Lsn(0x800);
  slot.retained_wal_bytes = 4096;
  slot.wal_status = "reserved";
  slot.active = true;
  slot.checked_at_us = in.now_us;
  in.monitor.slot = slot;
  return in;
}

TEST(StatusDocument, HasTheKeysScriptsRelyOn) {
  auto j = nlohmann::json::parse(renderStatus(pipelineConfig(), sampleInput()));
  EXPECT_EQ(j["state"], "running");
  EXPECT_EQ(j["pid"], 42);
  EXPECT_EQ(j["heartbeat"]["age_ms"], 1500);
  EXPECT_EQ(j["heartbeat"]["e2e_lag_ms"], 10);
  EXPECT_EQ(j["heartbeat"]["sinks"]["files"]["delivered_lag_ms"], 100);
  EXPECT_EQ(j["slot"]["confirmed_flush_lsn"], "0/1000");
  EXPECT_EQ(j["slot"]["retained_wal_bytes"], 4096);
  EXPECT_EQ(j["positions"]["durable_lsn"], "0/2000");
  EXPECT_EQ(j["positions"]["acknowledged_lsn"], "0/1000");
  EXPECT_TRUE(j["reason"].is_null());
  EXPECT_EQ(j["sinks"]["files"]["state"], "running");
  EXPECT_EQ(j["sinks"]["files"]["position"], 45);
  EXPECT_EQ(j["sinks"]["files"]["lag_records"], 5);
  EXPECT_EQ(j["sinks"]["files"]["lag_seconds"], 3);
  EXPECT_EQ(j["log"]["size_bytes"], 8192);
  EXPECT_EQ(j["log"]["oldest_unconsumed_offset"], 45);
  EXPECT_EQ(j["log"]["held_by"], "files");
}

TEST(StatusDocument, ASinkBehindTheLatestHeartbeatHasNotDeliveredIt) {
  StatusInput in = sampleInput();
  in.sinks[0].worker.saves = {{30, in.now_us - 2'000'000}};
  auto j = nlohmann::json::parse(renderStatus(pipelineConfig(), in));
  EXPECT_TRUE(j["heartbeat"]["sinks"]["files"]["delivered_at"].is_null()) << j.dump();
}

TEST(StatusDocument, UnknownFiguresAreNull) {
  StatusInput in;
  in.state = PipelineState::Stopped;
  in.reason = "stopped by a signal";
  auto j = nlohmann::json::parse(renderStatus(pipelineConfig(), in));
  EXPECT_EQ(j["state"], "stopped");
  EXPECT_TRUE(j["pid"].is_null());
  EXPECT_TRUE(j["heartbeat"]["age_ms"].is_null());
  EXPECT_TRUE(j["slot"]["confirmed_flush_lsn"].is_null());
  EXPECT_TRUE(j["positions"]["durable_lsn"].is_null());
}

TEST(IsoTime, RoundTripsWithMillisecondPrecision) {
  EXPECT_EQ(isoTime(1'795'240'016'876'543), "2026-11-21T05:46:56.876Z");
  EXPECT_EQ(parseIsoTime("2026-11-21T05:46:56.876Z"), 1'795'240'016'876'000);
  EXPECT_FALSE(parseIsoTime("2026-11-21 05:46:56"));
}

// A snapshot half-way: rows per table, the estimate where the planner has one, the rate and
// what is left; in the metrics per table.
TEST(StatusDocument, SnapshotProgressPerTableWithRateAndEta) {
  StatusInput in = sampleInput();
  pg::SnapshotProgress snap;
  snap.started_us = in.now_us - 10'000'000;
  snap.tables = {{.name = "public.a", .rows = 600, .estimated = 500, .done = true},
                 {.name = "public.b", .rows = 400, .estimated = 2000, .done = false}};
  in.session.snapshot = snap;
  auto j = nlohmann::json::parse(renderStatus(pipelineConfig(), in));
  const auto& s = j["snapshot"];
  EXPECT_EQ(s["state"], "reading");
  EXPECT_EQ(s["rows"], 1000);
  EXPECT_EQ(s["estimated_rows"], 2600);  // a table past its estimate counts what it read
  EXPECT_EQ(s["rows_per_second"], 100);
  EXPECT_EQ(s["eta_seconds"], 16);
  EXPECT_EQ(s["tables"]["public.b"]["estimated_rows"], 2000);
  EXPECT_FALSE(s["tables"]["public.b"]["done"].get<bool>());
  // Without an estimate for a table still being read, no total and no ETA.
  in.session.snapshot->tables[1].estimated.reset();
  j = nlohmann::json::parse(renderStatus(pipelineConfig(), in));
  EXPECT_TRUE(j["snapshot"]["estimated_rows"].is_null());
  EXPECT_TRUE(j["snapshot"]["eta_seconds"].is_null());
  const std::string text = renderMetrics(pipelineConfig(), in);
  EXPECT_NE(text.find("tidemark_snapshot_rows_total{pipeline=\"shop\",table=\"public.b\"} 400\n"), std::string::npos);
  EXPECT_NE(text.find("tidemark_snapshot_estimated_rows{pipeline=\"shop\",table=\"public.a\"} 500\n"), std::string::npos);
  EXPECT_EQ(nlohmann::json::parse(renderStatus(pipelineConfig(), sampleInput()))["snapshot"], nullptr);
}

// A strict reading of the Prometheus text exposition format (version 0.0.4): HELP and TYPE
// before a family's samples, each family's samples together, valid names, labels and values.
void expectValidExposition(const std::string& text) {
  static const std::regex help(R"(^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .+$)");
  static const std::regex type(R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$)");
  static const std::regex sample(
      R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*")(,[a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*")*\})? (-?[0-9.eE+-]+|NaN|\+Inf|-Inf)$)");
  std::istringstream in(text);
  std::string line, current;
  std::map<std::string, bool> finished;
  int samples = 0;
  while (std::getline(in, line)) {
    std::smatch m;
    if (std::regex_match(line, m, help)) {
      if (!current.empty()) finished[current] = true;
      current = m[1];
      EXPECT_FALSE(finished[current]) << "family " << current << " appears twice";
    } else if (std::regex_match(line, m, type)) {
      EXPECT_EQ(m[1], current) << line;
    } else if (std::regex_match(line, m, sample)) {
      EXPECT_EQ(m[1], current) << "sample outside its family: " << line;
      ++samples;
    } else {
      ADD_FAILURE() << "not exposition format: " << line;
    }
  }
  EXPECT_GT(samples, 10);
}

TEST(Metrics, ParseAsPrometheusTextWithEveryFamilyGrouped) {
  StatusInput in = sampleInput();
  in.session.snapshot = pg::SnapshotProgress{.reason = "initial",
                                             .done = false,
                                             .tables = {{.name = "public.a", .rows = 1, .estimated = 2, .done = false},
                                                        {.name = "public.b", .rows = 0, .estimated = {}, .done = false}},
                                             .started_us = in.now_us,
                                             .ended_us = 0};
  std::string text = renderMetrics(pipelineConfig(), in);
  expectValidExposition(text);
  EXPECT_NE(text.find("tidemark_state{pipeline=\"shop\",state=\"running\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("tidemark_slot_retained_wal_bytes{pipeline=\"shop\"} 4096\n"), std::string::npos);
  EXPECT_NE(text.find("tidemark_heartbeat_age_seconds{pipeline=\"shop\"} 1.5\n"), std::string::npos);
  EXPECT_NE(text.find("tidemark_sink_delivered_lag_seconds{pipeline=\"shop\",sink=\"files\"}"), std::string::npos);
}

TEST(Metrics, StayValidWithoutSlotFiguresOrFreshness) {
  StatusInput in;
  in.state = PipelineState::Retrying;
  expectValidExposition(renderMetrics(pipelineConfig(), in) + "");
}

TEST(Metrics, LabelValuesAreEscaped) {
  config::PipelineConfig cfg = pipelineConfig();
  cfg.sinks[0].name = "we\"ird";
  std::string text = renderMetrics(cfg, sampleInput(cfg.sinks[0].name));
  EXPECT_NE(text.find("sink=\"we\\\"ird\""), std::string::npos);
  expectValidExposition(text);
}

TEST(Metrics, EveryMetricTheGrafanaDashboardQueriesExists) {
  std::ifstream in(std::string(TIDEMARK_SOURCE_DIR) + "/contrib/grafana-dashboard.json");
  ASSERT_TRUE(in) << "contrib/grafana-dashboard.json is missing";
  auto dashboard = nlohmann::json::parse(in);
  std::string metrics = renderMetrics(pipelineConfig(), sampleInput());
  static const std::regex name(R"(tidemark_[a-z0-9_]+)");
  int queried = 0;
  for (const auto& panel : dashboard["panels"]) {
    for (const auto& target : panel["targets"]) {
      std::string expr = target["expr"];
      for (std::sregex_iterator it(expr.begin(), expr.end(), name), end; it != end; ++it) {
        ++queried;
        EXPECT_NE(metrics.find("# TYPE " + it->str() + " "), std::string::npos)
            << panel["title"] << " queries " << it->str() << ", which /metrics does not serve";
      }
    }
  }
  EXPECT_GT(queried, 8);
}

TEST(HttpToken, ComparesWholeStrings) {
  EXPECT_TRUE(http::constantTimeEquals("s3cret", "s3cret"));
  EXPECT_FALSE(http::constantTimeEquals("s3cret", "s3creT"));
  EXPECT_FALSE(http::constantTimeEquals("s3cret", "s3cret-longer"));
  EXPECT_FALSE(http::constantTimeEquals("", "s3cret"));
  EXPECT_TRUE(http::constantTimeEquals("", ""));
}

}  // namespace
}  // namespace tidemark::pipeline
