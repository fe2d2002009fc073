#include "source/postgres/values.h"

#include <algorithm>
#include <array>
#include <bit>
#include <limits>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstddef>
#include <string>
#include <system_error>

#include "base/base64.h"
#include "base/error.h"

namespace tidemark::events {
namespace {

// ---------------------------------------------------------------------------------------------
// Errors

std::string_view kindName(ValueKind kind) {
  switch (kind) {
    case ValueKind::Bool: return "bool";
    case ValueKind::Integer: return "integer";
    case ValueKind::Float: return "float";
    case ValueKind::Numeric: return "numeric";
    case ValueKind::Text: return "text";
    case ValueKind::Bytea: return "bytea";
    case ValueKind::Json: return "json";
    case ValueKind::Uuid: return "uuid";
    case ValueKind::Date: return "date";
    case ValueKind::Timestamp: return "timestamp";
    case ValueKind::TimestampTz: return "timestamptz";
    case ValueKind::Time: return "time";
    case ValueKind::TimeTz: return "timetz";
    case ValueKind::Interval: return "interval";
    case ValueKind::Bits: return "bit string";
    case ValueKind::Point: return "point";
    case ValueKind::Hstore: return "hstore";
    case ValueKind::Array: return "array";
  }
  return "value";
}

// Values can be megabytes long (text, json, bytea); a message only needs enough to find the row.
constexpr size_t kMaxQuotedBytes = 64;

// Appends `text` in quotes, cut to kMaxQuotedBytes on a UTF-8 boundary so the message itself
// stays valid text.
// Bytes that are not valid UTF-8 are shown as \xNN, so the message itself stays valid text.
void appendQuotedExcerpt(std::string& message, std::string_view text) {
  message += '"';
  size_t n = text.size();
  if (n > kMaxQuotedBytes) {
    n = kMaxQuotedBytes;
    while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;
  }
  std::string_view rest = text.substr(0, n);
  while (!rest.empty()) {
    size_t bad = JsonWriter::firstInvalidUtf8(rest);
    message.append(rest.substr(0, bad));
    if (bad == std::string_view::npos) break;
    static const char* hex = "0123456789abcdef";
    const auto byte = static_cast<unsigned char>(rest[bad]);
    message += "\\x";
    message += hex[byte >> 4];
    message += hex[byte & 0xF];
    rest.remove_prefix(bad + 1);
  }
  if (n < text.size()) message += "...";
  message += '"';
}

[[noreturn]] void fail(ValueKind kind, std::string_view text, std::string_view reason,
                       std::string hint = {}) {
  std::string message = "cannot render ";
  appendQuotedExcerpt(message, text);
  message += " as ";
  message += kindName(kind);
  message += ": ";
  message += reason;
  throw Error(ErrorClass::Poison, std::move(message), std::move(hint));
}

constexpr bool isDigit(char c) { return c >= '0' && c <= '9'; }
constexpr bool isArraySpace(char c) {
  // The characters array_in skips around elements (scanner_isspace).
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

bool equalsIgnoreCase(std::string_view a, std::string_view lowercase) {
  if (a.size() != lowercase.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char c = a[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != lowercase[i]) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Numbers

void renderBool(std::string_view text, JsonWriter& out) {
  // boolout prints exactly "t" or "f".
  if (text == "t") {
    out.boolean(true);
  } else if (text == "f") {
    out.boolean(false);
  } else {
    fail(ValueKind::Bool, text, "expected \"t\" or \"f\"");
  }
}

void renderInteger(std::string_view text, JsonWriter& out) {
  // Parsing (instead of copying the text) both validates and canonicalises: JSON forbids the
  // leading zeros and '+' that a hand-typed value could carry.
  int64_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec == std::errc::result_out_of_range) fail(ValueKind::Integer, text, "out of range for a 64-bit integer");
  if (ec != std::errc{} || ptr != end) fail(ValueKind::Integer, text, "not an integer");
  out.integer(value);
}

// True when `s` is already a number in RFC 8259 grammar, so it can be copied as is.
bool isJsonNumber(std::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  if (i < n && s[i] == '-') ++i;
  if (i >= n) return false;
  if (s[i] == '0') {
    ++i;
  } else if (isDigit(s[i])) {
    while (i < n && isDigit(s[i])) ++i;
  } else {
    return false;
  }
  if (i < n && s[i] == '.') {
    const size_t start = ++i;
    while (i < n && isDigit(s[i])) ++i;
    if (i == start) return false;
  }
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < n && (s[i] == '+' || s[i] == '-')) ++i;
    const size_t start = i;
    while (i < n && isDigit(s[i])) ++i;
    if (i == start) return false;
  }
  return i == n;
}

// Rewrites a decimal number that JSON does not accept as written ("+1", ".5", "1.", "007",
// "1.e5") into the JSON spelling of the same value. Returns false when `s` is not a number.
bool normalizeNumber(std::string_view s, std::string& json) {
  size_t i = 0;
  const size_t n = s.size();
  bool negative = false;
  if (i < n && (s[i] == '+' || s[i] == '-')) negative = s[i++] == '-';
  size_t int_start = i;
  while (i < n && isDigit(s[i])) ++i;
  std::string_view int_digits = s.substr(int_start, i - int_start);
  std::string_view frac_digits;
  if (i < n && s[i] == '.') {
    const size_t frac_start = ++i;
    while (i < n && isDigit(s[i])) ++i;
    frac_digits = s.substr(frac_start, i - frac_start);
  }
  if (int_digits.empty() && frac_digits.empty()) return false;
  std::string_view exponent_sign;
  std::string_view exponent_digits;
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < n && (s[i] == '+' || s[i] == '-')) exponent_sign = s.substr(i++, 1);
    const size_t exp_start = i;
    while (i < n && isDigit(s[i])) ++i;
    exponent_digits = s.substr(exp_start, i - exp_start);
    if (exponent_digits.empty()) return false;
  }
  if (i != n) return false;

  while (int_digits.size() > 1 && int_digits.front() == '0') int_digits.remove_prefix(1);
  json.clear();
  if (negative) json += '-';
  json += int_digits.empty() ? std::string_view("0") : int_digits;
  if (!frac_digits.empty()) {
    json += '.';
    json += frac_digits;
  }
  if (!exponent_digits.empty()) {
    json += 'e';
    json += exponent_sign;
    json += exponent_digits;
  }
  return true;
}

// A number whose magnitude no double holds (1e+400): no float4 or float8 prints one, and a
// consumer's JSON parser would fail on it or read infinity. Cheap for the numbers PostgreSQL
// prints: only a long exponent or a long run of digits gets parsed.
bool overflowsDouble(std::string_view text) {
  const size_t e = text.find_first_of("eE");
  const size_t digits = e == std::string_view::npos ? text.size() : e;
  const bool long_exponent = e != std::string_view::npos && text.size() - e > 3;
  if (!long_exponent && digits <= 309) return false;
  const std::string copy(text);
  return std::isinf(std::strtod(copy.c_str(), nullptr));
}

void renderFloat(std::string_view text, JsonWriter& out) {
  if (isJsonNumber(text)) {
    if (overflowsDouble(text)) fail(ValueKind::Float, text, "outside the range of a double");
    out.rawNumber(text);
    return;
  }
  // Debezium writes the IEEE specials as these strings because JSON numbers cannot hold them.
  if (text == "NaN" || text == "Infinity" || text == "-Infinity") {
    out.string(text);
    return;
  }
  std::string_view unsigned_text = text;
  bool negative = false;
  if (!unsigned_text.empty() && (unsigned_text.front() == '+' || unsigned_text.front() == '-')) {
    negative = unsigned_text.front() == '-';
    unsigned_text.remove_prefix(1);
  }
  if (equalsIgnoreCase(unsigned_text, "nan")) {
    out.string("NaN");
    return;
  }
  if (equalsIgnoreCase(unsigned_text, "inf") || equalsIgnoreCase(unsigned_text, "infinity")) {
    out.string(negative ? "-Infinity" : "Infinity");
    return;
  }
  std::string json;
  if (!normalizeNumber(text, json)) fail(ValueKind::Float, text, "not a number");
  if (overflowsDouble(json)) fail(ValueKind::Float, text, "outside the range of a double");
  out.rawNumber(json);
}

void renderNumeric(std::string_view text, JsonWriter& out) {
  // decimal.handling.mode=string: the exact text, so scale and precision survive. The specials
  // are spelled as Debezium spells them (its SpecialValueDecimal names).
  if (text == "NaN") {
    out.string("NAN");
    return;
  }
  if (text == "Infinity") {
    out.string("POSITIVE_INFINITY");
    return;
  }
  if (text == "-Infinity") {
    out.string("NEGATIVE_INFINITY");
    return;
  }
  size_t i = 0;
  const size_t n = text.size();
  if (i < n && (text[i] == '-' || text[i] == '+')) ++i;
  size_t digits = 0;
  while (i < n && isDigit(text[i])) ++i, ++digits;
  if (i < n && text[i] == '.') {
    ++i;
    while (i < n && isDigit(text[i])) ++i, ++digits;
  }
  if (digits == 0) fail(ValueKind::Numeric, text, "not a number");
  if (i < n && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    if (i < n && (text[i] == '+' || text[i] == '-')) ++i;
    const size_t exp_start = i;
    while (i < n && isDigit(text[i])) ++i;
    if (i == exp_start) fail(ValueKind::Numeric, text, "exponent has no digits");
  }
  if (i != n) fail(ValueKind::Numeric, text, "not a number");
  out.string(text);
}

// ---------------------------------------------------------------------------------------------
// Bytes

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

constexpr std::string_view kByteaHint =
    "the replication session sets bytea_output=hex; check that nothing overrides it";

void decodeByteaHex(std::string_view text, std::string& bytes) {
  std::string_view hex = text.substr(2);
  if (hex.size() % 2 != 0) fail(ValueKind::Bytea, text, "odd number of hex digits");
  bytes.resize(hex.size() / 2);
  for (size_t i = 0; i < bytes.size(); ++i) {
    const int hi = hexValue(hex[2 * i]);
    const int lo = hexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) fail(ValueKind::Bytea, text, "invalid hex digit", std::string(kByteaHint));
    bytes[i] = static_cast<char>((hi << 4) | lo);
  }
}

// The "escape" output format: printable bytes as is, '\' as "\\", the rest as "\ooo". Accepted
// so that a session left with bytea_output=escape still produces the right bytes; the two formats
// cannot be confused because escape output never starts with "\x".
void decodeByteaEscape(std::string_view text, std::string& bytes) {
  bytes.clear();
  for (size_t i = 0; i < text.size();) {
    if (text[i] != '\\') {
      bytes += text[i++];
      continue;
    }
    if (i + 1 < text.size() && text[i + 1] == '\\') {
      bytes += '\\';
      i += 2;
      continue;
    }
    if (i + 3 < text.size() && text[i + 1] >= '0' && text[i + 1] <= '3' && text[i + 2] >= '0' &&
        text[i + 2] <= '7' && text[i + 3] >= '0' && text[i + 3] <= '7') {
      bytes += static_cast<char>(((text[i + 1] - '0') << 6) | ((text[i + 2] - '0') << 3) | (text[i + 3] - '0'));
      i += 4;
      continue;
    }
    fail(ValueKind::Bytea, text, "invalid escape sequence", std::string(kByteaHint));
  }
}

// Per-thread buffers that grew beyond this are freed after use, so that one huge value does not
// pin its memory for the life of the thread.
constexpr size_t kKeptCapacity = size_t{1} << 20;

void renderBytea(std::string_view text, JsonWriter& out) {
  // Reused per thread: bytea columns arrive row after row and need two intermediate buffers.
  thread_local std::string bytes;
  thread_local std::string encoded;
  if (text.size() >= 2 && text[0] == '\\' && text[1] == 'x') {
    decodeByteaHex(text, bytes);
  } else {
    decodeByteaEscape(text, bytes);
  }
  encoded.clear();
  appendBase64(encoded, bytes);
  out.string(encoded);
  if (bytes.capacity() > kKeptCapacity) std::string().swap(bytes);
  if (encoded.capacity() > kKeptCapacity) std::string().swap(encoded);
}

// ---------------------------------------------------------------------------------------------
// Uuid, interval

void renderUuid(std::string_view text, JsonWriter& out) {
  // uuid_out always prints the canonical 8-4-4-4-12 form.
  bool ok = text.size() == 36;
  for (size_t i = 0; ok && i < text.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      ok = text[i] == '-';
    } else {
      ok = hexValue(text[i]) >= 0;
    }
  }
  if (!ok) fail(ValueKind::Uuid, text, "expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx");
  out.string(text);
}

// The parts of an interval as the server prints it with IntervalStyle=iso_8601
// ("P1Y2M3DT4H5M6.5S", "P-1Y-2M3DT-4H-5M-6.5S", "PT0S"): each part carries its own sign.
struct IntervalParts {
  std::string_view years = "0", months = "0", days = "0", hours = "0", minutes = "0";
  std::string_view seconds = "0";
};

[[noreturn]] void failInterval(std::string_view text) {
  fail(ValueKind::Interval, text, "not an ISO-8601 duration",
       "the replication session sets IntervalStyle=iso_8601; check that nothing overrides it");
}

IntervalParts scanInterval(std::string_view text) {
  IntervalParts parts;
  if (text.size() < 3 || text.front() != 'P') failInterval(text);
  bool in_time = false;
  size_t i = 1;
  while (i < text.size()) {
    if (text[i] == 'T') {
      if (in_time) failInterval(text);
      in_time = true;
      ++i;
      continue;
    }
    const size_t start = i;
    if (text[i] == '-' || text[i] == '+') ++i;
    size_t digits = 0;
    bool point = false;
    while (i < text.size() && (isDigit(text[i]) || (text[i] == '.' && !point))) {
      point = point || text[i] == '.';
      digits += isDigit(text[i]) ? 1 : 0;
      ++i;
    }
    if (digits == 0 || i == text.size()) failInterval(text);
    const std::string_view number = text.substr(start, i - start);
    const char unit = text[i++];
    if (point && !(in_time && unit == 'S')) failInterval(text);
    if (!in_time && unit == 'Y') parts.years = number;
    else if (!in_time && unit == 'M') parts.months = number;
    else if (!in_time && unit == 'D') parts.days = number;
    else if (in_time && unit == 'H') parts.hours = number;
    else if (in_time && unit == 'M') parts.minutes = number;
    else if (in_time && unit == 'S') parts.seconds = number;
    else failInterval(text);
  }
  return parts;
}

// A signed decimal as Java's BigDecimal.stripTrailingZeros().toPlainString() writes it: no
// '+', no trailing fraction zeros, no '.' without a fraction, "0" for any zero.
void appendPlainDecimal(std::string& out, std::string_view number) {
  const bool negative = !number.empty() && number.front() == '-';
  if (!number.empty() && (number.front() == '-' || number.front() == '+')) number.remove_prefix(1);
  if (const size_t dot = number.find('.'); dot != std::string_view::npos) {
    while (number.back() == '0') number.remove_suffix(1);
    if (number.back() == '.') number.remove_suffix(1);
  }
  while (number.size() > 1 && number.front() == '0' && number[1] != '.') number.remove_prefix(1);
  if (number.empty() || number == "0") {
    out += '0';
    return;
  }
  if (negative) out += '-';
  out.append(number);
}

void renderInterval(std::string_view text, JsonWriter& out) {
  // PostgreSQL 17 adds infinite intervals; Debezium has no rendering for them.
  if (text == "infinity" || text == "-infinity") {
    out.string(text);
    return;
  }
  const IntervalParts parts = scanInterval(text);
  std::string iso = "P";
  appendPlainDecimal(iso, parts.years);
  iso += 'Y';
  appendPlainDecimal(iso, parts.months);
  iso += 'M';
  appendPlainDecimal(iso, parts.days);
  iso += "DT";
  appendPlainDecimal(iso, parts.hours);
  iso += 'H';
  appendPlainDecimal(iso, parts.minutes);
  iso += 'M';
  appendPlainDecimal(iso, parts.seconds);
  iso += 'S';
  out.string(iso);
}

// ---------------------------------------------------------------------------------------------
// Dates and times

constexpr int64_t kMicrosPerSecond = 1'000'000;
constexpr int64_t kMicrosPerDay = 86'400 * kMicrosPerSecond;

// Days since 1970-01-01 of a proleptic Gregorian date with an astronomical year (1 BC is 0).
// Howard Hinnant's days_from_civil, valid for every int64 year used here.
constexpr int64_t daysFromCivil(int64_t year, int64_t month, int64_t day) {
  year -= month <= 2 ? 1 : 0;
  const int64_t era = (year >= 0 ? year : year - 399) / 400;
  const int64_t yoe = year - era * 400;
  const int64_t doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

struct CivilDate {
  int64_t year;  // astronomical
  int month;
  int day;
};

constexpr CivilDate civilFromDays(int64_t days) {
  days += 719468;
  const int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const int64_t doe = days - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int day = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  const int month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  return {yoe + era * 400 + (month <= 2 ? 1 : 0), month, day};
}

static_assert(daysFromCivil(1970, 1, 1) == 0);
static_assert(daysFromCivil(2000, 3, 1) == 11017);
static_assert(civilFromDays(-719468).year == 0 && civilFromDays(-719468).month == 3);

// PostgreSQL's date range: 4714-11-24 BC (Julian day 0) to 5874897-12-31.
constexpr int64_t kMinPgDate = daysFromCivil(-4713, 11, 24);
constexpr int64_t kMaxPgDate = daysFromCivil(5874897, 12, 31);

// Debezium (PostgresValueConverter since debezium/dbz#2524) maps 'infinity' to the LocalDate
// +5877611-06-21 and '-infinity' to -5877611-06-22, and io.debezium.time.Date writes their epoch
// days. Both lie outside PostgreSQL's date range, so they cannot be mistaken for a stored date;
// renderDate rejects any text outside that range to keep it so.
constexpr int64_t kDatePositiveInfinity = daysFromCivil(5877611, 6, 21);
constexpr int64_t kDateNegativeInfinity = daysFromCivil(-5877611, 6, 22);
static_assert(kDatePositiveInfinity == 2146033979 && kDatePositiveInfinity > kMaxPgDate);
static_assert(kDateNegativeInfinity == -2147472691 && kDateNegativeInfinity < kMinPgDate);

constexpr bool isLeapYear(int64_t year) {
  return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
}

constexpr int daysInMonth(int64_t year, int month) {
  constexpr std::array<int, 12> kDays = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return month == 2 && isLeapYear(year) ? 29 : kDays[static_cast<size_t>(month - 1)];
}

constexpr std::string_view kDateStyleHint =
    "the replication session sets DateStyle=ISO; check that nothing overrides it";

// A cursor over one temporal value; every failure names the kind and the whole text.
class Scanner {
 public:
  Scanner(ValueKind kind, std::string_view text) : kind_(kind), text_(text) {}

  [[noreturn]] void fail(std::string_view reason, std::string_view hint = {}) const {
    events::fail(kind_, text_, reason, std::string(hint));
  }

  bool atEnd() const { return pos_ == text_.size(); }
  char peek() const { return atEnd() ? '\0' : text_[pos_]; }
  char next() { return text_[pos_++]; }

  bool consume(char c) {
    if (peek() != c) return false;
    ++pos_;
    return true;
  }

  bool consume(std::string_view s) {
    if (text_.substr(pos_, s.size()) != s) return false;
    pos_ += s.size();
    return true;
  }

  void expect(char c, std::string_view reason) {
    if (!consume(c)) fail(reason, kDateStyleHint);
  }

  // A run of digits whose length must lie in [min_digits, max_digits].
  int64_t number(size_t min_digits, size_t max_digits, std::string_view reason) {
    const size_t start = pos_;
    int64_t value = 0;
    while (!atEnd() && isDigit(text_[pos_])) {
      if (pos_ - start == max_digits) fail(reason, kDateStyleHint);
      value = value * 10 + (text_[pos_++] - '0');
    }
    if (pos_ - start < min_digits) fail(reason, kDateStyleHint);
    return value;
  }

  void expectEnd() {
    if (!atEnd()) fail("unexpected text after the value", kDateStyleHint);
  }

 private:
  ValueKind kind_;
  std::string_view text_;
  size_t pos_ = 0;
};

struct RawDate {
  int64_t year;  // as printed, before " BC" is applied
  int month;
  int day;
};

RawDate scanDate(Scanner& in) {
  // date_out prints at least four year digits; 5874897 is the largest year it can print.
  RawDate date{};
  date.year = in.number(4, 7, "expected a year of 4 to 7 digits");
  in.expect('-', "expected YYYY-MM-DD");
  date.month = static_cast<int>(in.number(2, 2, "expected a two-digit month"));
  in.expect('-', "expected YYYY-MM-DD");
  date.day = static_cast<int>(in.number(2, 2, "expected a two-digit day"));
  return date;
}

// Applies the era suffix and checks the calendar; returns days since 1970-01-01.
int64_t resolveDate(Scanner& in, const RawDate& raw) {
  const bool bc = in.consume(" BC");
  if (raw.year == 0) in.fail("year 0 does not exist (1 BC is followed by 1 AD)");
  const int64_t year = bc ? 1 - raw.year : raw.year;
  if (raw.month < 1 || raw.month > 12) in.fail("month out of range");
  if (raw.day < 1 || raw.day > daysInMonth(year, raw.month)) in.fail("day out of range");
  return daysFromCivil(year, raw.month, raw.day);
}

struct ClockTime {
  int64_t micros;   // since midnight
  bool end_of_day;  // written as 24:00:00
};

ClockTime scanTime(Scanner& in, bool allow_end_of_day) {
  const int64_t hour = in.number(2, 2, "expected HH:MM:SS");
  in.expect(':', "expected HH:MM:SS");
  const int64_t minute = in.number(2, 2, "expected HH:MM:SS");
  in.expect(':', "expected HH:MM:SS");
  const int64_t second = in.number(2, 2, "expected HH:MM:SS");
  int64_t fraction = 0;
  if (in.consume('.')) {
    size_t digits = 0;
    while (isDigit(in.peek())) {
      if (digits == 6) in.fail("more than 6 fractional digits");
      fraction = fraction * 10 + (in.next() - '0');
      ++digits;
    }
    if (digits == 0) in.fail("expected fractional digits after '.'");
    for (; digits < 6; ++digits) fraction *= 10;
  }
  if (minute > 59) in.fail("minute out of range");
  if (second > 59) in.fail("second out of range");
  const bool end_of_day = hour == 24 && allow_end_of_day && minute == 0 && second == 0 && fraction == 0;
  if (hour > 23 && !end_of_day) in.fail("hour out of range");
  return {((hour * 60 + minute) * 60 + second) * kMicrosPerSecond + fraction, end_of_day};
}

// "+HH", "+HH:MM" or "+HH:MM:SS" (seconds appear for historical local mean time offsets).
// Returns the offset east of UTC in seconds.
int64_t scanOffset(Scanner& in) {
  int64_t sign = 0;
  if (in.consume('+')) {
    sign = 1;
  } else if (in.consume('-')) {
    sign = -1;
  } else {
    in.fail("expected a time zone offset (+HH[:MM[:SS]])");
  }
  const int64_t hours = in.number(2, 2, "expected a time zone offset (+HH[:MM[:SS]])");
  int64_t minutes = 0;
  int64_t seconds = 0;
  if (in.consume(':')) {
    minutes = in.number(2, 2, "expected a time zone offset (+HH[:MM[:SS]])");
    if (in.consume(':')) seconds = in.number(2, 2, "expected a time zone offset (+HH[:MM[:SS]])");
  }
  // PostgreSQL limits offsets to 15:59:59 (MAX_TZDISP_HOUR).
  if (hours > 15 || minutes > 59 || seconds > 59) in.fail("time zone offset out of range");
  return sign * ((hours * 60 + minutes) * 60 + seconds);
}

// Writes `value` (non-negative) zero-padded to at least `width` digits; returns the new end.
char* putPadded(char* p, int64_t value, int width) {
  char digits[20];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value != 0);
  for (int i = n; i < width; ++i) *p++ = '0';
  while (n > 0) *p++ = digits[--n];
  return p;
}

// How many fraction digits a clock is written with.
constexpr int kTrimmedFraction = -1;  // as few as the value needs, none for whole seconds

// "HH:MM:SS.ffffff" for a time of day in [0, 24h], with `fraction_digits` (0 to 6) digits of
// the second's fraction, or kTrimmedFraction (java.time's ISO_LOCAL_TIME).
char* putClock(char* p, int64_t micros, int fraction_digits = 6) {
  const int64_t seconds = micros / kMicrosPerSecond;
  p = putPadded(p, seconds / 3600, 2);
  *p++ = ':';
  p = putPadded(p, seconds / 60 % 60, 2);
  *p++ = ':';
  p = putPadded(p, seconds % 60, 2);
  int64_t fraction = micros % kMicrosPerSecond;
  int digits = fraction_digits;
  if (digits == kTrimmedFraction) {
    digits = 6;
    while (digits > 0 && fraction % 10 == 0) {
      fraction /= 10;
      --digits;
    }
  } else {
    for (int i = digits; i < 6; ++i) fraction /= 10;
  }
  if (digits == 0) return p;
  *p++ = '.';
  return putPadded(p, fraction, digits);
}

// Debezium's time.precision.mode=adaptive: precision 0 to 3 counts milliseconds, more (or
// none declared, 6) microseconds.
bool countsMillis(int32_t precision) { return precision >= 0 && precision <= 3; }

int64_t floorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

void renderDate(std::string_view text, JsonWriter& out) {
  if (text == "infinity") {
    out.integer(kDatePositiveInfinity);
    return;
  }
  if (text == "-infinity") {
    out.integer(kDateNegativeInfinity);
    return;
  }
  Scanner in(ValueKind::Date, text);
  const RawDate raw = scanDate(in);
  const int64_t days = resolveDate(in, raw);
  in.expectEnd();
  if (days < kMinPgDate || days > kMaxPgDate) in.fail("outside PostgreSQL's date range");
  out.integer(days);
}

void renderTimestamp(std::string_view text, int32_t precision, JsonWriter& out) {
  // Debezium's MicroTimestamp for infinity is a microsecond count that a real timestamp in year
  // 294247 also has; the strings keep the two apart (documented in src/source/postgres/README.md).
  if (text == "infinity" || text == "-infinity") {
    out.string(text);
    return;
  }
  Scanner in(ValueKind::Timestamp, text);
  const RawDate raw = scanDate(in);
  in.expect(' ', "expected a space between date and time");
  const ClockTime time = scanTime(in, false);
  const int64_t days = resolveDate(in, raw);
  in.expectEnd();
  int64_t micros = 0;
  if (__builtin_mul_overflow(days, kMicrosPerDay, &micros) ||
      __builtin_add_overflow(micros, time.micros, &micros)) {
    in.fail("microseconds since 1970 do not fit in 64 bits (after 294247-01-10)");
  }
  out.integer(countsMillis(precision) ? floorDiv(micros, 1000) : micros);
}

// A timestamptz as days since the epoch and microseconds into that day, both in UTC. Days and
// time of day are kept apart so that no value in PostgreSQL's range can overflow.
struct UtcInstant {
  int64_t days;
  int64_t micros;
};

UtcInstant scanTimestampTz(std::string_view text) {
  Scanner in(ValueKind::TimestampTz, text);
  const RawDate raw = scanDate(in);
  in.expect(' ', "expected a space between date and time");
  const ClockTime time = scanTime(in, false);
  const int64_t offset = scanOffset(in);
  // timestamptz_out puts the era after the offset: "0044-03-15 12:00:00+00 BC".
  int64_t days = resolveDate(in, raw);
  in.expectEnd();
  int64_t micros = time.micros - offset * kMicrosPerSecond;
  if (micros < 0) {
    micros += kMicrosPerDay;
    --days;
  } else if (micros >= kMicrosPerDay) {
    micros -= kMicrosPerDay;
    ++days;
  }
  return {days, micros};
}

void renderTimestampTz(std::string_view text, int32_t precision, JsonWriter& out) {
  if (text == "infinity" || text == "-infinity") {
    out.string(text);
    return;
  }
  const auto [days, micros] = scanTimestampTz(text);
  const CivilDate date = civilFromDays(days);

  // java.time's ISO format, which Debezium uses: four-digit years, a '-' for years before 1
  // (astronomical numbering, 1 BC is 0000) and a '+' for years after 9999.
  char buffer[64];
  char* p = buffer;
  if (date.year < 0) {
    *p++ = '-';
  } else if (date.year > 9999) {
    *p++ = '+';
  }
  p = putPadded(p, date.year < 0 ? -date.year : date.year, 4);
  *p++ = '-';
  p = putPadded(p, date.month, 2);
  *p++ = '-';
  p = putPadded(p, date.day, 2);
  *p++ = 'T';
  // As many fraction digits as the column's precision (Debezium's ZonedTimestamp width).
  p = putClock(p, micros, precision >= 0 && precision < 6 ? precision : 6);
  *p++ = 'Z';
  out.string(std::string_view(buffer, static_cast<size_t>(p - buffer)));
}

void renderTime(std::string_view text, int32_t precision, JsonWriter& out) {
  Scanner in(ValueKind::Time, text);
  const ClockTime time = scanTime(in, true);
  in.expectEnd();
  out.integer(countsMillis(precision) ? time.micros / 1000 : time.micros);
}

void renderTimeTz(std::string_view text, JsonWriter& out) {
  Scanner in(ValueKind::TimeTz, text);
  const ClockTime time = scanTime(in, true);
  const int64_t offset = scanOffset(in);
  in.expectEnd();
  int64_t micros = 0;
  if (time.end_of_day && offset == 0) {
    // Wrapping would fold the end of the day onto its start; Debezium keeps 24:00:00 too.
    micros = kMicrosPerDay;
  } else {
    micros = (time.micros - offset * kMicrosPerSecond) % kMicrosPerDay;
    if (micros < 0) micros += kMicrosPerDay;
  }
  char buffer[24];
  char* p = putClock(buffer, micros, kTrimmedFraction);
  *p++ = 'Z';
  out.string(std::string_view(buffer, static_cast<size_t>(p - buffer)));
}

// ---------------------------------------------------------------------------------------------
// Bit strings, points, hstore

void renderBits(std::string_view text, int32_t length, JsonWriter& out) {
  for (char c : text) {
    if (c != '0' && c != '1') fail(ValueKind::Bits, text, "expected only 0 and 1");
  }
  // bit(1) and varbit(1) are booleans in Debezium.
  if (length == 1 && !text.empty()) {
    out.boolean(text.find('1') != std::string_view::npos);
    return;
  }
  // The last character is bit 0 of byte 0 (java.util.BitSet.toByteArray of the string read
  // from its end), as many bytes as the highest 1 needs: none when every bit is 0.
  const size_t highest = text.find('1');
  std::string bytes;
  if (highest != std::string_view::npos) {
    const size_t bits = text.size() - highest;
    bytes.assign((bits + 7) / 8, '\0');
    for (size_t i = 0; i < bits; ++i) {
      if (text[text.size() - 1 - i] == '1') bytes[i / 8] = static_cast<char>(bytes[i / 8] | (1 << (i % 8)));
    }
  }
  out.string(base64(bytes));
}

void appendLittleEndian(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out += static_cast<char>((v >> (8 * i)) & 0xFF);
}

// One coordinate of a point: a JSON number, or Debezium's strings for the IEEE specials.
double pointCoordinate(std::string_view whole, std::string_view text, JsonWriter& out) {
  double value = 0;
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  if (text == "NaN") {
    value = std::numeric_limits<double>::quiet_NaN();
  } else if (text == "Infinity" || text == "-Infinity") {
    value = text.front() == '-' ? -std::numeric_limits<double>::infinity()
                                : std::numeric_limits<double>::infinity();
  } else {
    auto [ptr, ec] = std::from_chars(begin, end, value);
    if (ec != std::errc() || ptr != end) fail(ValueKind::Point, whole, "expected (x,y) of two numbers");
  }
  renderFloat(text, out);
  return value;
}

void renderPoint(std::string_view text, JsonWriter& out) {
  if (text.size() < 5 || text.front() != '(' || text.back() != ')') {
    fail(ValueKind::Point, text, "expected (x,y)");
  }
  const std::string_view inner = text.substr(1, text.size() - 2);
  const size_t comma = inner.find(',');
  if (comma == std::string_view::npos) fail(ValueKind::Point, text, "expected (x,y)");
  out.beginObject();
  out.key("x");
  const double x = pointCoordinate(text, inner.substr(0, comma), out);
  out.key("y");
  const double y = pointCoordinate(text, inner.substr(comma + 1), out);
  // Well-known binary of the point, little-endian: byte order 1, type 1 (Point), x, y.
  std::string wkb;
  wkb += '\x01';
  appendLittleEndian(wkb, 1, 4);
  appendLittleEndian(wkb, std::bit_cast<uint64_t>(x), 8);
  appendLittleEndian(wkb, std::bit_cast<uint64_t>(y), 8);
  out.key("wkb");
  out.string(base64(wkb));
  out.key("srid");
  out.null();
  out.endObject();
}

// hstore_out's text: "key"=>"value" or "key"=>NULL pairs separated by ", ", every key and
// value in double quotes with \" and \\ escaped.
class HstoreScanner {
 public:
  explicit HstoreScanner(std::string_view text) : text_(text) {}

  bool atEnd() const { return pos_ == text_.size(); }

  [[noreturn]] void fail(std::string_view reason) const { events::fail(ValueKind::Hstore, text_, reason); }

  void expect(std::string_view s) {
    if (text_.substr(pos_, s.size()) != s) fail("expected \"key\"=>\"value\" pairs");
    pos_ += s.size();
  }

  bool consume(std::string_view s) {
    if (text_.substr(pos_, s.size()) != s) return false;
    pos_ += s.size();
    return true;
  }

  // A quoted string, unescaped into `out`.
  void quoted(std::string& out) {
    out.clear();
    expect("\"");
    for (;;) {
      if (atEnd()) fail("unterminated quoted string");
      const char c = text_[pos_++];
      if (c == '"') return;
      if (c == '\\') {
        if (atEnd()) fail("backslash at the end of the text");
        out += text_[pos_++];
      } else {
        out += c;
      }
    }
  }

 private:
  std::string_view text_;
  size_t pos_ = 0;
};

void renderHstore(std::string_view text, JsonWriter& out) {
  // The object is written aside, then goes out as one JSON string, as Debezium's is.
  std::string object;
  JsonWriter w(object, out.policy());
  w.beginObject();
  HstoreScanner in(text);
  std::string key;
  std::string value;
  bool first = true;
  while (!in.atEnd()) {
    if (!first) in.expect(", ");
    first = false;
    in.quoted(key);
    in.expect("=>");
    w.key(key);
    if (in.consume("NULL")) {
      w.null();
    } else {
      in.quoted(value);
      w.string(value);
    }
  }
  w.endObject();
  out.string(object);
}

// ---------------------------------------------------------------------------------------------
// Arrays

// PostgreSQL's MAXDIM: no array literal it prints nests deeper.
constexpr size_t kMaxArrayDepth = 6;

// Parses array_out's text ("{1,2}", "{{\"a b\",NULL}}", "[0:1]={1,2}") and appends nested
// JSON arrays to `json`, each scalar rendered by the element's own kind. It follows array_in's
// lexical rules (quotes, backslash escapes, blanks around elements, case-insensitive NULL) and
// rejects anything array_in would reject, including ragged multi-dimensional arrays.
class ArrayRenderer {
 public:
  ArrayRenderer(const TypeInfo& element, char delimiter, std::string_view text, std::string& json,
                Utf8Policy policy)
      : element_(element), delimiter_(delimiter), text_(text), json_(json), policy_(policy) {}

  void render() {
    skipDimensions();
    skipSpace();
    if (peek() != '{') fail("expected '{'");
    renderLevel(0);
    skipSpace();
    if (pos_ != text_.size()) fail("unexpected text after the closing '}'");
  }

 private:
  enum class Content : uint8_t { Unknown, Scalars, Arrays };

  [[noreturn]] void fail(std::string_view reason) const { events::fail(ValueKind::Array, text_, reason); }

  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }

  void skipSpace() {
    while (pos_ < text_.size() && isArraySpace(text_[pos_])) ++pos_;
  }

  // Explicit bounds ("[0:1][1:2]=") only say where subscripts start; JSON arrays have none.
  void skipDimensions() {
    skipSpace();
    if (peek() != '[') return;
    while (peek() == '[') {
      ++pos_;
      for (int bound = 0; bound < 2; ++bound) {
        if (peek() == '-' || peek() == '+') ++pos_;
        const size_t start = pos_;
        while (isDigit(peek())) ++pos_;
        if (pos_ == start) fail("malformed dimension bounds");
        if (bound == 0 && peek() != ':') fail("malformed dimension bounds");
        if (bound == 0) ++pos_;
      }
      if (peek() != ']') fail("malformed dimension bounds");
      ++pos_;
    }
    if (peek() != '=') fail("expected '=' after dimension bounds");
    ++pos_;
  }

  // Called with pos_ on '{'; leaves pos_ after the matching '}'.
  void renderLevel(size_t depth) {
    ++pos_;
    json_ += '[';
    skipSpace();
    size_t count = 0;
    if (peek() == '}') {
      ++pos_;
    } else {
      for (;;) {
        skipSpace();
        if (count > 0) json_ += ',';
        if (peek() == '{') {
          if (depth + 1 >= kMaxArrayDepth) fail("more than 6 dimensions");
          setContent(depth, Content::Arrays);
          renderLevel(depth + 1);
        } else {
          setContent(depth, Content::Scalars);
          renderScalar();
        }
        ++count;
        skipSpace();
        if (peek() == delimiter_) {
          ++pos_;
        } else if (peek() == '}') {
          ++pos_;
          break;
        } else {
          fail(pos_ == text_.size() ? "missing '}'" : "expected a delimiter or '}'");
        }
      }
    }
    json_ += ']';
    // Every sub-array of one dimension must have the same length, as array_in requires.
    if (length_[depth] == kUnset) {
      length_[depth] = count;
    } else if (length_[depth] != count) {
      fail("sub-arrays of one dimension differ in length");
    }
  }

  void setContent(size_t depth, Content content) {
    if (content_[depth] == Content::Unknown) {
      content_[depth] = content;
    } else if (content_[depth] != content) {
      fail("elements and sub-arrays mixed at one level");
    }
  }

  void renderScalar() {
    // Fast paths: an element without escapes is a view of the input, no copy.
    const size_t start = pos_;
    if (peek() == '"') {
      size_t i = pos_ + 1;
      while (i < text_.size() && text_[i] != '"' && text_[i] != '\\') ++i;
      if (i < text_.size() && text_[i] == '"') {
        pos_ = i + 1;
        skipSpace();
        if (peek() == delimiter_ || peek() == '}') {
          renderElement(text_.substr(start + 1, i - start - 1));
          return;
        }
      }
    } else {
      size_t i = pos_;
      while (i < text_.size() && text_[i] != delimiter_ && text_[i] != '}' && text_[i] != '"' &&
             text_[i] != '\\' && text_[i] != '{') {
        ++i;
      }
      if (i < text_.size() && (text_[i] == delimiter_ || text_[i] == '}')) {
        size_t end = i;
        while (end > start && isArraySpace(text_[end - 1])) --end;
        if (end == start) fail("empty unquoted element");
        pos_ = i;
        const std::string_view value = text_.substr(start, end - start);
        if (equalsIgnoreCase(value, "null")) {
          json_ += "null";
        } else {
          renderElement(value);
        }
        return;
      }
    }
    pos_ = start;
    renderScalarSlow();
  }

  // An element with escapes or with quoted and unquoted parts, unescaped into scratch_.
  void renderScalarSlow() {
    scratch_.clear();
    bool in_quotes = false;
    bool literal = false;  // quoted or escaped characters: never NULL, never trimmed
    size_t kept = 0;       // scratch_ length without trailing unquoted blanks
    for (;;) {
      if (pos_ == text_.size()) fail(in_quotes ? "unterminated quoted element" : "missing '}'");
      const char c = text_[pos_];
      if (c == '\\') {
        if (pos_ + 1 == text_.size()) fail("backslash at the end of the text");
        scratch_ += text_[pos_ + 1];
        pos_ += 2;
        literal = true;
        kept = scratch_.size();
      } else if (c == '"') {
        ++pos_;
        in_quotes = !in_quotes;
        literal = true;
        kept = scratch_.size();
      } else if (in_quotes) {
        scratch_ += c;
        ++pos_;
        kept = scratch_.size();
      } else if (c == delimiter_ || c == '}') {
        break;
      } else if (c == '{') {
        fail("unexpected '{' inside an element");
      } else {
        scratch_ += c;
        ++pos_;
        if (!isArraySpace(c)) kept = scratch_.size();
      }
    }
    scratch_.resize(kept);
    if (!literal && scratch_.empty()) fail("empty unquoted element");
    if (!literal && equalsIgnoreCase(scratch_, "null")) {
      json_ += "null";
    } else {
      renderElement(scratch_);
    }
  }

  void renderElement(std::string_view value) {
    try {
      // A writer per element: it only has to quote or copy one value, and without nesting it
      // never allocates.
      JsonWriter element_writer(json_, policy_);
      renderValue(element_, value, element_writer);
    } catch (const Error& e) {
      // Keep the element's own message (kind, text, reason) and add which array it was in.
      std::string message = "cannot render ";
      appendQuotedExcerpt(message, text_);
      message += " as array: ";
      message += e.what();
      throw Error(ErrorClass::Poison, std::move(message), e.hint());
    }
  }

  static constexpr size_t kUnset = static_cast<size_t>(-1);

  const TypeInfo& element_;
  const char delimiter_;
  std::string_view text_;
  std::string& json_;
  const Utf8Policy policy_;
  size_t pos_ = 0;
  std::array<size_t, kMaxArrayDepth> length_ = [] {
    std::array<size_t, kMaxArrayDepth> lengths{};
    lengths.fill(kUnset);
    return lengths;
  }();
  std::array<Content, kMaxArrayDepth> content_{};
  std::string scratch_;
};

void renderArray(const TypeInfo& type, std::string_view text, JsonWriter& out) {
  if (!type.element) {
    throw Error(ErrorClass::Fatal, "array type information has no element type",
                "this is a bug in tidemark's type table; please report it");
  }
  // The array is rendered aside and appended only once complete, so that a malformed array
  // leaves `out` untouched, as every scalar kind does. The buffer is reused per thread; an
  // element that is itself an array (possible only with a hand-built TypeInfo) gets its own.
  thread_local std::string buffer;
  thread_local bool buffer_in_use = false;
  std::string nested_buffer;
  const bool reuse = !buffer_in_use;
  std::string& json = reuse ? buffer : nested_buffer;
  json.clear();
  struct Release {
    bool active;
    ~Release() {
      if (active) buffer_in_use = false;
    }
  } release{reuse};
  buffer_in_use = true;

  ArrayRenderer(*type.element, type.delimiter, text, json, out.policy()).render();
  out.rawJson(json);
  if (reuse && json.capacity() > kKeptCapacity) std::string().swap(json);
}

// ---------------------------------------------------------------------------------------------
// Built-in types

struct BaseType {
  TypeOid oid;
  TypeOid array_oid;
  ValueKind kind;
  char delimiter = ',';
  std::string_view name;  // typname in pg_catalog
};

// Built-in types with their array types, as in PostgreSQL's src/include/catalog/pg_type.dat.
// Geometric types other than point, money and the rest Debezium renders otherwise or not at
// all are text here (docs/COMPATIBILITY.md).
constexpr BaseType kBaseTypes[] = {
    {16, 1000, ValueKind::Bool, ',', "bool"},
    {17, 1001, ValueKind::Bytea, ',', "bytea"},
    {18, 1002, ValueKind::Text, ',', "char"},
    {19, 1003, ValueKind::Text, ',', "name"},
    {20, 1016, ValueKind::Integer, ',', "int8"},
    {21, 1005, ValueKind::Integer, ',', "int2"},
    {22, 1006, ValueKind::Text, ',', "int2vector"},
    {23, 1007, ValueKind::Integer, ',', "int4"},
    {24, 1008, ValueKind::Text, ',', "regproc"},
    {25, 1009, ValueKind::Text, ',', "text"},
    {26, 1028, ValueKind::Integer, ',', "oid"},
    {27, 1010, ValueKind::Text, ',', "tid"},
    {28, 1011, ValueKind::Text, ',', "xid"},
    {29, 1012, ValueKind::Text, ',', "cid"},
    {30, 1013, ValueKind::Text, ',', "oidvector"},
    {114, 199, ValueKind::Json, ',', "json"},
    {142, 143, ValueKind::Text, ',', "xml"},
    {5069, 271, ValueKind::Text, ',', "xid8"},
    {600, 1017, ValueKind::Point, ',', "point"},
    {601, 1018, ValueKind::Text, ',', "lseg"},
    {602, 1019, ValueKind::Text, ',', "path"},
    {603, 1020, ValueKind::Text, ';', "box"},  // typdelim ';' since its text contains commas
    {604, 1027, ValueKind::Text, ',', "polygon"},
    {628, 629, ValueKind::Text, ',', "line"},
    {700, 1021, ValueKind::Float, ',', "float4"},
    {701, 1022, ValueKind::Float, ',', "float8"},
    {718, 719, ValueKind::Text, ',', "circle"},
    {790, 791, ValueKind::Text, ',', "money"},
    {829, 1040, ValueKind::Text, ',', "macaddr"},
    {869, 1041, ValueKind::Text, ',', "inet"},
    {650, 651, ValueKind::Text, ',', "cidr"},
    {774, 775, ValueKind::Text, ',', "macaddr8"},
    {1033, 1034, ValueKind::Text, ',', "aclitem"},
    {1042, 1014, ValueKind::Text, ',', "bpchar"},
    {1043, 1015, ValueKind::Text, ',', "varchar"},
    {1082, 1182, ValueKind::Date, ',', "date"},
    {1083, 1183, ValueKind::Time, ',', "time"},
    {1114, 1115, ValueKind::Timestamp, ',', "timestamp"},
    {1184, 1185, ValueKind::TimestampTz, ',', "timestamptz"},
    {1186, 1187, ValueKind::Interval, ',', "interval"},
    {1266, 1270, ValueKind::TimeTz, ',', "timetz"},
    {1560, 1561, ValueKind::Bits, ',', "bit"},
    {1562, 1563, ValueKind::Bits, ',', "varbit"},
    {1700, 1231, ValueKind::Numeric, ',', "numeric"},
    {1790, 2201, ValueKind::Text, ',', "refcursor"},
    {2202, 2207, ValueKind::Text, ',', "regprocedure"},
    {2203, 2208, ValueKind::Text, ',', "regoper"},
    {2204, 2209, ValueKind::Text, ',', "regoperator"},
    {2205, 2210, ValueKind::Text, ',', "regclass"},
    {4191, 4192, ValueKind::Text, ',', "regcollation"},
    {2206, 2211, ValueKind::Text, ',', "regtype"},
    {4096, 4097, ValueKind::Text, ',', "regrole"},
    {4089, 4090, ValueKind::Text, ',', "regnamespace"},
    {2950, 2951, ValueKind::Uuid, ',', "uuid"},
    {3220, 3221, ValueKind::Text, ',', "pg_lsn"},
    {3614, 3643, ValueKind::Text, ',', "tsvector"},
    {3615, 3645, ValueKind::Text, ',', "tsquery"},
    {3734, 3735, ValueKind::Text, ',', "regconfig"},
    {3769, 3770, ValueKind::Text, ',', "regdictionary"},
    {3802, 3807, ValueKind::Json, ',', "jsonb"},
    {4072, 4073, ValueKind::Text, ',', "jsonpath"},
    {2970, 2949, ValueKind::Text, ',', "txid_snapshot"},
    {5038, 5039, ValueKind::Text, ',', "pg_snapshot"},
    {3904, 3905, ValueKind::Text, ',', "int4range"},
    {3906, 3907, ValueKind::Text, ',', "numrange"},
    {3908, 3909, ValueKind::Text, ',', "tsrange"},
    {3910, 3911, ValueKind::Text, ',', "tstzrange"},
    {3912, 3913, ValueKind::Text, ',', "daterange"},
    {3926, 3927, ValueKind::Text, ',', "int8range"},
    {4451, 6150, ValueKind::Text, ',', "int4multirange"},
    {4532, 6151, ValueKind::Text, ',', "nummultirange"},
    {4533, 6152, ValueKind::Text, ',', "tsmultirange"},
    {4534, 6153, ValueKind::Text, ',', "tstzmultirange"},
    {4535, 6155, ValueKind::Text, ',', "datemultirange"},
    {4536, 6157, ValueKind::Text, ',', "int8multirange"},
};

struct BuiltinEntry {
  TypeOid oid;
  ValueKind kind;  // of the element, for an array
  bool is_array;
  char delimiter;
};

// Every OID (base and array) in one table sorted by OID, built at compile time.
constexpr auto kBuiltins = [] {
  std::array<BuiltinEntry, 2 * std::size(kBaseTypes)> entries{};
  size_t i = 0;
  for (const BaseType& base : kBaseTypes) {
    entries[i++] = {base.oid, base.kind, false, base.delimiter};
    entries[i++] = {base.array_oid, base.kind, true, base.delimiter};
  }
  std::sort(entries.begin(), entries.end(),
            [](const BuiltinEntry& a, const BuiltinEntry& b) { return a.oid < b.oid; });
  return entries;
}();

static_assert(std::adjacent_find(kBuiltins.begin(), kBuiltins.end(),
                                 [](const BuiltinEntry& a, const BuiltinEntry& b) {
                                   return a.oid == b.oid;
                                 }) == kBuiltins.end(),
              "an OID appears twice");
static_assert(std::all_of(kBuiltins.begin(), kBuiltins.end(),
                          [](const BuiltinEntry& e) {
                            return e.kind != ValueKind::Array &&
                                   (e.delimiter == ',' || e.delimiter == ';');
                          }),
              "the singleton table below has one slot per scalar kind and delimiter");
static_assert(std::all_of(kBuiltins.begin(), kBuiltins.end(),
                          [](const BuiltinEntry& e) { return e.oid < 16384; }),
              "built-in OIDs are below FirstNormalObjectId");

constexpr size_t kKindCount = static_cast<size_t>(ValueKind::Array) + 1;

// One immutable TypeInfo per scalar kind and per (element kind, delimiter) array, created once
// and shared by every column of those types.
class BuiltinInfos {
 public:
  BuiltinInfos() {
    for (size_t k = 0; k < kKindCount; ++k) {
      const auto kind = static_cast<ValueKind>(k);
      if (kind == ValueKind::Array) continue;
      scalars_[k] = std::make_shared<const TypeInfo>(TypeInfo{kind, nullptr, ','});
      comma_arrays_[k] = std::make_shared<const TypeInfo>(TypeInfo{ValueKind::Array, scalars_[k], ','});
      semicolon_arrays_[k] = std::make_shared<const TypeInfo>(TypeInfo{ValueKind::Array, scalars_[k], ';'});
    }
  }

  const std::shared_ptr<const TypeInfo>& get(const BuiltinEntry& entry) const {
    const auto k = static_cast<size_t>(entry.kind);
    if (!entry.is_array) return scalars_[k];
    return entry.delimiter == ';' ? semicolon_arrays_[k] : comma_arrays_[k];
  }

 private:
  std::array<std::shared_ptr<const TypeInfo>, kKindCount> scalars_;
  std::array<std::shared_ptr<const TypeInfo>, kKindCount> comma_arrays_;
  std::array<std::shared_ptr<const TypeInfo>, kKindCount> semicolon_arrays_;
};

const BuiltinInfos& builtinInfos() {
  static const BuiltinInfos infos;
  return infos;
}

}  // namespace

std::shared_ptr<const TypeInfo> builtinType(TypeOid oid) {
  const auto it = std::lower_bound(kBuiltins.begin(), kBuiltins.end(), oid,
                                   [](const BuiltinEntry& e, TypeOid o) { return e.oid < o; });
  if (it == kBuiltins.end() || it->oid != oid) return nullptr;
  return builtinInfos().get(*it);
}

std::shared_ptr<const TypeInfo> builtinTypeNamed(std::string_view typname) {
  // An array type is named after its element, with a leading underscore ("_int4").
  const bool array = typname.starts_with('_');
  const std::string_view element = array ? typname.substr(1) : typname;
  for (const BaseType& base : kBaseTypes) {
    if (base.name == element) return builtinType(array ? base.array_oid : base.oid);
  }
  return nullptr;
}

std::shared_ptr<const TypeInfo> withTypmod(std::shared_ptr<const TypeInfo> type, int32_t typmod) {
  if (type == nullptr || typmod < 0) return type;
  switch (type->kind) {
    case ValueKind::Time:
    case ValueKind::Timestamp:
    case ValueKind::TimestampTz:
    case ValueKind::Bits: {
      if (type->typmod == typmod) return type;
      auto copy = std::make_shared<TypeInfo>(*type);
      copy->typmod = typmod;
      return copy;
    }
    case ValueKind::Array: {
      auto element = withTypmod(type->element, typmod);
      if (element == type->element) return type;
      auto copy = std::make_shared<TypeInfo>(*type);
      copy->element = std::move(element);
      return copy;
    }
    default:
      return type;
  }
}

std::string_view valueForm(const TypeInfo& type) {
  // The kind's name, where the rendering depends on the kind alone.
  switch (type.kind) {
    case ValueKind::Timestamp: return countsMillis(type.typmod) ? "timestamp_ms" : "timestamp_us";
    case ValueKind::Time: return countsMillis(type.typmod) ? "time_ms" : "time_us";
    case ValueKind::Bits: return type.typmod == 1 ? "bit" : "bits";
    default: return kindName(type.kind);
  }
}

std::shared_ptr<const TypeInfo> hstoreType() {
  static const auto info = std::make_shared<const TypeInfo>(TypeInfo{ValueKind::Hstore, nullptr, ','});
  return info;
}

int64_t timestampTzUnixMicros(std::string_view text) {
  if (text == "infinity" || text == "-infinity") {
    throw Error(ErrorClass::Poison, "an infinite timestamptz is not a point in time");
  }
  const auto [days, micros] = scanTimestampTz(text);
  // Within +-100000 years the product cannot overflow 64 bits.
  if (days > 36524250 || days < -36524250) {
    throw Error(ErrorClass::Poison, "timestamptz too far from 1970 to count in microseconds");
  }
  return days * kMicrosPerDay + micros;
}

void renderValue(const TypeInfo& type, std::string_view text, JsonWriter& out) {
  switch (type.kind) {
    case ValueKind::Bool: renderBool(text, out); return;
    case ValueKind::Integer: renderInteger(text, out); return;
    case ValueKind::Float: renderFloat(text, out); return;
    case ValueKind::Numeric: renderNumeric(text, out); return;
    case ValueKind::Text: out.string(text); return;
    case ValueKind::Bytea: renderBytea(text, out); return;
    // The JSON text goes out as a string (io.debezium.data.Json), not embedded: that is what
    // Debezium does, and it spares parsing every document on the hot path.
    case ValueKind::Json: out.string(text); return;
    case ValueKind::Uuid: renderUuid(text, out); return;
    case ValueKind::Date: renderDate(text, out); return;
    case ValueKind::Timestamp: renderTimestamp(text, type.typmod, out); return;
    case ValueKind::TimestampTz: renderTimestampTz(text, type.typmod, out); return;
    case ValueKind::Time: renderTime(text, type.typmod, out); return;
    case ValueKind::TimeTz: renderTimeTz(text, out); return;
    case ValueKind::Interval: renderInterval(text, out); return;
    case ValueKind::Bits: renderBits(text, type.typmod, out); return;
    case ValueKind::Point: renderPoint(text, out); return;
    case ValueKind::Hstore: renderHstore(text, out); return;
    case ValueKind::Array: renderArray(type, text, out); return;
  }
  throw Error(ErrorClass::Fatal, "unknown value kind " + std::to_string(static_cast<int>(type.kind)),
              "this is a bug in tidemark; please report it");
}

void renderUnavailable(const TypeInfo& type, JsonWriter& out) {
  switch (type.kind) {
    case ValueKind::Bytea:
    case ValueKind::Bits: {
      // binary.handling.mode=base64 encodes the placeholder's bytes like any other bytea value.
      static const std::string kEncoded = base64(kUnavailableValue);
      out.string(kEncoded);
      return;
    }
    case ValueKind::Array:
      out.beginArray();
      out.string(kUnavailableValue);
      out.endArray();
      return;
    case ValueKind::Bool:
    case ValueKind::Integer:
    case ValueKind::Float:
    case ValueKind::Numeric:
    case ValueKind::Text:
    case ValueKind::Json:
    case ValueKind::Uuid:
    case ValueKind::Date:
    case ValueKind::Timestamp:
    case ValueKind::TimestampTz:
    case ValueKind::Time:
    case ValueKind::TimeTz:
    case ValueKind::Interval:
    case ValueKind::Point:
    case ValueKind::Hstore:
      out.string(kUnavailableValue);
      return;
  }
  out.string(kUnavailableValue);
}

}  // namespace tidemark::events
