// The dead letter queue as tidemark keeps it: SQLite, <state_dir>/dlq.db, apart from the state
// store so that `tidemark dlq` can read and change it beside a running pipeline (SQLite's own
// locking orders the two). Every write is durable when it returns (WAL, synchronous=FULL).
#pragma once

#include <filesystem>
#include <memory>

#include "core/dead_letters.h"

namespace tidemark::state {

/// Opens (creating when missing) the dead letter queue of the state directory `state_dir`.
/// Safe to use from several threads. Throws Error naming the file when it cannot.
std::unique_ptr<core::DeadLetters> openDeadLetters(const std::filesystem::path& state_dir);

}  // namespace tidemark::state
