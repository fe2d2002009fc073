// `tidemark status -c FILE [--json]`: the pipeline's status document (docs/STATUS.md), read
// from its state store beside a running `tidemark run` or after it stopped.
#pragma once

#include "config/config.h"

namespace tidemark::cli {

/// Prints the status; returns the exit code docs/STATUS.md promises (0 running or stopped,
/// 2 stalled, retrying or failed, 1 no status).
int statusCommand(const config::PipelineConfig& cfg, bool json);

}  // namespace tidemark::cli
