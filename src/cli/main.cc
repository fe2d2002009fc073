// The tidemark command line: parses arguments, loads the configuration, and maps errors to
// the exit codes docs/GUARANTEES.md promises (1 usage/config, 2 runtime, 3 position lost).
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "base/error.h"
#include "base/log.h"
#include "cli/status_command.h"
#include "config/config.h"
#include "config/settings.h"
#include "ops/check/check.h"
#include "ops/dlq/dlq_command.h"
#include "cli/snapshot_command.h"
#include "ops/verify/verify.h"
#include "ops/setup/setup.h"
#include "pipeline/pipeline.h"

namespace {

std::atomic<bool> g_stop{false};

void onSignal(int) { g_stop.store(true); }

void installSignalHandlers() {
  struct sigaction sa {};
  sa.sa_handler = onSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a blocking poll returns so the stop is seen at once
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

int runCommand(const std::string& config_file, const std::string& until,
               const std::vector<std::string>& accept_recreated, const std::vector<std::string>& reset_sinks) {
  using namespace tidemark;
  config::PipelineConfig cfg = config::loadFile(config_file);
  LogLevel level;
  if (parseLogLevel(cfg.log_level, level)) setLogLevel(level);
  pipeline::RunOptions options;
  if (!until.empty()) {
    auto lsn = Lsn::parse(until);
    if (!lsn) {
      throw Error(ErrorClass::Config, fmt::format("--until-lsn: \"{}\" is not an LSN", until),
                  "write it as PostgreSQL prints LSNs, e.g. 0/16B3748 (SELECT pg_current_wal_lsn())");
    }
    options.until_lsn = lsn;
  }
  for (const auto& name : accept_recreated) {
    config::Parsed<config::TableName> table = config::parseTableName(name);
    if (!table.value) {
      throw Error(ErrorClass::Config,
                  fmt::format("--accept-recreated: \"{}\" is not a table name: it {}", name, table.problem),
                  "name the table as source.tables does, e.g. public.orders");
    }
    options.accept_recreated.push_back(*table.value);
  }
  options.reset_sinks = reset_sinks;
  options.checks = [cfg] { return check::renderJson(check::runChecks(cfg)); };
  installSignalHandlers();
  pipeline::run(cfg, options, g_stop);
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tidemark: change data capture from PostgreSQL as Debezium-compatible events"};
  app.set_version_flag("--version", std::string("tidemark ") + TIDEMARK_VERSION);
  app.require_subcommand(1);

  std::string config_file;
  std::string until;
  CLI::App* run = app.add_subcommand("run", "Run a pipeline: stream changes into its sinks");
  run->add_option("-c,--config", config_file, "Pipeline configuration file (YAML)")->required();
  run->add_option("--until-lsn", until,
                  "Stop, exit 0, once every transaction committed at or before this LSN is "
                  "durable in all sinks and confirmed to the slot");
  std::vector<std::string> accept_recreated;
  run->add_option("--accept-recreated", accept_recreated,
                  "A captured table (as in source.tables) that was dropped and created again: "
                  "capture the new table from now on (repeatable)");
  std::vector<std::string> reset_sinks;
  run->add_option("--reset-sink", reset_sinks,
                  "A sink (sinks[].name) whose output no longer matches what tidemark made durable, "
                  "or whose place in the change log is gone: accept its output as it is and go on "
                  "from its place, or the nearest the log holds (repeatable)");

  bool status_json = false;
  CLI::App* status = app.add_subcommand(
      "status", "Show a pipeline's state, positions, lag and heartbeat age (docs/STATUS.md)");
  status->add_option("-c,--config", config_file, "Pipeline configuration file (YAML)")->required();
  status->add_flag("--json", status_json, "Print the status as one JSON object");

  tidemark::setup::SetupOptions setup_options;
  std::string admin_dsn;
  CLI::App* setup = app.add_subcommand(
      "setup", "Print (or apply) the SQL the source needs: role, grants, publication, slot, "
               "heartbeat and signal tables");
  setup->add_option("-c,--config", config_file, "Pipeline configuration file (YAML)")->required();
  setup->add_option("--flavor", setup_options.flavor,
                    "Where PostgreSQL runs: postgres, rds (RDS and Aurora), cloudsql, azure, "
                    "supabase, neon")
      ->check(CLI::IsMember({"postgres", "rds", "cloudsql", "azure", "supabase", "neon"}));
  setup->add_flag("--apply", setup_options.apply, "Run the SQL (idempotently) instead of printing it");
  setup->add_option("--admin-dsn", admin_dsn,
                    "With --apply: connect as this administrator instead of the pipeline's user");

  bool check_json = false;
  CLI::App* check = app.add_subcommand(
      "check", "Check the source and sinks; one line per check with the fix; exit 0 only when "
               "nothing fails");
  check->add_option("-c,--config", config_file, "Pipeline configuration file (YAML)")->required();
  check->add_flag("--json", check_json, "Print the results as JSON");

  tidemark::dlq::Options dlq_options;
  CLI::App* dlq = app.add_subcommand(
      "dlq", "The dead letter queue: changes a destination rejected, set aside (list, show, retry, discard)");
  dlq->add_option("action", dlq_options.action, "list, show, retry or discard")
      ->required()
      ->check(CLI::IsMember({"list", "show", "retry", "discard"}));
  dlq->add_option("-c,--config", config_file, "Pipeline configuration file (YAML)")->required();
  dlq->add_option("--sink", dlq_options.sink, "Only this sink's records (sinks[].name)");
  dlq->add_option("--id", dlq_options.ids, "Only these records (repeatable)");
  dlq->add_flag("--json", dlq_options.json, "list: print JSON");

  tidemark::verify::Options verify_options;
  std::string verify_timeout = "2m";
  CLI::App* verify = app.add_subcommand(
      "verify", "Compare the source's tables with each PostgreSQL destination: counts and checksums by key "
                "range, at a point the destination reached; exit 0 only when all match");
  verify->add_option("-c,--config", config_file, "Pipeline configuration file (YAML)")->required();
  verify->add_option("--sink", verify_options.sink, "Only this sink (sinks[].name)");
  verify->add_flag("--json", verify_options.json, "Print the results as JSON");
  verify->add_option("--timeout", verify_timeout, "How long to wait for the destinations to catch up (default 2m)");
  verify->add_option("--chunk-rows", verify_options.chunk_rows, "Rows per compared key range (default 10000)");

  tidemark::cli::SnapshotOptions snapshot_options;
  std::string snapshot_where;
  std::string snapshot_surrogate;
  CLI::App* snapshot = app.add_subcommand(
      "snapshot", "Ask the running pipeline for an incremental snapshot of tables (or to stop, pause or resume "
                  "one): a signal in Debezium's layout, through the signal table or, on a read-only source, "
                  "the state directory");
  snapshot->add_option("-c,--config", config_file, "Pipeline configuration file (YAML)")->required();
  snapshot->add_option("tables", snapshot_options.tables, "Captured tables to read, as schema.table");
  snapshot->add_option("--where", snapshot_where, "Only the rows this condition holds for (additional-conditions)");
  snapshot->add_option("--surrogate-key", snapshot_surrogate, "Read in the order of this unique column instead of "
                                                              "the primary key");
  snapshot->add_flag("--stop", snapshot_options.stop, "Stop the incremental snapshot (of the tables named, or all)");
  snapshot->add_flag("--pause", snapshot_options.pause, "Pause the incremental snapshot");
  snapshot->add_flag("--resume", snapshot_options.resume, "Resume a paused incremental snapshot");

  app.add_subcommand("config-reference", "Print the configuration reference (Markdown)");

  // CLI11 answers an unknown word with "A subcommand is required"; say what it is instead.
  if (argc > 1 && argv[1][0] != '-') {
    const std::string word = argv[1];
    std::vector<std::string> known;
    for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) known.push_back(sub->get_name());
    if (std::find(known.begin(), known.end(), word) == known.end()) {
      tidemark::Logger("tidemark").error("unknown command \"{}\"; the commands are {}\nHint: tidemark --help, "
                                         "or tidemark COMMAND --help",
                                         word, fmt::join(known, ", "));
      return tidemark::kExitUsage;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? tidemark::kExitOk : tidemark::kExitUsage;
  }

  try {
    if (app.got_subcommand("config-reference")) {
      std::cout << tidemark::config::referenceMarkdown();
      return tidemark::kExitOk;
    }
    if (app.got_subcommand("setup")) {
      if (!admin_dsn.empty()) setup_options.admin_dsn = admin_dsn;
      if (setup_options.admin_dsn && !setup_options.apply) {
        throw tidemark::Error(tidemark::ErrorClass::Config, "--admin-dsn goes with --apply",
                              "add --apply, or leave out --admin-dsn to print the SQL");
      }
      return tidemark::setup::setupCommand(tidemark::config::loadFile(config_file), setup_options);
    }
    if (app.got_subcommand("check")) {
      return tidemark::check::checkCommand(tidemark::config::loadFile(config_file), check_json);
    }
    if (app.got_subcommand("verify")) {
      auto timeout = tidemark::config::parseDuration(verify_timeout);
      if (!timeout.value) {
        throw tidemark::Error(tidemark::ErrorClass::Config, "--timeout: " + timeout.problem,
                              "write a duration such as 30s or 5m");
      }
      verify_options.timeout = *timeout.value;
      return tidemark::verify::verifyCommand(tidemark::config::loadFile(config_file), verify_options);
    }
    if (app.got_subcommand("snapshot")) {
      if (snapshot->count("--where") > 0) snapshot_options.where = snapshot_where;
      if (snapshot->count("--surrogate-key") > 0) snapshot_options.surrogate_key = snapshot_surrogate;
      return tidemark::cli::snapshotCommand(tidemark::config::loadFile(config_file), snapshot_options);
    }
    if (app.got_subcommand("dlq")) {
      return tidemark::dlq::dlqCommand(tidemark::config::loadFile(config_file), dlq_options);
    }
    if (app.got_subcommand("status")) {
      // status reads the state store, which needs no credentials: a password the environment
      // does not hold only means no live slot figures.
      return tidemark::cli::statusCommand(
          tidemark::config::loadFile(config_file, tidemark::config::Secrets::Optional), status_json);
    }
    return runCommand(config_file, until, accept_recreated, reset_sinks);
  } catch (const tidemark::Error& e) {
    tidemark::Logger("tidemark").error("{}", e.describe());
    return tidemark::exitCodeFor(e.errorClass());
  } catch (const std::exception& e) {
    tidemark::Logger("tidemark").error("unexpected failure: {}", e.what());
    return tidemark::kExitRuntime;
  }
}
