// Debezium's JSON values back into PostgreSQL's text input forms, for a destination table whose
// columns have the source's types. The table-schema record says how each column's values were
// rendered (its "value" form, events/values.h: valueForm); this undoes that rendering:
//
//   date           days since 1970 (Debezium's sentinels for +-infinity)  -> 2024-05-01, 0044-03-15 BC
//   timestamp_us   microseconds since 1970 (_ms: milliseconds)             -> 2024-05-01 12:00:00.5
//   time_us        microseconds since midnight (_ms: milliseconds)         -> 12:00:00.5, 24:00:00
//   timestamptz    ISO-8601 UTC, astronomical years ("-0001", "+10000")    -> the same, BC spelled out
//   bytea          base64                                                  -> \x0a0b
//   bit / bits     a boolean / base64 of the bits, little-endian          -> 1 / 00101 (the declared length)
//   numeric        "NAN", "POSITIVE_INFINITY", "NEGATIVE_INFINITY"         -> NaN, Infinity, -Infinity
//   point          {"x":1,"y":2,...}                                       -> (1,2)
//   hstore         a JSON object as a string                               -> "k"=>"v"
//   array          nested JSON arrays of the element's form                -> {...} with quoted elements
//
// and every other form (text, json, uuid, interval, timetz, numbers, booleans) as it is. What
// Debezium's rendering lost stays lost: a timetz's zone (written as UTC), a varbit's leading
// zeros, an array's lower bounds.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/json_reader.h"

namespace tidemark::sinks::pgtext {

/// How one column's values arrive.
struct Form {
  std::string value = "text";  // the schema record's "value"
  std::string element{};       // for "array": the element's form
  int32_t typmod = -1;         // bit(n): n
  bool varying = false;        // bits: bit varying (no fixed length)
};

/// Appends the text input form of `v` (not JSON null) for a column of `form`. Throws
/// Error(Poison) when the value is not what the form renders.
void append(const Form& form, const jsonr::Value& v, std::string& out);

/// Appends `text` escaped for COPY's text format (backslash, tab, newline, carriage return).
void appendCopyEscaped(std::string_view text, std::string& out);

/// The date `days` after 1970-01-01, as PostgreSQL reads it ("0044-03-15 BC").
std::string dateText(int64_t days);
/// The timestamp `micros` after 1970-01-01 00:00:00.
std::string timestampText(int64_t micros);

}  // namespace tidemark::sinks::pgtext
