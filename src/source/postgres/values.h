// Rendering of column values as Debezium's PostgreSQL connector renders them (with
// decimal.handling.mode=string, binary.handling.mode=base64, interval.handling.mode=string,
// and its defaults otherwise: time.precision.mode=adaptive, hstore.handling.mode=json),
// starting from the text form pgoutput sends. tests/compat holds the renderings to Debezium's
// own; docs/COMPATIBILITY.md lists where they differ on purpose. The replication session runs with
// DateStyle=ISO, IntervalStyle=iso_8601, TimeZone=UTC, bytea_output=hex and
// extra_float_digits=3, so the text forms parsed here are fixed whatever the server's defaults.
//
// Values are never invented: text that does not parse as its type is an Error(Poison) that
// names the type and the text.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "base/json_writer.h"
#include "base/lsn.h"

namespace tidemark::events {

enum class ValueKind : uint8_t {
  Bool,         // true / false
  Integer,      // int2, int4, int8, oid: JSON integer, exact
  Float,        // float4, float8: JSON number; NaN, Infinity, -Infinity as strings
  Numeric,      // numeric: exact string; "NAN", "POSITIVE_INFINITY", "NEGATIVE_INFINITY"
  Text,         // text, varchar, char, name, enums, unknown types: JSON string of the text
  Bytea,        // base64 of the bytes
  Json,         // json, jsonb: JSON string holding the JSON text (io.debezium.data.Json)
  Uuid,         // string
  Date,         // days since 1970-01-01 (io.debezium.time.Date); infinity: see values.cc
  Timestamp,    // since 1970: microseconds (MicroTimestamp), milliseconds for precision 0-3
  TimestampTz,  // ISO-8601 UTC string with as many fraction digits as the precision (6)
  Time,         // since midnight: microseconds (MicroTime), milliseconds for precision 0-3
  TimeTz,       // ISO-8601 UTC time string, fraction without trailing zeros (ZonedTime)
  Interval,     // "P<y>Y<m>M<d>DT<h>H<m>M<s>S", every part written (io.debezium.time.Interval)
  Bits,         // bit, varbit: base64 of the bits as little-endian bytes; true/false for bit(1)
  Point,        // {"x","y","wkb","srid"} (io.debezium.data.geometry.Point)
  Hstore,       // JSON object text as a string (hstore.handling.mode=json)
  Array,        // JSON array of the elements rendered by their own kind
};

/// How the values of one column type are rendered. Arrays point at their element's info.
struct TypeInfo {
  ValueKind kind = ValueKind::Text;
  std::shared_ptr<const TypeInfo> element;  // set for Array
  char delimiter = ',';                     // array element delimiter (typdelim)
  /// The column's type modifier where it changes the rendering (withTypmod): the precision of
  /// a time or timestamp, the length of a bit string. -1: none.
  int32_t typmod = -1;
};

/// `type` for a column declared with type modifier `typmod` (the Relation message's
/// atttypmod: time(3), bit(1), ...): the same info when the modifier changes nothing, else a
/// copy that carries it (for arrays, in the element).
std::shared_ptr<const TypeInfo> withTypmod(std::shared_ptr<const TypeInfo> type, int32_t typmod);

/// How values of `type` are rendered, named for the table-schema record (core::TableSchema), so
/// that a typed destination reads them back: "bool", "integer", "float", "numeric", "text",
/// "bytea", "json", "uuid", "date", "timestamp_ms", "timestamp_us", "timestamptz", "time_ms",
/// "time_us", "timetz", "interval", "bit" (a boolean), "bits", "point", "hstore", "array" (its
/// element's form is elementForm()).
std::string_view valueForm(const TypeInfo& type);

/// The rendering of the hstore extension's type (an OID of its own in every database).
std::shared_ptr<const TypeInfo> hstoreType();

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
