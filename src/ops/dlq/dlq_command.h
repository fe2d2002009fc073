// `tidemark dlq list|show|retry|discard -c FILE [--sink NAME] [--id ID...] [--json]`: the dead
// letter queue of a pipeline (state/dlq_store.h), beside a running pipeline or not.
//
//   list     one line per record: id, sink, state, change-log offset, source position, table,
//            key, error
//   show     the records in full, the event included (JSON)
//   retry    applies pending records again, oldest first, in one destination transaction that
//            the running sink waits for; a record whose key got a newer change since is
//            marked superseded, not applied (a retried old change never overwrites a newer
//            one); one the destination still rejects stays pending with the new error
//   discard  marks records discarded (with --id, those; else every pending one of --sink)
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"

namespace tidemark::dlq {

struct Options {
  std::string action;               // list | show | retry | discard
  std::optional<std::string> sink;  // all sinks when empty
  std::vector<int64_t> ids;         // all records when empty
  bool json = false;
};

/// Runs the command; returns the exit code (0, or 2 when a retry left records rejected).
int dlqCommand(const config::PipelineConfig& cfg, const Options& options);

}  // namespace tidemark::dlq
