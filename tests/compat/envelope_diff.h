// Field-by-field comparison of the events tidemark and Debezium wrote for one workload, and
// the list of deliberate differences docs/COMPATIBILITY.md gives.
//
// Events are paired per topic by (source.lsn, op): both read the same WAL, so a change has
// the same LSN in both, and a reader that writes an event the other does not shows as an
// event of its own instead of shifting every pair after it. Snapshot reads can be paired by
// their key instead (CompareRules::pairReadsByKey). Each difference gets an id that
// says where it is, the ids docs/COMPATIBILITY.md lists in its "In the suite" column:
//
//   public.types.c_money                      a column's value (before or after)
//   public.ops key                            the key
//   public.ops source.ts_us                   any other envelope field
//   public.ops op t only in tidemark          events one reader writes and the other not
//   topic public.measurements_2025 only in debezium
#pragma once

#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace tidemark::test {

/// Topic files as readJsonLinesDir reads them: topic -> lines of {"key":...,"value":...}.
using TopicLines = std::map<std::string, std::vector<nlohmann::json>>;

struct CompareRules {
  /// The topic prefix both readers were given; ids leave it out.
  std::string prefix;
  /// Paths in a value envelope ("ts_ms", "source.version") that differ by nature: when a
  /// reader ran, or which product wrote the event. Both must write them; their values are
  /// not compared.
  std::set<std::string> ignoredValuePaths;
  /// Columns whose values are JSON text compared as parsed JSON ("public.types.c_hstore"):
  /// the order of an object's members carries no meaning there.
  std::set<std::string> jsonTextColumns;
  /// Topics compared by shape only (key equal, value with the same member names): heartbeats,
  /// whose timestamps are each reader's own.
  std::set<std::string> shapeOnlyTopics;
  /// Pair snapshot reads (op r) by their key (their row, for a table without one) instead of
  /// their LSN: each reader's snapshot has the LSN of its own slot.
  bool pairReadsByKey = false;
};

struct Comparison {
  /// id -> the first case found, as "tidemark X, debezium Y" with the event's position.
  std::map<std::string, std::string> differences;
  size_t pairs = 0;  // events found in both and compared
};

Comparison compareEvents(const TopicLines& tidemark, const TopicLines& debezium,
                         const CompareRules& rules);

/// The ids in the "In the suite" column of the tables of `markdown` (docs/COMPATIBILITY.md):
/// every `backticked` text in that cell. Throws std::runtime_error when no table has it.
std::set<std::string> documentedDifferences(const std::filesystem::path& markdown);

}  // namespace tidemark::test
