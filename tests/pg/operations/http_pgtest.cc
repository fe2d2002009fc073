// The HTTP endpoint of `tidemark run`: health, readiness, metrics, the status API, the token,
// and the status page rendered by headless Chromium.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <memory>
#include <regex>

#include <nlohmann/json.hpp>

#include "support/http_get.h"
#include "support/pipeline_fixture.h"
#include "support/poll.h"

namespace tidemark::test {
namespace {

using namespace std::chrono_literals;

class HttpEndpointTest : public PgPipelineTest {
 protected:
  void SetUp() override {
    PgPipelineTest::SetUp();
    sql("CREATE TABLE orders (id int PRIMARY KEY, note text)");
  }

  // The pipeline file with an http section appended (port 0: the kernel picks a free one).
  std::filesystem::path configWithHttp(const std::string& http_yaml) {
    return writeConfig(TidemarkConfig({"public.orders"}).withHttp(http_yaml));
  }

  // The port the run's log line announces.
  static int announcedPort(const Process& p) {
    static const std::regex url(R"(status page and metrics on http://[^:]+:(\d+)/)");
    std::smatch m;
    std::string err = p.stderrText();
    return std::regex_search(err, m, url) ? std::stoi(m[1]) : 0;
  }

  std::unique_ptr<Process> startWithEndpoint(const std::filesystem::path& config, int& port,
                                             const std::map<std::string, std::string>& headers = {}) {
    auto p = startRun(config);
    EXPECT_TRUE(eventually([&] { return announcedPort(*p) != 0; }, 30s)) << p->stderrText();
    port = announcedPort(*p);
    // Ready means streaming: only changes committed from then on are captured.
    if (port != 0) {
      EXPECT_TRUE(eventually([&] { return httpGet(port, "/readyz", headers).status == 200; }, 30s))
          << p->stderrText();
    }
    return p;
  }
};

TEST_F(HttpEndpointTest, ServesHealthReadinessMetricsAndTheStatusJson) {
  int port = 0;
  auto run = startWithEndpoint(configWithHttp("  listen: 127.0.0.1:0\n"), port);
  ASSERT_NE(port, 0);
  EXPECT_EQ(httpGet(port, "/healthz").status, 200);
  EXPECT_EQ(httpGet(port, "/readyz").status, 200);
  sql("INSERT INTO orders VALUES (1, 'counted')");
  ASSERT_EVENTUALLY(nlohmann::json::parse(httpGet(port, "/api/status").body)["events"]["delivered"] >= 1, 30s);

  auto status = nlohmann::json::parse(httpGet(port, "/api/status").body);
  EXPECT_EQ(status["state"], "running");
  EXPECT_EQ(status["pid"], run->pid());
  EXPECT_TRUE(status["slot"].contains("retained_wal_bytes"));

  HttpReply metrics = httpGet(port, "/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_EQ(metrics.headers["content-type"].rfind("text/plain; version=0.0.4", 0), 0u);
  EXPECT_NE(metrics.body.find("tidemark_state{pipeline=\"t1\",state=\"running\"} 1\n"), std::string::npos);
  EXPECT_NE(metrics.body.find("tidemark_events_total{pipeline=\"t1\"} "), std::string::npos);
  EXPECT_EQ(httpGet(port, "/nope").status, 404);

  run->signal(SIGTERM);
  RunResult r = finish(*run);
  EXPECT_EQ(r.exitCode, 0) << r.description;
}

TEST_F(HttpEndpointTest, NonLoopbackBindWithoutATokenRefusesToStart) {
  RunResult r = runUntil(configWithHttp("  listen: 0.0.0.0:0\n"), currentLsn());
  EXPECT_EQ(r.exitCode, 1) << r.description;
  EXPECT_NE(r.err.find("http.token"), std::string::npos) << r.description;
  EXPECT_FALSE(slotExists());
}

TEST_F(HttpEndpointTest, NonLoopbackBindAnswers401WithoutTheToken) {
  int port = 0;
  auto run = startWithEndpoint(configWithHttp("  listen: 0.0.0.0:0\n  token: tok-3f9a\n"), port,
                               {{"Authorization", "Bearer tok-3f9a"}});
  ASSERT_NE(port, 0);
  for (const char* path : {"/metrics", "/api/status", "/healthz", "/"}) {
    EXPECT_EQ(httpGet(port, path).status, 401) << path;
    EXPECT_EQ(httpGet(port, path, {{"Authorization", "Bearer wrong"}}).status, 401) << path;
  }
  EXPECT_EQ(httpGet(port, "/metrics", {{"Authorization", "Bearer tok-3f9a"}}).status, 200);
  EXPECT_EQ(httpGet(port, "/api/status?token=tok-3f9a").status, 200);
  // The token is a secret: not in the log.
  EXPECT_EQ(run->stderrText().find("tok-3f9a"), std::string::npos);
  run->signal(SIGTERM);
  finish(*run);
}

// Runs a command, returning its standard output.
std::string capture(const std::string& command) {
  std::array<char, 4096> buf{};
  std::string out;
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(::popen(command.c_str(), "r"), ::pclose);
  if (!pipe) return out;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe.get())) > 0) out.append(buf.data(), n);
  return out;
}

TEST_F(HttpEndpointTest, StatusPageRendersTheLiveNumbersInHeadlessChromium) {
  ASSERT_TRUE(std::filesystem::exists("/usr/bin/chromium"))
      << "Debian's chromium is missing: scripts/install-deps.sh installs it";
  int port = 0;
  auto run = startWithEndpoint(configWithHttp("  listen: 127.0.0.1:0\n"), port);
  ASSERT_NE(port, 0);
  for (int i = 1; i <= 3; ++i) sql("INSERT INTO orders VALUES (" + std::to_string(i) + ", 'x')");
  ASSERT_EVENTUALLY(nlohmann::json::parse(httpGet(port, "/api/status").body)["events"]["delivered"] >= 3, 30s);
  // The checks run on a thread of their own from the start; the page shows them once they did.
  ASSERT_EVENTUALLY(httpGet(port, "/api/checks").status == 200, 60s);

  // Chromium runs the page's script and prints the resulting DOM. The flags keep it from
  // reaching out to the network (the machine has none) and from needing a display or sandbox.
  std::string profile = (tmp().path() / "chromium-profile").string();
  std::string dom;
  ASSERT_EVENTUALLY(
      (dom = capture("/usr/bin/chromium --headless --no-sandbox --disable-gpu --disable-quic "
                     "--no-first-run --disable-background-networking --disable-component-update "
                     "--disable-sync --user-data-dir=" + profile +
                     " --virtual-time-budget=6000 --dump-dom http://127.0.0.1:" +
                     std::to_string(port) + "/ 2>/dev/null"))
              .find("id=\"state\" class=\"state running\">running<") != std::string::npos,
      90s);
  EXPECT_NE(dom.find("<span id=\"pipeline\">t1</span>"), std::string::npos) << dom;
  // The events card shows the live count, read from the same run.
  auto status = nlohmann::json::parse(httpGet(port, "/api/status").body);
  std::smatch m;
  ASSERT_TRUE(std::regex_search(dom, m, std::regex(R"(id="events">(\d+)<)"))) << dom;
  EXPECT_GE(std::stoi(m[1]), 3);
  EXPECT_LE(std::stoi(m[1]), status["events"]["delivered"].get<int>());
  EXPECT_NE(dom.find("id=\"slot\"><div><b>" + slot() + "</b>"), std::string::npos) << dom;
  // Failing checks are listed, or all pass; either way the checks section was filled in, and
  // says when the checks ran.
  EXPECT_EQ(dom.find("id=\"checks\" class=\"muted\">loading"), std::string::npos) << dom;
  EXPECT_TRUE(std::regex_search(dom, std::regex(R"(id="checked">checked at \d\d:\d\d:\d\d UTC<)"))) << dom;
  // Times in UTC, as everywhere else; no card for a feature the pipeline does not have.
  EXPECT_TRUE(std::regex_search(dom, std::regex(R"(id="updated">\d\d:\d\d:\d\d<)"))) << dom;
  EXPECT_EQ(dom.find("AM<"), std::string::npos) << dom;
  EXPECT_EQ(dom.find("PM<"), std::string::npos) << dom;
  EXPECT_EQ(dom.find("Dead letter queue"), std::string::npos) << dom;
  auto checks = nlohmann::json::parse(httpGet(port, "/api/checks").body);
  EXPECT_TRUE(checks["checked_at"].is_string()) << checks.dump();

  run->signal(SIGTERM);
  finish(*run);
}

}  // namespace
}  // namespace tidemark::test
