#include "config/settings.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <limits>
#include <utility>

namespace tidemark::config {

namespace {

using std::chrono::milliseconds;

// PostgreSQL truncates identifiers to NAMEDATALEN - 1 bytes; refusing longer names is better
// than watching a differently named slot or table than the one configured.
constexpr size_t kMaxIdentifierBytes = 63;

constexpr uint64_t kMs = 1;
constexpr uint64_t kSecond = 1000 * kMs;
constexpr uint64_t kMinute = 60 * kSecond;
constexpr uint64_t kHour = 60 * kMinute;
constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * kKiB;
constexpr uint64_t kGiB = 1024 * kMiB;
constexpr uint64_t kTiB = 1024 * kGiB;

constexpr std::string_view kLogLevels[] = {"debug", "info", "warn", "error"};
constexpr std::string_view kSourceKinds[] = {"postgres"};
constexpr std::string_view kSinkKinds[] = {"jsonl", "stdout", "postgres"};
constexpr std::string_view kSinkModes[] = {"upsert", "append"};
constexpr std::string_view kBufferKinds[] = {"local"};
constexpr std::string_view kHeartbeatModes[] = {"table", "message", "query", "off"};
constexpr std::string_view kInvalidUtf8Modes[] = {"fail", "escape"};
constexpr std::string_view kSnapshotModes[] = {"initial", "initial_only", "never", "when_needed", "always"};

bool isAsciiLetter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool isAsciiDigit(char c) { return c >= '0' && c <= '9'; }
bool isSpace(char c) { return c == ' ' || c == '\t'; }

// The pipeline name, the topic prefix and sink names end up in topic names and file names, so
// they keep to characters that are safe in both (Kafka allows exactly these in topics).
std::string checkName(std::string_view value) {
  if (value.empty() || value.size() > kMaxIdentifierBytes) {
    return "must be 1 to 63 characters long";
  }
  for (char c : value) {
    if (!isAsciiLetter(c) && !isAsciiDigit(c) && c != '_' && c != '.' && c != '-') {
      return "may only contain letters, digits, '_', '.' and '-'";
    }
  }
  return {};
}

// ReplicationSlotValidateName() in PostgreSQL's slot.c.
std::string checkSlotName(std::string_view value) {
  if (value.empty() || value.size() > kMaxIdentifierBytes) {
    return "must be 1 to 63 characters long";
  }
  for (char c : value) {
    if (!(c >= 'a' && c <= 'z') && !isAsciiDigit(c) && c != '_') {
      return "may only contain lower-case letters, digits and '_' (PostgreSQL's rule for "
             "replication slot names)";
    }
  }
  return {};
}

// The publication name is written into SQL and into pgoutput's publication_names option, which
// folds unquoted upper case. Keeping to a plain lower-case identifier means it reads the same
// in both places without quoting.
std::string checkPublicationName(std::string_view value) {
  if (value.empty() || value.size() > kMaxIdentifierBytes) {
    return "must be 1 to 63 characters long";
  }
  if (isAsciiDigit(value.front())) {
    return "must not start with a digit";
  }
  for (char c : value) {
    if (!(c >= 'a' && c <= 'z') && !isAsciiDigit(c) && c != '_') {
      return "may only contain lower-case letters, digits and '_'";
    }
  }
  return {};
}

template <typename T>
T take(SettingValue& value) {
  return std::get<T>(std::move(value));
}

// A default as the reference shows it: in code format.
std::string code(std::string_view s) { return fmt::format("`{}`", s); }

// The table. Sections (Mapping, List) come before their settings; the reference follows this
// order. Descriptions are one line each and must not contain '|' (Markdown table syntax).
constexpr Setting kSettings[] = {
    {
        .path = "name",
        .required = true,
        .check = checkName,
        .description = "Pipeline name, 1 to 63 characters from `A-Z a-z 0-9 _ . -`. Names the "
                       "topics (unless `topic_prefix` is set), the state directory and log lines.",
        .hint = "use 1 to 63 characters from A-Z a-z 0-9 _ . -, e.g. name: shop",
        .store = [](SettingTarget& t, SettingValue&& v) { t.pipeline.name = take<std::string>(v); },
    },
    {
        .path = "topic_prefix",
        .check = checkName,
        .default_text = "the value of `name`",
        .description = "Prefix of every topic: `<prefix>.<schema>.<table>`. Same characters as "
                       "`name`.",
        .hint = "use 1 to 63 characters from A-Z a-z 0-9 _ . -",
        .store = [](SettingTarget& t,
                    SettingValue&& v) { t.pipeline.topic_prefix = take<std::string>(v); },
    },
    {
        .path = "state_dir",
        .type = SettingType::Path,
        .default_text = "`<config file directory>/<name>.state`",
        .description = "Directory for the pipeline's stored positions and its change log (`log/`, "
                       "up to `buffer.max_bytes`). One pipeline per directory; keep it on a local, "
                       "durable file system.",
        .store = [](SettingTarget& t,
                    SettingValue&& v) { t.pipeline.state_dir = take<std::filesystem::path>(v); },
    },
    {
        .path = "log_level",
        .type = SettingType::Enum,
        .allowed = kLogLevels,
        .description = "Least severe level that is logged.",
        .store = [](SettingTarget& t,
                    SettingValue&& v) { t.pipeline.log_level = take<std::string>(v); },
        .show = [](const PipelineConfig& p, const SinkConfig&) { return code(p.log_level); },
    },
    {
        .path = "source",
        .type = SettingType::Mapping,
        .required = true,
        .description = "The database whose changes are captured.",
    },
    {
        .path = "source.kind",
        .type = SettingType::Enum,
        .allowed = kSourceKinds,
        .description = "Source database type.",
        .store = [](SettingTarget& t,
                    SettingValue&& v) { t.pipeline.source.kind = take<std::string>(v); },
        .show = [](const PipelineConfig& p, const SinkConfig&) { return code(p.source.kind); },
    },
    {
        .path = "source.dsn",
        .required = true,
        .secret = true,
        .check = dsnProblem,
        .description = "libpq connection string: conninfo (`host=db port=5432 dbname=shop "
                       "user=tidemark`) or URI (`postgres://tidemark@db:5432/shop`). A password "
                       "in it is a secret: it is never printed.",
        .hint = "write \"host=db port=5432 dbname=shop user=tidemark\" (single-quote values "
                "with spaces) or \"postgres://tidemark@db:5432/shop\"",
        .store = [](SettingTarget& t,
                    SettingValue&& v) { t.pipeline.source.dsn = take<std::string>(v); },
    },
    {
        .path = "source.password",
        .secret = true,
        .default_text = "none",
        .description = "Password of the dsn's user; overrides one in the dsn. Write "
                       "`${VARIABLE}` or use `password_file` rather than the password itself.",
        .hint = "remove password to use the one in the dsn, or set the variable it names",
        .store = [](SettingTarget& t,
                    SettingValue&& v) { t.pipeline.source.password = take<std::string>(v); },
    },
    {
        .path = "source.password_file",
        .type = SettingType::Path,
        .default_text = "none",
        .description = "File whose content is the password (one trailing newline is removed). "
                       "Not together with `password`.",
        .store = [](SettingTarget& t,
                    SettingValue&& v) { t.password_file = take<std::filesystem::path>(v); },
    },
    {
        .path = "source.slot",
        .check = checkSlotName,
        .description = "Logical replication slot: 1 to 63 lower-case letters, digits and `_` "
                       "(PostgreSQL's rule). It holds the position tidemark has confirmed.",
        .hint = "replication slot names use lower-case letters, digits and _, e.g. tidemark_slot",
        .store = [](SettingTarget& t,
                    SettingValue&& v) { t.pipeline.source.slot = take<std::string>(v); },
        .show = [](const PipelineConfig& p, const SinkConfig&) { return code(p.source.slot); },
    },
    {
        .path = "source.publication",
        .check = checkPublicationName,
        .description = "Publication that selects the captured tables: 1 to 63 lower-case "
                       "letters, digits and `_`, not starting with a digit.",
        .hint = "use lower-case letters, digits and _, e.g. tidemark_pub",
        .store = [](SettingTarget& t,
                    SettingValue&& v) { t.pipeline.source.publication = take<std::string>(v); },
        .show = [](const PipelineConfig& p,
                   const SinkConfig&) { return code(p.source.publication); },
    },
    {
        .path = "source.create_slot",
        .type = SettingType::Bool,
        .description = "Create the slot when it is missing. When false, a missing slot stops "
                       "the pipeline.",
        .store = [](SettingTarget& t,
                    SettingValue&& v) { t.pipeline.source.create_slot = take<bool>(v); },
        .show = [](const PipelineConfig& p,
                   const SinkConfig&) { return code(fmt::format("{}", p.source.create_slot)); },
    },
    {
        .path = "source.create_publication",
        .type = SettingType::Bool,
        .description = "Create the publication for `tables` when it is missing. When false, a "
                       "missing publication stops the pipeline.",
        .store = [](SettingTarget& t,
                    SettingValue&& v) { t.pipeline.source.create_publication = take<bool>(v); },
        .show =
            [](const PipelineConfig& p, const SinkConfig&) {
              return code(fmt::format("{}", p.source.create_publication));
            },
    },
    {
        .path = "source.tables",
        .type = SettingType::TableList,
        .required = true,
        .description = "Tables to capture, at least one: `schema.table`, or `table` for schema "
                       "`public`. Double-quote names with upper case or special characters.",
        .store =
            [](SettingTarget& t, SettingValue&& v) {
              t.pipeline.source.tables = take<std::vector<TableName>>(v);
            },
    },
    {
        .path = "source.topics",
        .type = SettingType::TopicMap,
        .default_text = "none",
        .description = "Topics for tables, instead of `<prefix>.<schema>.<table>`: a mapping "
                       "from a table of `tables` to a topic name (1 to 249 of `A-Z a-z 0-9 . _ "
                       "-`). Needed when two tables' names sanitize to one topic.",
        .store = [](SettingTarget& t,
                    SettingValue&& v) { t.pipeline.source.topics = take<TopicList>(v); },
    },
    {
        .path = "source.invalid_utf8",
        .type = SettingType::Enum,
        .allowed = kInvalidUtf8Modes,
        .description = "Text with bytes that are not valid UTF-8 (only a `SQL_ASCII` database "
                       "stores such): `fail` stops with an error naming table, column and key; "
                       "`escape` writes each such byte 0xXX as `\\udcXX` (recoverable exactly).",
        .store = [](SettingTarget& t,
                    SettingValue&& v) { t.pipeline.source.invalid_utf8 = take<std::string>(v); },
        .show = [](const PipelineConfig& p,
                   const SinkConfig&) { return code(p.source.invalid_utf8); },
    },
    {
        .path = "source.status_interval",
        .type = SettingType::Duration,
        .min = 100 * kMs,
        .max = kHour,
        .description = "How often the confirmed position is reported to the server. Keep it "
                       "well under the server's `wal_sender_timeout` (default 60s), or the server "
                       "ends the connection.",
        .store =
            [](SettingTarget& t, SettingValue&& v) {
              t.pipeline.source.status_interval = take<milliseconds>(v);
            },
        .show = [](const PipelineConfig& p,
                   const SinkConfig&) { return code(formatDuration(p.source.status_interval)); },
    },
    {
        .path = "source.connect_timeout",
        .type = SettingType::Duration,
        .min = kSecond,
        .max = 10 * kMinute,
        .description = "Time allowed to open a connection to the server.",
        .store =
            [](SettingTarget& t, SettingValue&& v) {
              t.pipeline.source.connect_timeout = take<milliseconds>(v);
            },
        .show = [](const PipelineConfig& p,
                   const SinkConfig&) { return code(formatDuration(p.source.connect_timeout)); },
    },
    {
        .path = "source.read_only",
        .type = SettingType::Bool,
        .description = "Write nothing to the source: no publication or heartbeat table is "
                       "created and no heartbeat is written (a job on the primary, such as "
                       "pg_cron, writes the heartbeat table; tidemark measures from the rows it "
                       "sees). The slot is still created when missing and `create_slot` is "
                       "true: that is a replication command, not a write.",
        .store = [](SettingTarget& t,
                    SettingValue&& v) { t.pipeline.source.read_only = take<bool>(v); },
        .show = [](const PipelineConfig& p,
                   const SinkConfig&) { return code(fmt::format("{}", p.source.read_only)); },
    },
    {
        .path = "source.snapshot",
        .type = SettingType::Mapping,
        .description = "Reading the rows the captured tables already hold, as `op: r` events "
                       "(Debezium's snapshot), before streaming what changes after.",
    },
    {
        .path = "source.snapshot.mode",
        .type = SettingType::Enum,
        .allowed = kSnapshotModes,
        .description = "`initial`: on the pipeline's first run, read every captured table, then "
                       "stream; nothing is missed and nothing doubled (the stream skips the "
                       "transactions the read already saw). An interrupted read goes on from its "
                       "last chunk on the next run. `initial_only`: read, then stop. `never`: "
                       "stream only. `when_needed`: as `initial`, and when the stored position is "
                       "lost (the slot dropped or invalidated, another cluster, the slot advanced "
                       "by someone else) start over from the slot's position (a new slot if it is "
                       "gone) with a full read, instead of stopping with exit 3; logged as an "
                       "error and counted in status (`positions.rebuilds`). Rows deleted in the "
                       "gap stay in the destinations. `always`: read every captured table each "
                       "time the process starts, then stream from the stored position.",
        .store = [](SettingTarget& t,
                    SettingValue&& v) { t.pipeline.source.snapshot_mode = take<std::string>(v); },
        .show = [](const PipelineConfig& p,
                   const SinkConfig&) { return code(p.source.snapshot_mode); },
    },
    {
        .path = "source.snapshot.chunk_rows",
        .check = [](std::string_view value) -> std::string {
          if (value.empty() || value.size() > 7 || value.find_first_not_of("0123456789") != std::string_view::npos ||
              value == "0" || value.find_first_not_of('0') == std::string_view::npos) {
            return "expected a whole number of rows, 1 to 9999999";
          }
          return {};
        },
        .description = "Rows fetched from a table at a time; each such part is committed to the "
                       "change log as it comes, so memory stays flat whatever the table's size.",
        .hint = "e.g. chunk_rows: 10000",
        .store =
            [](SettingTarget& t, SettingValue&& v) {
              t.pipeline.source.snapshot_chunk_rows = std::stoull(take<std::string>(v));
            },
        .show = [](const PipelineConfig& p,
                   const SinkConfig&) { return code(fmt::format("{}", p.source.snapshot_chunk_rows)); },
    },
    {
        .path = "source.snapshot.max_threads",
        .check = [](std::string_view value) -> std::string {
          if (value.empty() || value.size() > 2 || value.find_first_not_of("0123456789") != std::string_view::npos ||
              std::stoi(std::string(value)) < 1 || std::stoi(std::string(value)) > 64) {
            return "expected a whole number of readers, 1 to 64";
          }
          return {};
        },
        .description = "Readers of the initial snapshot, each on a connection of its own that "
                       "imports the one snapshot (`pg_export_snapshot()`): tables are read side "
                       "by side, and a table estimated at twice `chunk_rows` rows or more in up "
                       "to `max_threads` ranges of its key. Each reader renders its rows into "
                       "events; one writer appends them to the change log in chunks. At most "
                       "`max_threads` chunks wait for the writer, so memory grows with "
                       "`max_threads` x `chunk_rows`. 1: one reader, on the snapshot's own "
                       "connection, exporting nothing.",
        .hint = "e.g. max_threads: 4",
        .store =
            [](SettingTarget& t, SettingValue&& v) {
              t.pipeline.source.snapshot_max_threads = std::stoull(take<std::string>(v));
            },
        .show = [](const PipelineConfig& p,
                   const SinkConfig&) { return code(fmt::format("{}", p.source.snapshot_max_threads)); },
    },
    {
        .path = "source.confirm_keepalives",
        .type = SettingType::Bool,
        .description = "Confirm the server's keepalive positions while no transaction is open, "
                       "so the slot advances when the captured tables are idle. Turn off only to "
                       "reproduce a client that confirms data positions alone (the WAL retention "
                       "experiment in `bench/`).",
        .store = [](SettingTarget& t,
                    SettingValue&& v) { t.pipeline.source.confirm_keepalives = take<bool>(v); },
        .show =
            [](const PipelineConfig& p, const SinkConfig&) {
              return code(fmt::format("{}", p.source.confirm_keepalives));
            },
    },
    {
        .path = "sinks",
        .type = SettingType::List,
        .required = true,
        .description = "Destinations, at least one. Every event goes to every sink.",
        .store = [](SettingTarget& t,
                    SettingValue&&) { t.sink = &t.pipeline.sinks.emplace_back(); },
    },
    {
        .path = "sinks[].name",
        .required = true,
        .check = checkName,
        .description = "Sink name, unique in the pipeline. Same characters as `name`.",
        .hint = "use 1 to 63 characters from A-Z a-z 0-9 _ . -, e.g. name: files",
        .store = [](SettingTarget& t, SettingValue&& v) { t.sink->name = take<std::string>(v); },
    },
    {
        .path = "sinks[].kind",
        .type = SettingType::Enum,
        .required = true,
        .allowed = kSinkKinds,
        .description = "`jsonl`: one file `<path>/<topic>.jsonl` per topic, one event per line. "
                       "`stdout`: one event per line on standard output. `postgres`: the captured "
                       "tables, kept in a PostgreSQL database (`dsn`, `mode`), exactly once.",
        .store = [](SettingTarget& t, SettingValue&& v) { t.sink->kind = take<std::string>(v); },
    },
    {
        .path = "sinks[].path",
        .type = SettingType::Path,
        .default_text = "none",
        .description = "Directory of the `jsonl` files. Required for `jsonl`, not allowed for "
                       "`stdout`. No two sinks may share one.",
        .store = [](SettingTarget& t,
                    SettingValue&& v) { t.sink->path = take<std::filesystem::path>(v); },
    },
    {
        .path = "sinks[].with_key",
        .type = SettingType::Bool,
        .description = "Write `{\"key\":...,\"value\":...}` for each event instead of the value "
                       "alone (`stdout` adds `\"topic\"`, as its lines mix topics).",
        .store = [](SettingTarget& t, SettingValue&& v) { t.sink->with_key = take<bool>(v); },
        .show = [](const PipelineConfig&,
                   const SinkConfig& s) { return code(fmt::format("{}", s.with_key)); },
    },
    {
        .path = "sinks[].dsn",
        .secret = true,
        .check = dsnProblem,
        .default_text = "none",
        .description = "`postgres`: libpq connection string of the destination database. A password "
                       "in it is a secret: it is never printed.",
        .hint = "write \"host=dw port=5432 dbname=replica user=tidemark\" or "
                "\"postgres://tidemark@dw:5432/replica\"",
        .store = [](SettingTarget& t, SettingValue&& v) { t.sink->dsn = take<std::string>(v); },
    },
    {
        .path = "sinks[].mode",
        .type = SettingType::Enum,
        .allowed = kSinkModes,
        .description = "`postgres`: `upsert` keeps one row per key, as the source has it "
                       "(`INSERT ... ON CONFLICT`, deletes delete); `append` adds a row per change, "
                       "with `__op`, `__lsn`, `__commit_ts`, `__txid` and `__seq` (its place in its "
                       "transaction).",
        .store = [](SettingTarget& t, SettingValue&& v) { t.sink->mode = take<std::string>(v); },
        .show = [](const PipelineConfig&, const SinkConfig& s) { return code(s.mode); },
    },
    {
        .path = "sinks[].schema",
        .default_text = "the source table's schema",
        .description = "`postgres`: the schema of the destination tables (created when missing).",
        .store = [](SettingTarget& t, SettingValue&& v) { t.sink->schema = take<std::string>(v); },
    },
    {
        .path = "sinks[].soft_delete",
        .type = SettingType::Bool,
        .description = "`postgres`, `upsert`: a delete sets the row's `__deleted` column to true "
                       "instead of removing the row.",
        .store = [](SettingTarget& t, SettingValue&& v) { t.sink->soft_delete = take<bool>(v); },
        .show = [](const PipelineConfig&,
                   const SinkConfig& s) { return code(fmt::format("{}", s.soft_delete)); },
    },
    {
        .path = "sinks[].truncate",
        .type = SettingType::Bool,
        .description = "`postgres`: apply the source's TRUNCATE to the destination table "
                       "(`append`: a row with `__op` `t`). Off: truncates are skipped.",
        .store = [](SettingTarget& t, SettingValue&& v) { t.sink->truncate = take<bool>(v); },
        .show = [](const PipelineConfig&,
                   const SinkConfig& s) { return code(fmt::format("{}", s.truncate)); },
    },
    {
        .path = "delivery",
        .type = SettingType::Mapping,
        .description = "When the change log is made durable (fsync) and the position confirmed "
                       "to the source, and when each sink makes its output durable and saves its "
                       "place: at a transaction boundary, once either bound is reached or nothing "
                       "more waits.",
    },
    {
        .path = "delivery.flush_interval",
        .type = SettingType::Duration,
        .min = kMs,
        .max = kHour,
        .description = "Longest time between flushes. Lower means fresher confirmed positions, "
                       "more fsyncs.",
        .store =
            [](SettingTarget& t, SettingValue&& v) {
              t.pipeline.delivery.flush_interval = take<milliseconds>(v);
            },
        .show = [](const PipelineConfig& p,
                   const SinkConfig&) { return code(formatDuration(p.delivery.flush_interval)); },
    },
    {
        .path = "delivery.flush_bytes",
        .type = SettingType::Size,
        .min = kKiB,
        .max = 16 * kGiB,
        .description = "Bytes written since the last flush that trigger a flush at the next "
                       "transaction boundary.",
        .store = [](SettingTarget& t,
                    SettingValue&& v) { t.pipeline.delivery.flush_bytes = take<uint64_t>(v); },
        .show = [](const PipelineConfig& p,
                   const SinkConfig&) { return code(formatSize(p.delivery.flush_bytes)); },
    },
    {
        .path = "buffer",
        .type = SettingType::Mapping,
        .description = "The change log between the source and the sinks: the source appends every "
                       "transaction to it and confirms the position once it is durable there; each "
                       "sink reads it from its own place, so a slow or stopped destination never "
                       "holds the source back.",
    },
    {
        .path = "buffer.kind",
        .type = SettingType::Enum,
        .allowed = kBufferKinds,
        .description = "`local`: segment files with per-record checksums under `<state_dir>/log`.",
        .store = [](SettingTarget& t, SettingValue&& v) { t.pipeline.buffer.kind = take<std::string>(v); },
        .show = [](const PipelineConfig& p, const SinkConfig&) { return code(p.buffer.kind); },
    },
    {
        .path = "buffer.max_bytes",
        .type = SettingType::Size,
        .min = kMiB,
        .max = 1024 * kGiB,
        .description = "The change log's largest size. At it, reading from the source pauses at the "
                       "next transaction boundary (the status says so, naming the sink that holds it "
                       "back) until the slowest sink has consumed a segment; segments every sink "
                       "consumed are deleted. A single transaction larger than this is still read "
                       "whole.",
        .store = [](SettingTarget& t, SettingValue&& v) { t.pipeline.buffer.max_bytes = take<uint64_t>(v); },
        .show = [](const PipelineConfig& p, const SinkConfig&) { return code(formatSize(p.buffer.max_bytes)); },
    },
    {
        .path = "heartbeat",
        .type = SettingType::Mapping,
        .description = "Keeping the slot moving and measuring freshness. Layer 1: heartbeat "
                       "events and a position commit every interval. Layer 2: a write on the "
                       "source every interval that flows through the stream, so end-to-end lag "
                       "is measured as now minus the time it was written (as pt-heartbeat does).",
    },
    {
        .path = "heartbeat.interval",
        .type = SettingType::Duration,
        .min = kSecond,
        .max = kHour,
        .description = "How often both layers act. It is also the granularity of the lag "
                       "measurement.",
        .store = [](SettingTarget& t,
                    SettingValue&& v) { t.pipeline.heartbeat.interval = take<milliseconds>(v); },
        .show = [](const PipelineConfig& p,
                   const SinkConfig&) { return code(formatDuration(p.heartbeat.interval)); },
    },
    {
        .path = "heartbeat.events",
        .type = SettingType::Bool,
        .description = "Layer 1: emit a heartbeat event to `__debezium-heartbeat.<prefix>` "
                       "(key `{\"serverName\"}`, value `{\"ts_ms\"}`) every interval, and commit "
                       "the position with it.",
        .store = [](SettingTarget& t,
                    SettingValue&& v) { t.pipeline.heartbeat.events = take<bool>(v); },
        .show = [](const PipelineConfig& p,
                   const SinkConfig&) { return code(fmt::format("{}", p.heartbeat.events)); },
    },
    {
        .path = "heartbeat.mode",
        .type = SettingType::Enum,
        .allowed = kHeartbeatModes,
        .description = "Layer 2. `table`: upsert this pipeline's row in `heartbeat.table` "
                       "(created, and added to the publication, when missing and allowed). "
                       "`message`: `pg_logical_emit_message`, no table needed. `query`: run "
                       "`heartbeat.query`. `off`: no source writes.",
        .store = [](SettingTarget& t,
                    SettingValue&& v) { t.pipeline.heartbeat.mode = take<std::string>(v); },
        .show = [](const PipelineConfig& p,
                   const SinkConfig&) { return code(p.heartbeat.mode); },
    },
    {
        .path = "heartbeat.table",
        .type = SettingType::String,
        .check = [](std::string_view value) { return parseTableName(value).problem; },
        .description = "The heartbeat table, one row per pipeline: `(pipeline text PRIMARY KEY, "
                       "ts timestamptz NOT NULL)`. Written in mode `table`, and read in every "
                       "mode when it is in the publication (a job on the primary may write it).",
        .store =
            [](SettingTarget& t, SettingValue&& v) {
              t.pipeline.heartbeat.table = *parseTableName(take<std::string>(v)).value;
            },
        .show = [](const PipelineConfig& p,
                   const SinkConfig&) { return code(p.heartbeat.table.str()); },
    },
    {
        .path = "heartbeat.query",
        .type = SettingType::String,
        .default_text = "none",
        .description = "Mode `query`: the statement to run every interval (Debezium's "
                       "`heartbeat.action.query`). Required in that mode, not allowed in others.",
        .store = [](SettingTarget& t,
                    SettingValue&& v) { t.pipeline.heartbeat.query = take<std::string>(v); },
    },
    {
        .path = "heartbeat.deliver",
        .type = SettingType::Bool,
        .description = "Deliver heartbeat rows and messages to the sinks as data, too. By "
                       "default they are measured, not delivered.",
        .store = [](SettingTarget& t,
                    SettingValue&& v) { t.pipeline.heartbeat.deliver = take<bool>(v); },
        .show = [](const PipelineConfig& p,
                   const SinkConfig&) { return code(fmt::format("{}", p.heartbeat.deliver)); },
    },
    {
        .path = "heartbeat.hibernate",
        .type = SettingType::Bool,
        .description = "Skip Layer 2 writes while the captured tables carry changes (their "
                       "commits prove the stream is live, and their commit times measure the "
                       "lag); resume when the traffic stops.",
        .store = [](SettingTarget& t,
                    SettingValue&& v) { t.pipeline.heartbeat.hibernate = take<bool>(v); },
        .show = [](const PipelineConfig& p,
                   const SinkConfig&) { return code(fmt::format("{}", p.heartbeat.hibernate)); },
    },
    {
        .path = "heartbeat.stall_timeout",
        .type = SettingType::Duration,
        .min = kSecond,
        .max = 24 * kHour,
        .default_text = "five intervals",
        .description = "A heartbeat written but not seen through the stream within this long "
                       "means the stream is stalled: the state becomes `stalled`, an error says "
                       "what to check, and the pipeline reconnects.",
        .store = [](SettingTarget& t, SettingValue&& v) {
          t.pipeline.heartbeat.stall_timeout = take<milliseconds>(v);
        },
    },    {
        .path = "signal",
        .type = SettingType::Mapping,
        .description = "Requests to a running pipeline through the source, as Debezium's signal "
                       "table does (incremental snapshots, for one).",
    },
    {
        .path = "signal.table",
        .type = SettingType::String,
        .check = [](std::string_view value) { return parseTableName(value).problem; },
        .description = "The signal table: `(id varchar(42) PRIMARY KEY, type varchar(32) NOT NULL, "
                       "data varchar(2048))`, Debezium's layout: its rows (`tidemark snapshot` "
                       "writes them) come through the stream as requests, incremental snapshots for "
                       "one. `tidemark setup` creates it; `tidemark run` adds it to the publication "
                       "when it exists (not with `source.read_only`). Without it, or read-only, "
                       "`tidemark snapshot` leaves request files in the state directory instead.",
        .store =
            [](SettingTarget& t, SettingValue&& v) {
              t.pipeline.signal.table = *parseTableName(take<std::string>(v)).value;
            },
        .show = [](const PipelineConfig& p,
                   const SinkConfig&) { return code(p.signal.table.str()); },
    },
    {
        .path = "retry",
        .type = SettingType::Mapping,
        .description = "Errors that may pass (the source down or restarting, a full disk under a sink "
                       "or the state directory) are retried from the last durable position, with "
                       "exponential backoff and jitter, while `tidemark status` says `retrying` "
                       "with the error. A lost position (exit 3) and configuration errors are never "
                       "retried.",
    },
    {
        .path = "retry.window",
        .type = SettingType::Duration,
        .min = kSecond,
        .max = 7 * 24 * kHour,
        .description = "How long to retry without getting past the position where the errors happen; "
                       "then `run` exits 2. Progress past it starts the window again.",
        .store = [](SettingTarget& t, SettingValue&& v) { t.pipeline.retry.window = take<milliseconds>(v); },
        .show = [](const PipelineConfig& p, const SinkConfig&) { return code(formatDuration(p.retry.window)); },
    },
    {
        .path = "retry.max_backoff",
        .type = SettingType::Duration,
        .min = 100 * kMs,
        .max = kHour,
        .description = "The longest wait between two attempts; waits start at 500ms and double up to it.",
        .store = [](SettingTarget& t,
                    SettingValue&& v) { t.pipeline.retry.max_backoff = take<milliseconds>(v); },
        .show = [](const PipelineConfig& p,
                   const SinkConfig&) { return code(formatDuration(p.retry.max_backoff)); },
    },
    {
        .path = "dlq",
        .type = SettingType::Mapping,
        .description = "The dead letter queue in the state directory: a change a destination "
                       "rejects (a constraint or data error in that one row) is set aside there "
                       "with its error, and the rest flows on. `tidemark dlq` lists, shows, retries and discards them.",
    },
    {
        .path = "dlq.max_records",
        .check = [](std::string_view value) -> std::string {
          if (value.empty() || value.size() > 9 ||
              value.find_first_not_of("0123456789") != std::string_view::npos) {
            return "expected a whole number of records, 0 to 999999999";
          }
          return {};
        },
        .description = "Records a sink may set aside; one more fails the sink, since data quality "
                       "is then a decision for a person.",
        .hint = "e.g. max_records: 1000",
        .store =
            [](SettingTarget& t, SettingValue&& v) {
              t.pipeline.dlq.max_records = std::stoull(take<std::string>(v));
            },
        .show = [](const PipelineConfig& p,
                   const SinkConfig&) { return code(fmt::format("{}", p.dlq.max_records)); },
    },
    {
        .path = "http",
        .type = SettingType::Mapping,
        .description = "The HTTP endpoint of `tidemark run`: `/healthz`, `/readyz`, `/metrics` "
                       "(Prometheus), `/api/status` (the JSON of `tidemark status --json`) and a "
                       "status page at `/`.",
    },
    {
        .path = "http.listen",
        .type = SettingType::String,
        .check = [](std::string_view value) -> std::string {
          if (value == "off" || splitListen(value)) return {};
          return "must be host:port (e.g. 127.0.0.1:7070, a number for the port) or off";
        },
        .description = "Address to listen on, `host:port`, or `off`. Bound to anything but a "
                       "loopback address, `http.token` is required. If the port is taken, the "
                       "pipeline runs without the endpoint and logs why.",
        .store = [](SettingTarget& t,
                    SettingValue&& v) { t.pipeline.http.listen = take<std::string>(v); },
        .show = [](const PipelineConfig& p, const SinkConfig&) { return code(p.http.listen); },
    },
    {
        .path = "http.token",
        .type = SettingType::String,
        .secret = true,
        .default_text = "none",
        .description = "Bearer token every request must carry (`Authorization: Bearer <token>`); "
                       "compared in constant time. Write `${VARIABLE}` rather than the token.",
        .store = [](SettingTarget& t,
                    SettingValue&& v) { t.pipeline.http.token = take<std::string>(v); },
    },
};

constexpr std::string_view kMinimalExample =
    R"(name: shop                      # pipeline name; default topic prefix
source:
  kind: postgres
  dsn: "host=127.0.0.1 port=5432 dbname=shop user=tidemark sslmode=prefer"   # libpq conninfo or URI
  slot: tidemark_slot           # created when missing, if allowed
  publication: tidemark_pub     # created when missing, if allowed
  tables: [public.orders, public.customers]
sinks:
  - name: files
    kind: jsonl
    path: ./out
)";

std::string_view trim(std::string_view s) {
  while (!s.empty() && isSpace(s.front())) {
    s.remove_prefix(1);
  }
  while (!s.empty() && isSpace(s.back())) {
    s.remove_suffix(1);
  }
  return s;
}

// Reads the leading decimal digits of `text` into `value`; false when there are none or the
// number does not fit.
bool readNumber(std::string_view& text, uint64_t& value, std::string& problem) {
  size_t i = 0;
  value = 0;
  while (i < text.size() && isAsciiDigit(text[i])) {
    auto digit = static_cast<uint64_t>(text[i] - '0');
    if (value > (std::numeric_limits<uint64_t>::max() - digit) / 10) {
      problem = "is too large";
      return false;
    }
    value = value * 10 + digit;
    ++i;
  }
  if (i == 0) {
    problem = "must start with a whole number";
    return false;
  }
  text.remove_prefix(i);
  if (!text.empty() && text.front() == '.') {
    problem = "must be a whole number; use a smaller unit instead of a fraction";
    return false;
  }
  text = trim(text);
  return true;
}

struct Unit {
  std::string_view name;
  uint64_t factor;
};

constexpr Unit kDurationUnits[] = {{"h", kHour}, {"m", kMinute}, {"s", kSecond}, {"ms", kMs}};
constexpr Unit kSizeUnits[] = {
    {"TiB", kTiB}, {"GiB", kGiB}, {"MiB", kMiB}, {"KiB", kKiB}, {"B", 1}};

std::string formatWithUnits(uint64_t value, std::span<const Unit> units) {
  for (const Unit& unit : units) {
    if (value != 0 && value % unit.factor == 0) {
      return fmt::format("{}{}", value / unit.factor, unit.name);
    }
  }
  return fmt::format("0{}", units.back().name);
}

}  // namespace

std::span<const Setting> allSettings() { return kSettings; }

const Setting* findSetting(std::string_view path) {
  for (const Setting& setting : kSettings) {
    if (setting.path == path) {
      return &setting;
    }
  }
  return nullptr;
}

std::string_view minimalExample() { return kMinimalExample; }

Parsed<milliseconds> parseDuration(std::string_view text) {
  Parsed<milliseconds> out;
  text = trim(text);
  uint64_t number = 0;
  if (!readNumber(text, number, out.problem)) {
    return out;
  }
  if (text.empty()) {
    out.problem = "has no unit";
    return out;
  }
  for (const Unit& unit : kDurationUnits) {
    if (text == unit.name) {
      if (number > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / unit.factor) {
        out.problem = "is too large";
        return out;
      }
      out.value = milliseconds{static_cast<int64_t>(number * unit.factor)};
      return out;
    }
  }
  out.problem = "has an unknown unit; use ms, s, m or h";
  return out;
}

Parsed<uint64_t> parseSize(std::string_view text) {
  Parsed<uint64_t> out;
  text = trim(text);
  uint64_t number = 0;
  if (!readNumber(text, number, out.problem)) {
    return out;
  }
  if (text.empty()) {
    out.value = number;
    return out;
  }
  for (const Unit& unit : kSizeUnits) {
    if (text == unit.name) {
      if (number > std::numeric_limits<uint64_t>::max() / unit.factor) {
        out.problem = "is too large";
        return out;
      }
      out.value = number * unit.factor;
      return out;
    }
  }
  // "MB" means 10^6 to some readers and 2^20 to others (PostgreSQL's "kB" is 1024); asking for
  // the binary unit avoids guessing.
  constexpr std::string_view kAmbiguous[] = {"K",  "k", "KB", "kB", "kb", "M",  "MB",
                                             "mb", "G", "GB", "gb", "T",  "TB", "tb"};
  if (std::find(std::begin(kAmbiguous), std::end(kAmbiguous), text) != std::end(kAmbiguous)) {
    out.problem = "has an ambiguous unit; use KiB, MiB, GiB or TiB (powers of 1024) or B";
  } else {
    out.problem = "has an unknown unit; use B, KiB, MiB, GiB or TiB";
  }
  return out;
}

std::string formatDuration(milliseconds value) {
  if (value.count() < 0) {
    return fmt::format("{}ms", value.count());
  }
  return formatWithUnits(static_cast<uint64_t>(value.count()), kDurationUnits);
}

std::string formatSize(uint64_t bytes) { return formatWithUnits(bytes, kSizeUnits); }

Parsed<TableName> parseTableName(std::string_view text) {
  Parsed<TableName> out;
  std::vector<std::string> parts;
  size_t i = 0;
  for (;;) {
    std::string part;
    if (i < text.size() && text[i] == '"') {
      ++i;
      bool closed = false;
      while (i < text.size()) {
        if (text[i] == '"') {
          if (i + 1 < text.size() && text[i + 1] == '"') {
            part += '"';
            i += 2;
            continue;
          }
          ++i;
          closed = true;
          break;
        }
        if (text[i] == '\0') {
          out.problem = "contains a NUL character";
          return out;
        }
        part += text[i++];
      }
      if (!closed) {
        out.problem = "has an unterminated quoted name";
        return out;
      }
      if (part.empty()) {
        out.problem = "has an empty quoted name (\"\")";
        return out;
      }
    } else {
      // PostgreSQL's scanner: an unquoted identifier starts with a letter, '_' or a non-ASCII
      // byte and continues with those, digits and '$'. Only ASCII letters are folded.
      while (i < text.size() && text[i] != '.') {
        char c = text[i];
        bool high = static_cast<unsigned char>(c) >= 0x80;
        bool ok = isAsciiLetter(c) || c == '_' || high ||
                  (!part.empty() && (isAsciiDigit(c) || c == '$'));
        if (!ok) {
          bool printable = static_cast<unsigned char>(c) >= 0x20 && c != 0x7f;
          out.problem =
              fmt::format("has {} in an unquoted name; double-quote names with such characters",
                          printable ? fmt::format("'{}'", c) : std::string("a control character"));
          return out;
        }
        part += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
        ++i;
      }
      if (part.empty()) {
        out.problem = "has an empty name part";
        return out;
      }
    }
    if (part.size() > kMaxIdentifierBytes) {
      out.problem = "has a name longer than 63 bytes (PostgreSQL's limit)";
      return out;
    }
    parts.push_back(std::move(part));
    if (i == text.size()) {
      break;
    }
    if (text[i] != '.') {
      out.problem = "has characters after a closing quote; separate names with '.'";
      return out;
    }
    ++i;
    if (i == text.size()) {
      out.problem = "has an empty name part";
      return out;
    }
  }
  if (parts.size() > 2) {
    out.problem =
        "has more than two parts; write schema.table, and double-quote a name that "
        "contains '.'";
    return out;
  }
  if (parts.size() == 1) {
    out.value = TableName{"public", std::move(parts[0])};
  } else {
    out.value = TableName{std::move(parts[0]), std::move(parts[1])};
  }
  return out;
}

std::string topicProblem(std::string_view topic) {
  if (topic.empty() || topic.size() > 249) return "must be 1 to 249 characters long";
  if (topic == "." || topic == "..") return "may not be \".\" or \"..\"";
  for (char c : topic) {
    if (!isAsciiLetter(c) && !isAsciiDigit(c) && c != '_' && c != '.' && c != '-') {
      return "may only contain letters, digits, '_', '.' and '-' (Kafka's topic characters)";
    }
  }
  return {};
}

}  // namespace tidemark::config
