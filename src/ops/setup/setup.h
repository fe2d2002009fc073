// `tidemark setup -c FILE [--flavor F] [--apply [--admin-dsn DSN]]`: the SQL a source needs for
// this pipeline, printed with a comment per block, or applied idempotently.
#pragma once

#include <optional>
#include <string>

#include "config/config.h"

namespace tidemark::setup {

struct SetupOptions {
  /// postgres (self-hosted), rds (RDS and Aurora), cloudsql, azure, supabase, neon.
  std::string flavor = "postgres";
  bool apply = false;
  /// Run as this connection instead of the pipeline's dsn (an administrator).
  std::optional<std::string> admin_dsn;
};

/// Prints or applies the setup; returns the process exit code.
int setupCommand(const config::PipelineConfig& cfg, const SetupOptions& options);

}  // namespace tidemark::setup
