// How check results are shown: text for people, JSON for scripts, and the exit code rule.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "check/check.h"
#include "common/error.h"

namespace tidemark::check {

namespace {

struct Counts {
  int passed = 0;
  int warned = 0;
  int failed = 0;
};

Counts count(const std::vector<CheckResult>& results) {
  Counts c;
  for (const auto& r : results) {
    switch (r.outcome) {
      case Outcome::Pass: ++c.passed; break;
      case Outcome::Warn: ++c.warned; break;
      case Outcome::Fail: ++c.failed; break;
    }
  }
  return c;
}

}  // namespace

const char* outcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::Pass: return "pass";
    case Outcome::Warn: return "warn";
    case Outcome::Fail: return "fail";
  }
  return "fail";
}

std::string renderText(const std::vector<CheckResult>& results) {
  std::string out;
  for (const auto& r : results) {
    const char* tag = r.outcome == Outcome::Pass ? "PASS" : r.outcome == Outcome::Warn ? "WARN" : "FAIL";
    out += fmt::format("{}  {}: {}\n", tag, r.title, r.saw);
    if (r.outcome != Outcome::Pass && !r.fix.empty()) out += fmt::format("      fix: {}\n", r.fix);
  }
  Counts c = count(results);
  out += fmt::format("{} passed, {} warned, {} failed\n", c.passed, c.warned, c.failed);
  return out;
}

std::string renderJson(const std::vector<CheckResult>& results) {
  using Json = nlohmann::ordered_json;
  Json checks = Json::array();
  for (const auto& r : results) {
    Json j;
    j["id"] = r.id;
    j["title"] = r.title;
    j["outcome"] = outcomeName(r.outcome);
    j["saw"] = r.saw;
    j["fix"] = r.fix.empty() ? Json(nullptr) : Json(r.fix);
    checks.push_back(std::move(j));
  }
  Counts c = count(results);
  Json doc;
  doc["checks"] = std::move(checks);
  doc["passed"] = c.passed;
  doc["warned"] = c.warned;
  doc["failed"] = c.failed;
  // Text from the server may hold bytes that are not UTF-8; replace them rather than throw.
  return doc.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
}

int exitCodeFor(const std::vector<CheckResult>& results) {
  return count(results).failed > 0 ? kExitRuntime : kExitOk;
}

}  // namespace tidemark::check
