// How check results are shown: text for people, JSON for scripts, and the exit code rule.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "ops/check/check.h"

namespace tidemark::check {

namespace {

struct Counts {
  int passed = 0;
  int warned = 0;
  int failed = 0;
  int skipped = 0;
};

Counts count(const std::vector<CheckResult>& results) {
  Counts c;
  for (const auto& r : results) {
    switch (r.outcome) {
      case Outcome::Pass: ++c.passed; break;
      case Outcome::Warn: ++c.warned; break;
      case Outcome::Fail: ++c.failed; break;
      case Outcome::Skip: ++c.skipped; break;
    }
  }
  return c;
}

// Continuation lines of a multi-line text, indented under the first.
std::string indentLines(const std::string& text, std::string_view indent) {
  std::string out;
  for (char c : text) {
    out += c;
    if (c == '\n') out += indent;
  }
  return out;
}

}  // namespace

const char* outcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::Pass: return "pass";
    case Outcome::Warn: return "warn";
    case Outcome::Fail: return "fail";
    case Outcome::Skip: return "skip";
  }
  return "fail";
}

std::string renderText(const std::vector<CheckResult>& results) {
  std::string out;
  for (const auto& r : results) {
    const char* tag = r.outcome == Outcome::Pass   ? "PASS"
                      : r.outcome == Outcome::Warn ? "WARN"
                      : r.outcome == Outcome::Skip ? "SKIP"
                                                   : "FAIL";
    out += fmt::format("{}  {}: {}\n", tag, r.title, indentLines(r.saw, "      "));
    if ((r.outcome == Outcome::Warn || r.outcome == Outcome::Fail) && !r.fix.empty()) {
      out += fmt::format("      fix: {}\n", indentLines(r.fix, "           "));
    }
  }
  Counts c = count(results);
  out += fmt::format("{} passed, {} warned, {} failed{}\n", c.passed, c.warned, c.failed,
                     c.skipped > 0 ? fmt::format(", {} skipped", c.skipped) : "");
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
  doc["skipped"] = c.skipped;
  // Text from the server may hold bytes that are not UTF-8; replace them rather than throw.
  return doc.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
}

int exitCodeFor(const std::vector<CheckResult>& results) {
  return count(results).failed > 0 ? kExitRuntime : kExitOk;
}

}  // namespace tidemark::check
