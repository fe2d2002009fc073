// The pipeline configuration: a strict YAML file (unknown keys and wrong types are rejected
// with their path), `${VAR}` expanded from the environment, secrets never printed.
// Every setting is declared once in config/settings.cc, which also generates the reference
// (docs/CONFIGURATION.md, `tidemark config-reference`).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tidemark::config {

struct TableName {
  std::string schema;  // "public" when the file says just "orders"
  std::string table;
  std::string str() const { return schema + "." + table; }
  bool operator==(const TableName&) const = default;
};

struct SourceConfig {
  std::string kind = "postgres";
  std::string dsn;                        // libpq conninfo or URI; may hold a password (secret)
  std::optional<std::string> password;    // overrides any in the dsn (secret)
  std::string slot = "tidemark_slot";
  std::string publication = "tidemark_pub";
  bool create_slot = true;
  bool create_publication = true;
  std::vector<TableName> tables;          // at least one
  /// Topics chosen for tables instead of <prefix>.<schema>.<table> (each table listed in
  /// `tables`). Keeps tables whose names sanitize alike on topics of their own.
  std::vector<std::pair<TableName, std::string>> topics;
  /// What text with bytes that are not valid UTF-8 becomes (possible only in a SQL_ASCII
  /// database): "fail" stops with an error naming the row, "escape" writes \udcXX escapes.
  std::string invalid_utf8 = "fail";
  std::chrono::milliseconds status_interval{10000};
  std::chrono::milliseconds connect_timeout{10000};
  bool read_only = false;                 // write nothing to the source (no DDL, no heartbeat writes)
  bool confirm_keepalives = true;         // advance the slot on keepalives while idle
  /// The rows the tables hold before streaming: "initial" reads them on the pipeline's first
  /// run (and goes on when that read was interrupted), "initial_only" reads them and stops,
  /// "never" streams only what comes after the slot's position, "when_needed" is "initial"
  /// and also starts over with a full read when the stored position is lost, "always" reads
  /// them each time the process starts.
  std::string snapshot_mode = "initial";
  uint64_t snapshot_chunk_rows = 10000;   // rows fetched, and committed to the log, at a time
  uint64_t snapshot_max_threads = 2;      // readers of the initial snapshot, on connections of their own
};

struct HeartbeatConfig {
  std::chrono::milliseconds interval{60000};
  bool events = true;                     // Layer 1: heartbeat events and a position commit
  std::string mode = "table";             // Layer 2: table | message | query | off
  TableName table{"tidemark", "tidemark_heartbeat"};
  std::string query;                      // mode query: the statement to run
  bool deliver = false;                   // deliver heartbeat rows and messages as data
  bool hibernate = true;                  // skip Layer 2 writes while captured tables change
  std::chrono::milliseconds stall_timeout{0};  // 0: five intervals
  std::chrono::milliseconds stallTimeout() const {
    return stall_timeout.count() > 0 ? stall_timeout : 5 * interval;
  }
};

struct SinkConfig {
  std::string name;
  std::string kind;            // "jsonl" | "stdout" | "postgres"
  std::filesystem::path path;  // jsonl: directory of <topic>.jsonl files
  bool with_key = false;       // jsonl/stdout: write {"key":...,"value":...} instead of the value
  // postgres
  std::string dsn;                      // libpq conninfo or URI (secret)
  std::string mode = "upsert";          // "upsert" | "append"
  std::optional<std::string> schema;    // the target tables' schema; default: the source's
  bool soft_delete = false;             // upsert: a delete sets __deleted instead
  bool truncate = true;                 // apply TRUNCATE
};

struct DlqConfig {
  /// Records a sink may set aside in its dead letter queue; one more fails the sink.
  uint64_t max_records = 1000;
};

struct DeliveryConfig {
  // The change log is made durable (fsync) and the position confirmed, and each sink makes
  // its output durable and saves its cursor, at a transaction boundary when either bound is
  // reached (or when there is nothing more to read for now).
  std::chrono::milliseconds flush_interval{500};
  uint64_t flush_bytes = 64ull << 20;
};

/// The change log between the source and the sinks.
struct BufferConfig {
  std::string kind = "local";          // "local": segment files under state_dir/log
  uint64_t max_bytes = 4ull << 30;     // at this size, reading from the source pauses
};

struct SignalConfig {
  TableName table{"tidemark", "tidemark_signal"};
};

struct RetryConfig {
  /// How long to go on retrying after errors that may pass (a source or disk unavailable)
  /// without getting past the position where they happen; then exit 2.
  std::chrono::milliseconds window{30 * 60 * 1000};
  std::chrono::milliseconds max_backoff{30000};  // the longest wait between two attempts
};

struct HttpConfig {
  std::string listen = "127.0.0.1:7070";  // host:port, or "off"
  std::optional<std::string> token;       // bearer token (secret); required off loopback
};

struct PipelineConfig {
  std::string name;
  std::string topic_prefix;           // defaults to name
  std::filesystem::path state_dir;    // defaults to "<config file dir>/<name>.state"
  SourceConfig source;
  std::vector<SinkConfig> sinks;      // at least one
  DeliveryConfig delivery;
  BufferConfig buffer;
  HeartbeatConfig heartbeat;
  SignalConfig signal;
  RetryConfig retry;
  DlqConfig dlq;
  HttpConfig http;
  std::string log_level = "info";
};

/// How strictly secrets are read.
enum class Secrets {
  Required,  // an unset ${VAR} or an unreadable password_file in a secret is an error
  Optional,  // left empty instead: for commands that may work without them (tidemark status)
};

/// Loads and validates a pipeline file. Throws Error(ErrorClass::Config) whose message names
/// the file, the key path (e.g. "sinks[0].kind") and what is wrong, and never contains a
/// secret value.
PipelineConfig loadFile(const std::filesystem::path& file, Secrets secrets = Secrets::Required);

/// The same from YAML text; `origin` names it in messages and `base_dir` resolves relative paths.
PipelineConfig loadString(const std::string& yaml, const std::string& origin,
                          const std::filesystem::path& base_dir, Secrets secrets = Secrets::Required);

/// The configuration reference in Markdown, generated from the declarations.
std::string referenceMarkdown();

/// The dsn with any password removed, safe to print.
std::string redactDsn(const std::string& dsn);

/// http.listen split at its last ':' into host (as written: "[::1]" keeps its brackets) and
/// port; nothing when either is missing or the port is not a number.
struct ListenAddress {
  std::string host;
  std::string port;
  /// The host is this machine only: localhost, 127.x.y.z or ::1.
  bool loopback() const;
};
std::optional<ListenAddress> splitListen(std::string_view listen);

/// A topic name made safe for file names and Kafka, as Debezium makes it: each character outside
/// [A-Za-z0-9._-] becomes '_' (two for a character beyond U+FFFF, one per invalid UTF-8 byte).
std::string sanitizeTopic(std::string_view topic);

/// The topic of a captured table: its entry in source.topics, else
/// <topic_prefix>.<schema>.<table>, sanitized.
std::string tableTopic(const PipelineConfig& cfg, const TableName& table);

}  // namespace tidemark::config
