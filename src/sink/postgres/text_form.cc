#include "sink/postgres/text_form.h"

#include <charconv>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/base64.h"
#include "base/error.h"

namespace tidemark::sinks::pgtext {

namespace {

constexpr int64_t kMicrosPerSecond = 1000000;
constexpr int64_t kMicrosPerDay = 86400 * kMicrosPerSecond;

// Howard Hinnant's civil-from-days: the proleptic Gregorian date `days` after 1970-01-01,
// with astronomical years (1 BC is year 0).
struct Civil {
  int64_t year;
  unsigned month;
  unsigned day;
};

constexpr Civil civilFromDays(int64_t z) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  return {y + (m <= 2), m, d};
}

constexpr int64_t daysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

// Debezium's io.debezium.time.Date for PostgreSQL's infinite dates (events/values.cc).
constexpr int64_t kDatePositiveInfinity = daysFromCivil(5877611, 6, 21);
constexpr int64_t kDateNegativeInfinity = daysFromCivil(-5877611, 6, 22);

}  // namespace

void appendJson(const Form& form, const nlohmann::json& v, std::string& out);

namespace {

int64_t floorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

[[noreturn]] void bad(const Form& form, const nlohmann::json& v, std::string_view why) {
  std::string shown = v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (shown.size() > 64) shown = shown.substr(0, 64) + "...";
  throw Error(ErrorClass::Poison, fmt::format("cannot write {} as {}: {}", shown, form.value, why));
}

int64_t integer(const Form& form, const nlohmann::json& v) {
  if (!v.is_number_integer()) bad(form, v, "expected an integer");
  return v.get<int64_t>();
}

const std::string& string(const Form& form, const nlohmann::json& v) {
  if (!v.is_string()) bad(form, v, "expected a string");
  return v.get_ref<const std::string&>();
}

void appendDate(int64_t days, std::string& out) {
  const Civil c = civilFromDays(days);
  const bool bc = c.year <= 0;
  fmt::format_to(std::back_inserter(out), "{:04}-{:02}-{:02}", bc ? 1 - c.year : c.year, c.month, c.day);
}

void appendClock(int64_t micros, std::string& out) {
  const int64_t seconds = micros / kMicrosPerSecond;
  const int64_t fraction = micros % kMicrosPerSecond;
  fmt::format_to(std::back_inserter(out), "{:02}:{:02}:{:02}", seconds / 3600, seconds / 60 % 60, seconds % 60);
  if (fraction != 0) fmt::format_to(std::back_inserter(out), ".{:06}", fraction);
}

void appendTimestamp(int64_t micros, std::string& out) {
  const int64_t days = floorDiv(micros, kMicrosPerDay);
  appendDate(days, out);
  out += ' ';
  appendClock(micros - days * kMicrosPerDay, out);
  if (civilFromDays(days).year <= 0) out += " BC";
}

// java.time's ISO form with an astronomical year ("-0001-12-31T23:00:00Z", "+10000-...") as
// PostgreSQL reads it: the year spelled out with BC.
void appendTimestampTz(const std::string& s, std::string& out) {
  if (s.empty() || (s[0] != '-' && s[0] != '+')) {
    out += s;
    return;
  }
  const size_t dash = s.find('-', 1);
  if (dash == std::string::npos) {
    out += s;
    return;
  }
  const int64_t year = std::stoll(s.substr(1, dash - 1)) * (s[0] == '-' ? -1 : 1);
  if (year > 0) {
    out.append(s, 1);
    return;
  }
  fmt::format_to(std::back_inserter(out), "{:04}", 1 - year);
  out.append(s, dash);
  out += " BC";
}

void appendBits(const Form& form, const nlohmann::json& v, std::string& out) {
  auto bytes = decodeBase64(string(form, v));
  if (!bytes) bad(form, v, "expected base64");
  // Bit i of the string read from its end is bit i % 8 of byte i / 8 (java.util.BitSet).
  size_t length = bytes->size() * 8;
  while (length > 0 && ((static_cast<unsigned char>((*bytes)[(length - 1) / 8]) >> ((length - 1) % 8)) & 1) == 0) {
    --length;
  }
  if (!form.varying && form.typmod > 0) {
    if (length > static_cast<size_t>(form.typmod)) bad(form, v, "more bits than the column holds");
    length = static_cast<size_t>(form.typmod);
  }
  for (size_t i = length; i-- > 0;) {
    const bool set = i / 8 < bytes->size() && ((static_cast<unsigned char>((*bytes)[i / 8]) >> (i % 8)) & 1) != 0;
    out += set ? '1' : '0';
  }
}

// Integers as they are; a double as the shortest text that reads back as the same double (a
// float4 column rounds it to the float it was).
void appendNumber(const nlohmann::json& v, std::string& out) { out += v.dump(); }

void appendQuotedElement(std::string_view text, std::string& out) {
  out += '"';
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
}

void appendArray(const Form& form, const Form& element, const nlohmann::json& v, std::string& out) {
  if (!v.is_array()) bad(form, v, "expected an array");
  out += '{';
  bool first = true;
  std::string text;
  for (const auto& e : v) {
    if (!first) out += ',';
    first = false;
    if (e.is_null()) {
      out += "NULL";
    } else if (e.is_array()) {
      appendArray(form, element, e, out);  // the next dimension
    } else {
      text.clear();
      appendJson(element, e, text);
      appendQuotedElement(text, out);
    }
  }
  out += '}';
}

void appendHstore(const Form& form, const nlohmann::json& v, std::string& out) {
  nlohmann::json pairs;
  try {
    pairs = nlohmann::json::parse(string(form, v));
  } catch (const nlohmann::json::exception&) {
    bad(form, v, "expected a JSON object in the string");
  }
  if (!pairs.is_object()) bad(form, v, "expected a JSON object in the string");
  bool first = true;
  for (const auto& [k, value] : pairs.items()) {
    if (!first) out += ", ";
    first = false;
    appendQuotedElement(k, out);
    out += "=>";
    if (value.is_null()) {
      out += "NULL";
    } else if (value.is_string()) {
      appendQuotedElement(value.get_ref<const std::string&>(), out);
    } else {
      appendQuotedElement(value.dump(), out);
    }
  }
}

}  // namespace

std::string dateText(int64_t days) {
  std::string out;
  appendDate(days, out);
  if (civilFromDays(days).year <= 0) out += " BC";
  return out;
}

std::string timestampText(int64_t micros) {
  std::string out;
  appendTimestamp(micros, out);
  return out;
}

void appendJson(const Form& form, const nlohmann::json& v, std::string& out) {
  const std::string& f = form.value;
  if (f == "bool") {
    if (!v.is_boolean()) bad(form, v, "expected true or false");
    out += v.get<bool>() ? "t" : "f";
  } else if (f == "integer" || f == "float") {
    if (v.is_number()) {
      appendNumber(v, out);
    } else if (f == "float" && v.is_string()) {
      out += v.get_ref<const std::string&>();  // NaN, Infinity, -Infinity
    } else {
      bad(form, v, "expected a number");
    }
  } else if (f == "numeric") {
    if (v.is_number()) {
      appendNumber(v, out);
      return;
    }
    const std::string& s = string(form, v);
    if (s == "NAN") {
      out += "NaN";
    } else if (s == "POSITIVE_INFINITY") {
      out += "Infinity";
    } else if (s == "NEGATIVE_INFINITY") {
      out += "-Infinity";
    } else {
      out += s;
    }
  } else if (f == "bytea") {
    auto bytes = decodeBase64(string(form, v));
    if (!bytes) bad(form, v, "expected base64");
    static const char* hex = "0123456789abcdef";
    out += "\\x";
    for (unsigned char c : *bytes) {
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  } else if (f == "date") {
    const int64_t days = integer(form, v);
    if (days >= kDatePositiveInfinity) {
      out += "infinity";
    } else if (days <= kDateNegativeInfinity) {
      out += "-infinity";
    } else {
      out += dateText(days);
    }
  } else if (f == "timestamp_us" || f == "timestamp_ms") {
    if (v.is_string()) {
      out += v.get_ref<const std::string&>();  // infinity, -infinity
    } else {
      const int64_t n = integer(form, v);
      appendTimestamp(f == "timestamp_ms" ? n * 1000 : n, out);
    }
  } else if (f == "time_us" || f == "time_ms") {
    const int64_t n = integer(form, v);
    appendClock(f == "time_ms" ? n * 1000 : n, out);
  } else if (f == "timestamptz") {
    appendTimestampTz(string(form, v), out);
  } else if (f == "bit") {
    if (!v.is_boolean()) bad(form, v, "expected true or false");
    out += v.get<bool>() ? '1' : '0';
  } else if (f == "bits") {
    appendBits(form, v, out);
  } else if (f == "point") {
    if (!v.is_object() || !v.contains("x") || !v.contains("y")) bad(form, v, "expected {\"x\":..,\"y\":..}");
    out += '(';
    appendJson(Form{"float"}, v["x"], out);
    out += ',';
    appendJson(Form{"float"}, v["y"], out);
    out += ')';
  } else if (f == "hstore") {
    appendHstore(form, v, out);
  } else if (f == "array") {
    Form element{form.element.empty() ? "text" : form.element};
    element.typmod = form.typmod;
    element.varying = form.varying;
    appendArray(form, element, v, out);
  } else if (v.is_string()) {
    out += v.get_ref<const std::string&>();  // text, json, uuid, interval, timetz, ...
  } else if (v.is_boolean()) {
    out += v.get<bool>() ? "t" : "f";
  } else {
    out += v.dump();
  }
}

namespace {

[[noreturn]] void badToken(const Form& form, const jsonr::Value& v, std::string_view why) {
  std::string shown(v.raw.substr(0, 64));
  if (v.raw.size() > 64) shown += "...";
  throw Error(ErrorClass::Poison, fmt::format("cannot write {} as {}: {}", shown, form.value, why));
}

int64_t tokenInteger(const Form& form, const jsonr::Value& v) {
  int64_t n = 0;
  if (v.kind != jsonr::Kind::Number) badToken(form, v, "expected an integer");
  const auto [end, ec] = std::from_chars(v.raw.data(), v.raw.data() + v.raw.size(), n);
  if (ec != std::errc() || end != v.raw.data() + v.raw.size()) badToken(form, v, "expected an integer");
  return n;
}

}  // namespace

void append(const Form& form, const jsonr::Value& v, std::string& out) {
  // The forms of most columns, straight from the event's text; the rest through a parsed tree.
  const std::string& f = form.value;
  switch (v.kind) {
    case jsonr::Kind::String:
      if (f == "text" || f == "json" || f == "uuid" || f == "interval" || f == "timetz" || f == "float" ||
          f == "timestamp_us" || f == "timestamp_ms") {
        v.appendString(out);  // also NaN, Infinity; infinity for timestamps
        return;
      }
      if (f == "numeric") {
        const size_t at = out.size();
        v.appendString(out);
        const std::string_view s(out.data() + at, out.size() - at);
        if (s == "NAN") {
          out.replace(at, std::string::npos, "NaN");
        } else if (s == "POSITIVE_INFINITY") {
          out.replace(at, std::string::npos, "Infinity");
        } else if (s == "NEGATIVE_INFINITY") {
          out.replace(at, std::string::npos, "-Infinity");
        }
        return;
      }
      if (f == "timestamptz") {
        appendTimestampTz(v.string(), out);
        return;
      }
      break;
    case jsonr::Kind::Number:
      if (f == "integer" || f == "float" || f == "numeric" || f == "text") {
        out += v.raw;
        return;
      }
      if (f == "date" || f == "timestamp_us" || f == "timestamp_ms" || f == "time_us" || f == "time_ms") {
        const int64_t n = tokenInteger(form, v);
        if (f == "date") {
          if (n >= kDatePositiveInfinity) {
            out += "infinity";
          } else if (n <= kDateNegativeInfinity) {
            out += "-infinity";
          } else {
            out += dateText(n);
          }
        } else if (f == "time_us" || f == "time_ms") {
          appendClock(f == "time_ms" ? n * 1000 : n, out);
        } else {
          appendTimestamp(f == "timestamp_ms" ? n * 1000 : n, out);
        }
        return;
      }
      break;
    case jsonr::Kind::Bool:
      if (f == "bool" || f == "text") {
        out += v.raw == "true" ? "t" : "f";
        return;
      }
      if (f == "bit") {
        out += v.raw == "true" ? '1' : '0';
        return;
      }
      break;
    default:
      break;
  }
  nlohmann::json tree;
  try {
    tree = nlohmann::json::parse(v.raw);
  } catch (const nlohmann::json::exception&) {
    badToken(form, v, "not JSON");
  }
  appendJson(form, tree, out);
}

void appendCopyEscaped(std::string_view text, std::string& out) {
  for (char c : text) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      default: out += c;
    }
  }
}

}  // namespace tidemark::sinks::pgtext
