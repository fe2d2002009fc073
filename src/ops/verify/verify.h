// `tidemark verify -c FILE [--sink NAME] [--json] [--timeout D] [--chunk-rows N]`: are the
// PostgreSQL destinations equal to the source?
//
// For each captured table and each upsert destination: row counts and an order-independent
// checksum (the sum of a 64-bit hash of each row's text), computed in the databases, chunk by
// chunk over key ranges that the source's key splits into (keyset pagination, --chunk-rows
// rows each), so that nothing is loaded into tidemark whatever the table's size.
//
// At a consistent point: verify reads the source's current WAL position, waits until the
// pipeline has saved a position past it (its change log then holds everything up to there),
// and until each destination's progress row (tidemark.sink_progress) has passed the log's
// end saved with it. A chunk that differs is compared again after the destination catches up
// once more (rows the source changed meanwhile), and reported only if it still differs.
//
// Prints each table as equal or different and, for a difference, the key ranges that differ.
// Exit 0 only when every table of every destination matches; 2 otherwise. Append destinations
// keep every change, not the table, and are not compared.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "config/config.h"

namespace tidemark::verify {

struct Options {
  std::optional<std::string> sink;  // every postgres sink when empty
  bool json = false;
  std::chrono::milliseconds timeout{std::chrono::minutes(2)};  // for the consistent point
  uint64_t chunk_rows = 10000;
};

int verifyCommand(const config::PipelineConfig& cfg, const Options& options);

}  // namespace tidemark::verify
