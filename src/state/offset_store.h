// Where a pipeline keeps its place. The stored position is the end LSN of the last
// transaction that is durable in every sink, saved in the same store transaction as each
// sink's checkpoint, and always saved before it is confirmed to the server, so that
//   confirmed_flush_lsn (server) <= stored lsn <= what the sinks hold durably.
// At start the pipeline checks the first inequality to detect a slot recreated or moved by
// someone else (docs/GUARANTEES.md, guarantee 2).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/lsn.h"

namespace tidemark::state {

struct StoredPosition {
  std::string system_identifier;
  uint32_t timeline = 0;
  std::string slot;
  Lsn lsn;                                      // resume point: end of the last durable commit
  std::map<std::string, std::string> sinks;    // sink name -> checkpoint
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
  /// Saves atomically and durably. Throws Error on failure.
  virtual void save(const StoredPosition& position) = 0;
  /// Replaces the pipeline's status document (docs/STATUS.md), read by `tidemark status`.
  virtual void saveStatus(const std::string& json) = 0;
  /// The captured tables as last saved; empty before the first run saved them.
  virtual std::vector<CapturedTable> loadCapture() = 0;
  /// Replaces the captured tables, atomically and durably.
  virtual void saveCapture(const std::vector<CapturedTable>& tables) = 0;
};

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

/// The SQLite store, <state_dir>/state.db. Opening takes an exclusive lock on the state
/// directory: two processes running the same pipeline would corrupt each other's position.
std::unique_ptr<OffsetStore> openSqliteStore(const std::filesystem::path& state_dir);

}  // namespace tidemark::state
