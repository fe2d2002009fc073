// `tidemark check -c FILE [--json]`: preflight and troubleshooting. Every check prints
// pass/warn/fail, what it saw and the fix (the exact SQL or setting). Read-only: it never
// changes the source, the state directory or the sinks (a sink check writes and removes one
// probe file). See src/check/README.md for what each check looks at and why.
#pragma once

#include <string>
#include <vector>

#include "config/config.h"

namespace tidemark::check {

enum class Outcome { Pass, Warn, Fail, Skip };  // Skip: not checked (no connection)

struct CheckResult {
  std::string id;     // stable name, e.g. "wal_level"
  std::string title;  // what is checked, for people
  Outcome outcome = Outcome::Pass;
  std::string saw;    // what the check found
  std::string fix;    // the SQL or setting that fixes it; empty on pass
};

/// Runs every check against the source and the sinks.
std::vector<CheckResult> runChecks(const config::PipelineConfig& cfg);

/// The results as JSON: {"checks":[{"id","title","outcome","saw","fix"}],"passed","warned","failed"}.
std::string renderJson(const std::vector<CheckResult>& results);

/// Prints the results (one line per check, or JSON) and returns 0 only when nothing failed.
int checkCommand(const config::PipelineConfig& cfg, bool json);

/// "pass", "warn", "fail", "skip".
const char* outcomeName(Outcome outcome);

/// One line per check, `PASS  <title>: <saw>`, an indented `fix: ...` line under a warning or
/// failure (a line of the fix each), and a summary line ("N passed, N warned, N failed", and
/// "N skipped" when checks could not run).
std::string renderText(const std::vector<CheckResult>& results);

/// {"checks":[{"id","title","outcome","saw","fix"}],"passed":N,"warned":N,"failed":N,
/// "skipped":N}; `fix` is null when there is nothing to fix.
std::string renderJson(const std::vector<CheckResult>& results);

/// 0 when no check failed (warnings allowed), 2 (kExitRuntime) otherwise.
int exitCodeFor(const std::vector<CheckResult>& results);

/// The `sinks` check: every jsonl directory exists (or can be created) and takes a file.
/// Needs no source connection.
CheckResult checkSinks(const std::vector<config::SinkConfig>& sinks);

}  // namespace tidemark::check
