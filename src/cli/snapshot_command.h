// `tidemark snapshot -c FILE TABLE... [--where SQL] [--surrogate-key COLUMN]`, and with
// --stop, --pause or --resume: a signal to the running pipeline (incremental snapshots,
// source/postgres/incremental.h), in Debezium's execute-snapshot layout. It goes into the
// signal table, which the stream brings to the pipeline; on a read-only source, or when
// there is no signal table, into a file in the state directory, which the pipeline reads.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "config/config.h"

namespace tidemark::cli {

struct SnapshotOptions {
  std::vector<std::string> tables;  // schema.table, captured ones
  std::optional<std::string> where;  // additional-conditions for each of them
  std::optional<std::string> surrogate_key;
  bool stop = false;
  bool pause = false;
  bool resume = false;
};

/// Writes the signal and says where; returns the exit code (0, or the error's).
int snapshotCommand(const config::PipelineConfig& cfg, const SnapshotOptions& options);

}  // namespace tidemark::cli
