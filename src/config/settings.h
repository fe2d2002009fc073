// The declaration of every configuration setting, in one table (settings.cc), in the manner of
// librdkafka's rd_kafka_properties[]: the loader (config.cc) validates a file against it and
// referenceMarkdown() renders docs/CONFIGURATION.md from it, so the two cannot drift apart.
// Adding a setting means adding a field to config.h and one row to the table; nothing else.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "config/config.h"

namespace tidemark::config {

enum class SettingType {
  Mapping,  // a section of further settings ("source", "delivery")
  List,     // a non-empty list of sections ("sinks"); its settings are "sinks[].<key>"
  String,
  Bool,
  Duration,   // "500ms", "10s", "1m", "2h": a unit is required
  Size,       // "512KiB", "64MiB", "1GiB", "1000B" or a plain number of bytes
  Path,       // a string; relative paths resolve against the config file's directory
  Enum,       // one of Setting::allowed
  TableList,  // a list of table names: "schema.table", "table", "\"Quoted\".\"Name\""
  TopicMap,   // a mapping from table names (as in TableList) to topic names
};

/// A parsed value, as the setting's type produces it.
using TopicList = std::vector<std::pair<TableName, std::string>>;
using SettingValue = std::variant<std::monostate, std::string, bool, std::chrono::milliseconds,
                                  uint64_t, std::filesystem::path, std::vector<TableName>, TopicList>;

/// Where a setting's value is stored while a file is read.
struct SettingTarget {
  PipelineConfig& pipeline;
  SinkConfig* sink = nullptr;  // the sinks[] entry being read; set by the "sinks" row
  // source.password_file is read only after the whole file is validated, so that an unreadable
  // file is reported once, next to the other secret checks.
  std::optional<std::filesystem::path> password_file{};
};

struct Setting {
  // YAML path: "source.slot"; "[]" marks the element of a List: "sinks[].kind".
  std::string_view path{};
  SettingType type = SettingType::String;
  bool required = false;
  // Never echoed in a message, a log line or output; the value may be (or hold) a password.
  bool secret = false;
  std::span<const std::string_view> allowed{};  // Enum: the accepted values, in doc order
  // Duration (milliseconds) and Size (bytes) bounds, inclusive; max == 0 means unbounded.
  uint64_t min = 0;
  uint64_t max = 0;
  // String rules beyond the type (charset, length). Returns why the value is invalid, without
  // quoting it, or an empty string when it is valid.
  std::string (*check)(std::string_view value) = nullptr;
  // Shown in the reference instead of the struct's default, for defaults derived from other
  // settings ("value of name") or for optional settings without a value.
  std::string_view default_text{};
  std::string_view description{};
  // How to fix an invalid value, shown as the error's hint.
  std::string_view hint{};
  // Stores a parsed value. For a List row it starts a new element instead (value is monostate).
  void (*store)(SettingTarget& target, SettingValue&& value) = nullptr;
  // Renders the current value of the field, used to document the defaults that config.h's
  // member initializers define (so that a default is written in exactly one place).
  std::string (*show)(const PipelineConfig& pipeline, const SinkConfig& sink) = nullptr;
};

/// All settings, sections first within their parent, in the order the reference lists them.
std::span<const Setting> allSettings();

/// The row for a table path ("sinks[].kind"), or nullptr.
const Setting* findSetting(std::string_view path);

/// The minimal pipeline shown in the reference (docs/CONFIGURATION.md) and the README.
std::string_view minimalExample();

/// The outcome of parsing one value: the value, or why the text is not one. `problem` never
/// repeats the input, so callers decide whether the input may be shown.
template <typename T>
struct Parsed {
  std::optional<T> value;
  std::string problem;
};

/// "500ms", "10s", "1m", "2h" (an integer and a unit, optionally separated by a space).
Parsed<std::chrono::milliseconds> parseDuration(std::string_view text);
/// "1000B", "512KiB", "64MiB", "1GiB", "1TiB", or a plain integer number of bytes.
Parsed<uint64_t> parseSize(std::string_view text);
/// The largest unit that represents the value exactly: 10000ms -> "10s".
std::string formatDuration(std::chrono::milliseconds value);
/// The largest binary unit that represents the value exactly: 67108864 -> "64MiB".
std::string formatSize(uint64_t bytes);

/// A table as PostgreSQL reads a qualified name: unquoted parts fold to lower case, quoted
/// parts ("" inside quotes is a quote) are kept as written, a missing schema means "public".
Parsed<TableName> parseTableName(std::string_view text);

/// Why `topic` is not a valid Kafka topic name (1 to 249 characters from [A-Za-z0-9._-], not
/// "." or ".."), without quoting it; empty when it is valid.
std::string topicProblem(std::string_view topic);

/// Checks a libpq connection string (conninfo "k=v ..." or postgres:// URI) for syntax errors
/// that would otherwise leave a password where it could be printed. Empty when valid.
std::string dsnProblem(std::string_view dsn);

}  // namespace tidemark::config
