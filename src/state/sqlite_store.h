// The state store as tidemark keeps it: SQLite, <state_dir>/state.db, and the reads that work
// beside a running pipeline.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/offset_store.h"

namespace tidemark::state {

/// What `tidemark status` reads: the last saved status document, and whether a process holds
/// the state directory (runs the pipeline) right now.
struct StatusRecord {
  std::optional<std::string> json;
  bool running = false;
};

/// Reads the status without taking the state directory's lock, so it works beside a running
/// `tidemark run`. Returns an empty record when the pipeline never ran.
StatusRecord readStatus(const std::filesystem::path& state_dir);

/// The captured tables, read without taking the state directory's lock; empty when none were
/// ever saved.
std::vector<CapturedTable> readCapture(const std::filesystem::path& state_dir);

/// The stored position, read without taking the state directory's lock (`tidemark check` runs
/// beside a running pipeline and must never block it). nullopt when none was ever saved.
std::optional<StoredPosition> readPosition(const std::filesystem::path& state_dir);

/// The SQLite store, <state_dir>/state.db; safe to use from several threads (the source's and
/// each sink's). Opening takes an exclusive lock on the state
/// directory: two processes running the same pipeline would corrupt each other's position.
std::unique_ptr<OffsetStore> openSqliteStore(const std::filesystem::path& state_dir);

}  // namespace tidemark::state
