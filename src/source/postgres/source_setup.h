// What a pipeline does on the source before it streams: make sure the publication covers the
// captured tables (creating it when allowed), find or create the slot, and check the stored
// position against the server (docs/GUARANTEES.md, guarantee 2). Also the catalog lookups that value
// rendering needs (types, primary keys).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "base/log.h"
#include "config/config.h"
#include "postgres/connection.h"
#include "source/postgres/position.h"
#include "source/postgres/relations.h"
#include "source/postgres/replication.h"

namespace tidemark::pg {

struct SlotInfo {
  std::string plugin;
  std::string slot_type;
  std::string database;
  std::optional<Lsn> confirmed_flush_lsn;
  std::optional<Lsn> restart_lsn;
  std::optional<std::string> wal_status;
  std::optional<int> active_pid;
};

/// The slot as pg_replication_slots shows it, or nullopt if there is none of that name.
std::optional<SlotInfo> querySlot(pg::Connection& conn, const std::string& slot);

/// The max_slot_wal_keep_size that `tidemark setup` and `tidemark check` suggest when there is
/// none: room for a day or two of most servers' WAL, below most pg_wal disks.
inline constexpr int kSuggestedWalKeepSizeGb = 10;

/// DDL of tidemark's own tables (idempotent), shared by the pipeline and `tidemark setup`.
std::string heartbeatTableDdl(const config::TableName& table);
std::string signalTableDdl(const config::TableName& table);
/// The statement that writes this pipeline's heartbeat row (what a pg_cron job runs for a
/// read-only pipeline).
std::string heartbeatUpsertSql(const config::TableName& table, std::string_view pipeline);
/// The pg_cron schedule of that job for heartbeat.interval, the one `setup` and `check` both
/// give: "N seconds" below a minute (pg_cron 1.5 or later), else cron syntax in whole minutes,
/// never less often than the interval asks.
std::string heartbeatCronSchedule(std::chrono::milliseconds interval);

/// The heartbeat table of Layer 2 (heartbeat.mode table), as set up on the source.
struct HeartbeatTable {
  bool exists = false;
  /// Its rows come through the stream (it is in the publication).
  bool published = false;
  /// Why Layer 2 cannot work as configured, with the SQL that fixes it; empty when it can.
  std::string problem;
};

/// In mode table, creates the heartbeat table when it is missing (unless read-only). When it
/// cannot, the pipeline runs on Layer 1: the problem is logged as a warning with the SQL to
/// run and returned for the status.
HeartbeatTable ensureHeartbeatTable(pg::Connection& conn, const config::PipelineConfig& cfg,
                                    const Logger& log);

/// Creates the publication FOR TABLE the captured tables (and the heartbeat table, when it
/// exists), publishing via the partition root, if it is missing and that is allowed; adds the
/// heartbeat table to an existing one when it can. Whether the publication sends the captured
/// tables is the capture check's (capture.h). Throws Error(Config) with the SQL to run when
/// the publication cannot be created (a captured table does not exist, a privilege is
/// missing); a heartbeat table that cannot be added becomes `heartbeat.problem`.
void ensurePublication(pg::Connection& conn, const config::PipelineConfig& cfg,
                       HeartbeatTable& heartbeat, const Logger& log);

/// The way on when the stored position can no longer be served.
extern const char* const kLostPositionFix;

/// The stored position against the server, as `run` and `check` both judge it: nothing when a
/// run can resume there, or when nothing is stored; else the Error a run stops with: Config
/// when the state belongs to another slot or the slot is not a logical one, PositionLost when
/// the changes after the stored position can no longer be read (another cluster, the slot gone
/// or invalidated, or confirmed beyond the stored position). `slot` is nullopt when there is no
/// slot of that name.
std::optional<Error> judgeStoredPosition(const std::optional<pg::Position>& stored,
                                         const std::string& config_slot,
                                         const std::string& system_identifier,
                                         const std::optional<SlotInfo>& slot);

/// Where streaming starts, after checking the stored position against the server.
struct StartPoint {
  Lsn lsn;
  bool slot_created = false;
};

/// Checks system identifier, slot presence, plugin, database, wal_status and the stored
/// position against confirmed_flush_lsn; creates the slot on a first run. Throws
/// Error(PositionLost) when continuing could skip data, Error(Config) when the configuration
/// does not match the stored state.
StartPoint resolveStart(pg::Connection& catalog, pg::ReplicationStream& stream,
                        const pg::SystemInfo& system, const config::SourceConfig& source,
                        const std::optional<pg::Position>& stored, const Logger& log);

/// The signal table (signal.table), whose rows come through the stream as requests
/// (incremental snapshots): when it exists (`tidemark setup` creates it), added to the
/// publication if it is not in it, unless source.read_only; when that is not allowed, a
/// warning with the SQL to run. Without it, `tidemark snapshot` leaves request files in the
/// state directory instead.
void ensureSignalTable(pg::Connection& conn, const config::PipelineConfig& cfg, const Logger& log);

/// After a lost position (source.snapshot.mode when_needed): drops the slot if the server
/// invalidated it (wal_status lost), so that resolveStart without a stored position makes a
/// new one; a slot that can still stream is kept and used from its confirmed position.
void dropInvalidatedSlot(pg::Connection& catalog, const config::SourceConfig& source, const Logger& log);

/// Catalog lookups for the relation cache, over a plain (non-replication) connection.
events::Catalog makeCatalog(pg::Connection& conn);

}  // namespace tidemark::pg
