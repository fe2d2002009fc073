#include "cli/snapshot_command.h"

#include <algorithm>
#include <iostream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "config/settings.h"
#include "postgres/connection.h"
#include "source/postgres/incremental.h"

namespace tidemark::cli {

namespace {

// The captured table a name on the command line means (written as in source.tables:
// unquoted names fold to lower case, "quoted" ones keep every character).
config::TableName capturedTable(const config::PipelineConfig& cfg, const std::string& name) {
  config::Parsed<config::TableName> parsed = config::parseTableName(name);
  if (!parsed.value) {
    throw Error(ErrorClass::Config, fmt::format("{} is not a table name: it {}", name, parsed.problem),
                "write schema.table, with \"double quotes\" around names that need them");
  }
  for (const config::TableName& t : cfg.source.tables) {
    if (t == *parsed.value) return t;
  }
  throw Error(ErrorClass::Config, fmt::format("{} is not in source.tables", name),
              "an incremental snapshot reads captured tables; add it to source.tables first");
}

}  // namespace

int snapshotCommand(const config::PipelineConfig& cfg, const SnapshotOptions& options) {
  const int actions = (options.stop ? 1 : 0) + (options.pause ? 1 : 0) + (options.resume ? 1 : 0);
  if (actions > 1) throw Error(ErrorClass::Config, "--stop, --pause and --resume go alone", "give one of them");
  nlohmann::ordered_json data{{"type", "incremental"}};
  pg::Signal signal{pg::newSignalId(), "execute-snapshot", ""};
  if (options.pause) signal.type = "pause-snapshot";
  if (options.resume) signal.type = "resume-snapshot";
  if (options.stop) signal.type = "stop-snapshot";
  if (actions == 0 && options.tables.empty()) {
    throw Error(ErrorClass::Config, "name the tables to snapshot", "tidemark snapshot -c FILE schema.table ...");
  }
  if (actions > 0 && (options.where || options.surrogate_key)) {
    throw Error(ErrorClass::Config, "--where and --surrogate-key go with a new snapshot, not --stop, --pause or --resume");
  }
  if (options.where && options.where->find(';') != std::string::npos) {
    throw Error(ErrorClass::Config, "--where has a ';': it is one condition on the rows, not statements",
                "write a condition such as \"created_at > '2026-01-01'\"");
  }
  // Debezium names a data collection schema.table, unquoted.
  std::vector<std::string> names;
  for (const std::string& name : options.tables) {
    const config::TableName t = capturedTable(cfg, name);
    names.push_back(t.schema + "." + t.table);
  }
  if (!names.empty()) data["data-collections"] = names;
  if (options.where) {
    auto conditions = nlohmann::ordered_json::array();
    for (const std::string& name : names) conditions.push_back({{"data-collection", name}, {"filter", *options.where}});
    data["additional-conditions"] = std::move(conditions);
  }
  if (options.surrogate_key) data["surrogate-key"] = *options.surrogate_key;
  signal.data = data.dump();

  auto leaveFile = [&](std::string_view why) {
    const auto dir = pg::signalDirectory(cfg.state_dir);
    pg::writeSignalFile(dir, signal);
    std::cout << fmt::format("signal {} ({}) left in {} for the running pipeline ({}); follow it with tidemark "
                             "status\n",
                             signal.id, signal.type, dir.string(), why);
    return kExitOk;
  };
  if (cfg.source.read_only) return leaveFile("source.read_only");
  pg::Connection conn = pg::Connection::open(pg::sourceOptions(cfg.source, "tidemark snapshot"));
  pg::Result exists = conn.execParams("SELECT to_regclass($1) IS NOT NULL",
                                      {pg::quoteTableText(cfg.signal.table.schema, cfg.signal.table.table)},
                                      "looking for the signal table");
  if (std::string_view(PQgetvalue(exists.get(), 0, 0)) != "t") {
    return leaveFile(fmt::format("there is no signal table {}; tidemark setup creates it", cfg.signal.table.str()));
  }
  conn.execParams(fmt::format("INSERT INTO {} (id, type, data) VALUES ($1, $2, $3)",
                              pg::quoteTableText(cfg.signal.table.schema, cfg.signal.table.table)),
                  {signal.id, signal.type, signal.data},
                  fmt::format("writing the signal into {} (tidemark run creates it; or see tidemark setup)",
                              cfg.signal.table.str()));
  std::cout << fmt::format("signal {} ({}) written to {}; the running pipeline takes it from the stream; follow "
                           "it with tidemark status\n",
                           signal.id, signal.type, cfg.signal.table.str());
  return kExitOk;
}

}  // namespace tidemark::cli
