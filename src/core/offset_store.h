// Where a pipeline keeps its place. Two kinds of progress, saved apart:
//
// - the source's: where it resumes, after the last transaction durable in the change log (and
//   how many records the log held then), always saved before it is confirmed to the server,
//   so that (PostgreSQL)
//     confirmed_flush_lsn (server) <= stored position <= what the change log holds durably;
// - each sink's: its cursor in the change log (every record below it is durable in the sink)
//   and the sink's checkpoint, saved together once the sink made its output durable.
//
// At start the pipeline checks the first inequality to detect a slot recreated or moved by
// someone else (docs/GUARANTEES.md, guarantee 2), and the log against log_end to detect
// committed records the log no longer holds.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/lsn.h"
#include "core/change.h"

namespace tidemark::state {

/// Where a sink stands: every change-log record below `cursor` is durable in it, as
/// `checkpoint` (sinks::Sink::checkpoint) describes.
struct SinkProgress {
  uint64_t cursor = 0;
  std::string checkpoint;
  bool operator==(const SinkProgress&) const = default;
};

/// Where a source resumes. Opaque to everything but the source that made it: `token` is the
/// source's own encoding (PostgreSQL: its system identifier, timeline, slot and LSN as JSON,
/// source/postgres/position.h), `readable` the form people read in logs and status
/// (PostgreSQL: the LSN). Positions are compared only by the source.
struct SourcePosition {
  std::string token;
  std::string readable;
  bool operator==(const SourcePosition&) const = default;
};

struct StoredPosition {
  SourcePosition source;  // resume point: after the last transaction durable in the change log
  uint64_t log_end = 0;   // the change log's end offset when `source` was saved
  std::map<std::string, SinkProgress> sinks;  // by sink name
};

/// A captured table as last resolved on the source: the configured name and the relation it
/// was. A relation keeps its OID through renames; a table dropped and created again gets a new
/// one, so comparing OIDs tells a captured table from a new one of the same name.
struct CapturedTable {
  std::string schema;
  std::string table;
  RelationId relid;
  bool operator==(const CapturedTable&) const = default;
};

class OffsetStore {
 public:
  virtual ~OffsetStore() = default;
  /// The last saved position, or nullopt if none was ever saved.
  virtual std::optional<StoredPosition> load() = 0;
  /// Saves the position, and the sinks it names, atomically and durably. Throws Error on
  /// failure.
  virtual void save(const StoredPosition& position) = 0;
  /// Saves one sink's progress atomically and durably. Throws Error on failure.
  virtual void saveSink(const std::string& sink, const SinkProgress& progress) = 0;
  /// Replaces the pipeline's status document (docs/STATUS.md), read by `tidemark status`.
  virtual void saveStatus(const std::string& json) = 0;
  /// The captured tables as last saved; empty before the first run saved them.
  virtual std::vector<CapturedTable> loadCapture() = 0;
  /// Replaces the captured tables, atomically and durably.
  virtual void saveCapture(const std::vector<CapturedTable>& tables) = 0;
  /// Keeps a table schema the change log carries (core::TableSchema), durably, for sinks that
  /// start reading the log past the record that carried it (after a restart, or once its
  /// segment was deleted). Saving a version kept already changes nothing.
  virtual void saveTableSchema(const core::TableSchema& schema) = 0;
  /// Every table schema kept, in the order they were first saved.
  virtual std::vector<core::TableSchema> loadTableSchemas() = 0;
};

}  // namespace tidemark::state
