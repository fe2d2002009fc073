// Rendering of column values as Debezium's PostgreSQL connector renders them (with
// decimal.handling.mode=string, binary.handling.mode=base64, interval.handling.mode=string),
// starting from the text form pgoutput sends. The replication session runs with
// DateStyle=ISO, IntervalStyle=iso_8601, TimeZone=UTC, bytea_output=hex and
// extra_float_digits=3, so the text forms parsed here are fixed whatever the server's defaults.
//
// Values are never invented: text that does not parse as its type is an Error(Poison) that
// names the type and the text.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "common/json_writer.h"
#include "common/lsn.h"

namespace tidemark::events {

enum class ValueKind : uint8_t {
  Bool,         // true / false
  Integer,      // int2, int4, int8, oid: JSON integer, exact
  Float,        // float4, float8: JSON number; NaN, Infinity, -Infinity as strings
  Numeric,      // numeric: exact string, "NaN" / "Infinity" kept
  Text,         // text, varchar, char, name, enums, unknown types: JSON string of the text
  Bytea,        // base64 of the bytes
  Json,         // json, jsonb: JSON string holding the JSON text (io.debezium.data.Json)
  Uuid,         // string
  Date,         // days since 1970-01-01 (io.debezium.time.Date); infinity: see values.cc
  Timestamp,    // microseconds since epoch (io.debezium.time.MicroTimestamp)
  TimestampTz,  // ISO-8601 UTC string with microseconds (io.debezium.time.ZonedTimestamp)
  Time,         // microseconds since midnight (io.debezium.time.MicroTime)
  TimeTz,       // ISO-8601 UTC time string (io.debezium.time.ZonedTime)
  Interval,     // ISO-8601 duration string, as the server prints with IntervalStyle=iso_8601
  Array,        // JSON array of the elements rendered by their own kind
};

/// How the values of one column type are rendered. Arrays point at their element's info.
struct TypeInfo {
  ValueKind kind = ValueKind::Text;
  std::shared_ptr<const TypeInfo> element;  // set for Array
  char delimiter = ',';                     // array element delimiter (typdelim)
};

/// The rendering for a built-in type OID (OID below 16384: int4, _int4, timestamptz, ...), or
/// nullptr when the OID is not one this table knows. Unknown built-ins render as Text.
std::shared_ptr<const TypeInfo> builtinType(TypeOid oid);

/// The rendering for the pg_catalog type named `typname` ("bytea", "int4", "_int4" for its
/// array), or nullptr.
std::shared_ptr<const TypeInfo> builtinTypeNamed(std::string_view typname);

/// Appends the JSON value for the PostgreSQL text output `text` of a value of `type`.
/// Throws Error(ErrorClass::Poison) when the text is not a valid value of that kind.
void renderValue(const TypeInfo& type, std::string_view text, JsonWriter& out);

/// Microseconds since 1970-01-01 UTC of a timestamptz text ("2024-01-02 03:04:05.12+00"), for
/// measuring heartbeats. Throws Error(Poison) for infinity or text that is not a timestamptz.
int64_t timestampTzUnixMicros(std::string_view text);

/// Debezium's placeholder for an unchanged TOASTed value.
inline constexpr std::string_view kUnavailableValue = "__debezium_unavailable_value";

/// Appends the placeholder for an unchanged TOASTed value of `type`: the string for most
/// kinds, base64 of the placeholder bytes for Bytea, a one-element array for Array.
void renderUnavailable(const TypeInfo& type, JsonWriter& out);

}  // namespace tidemark::events
