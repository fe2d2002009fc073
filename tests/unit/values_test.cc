#include "source/postgres/values.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "base/json_writer.h"

namespace tidemark::events {
namespace {

TypeInfo scalar(ValueKind kind) { return TypeInfo{kind, nullptr, ','}; }

TypeInfo arrayOf(ValueKind element, char delimiter = ',') {
  return TypeInfo{ValueKind::Array, std::make_shared<const TypeInfo>(scalar(element)), delimiter};
}

std::string render(const TypeInfo& type, std::string_view text) {
  std::string out;
  JsonWriter writer(out);
  renderValue(type, text, writer);
  return out;
}

std::string render(ValueKind kind, std::string_view text) { return render(scalar(kind), text); }

std::string renderBuiltin(TypeOid oid, std::string_view text) {
  auto type = builtinType(oid);
  if (!type) throw std::logic_error("no built-in type " + std::to_string(oid));
  return render(*type, text);
}

// The message of the Poison error rendering `text` throws; fails the test if it does not throw.
std::string errorOf(const TypeInfo& type, std::string_view text) {
  try {
    std::string out = render(type, text);
    ADD_FAILURE() << "expected an error for \"" << text << "\", got " << out;
  } catch (const Error& e) {
    EXPECT_EQ(e.errorClass(), ErrorClass::Poison) << e.what();
    return e.what();
  }
  return {};
}

std::string errorOf(ValueKind kind, std::string_view text) { return errorOf(scalar(kind), text); }

void expectRejected(const TypeInfo& type, const std::vector<std::string_view>& texts) {
  for (std::string_view text : texts) {
    SCOPED_TRACE(std::string(text));
    errorOf(type, text);
  }
}

void expectRejected(ValueKind kind, const std::vector<std::string_view>& texts) {
  expectRejected(scalar(kind), texts);
}

// ---------------------------------------------------------------------------------------------
// builtinType

TEST(BuiltinTypeTest, ScalarKinds) {
  const std::vector<std::pair<TypeOid, ValueKind>> expected = {
      {16, ValueKind::Bool},        {17, ValueKind::Bytea},      {18, ValueKind::Text},
      {19, ValueKind::Text},        {20, ValueKind::Integer},    {21, ValueKind::Integer},
      {23, ValueKind::Integer},     {25, ValueKind::Text},       {26, ValueKind::Integer},
      {114, ValueKind::Json},       {142, ValueKind::Text},      {600, ValueKind::Point},
      {603, ValueKind::Text},       {650, ValueKind::Text},      {700, ValueKind::Float},
      {701, ValueKind::Float},      {790, ValueKind::Text},      {829, ValueKind::Text},
      {869, ValueKind::Text},       {1042, ValueKind::Text},     {1043, ValueKind::Text},
      {1082, ValueKind::Date},      {1083, ValueKind::Time},     {1114, ValueKind::Timestamp},
      {1184, ValueKind::TimestampTz}, {1186, ValueKind::Interval}, {1266, ValueKind::TimeTz},
      {1560, ValueKind::Bits},      {1562, ValueKind::Bits},     {1700, ValueKind::Numeric},
      {2950, ValueKind::Uuid},      {3614, ValueKind::Text},     {3802, ValueKind::Json},
      {4072, ValueKind::Text},      {3904, ValueKind::Text},     {3220, ValueKind::Text},
  };
  for (auto [oid, kind] : expected) {
    SCOPED_TRACE(oid);
    auto type = builtinType(oid);
    ASSERT_NE(type, nullptr);
    EXPECT_EQ(type->kind, kind);
    EXPECT_EQ(type->element, nullptr);
  }
}

TEST(BuiltinTypeTest, ArrayKinds) {
  const std::vector<std::pair<TypeOid, ValueKind>> expected = {
      {1000, ValueKind::Bool},       {1001, ValueKind::Bytea},     {1002, ValueKind::Text},
      {1003, ValueKind::Text},       {1005, ValueKind::Integer},   {1007, ValueKind::Integer},
      {1009, ValueKind::Text},       {1014, ValueKind::Text},      {1015, ValueKind::Text},
      {1016, ValueKind::Integer},    {1021, ValueKind::Float},     {1022, ValueKind::Float},
      {1028, ValueKind::Integer},    {1040, ValueKind::Text},      {1041, ValueKind::Text},
      {651, ValueKind::Text},        {791, ValueKind::Text},       {143, ValueKind::Text},
      {199, ValueKind::Json},        {1182, ValueKind::Date},      {1183, ValueKind::Time},
      {1115, ValueKind::Timestamp},  {1185, ValueKind::TimestampTz}, {1187, ValueKind::Interval},
      {1231, ValueKind::Numeric},    {1270, ValueKind::TimeTz},    {2951, ValueKind::Uuid},
      {3807, ValueKind::Json},       {1561, ValueKind::Bits},      {1563, ValueKind::Bits},
      {4073, ValueKind::Text},       {1020, ValueKind::Text},      {1017, ValueKind::Point},
  };
  for (auto [oid, element] : expected) {
    SCOPED_TRACE(oid);
    auto type = builtinType(oid);
    ASSERT_NE(type, nullptr);
    EXPECT_EQ(type->kind, ValueKind::Array);
    ASSERT_NE(type->element, nullptr);
    EXPECT_EQ(type->element->kind, element);
    EXPECT_EQ(type->delimiter, oid == 1020 ? ';' : ',');
  }
}

TEST(BuiltinTypeTest, UnknownOidsAreNull) {
  for (TypeOid oid : {0u, 1u, 15u, 705u, 2249u, 2287u, 16384u, 100000u, 4294967295u}) {
    SCOPED_TRACE(oid);
    EXPECT_EQ(builtinType(oid), nullptr);
  }
}

TEST(BuiltinTypeTest, ReturnsSharedSingletons) {
  EXPECT_EQ(builtinType(23).get(), builtinType(23).get());
  EXPECT_EQ(builtinType(1007).get(), builtinType(1007).get());
  // Types with the same rendering share one TypeInfo.
  EXPECT_EQ(builtinType(21).get(), builtinType(20).get());
  EXPECT_EQ(builtinType(25).get(), builtinType(1043).get());
  EXPECT_EQ(builtinType(1007)->element.get(), builtinType(23).get());
  EXPECT_NE(builtinType(1020).get(), builtinType(1009).get());
}

// ---------------------------------------------------------------------------------------------
// Scalars

TEST(RenderBoolTest, Values) {
  EXPECT_EQ(render(ValueKind::Bool, "t"), "true");
  EXPECT_EQ(render(ValueKind::Bool, "f"), "false");
  expectRejected(ValueKind::Bool, {"", "true", "false", "T", "1", "t ", "tf"});
}

TEST(RenderIntegerTest, Values) {
  EXPECT_EQ(render(ValueKind::Integer, "0"), "0");
  EXPECT_EQ(render(ValueKind::Integer, "-1"), "-1");
  EXPECT_EQ(render(ValueKind::Integer, "32767"), "32767");
  EXPECT_EQ(render(ValueKind::Integer, "4294967295"), "4294967295");
  EXPECT_EQ(render(ValueKind::Integer, "9223372036854775807"), "9223372036854775807");
  EXPECT_EQ(render(ValueKind::Integer, "-9223372036854775808"), "-9223372036854775808");
  // JSON has no leading zeros; the value is kept.
  EXPECT_EQ(render(ValueKind::Integer, "007"), "7");
  expectRejected(ValueKind::Integer, {"", "-", "+1", "1.0", "1e3", "12a", " 1", "1 ", "0x10", "NaN"});
}

TEST(RenderIntegerTest, Overflow) {
  EXPECT_NE(errorOf(ValueKind::Integer, "9223372036854775808").find("out of range"), std::string::npos);
  EXPECT_NE(errorOf(ValueKind::Integer, "-9223372036854775809").find("out of range"), std::string::npos);
}

TEST(RenderFloatTest, JsonNumbersPassThrough) {
  for (std::string_view text : {"0", "1.5", "-0", "-1.5", "1e+300", "1.2345e-05", "3.4028235e+38",
                                "-1.7976931348623157e+308", "4.9e-324", "100", "0.1"}) {
    EXPECT_EQ(render(ValueKind::Float, text), text);
  }
}

TEST(RenderFloatTest, SpecialValuesAreStrings) {
  EXPECT_EQ(render(ValueKind::Float, "NaN"), "\"NaN\"");
  EXPECT_EQ(render(ValueKind::Float, "Infinity"), "\"Infinity\"");
  EXPECT_EQ(render(ValueKind::Float, "-Infinity"), "\"-Infinity\"");
  EXPECT_EQ(render(ValueKind::Float, "nan"), "\"NaN\"");
  EXPECT_EQ(render(ValueKind::Float, "-nan"), "\"NaN\"");
  EXPECT_EQ(render(ValueKind::Float, "inf"), "\"Infinity\"");
  EXPECT_EQ(render(ValueKind::Float, "+inf"), "\"Infinity\"");
  EXPECT_EQ(render(ValueKind::Float, "-inf"), "\"-Infinity\"");
  EXPECT_EQ(render(ValueKind::Float, "-INFINITY"), "\"-Infinity\"");
}

TEST(RenderFloatTest, NumbersNoDoubleHoldsAreRefused) {
  // No float4 or float8 prints them; a JSON parser would fail on them or read infinity.
  expectRejected(ValueKind::Float, {"1.5e+600", "-1e309", std::string(310, '9')});
  EXPECT_EQ(render(ValueKind::Float, "1.7976931348623157e+308"), "1.7976931348623157e+308");
  EXPECT_EQ(render(ValueKind::Float, "4.9e-324"), "4.9e-324");
  EXPECT_EQ(render(ValueKind::Float, "1e100"), "1e100");
}

TEST(RenderFloatTest, NonJsonSpellingsAreRewrittenWithoutChangingTheValue) {
  EXPECT_EQ(render(ValueKind::Float, "1."), "1");
  EXPECT_EQ(render(ValueKind::Float, ".5"), "0.5");
  EXPECT_EQ(render(ValueKind::Float, "-.5"), "-0.5");
  EXPECT_EQ(render(ValueKind::Float, "+1"), "1");
  EXPECT_EQ(render(ValueKind::Float, "+0"), "0");
  EXPECT_EQ(render(ValueKind::Float, "007.25"), "7.25");
  EXPECT_EQ(render(ValueKind::Float, "-00"), "-0");
  EXPECT_EQ(render(ValueKind::Float, "1.e5"), "1e5");
  EXPECT_EQ(render(ValueKind::Float, ".5E-3"), "0.5e-3");
  EXPECT_EQ(render(ValueKind::Float, "1E+300"), "1E+300");
}

TEST(RenderFloatTest, Rejects) {
  expectRejected(ValueKind::Float,
                 {"", "-", "+", ".", "e5", "1e", "1e+", "1.2.3", "--1", "1,5", "abc", "0x1p3", " 1",
                  "1 ", "infinit", "NaNa", "Inf1"});
}

TEST(RenderNumericTest, ExactText) {
  EXPECT_EQ(render(ValueKind::Numeric, "123.4500"), "\"123.4500\"");
  EXPECT_EQ(render(ValueKind::Numeric, "-0.001"), "\"-0.001\"");
  EXPECT_EQ(render(ValueKind::Numeric, "0"), "\"0\"");
  EXPECT_EQ(render(ValueKind::Numeric, "12345678901234567890123456789.000000000000000000001"),
            "\"12345678901234567890123456789.000000000000000000001\"");
  // decimal.handling.mode=string writes the special values by their Java names.
  EXPECT_EQ(render(ValueKind::Numeric, "NaN"), "\"NAN\"");
  EXPECT_EQ(render(ValueKind::Numeric, "Infinity"), "\"POSITIVE_INFINITY\"");
  EXPECT_EQ(render(ValueKind::Numeric, "-Infinity"), "\"NEGATIVE_INFINITY\"");
  EXPECT_EQ(render(ValueKind::Numeric, "1.5e10"), "\"1.5e10\"");
  expectRejected(ValueKind::Numeric, {"", "-", ".", "12a", "1.2.3", "1e", "nan", "inf", " 1", "1,5"});
}

TEST(RenderTextTest, Strings) {
  EXPECT_EQ(render(ValueKind::Text, "hello"), "\"hello\"");
  EXPECT_EQ(render(ValueKind::Text, ""), "\"\"");
  EXPECT_EQ(render(ValueKind::Text, "a \"quoted\"\\ line\n\ttab"), R"("a \"quoted\"\\ line\n\ttab")");
  EXPECT_EQ(render(ValueKind::Text, "caf\xC3\xA9"), "\"caf\xC3\xA9\"");
  EXPECT_EQ(render(ValueKind::Text, "bad\xFF"), "\"bad\xEF\xBF\xBD\"");
  // NULL as text is just text; SQL NULL never reaches renderValue.
  EXPECT_EQ(render(ValueKind::Text, "NULL"), "\"NULL\"");
}

TEST(RenderByteaTest, Hex) {
  EXPECT_EQ(render(ValueKind::Bytea, R"(\x)"), "\"\"");
  EXPECT_EQ(render(ValueKind::Bytea, R"(\x0102ab)"), "\"AQKr\"");
  EXPECT_EQ(render(ValueKind::Bytea, R"(\xDEADBEEF)"), "\"3q2+7w==\"");
  EXPECT_EQ(render(ValueKind::Bytea, R"(\x00)"), "\"AA==\"");
  expectRejected(ValueKind::Bytea, {R"(\x0)", R"(\x0g)", R"(\xzz)", R"(\x01 02)"});
}

TEST(RenderByteaTest, LargeValuesTwice) {
  // Exercises the per-thread buffers past the size they keep between values.
  const std::string text = "\\x" + std::string(3'000'000, '0');
  const std::string expected = "\"" + std::string(2'000'000, 'A') + "\"";
  EXPECT_EQ(render(ValueKind::Bytea, text), expected);
  EXPECT_EQ(render(ValueKind::Bytea, text), expected);
  EXPECT_EQ(render(ValueKind::Bytea, R"(\x41)"), "\"QQ==\"");
}

TEST(RenderByteaTest, EscapeFormat) {
  EXPECT_EQ(render(ValueKind::Bytea, ""), "\"\"");
  EXPECT_EQ(render(ValueKind::Bytea, R"(abc\\\001)"), "\"YWJjXAE=\"");
  expectRejected(ValueKind::Bytea, {R"(\)", R"(\9)", R"(\400)", R"(\01)", R"(a\b)"});
}

TEST(RenderJsonTest, JsonTextAsString) {
  EXPECT_EQ(render(ValueKind::Json, R"({"a": [1, "b"]})"), R"("{\"a\": [1, \"b\"]}")");
  EXPECT_EQ(render(ValueKind::Json, "null"), "\"null\"");
}

TEST(RenderUuidTest, Values) {
  EXPECT_EQ(render(ValueKind::Uuid, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
            "\"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\"");
  EXPECT_EQ(render(ValueKind::Uuid, "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"),
            "\"A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11\"");
  expectRejected(ValueKind::Uuid, {"", "a0eebc999c0b4ef8bb6d6bb9bd380a11",
                                   "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1", "g0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
                                   "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11 ", "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}"});
}

TEST(RenderIntervalTest, EveryPartIsWrittenAsInDebeziumsStringMode) {
  const std::vector<std::pair<std::string_view, std::string_view>> cases = {
      {"P1Y2M3DT4H5M6.5S", "P1Y2M3DT4H5M6.5S"},
      {"PT0S", "P0Y0M0DT0H0M0S"},
      {"P-1D", "P0Y0M-1DT0H0M0S"},
      {"P-1Y-2M", "P-1Y-2M0DT0H0M0S"},
      {"PT-0.000001S", "P0Y0M0DT0H0M-0.000001S"},
      {"P1M2DT0.000001S", "P0Y1M2DT0H0M0.000001S"},
      {"infinity", "infinity"},
      {"-infinity", "-infinity"},
  };
  for (auto [text, expected] : cases) {
    SCOPED_TRACE(text);
    EXPECT_EQ(render(ValueKind::Interval, text), "\"" + std::string(expected) + "\"");
  }
  expectRejected(ValueKind::Interval, {"", "P", "-P", "1 day 02:00:00", "@ 1 day", "01:00:00", "P1 D"});
}

TEST(RenderIntervalTest, HintNamesTheSetting) {
  try {
    render(ValueKind::Interval, "1 day");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(e.hint().find("IntervalStyle"), std::string::npos);
  }
}

// ---------------------------------------------------------------------------------------------
// Dates and times

TEST(RenderDateTest, DaysSinceEpoch) {
  EXPECT_EQ(render(ValueKind::Date, "1970-01-01"), "0");
  EXPECT_EQ(render(ValueKind::Date, "1970-01-02"), "1");
  EXPECT_EQ(render(ValueKind::Date, "1969-12-31"), "-1");
  EXPECT_EQ(render(ValueKind::Date, "2024-01-02"), "19724");
  EXPECT_EQ(render(ValueKind::Date, "2000-02-29"), "11016");
  EXPECT_EQ(render(ValueKind::Date, "0001-01-01"), "-719162");
}

TEST(RenderDateTest, BeforeChristUsesAstronomicalYears) {
  // 1 BC is astronomical year 0 (a leap year), 44 BC is -43.
  EXPECT_EQ(render(ValueKind::Date, "0001-01-01 BC"), "-719528");
  EXPECT_EQ(render(ValueKind::Date, "0001-02-29 BC"), "-719469");
  EXPECT_EQ(render(ValueKind::Date, "0001-12-31 BC"), "-719163");
  EXPECT_EQ(render(ValueKind::Date, "0044-03-15 BC"), "-735160");
  EXPECT_EQ(render(ValueKind::Date, "4714-11-24 BC"), "-2440588");
  errorOf(ValueKind::Date, "0002-02-29 BC");  // astronomical -1 is not a leap year
}

TEST(RenderDateTest, LargeYears) {
  EXPECT_EQ(render(ValueKind::Date, "10000-01-01"), "2932897");
  EXPECT_EQ(render(ValueKind::Date, "5874897-12-31"), "2145042905");
}

TEST(RenderDateTest, InfinityAsDebezium) {
  EXPECT_EQ(render(ValueKind::Date, "infinity"), "2146033979");
  EXPECT_EQ(render(ValueKind::Date, "-infinity"), "-2147472691");
}

TEST(RenderDateTest, OutsidePostgresRangeIsRejected) {
  // Keeps the infinity values apart from every date PostgreSQL can store.
  errorOf(ValueKind::Date, "5874898-01-01");
  errorOf(ValueKind::Date, "5877611-06-21");
  errorOf(ValueKind::Date, "4714-11-23 BC");
}

TEST(RenderDateTest, ErrorMessage) {
  EXPECT_EQ(errorOf(ValueKind::Date, "2024-13-01"), "cannot render \"2024-13-01\" as date: month out of range");
  EXPECT_EQ(errorOf(ValueKind::Date, "2023-02-29"), "cannot render \"2023-02-29\" as date: day out of range");
}

TEST(RenderDateTest, Rejects) {
  expectRejected(ValueKind::Date,
                 {"", "2024-00-01", "2024-01-00", "2024-01-32", "2024-04-31", "1900-02-29", "0000-01-01",
                  "24-01-02", "2024-1-02", "2024-01-2", "2024/01/02", "2024-01-02x", "2024-01-02 AD",
                  "2024-01-02 BC ", " 2024-01-02", "2024-01-02 00:00:00", "Infinity", "infinity ",
                  "12345678-01-01", "01/02/2024"});
}

TEST(RenderTimestampTest, MicrosSinceEpoch) {
  EXPECT_EQ(render(ValueKind::Timestamp, "1970-01-01 00:00:00"), "0");
  EXPECT_EQ(render(ValueKind::Timestamp, "2024-01-02 03:04:05.123456"), "1704164645123456");
  EXPECT_EQ(render(ValueKind::Timestamp, "2024-01-02 03:04:05"), "1704164645000000");
  EXPECT_EQ(render(ValueKind::Timestamp, "2024-01-02 03:04:05.5"), "1704164645500000");
  EXPECT_EQ(render(ValueKind::Timestamp, "2024-01-02 03:04:05.05"), "1704164645050000");
  EXPECT_EQ(render(ValueKind::Timestamp, "1969-12-31 23:59:59.999999"), "-1");
  EXPECT_EQ(render(ValueKind::Timestamp, "0044-03-15 12:00:00 BC"), "-63517780800000000");
  EXPECT_EQ(render(ValueKind::Timestamp, "10000-01-01 00:00:00"), "253402300800000000");
}

TEST(RenderTimestampTest, Int64Limit) {
  EXPECT_EQ(render(ValueKind::Timestamp, "294247-01-10 04:00:54.775807"), "9223372036854775807");
  EXPECT_NE(errorOf(ValueKind::Timestamp, "294247-01-10 04:00:54.775808").find("64 bits"), std::string::npos);
  errorOf(ValueKind::Timestamp, "294276-12-31 23:59:59.999999");
}

TEST(RenderTimestampTest, InfinityAsStrings) {
  EXPECT_EQ(render(ValueKind::Timestamp, "infinity"), "\"infinity\"");
  EXPECT_EQ(render(ValueKind::Timestamp, "-infinity"), "\"-infinity\"");
}

TEST(RenderTimestampTest, Rejects) {
  expectRejected(ValueKind::Timestamp,
                 {"", "2024-01-02", "2024-01-02T03:04:05", "2024-01-02  03:04:05", "2024-01-02 24:00:00",
                  "2024-01-02 03:60:00", "2024-01-02 03:04:60", "2024-01-02 3:04:05", "2024-01-02 03:04",
                  "2024-01-02 03:04:05.", "2024-01-02 03:04:05.1234567", "2024-01-02 03:04:05+00",
                  "2024-02-30 00:00:00", "2024-01-02 03:04:05 BC x", "Infinity"});
}

TEST(RenderTimestampTzTest, Utc) {
  EXPECT_EQ(render(ValueKind::TimestampTz, "2024-01-02 03:04:05.123456+00"), "\"2024-01-02T03:04:05.123456Z\"");
  EXPECT_EQ(render(ValueKind::TimestampTz, "2024-01-02 03:04:05+00"), "\"2024-01-02T03:04:05.000000Z\"");
  EXPECT_EQ(render(ValueKind::TimestampTz, "2024-01-02 03:04:05.1+00"), "\"2024-01-02T03:04:05.100000Z\"");
  EXPECT_EQ(render(ValueKind::TimestampTz, "1970-01-01 00:00:00+00"), "\"1970-01-01T00:00:00.000000Z\"");
}

TEST(RenderTimestampTzTest, OffsetsConvertToUtc) {
  EXPECT_EQ(render(ValueKind::TimestampTz, "2024-01-02 03:04:05+05:30"), "\"2024-01-01T21:34:05.000000Z\"");
  EXPECT_EQ(render(ValueKind::TimestampTz, "2024-01-02 03:04:05-08"), "\"2024-01-02T11:04:05.000000Z\"");
  EXPECT_EQ(render(ValueKind::TimestampTz, "2024-01-02 03:04:05.5+05:30:15"), "\"2024-01-01T21:33:50.500000Z\"");
  EXPECT_EQ(render(ValueKind::TimestampTz, "2024-01-01 00:00:00+01"), "\"2023-12-31T23:00:00.000000Z\"");
  EXPECT_EQ(render(ValueKind::TimestampTz, "2023-12-31 23:30:00-01"), "\"2024-01-01T00:30:00.000000Z\"");
  EXPECT_EQ(render(ValueKind::TimestampTz, "2024-02-29 23:00:00-02"), "\"2024-03-01T01:00:00.000000Z\"");
  EXPECT_EQ(render(ValueKind::TimestampTz, "2024-01-02 03:04:05+15:59:59"), "\"2024-01-01T11:04:06.000000Z\"");
}

TEST(RenderTimestampTzTest, YearsOutsideFourDigits) {
  EXPECT_EQ(render(ValueKind::TimestampTz, "0044-03-15 12:00:00+00 BC"), "\"-0043-03-15T12:00:00.000000Z\"");
  EXPECT_EQ(render(ValueKind::TimestampTz, "0001-01-01 00:00:00+00 BC"), "\"0000-01-01T00:00:00.000000Z\"");
  EXPECT_EQ(render(ValueKind::TimestampTz, "0001-01-01 00:30:00+01"), "\"0000-12-31T23:30:00.000000Z\"");
  EXPECT_EQ(render(ValueKind::TimestampTz, "4714-11-24 00:00:00+00 BC"), "\"-4713-11-24T00:00:00.000000Z\"");
  EXPECT_EQ(render(ValueKind::TimestampTz, "9999-12-31 23:59:59.999999+00"), "\"9999-12-31T23:59:59.999999Z\"");
  EXPECT_EQ(render(ValueKind::TimestampTz, "9999-12-31 23:30:00-01"), "\"+10000-01-01T00:30:00.000000Z\"");
  EXPECT_EQ(render(ValueKind::TimestampTz, "294276-12-31 23:59:59.999999+00"),
            "\"+294276-12-31T23:59:59.999999Z\"");
}

TEST(RenderTimestampTzTest, InfinityAsStrings) {
  EXPECT_EQ(render(ValueKind::TimestampTz, "infinity"), "\"infinity\"");
  EXPECT_EQ(render(ValueKind::TimestampTz, "-infinity"), "\"-infinity\"");
}

TEST(RenderTimestampTzTest, Rejects) {
  expectRejected(ValueKind::TimestampTz,
                 {"", "2024-01-02 03:04:05", "2024-01-02 03:04:05Z", "2024-01-02 03:04:05+5",
                  "2024-01-02 03:04:05+16", "2024-01-02 03:04:05+05:60", "2024-01-02 03:04:05+05:30:60",
                  "2024-01-02 03:04:05+0530", "2024-01-02 03:04:05 +00", "2024-01-02 03:04:05+00 BC x",
                  "2024-01-02 24:00:00+00", "2024-13-02 03:04:05+00", "2024-01-02 03:04:05 BC+00"});
}

TEST(RenderTimeTest, MicrosSinceMidnight) {
  EXPECT_EQ(render(ValueKind::Time, "00:00:00"), "0");
  EXPECT_EQ(render(ValueKind::Time, "03:04:05.123456"), "11045123456");
  EXPECT_EQ(render(ValueKind::Time, "23:59:59.999999"), "86399999999");
  EXPECT_EQ(render(ValueKind::Time, "24:00:00"), "86400000000");
  EXPECT_EQ(render(ValueKind::Time, "24:00:00.000000"), "86400000000");
  expectRejected(ValueKind::Time, {"", "24:00:01", "24:00:00.000001", "25:00:00", "3:04:05", "03:04",
                                   "03:04:05.", "03:04:05.1234567", "03:04:05+00", "03:04:5", "T03:04:05"});
}

TEST(RenderTimeTzTest, ConvertsToUtc) {
  EXPECT_EQ(render(ValueKind::TimeTz, "03:04:05.123456+05:30"), "\"21:34:05.123456Z\"");
  EXPECT_EQ(render(ValueKind::TimeTz, "03:04:05.5+00"), "\"03:04:05.5Z\"");
  EXPECT_EQ(render(ValueKind::TimeTz, "03:04:05.120+00"), "\"03:04:05.12Z\"");
  EXPECT_EQ(render(ValueKind::TimeTz, "03:04:05+00"), "\"03:04:05Z\"");
  EXPECT_EQ(render(ValueKind::TimeTz, "23:00:00-02"), "\"01:00:00Z\"");
  EXPECT_EQ(render(ValueKind::TimeTz, "23:00:00-01"), "\"00:00:00Z\"");
  EXPECT_EQ(render(ValueKind::TimeTz, "00:00:00+00:00:30"), "\"23:59:30Z\"");
  EXPECT_EQ(render(ValueKind::TimeTz, "12:00:00-15:59:59"), "\"03:59:59Z\"");
}

TEST(RenderTimeTzTest, EndOfDay) {
  // Kept as 24:00:00 when already in UTC (Debezium writes 00:00:00Z, docs/COMPATIBILITY.md);
  // otherwise a normal time.
  EXPECT_EQ(render(ValueKind::TimeTz, "24:00:00+00"), "\"24:00:00Z\"");
  EXPECT_EQ(render(ValueKind::TimeTz, "24:00:00+01"), "\"23:00:00Z\"");
  EXPECT_EQ(render(ValueKind::TimeTz, "24:00:00-01"), "\"01:00:00Z\"");
}

TEST(RenderTimeTzTest, Rejects) {
  expectRejected(ValueKind::TimeTz, {"", "03:04:05", "03:04:05Z", "03:04:05+16", "24:00:01+00",
                                     "03:04:05+05:30 ", "03:04:05 +05:30"});
}

TEST(RenderErrorTest, LongTextIsTruncatedOnACharacterBoundary) {
  const std::string long_ascii(200, 'x');
  const std::string message = errorOf(ValueKind::Date, long_ascii);
  EXPECT_EQ(message, "cannot render \"" + std::string(64, 'x') + "...\" as date: expected a year of 4 to 7 digits");

  // 'é' is two bytes; byte 64 would fall inside one.
  std::string accented = "a";
  for (int i = 0; i < 100; ++i) accented += "\xC3\xA9";
  const std::string cut = errorOf(ValueKind::Uuid, accented);
  EXPECT_EQ(cut.find("\"a" + std::string(accented.substr(1, 62)) + "...\""), std::string("cannot render ").size());
}

// ---------------------------------------------------------------------------------------------
// Arrays

TEST(RenderArrayTest, Integers) {
  EXPECT_EQ(renderBuiltin(1007, "{1,2,NULL}"), "[1,2,null]");
  EXPECT_EQ(renderBuiltin(1016, "{-9223372036854775808,9223372036854775807}"),
            "[-9223372036854775808,9223372036854775807]");
  EXPECT_EQ(renderBuiltin(1007, "{}"), "[]");
  EXPECT_EQ(renderBuiltin(1007, "{42}"), "[42]");
}

TEST(RenderArrayTest, QuotedTextAndNull) {
  EXPECT_EQ(renderBuiltin(1009, R"({"a b","c\"d",NULL,"NULL"})"), R"(["a b","c\"d",null,"NULL"])");
  EXPECT_EQ(renderBuiltin(1009, R"({"a\\b","",x})"), R"(["a\\b","","x"])");
  EXPECT_EQ(renderBuiltin(1009, "{null,NuLl,nulls}"), R"([null,null,"nulls"])");
  EXPECT_EQ(renderBuiltin(1009, R"({\NULL,"null",N\ULL})"), R"(["NULL","null","NULL"])");
  EXPECT_EQ(renderBuiltin(1009, R"({"{}","a,b","}"})"), R"(["{}","a,b","}"])");
  EXPECT_EQ(renderBuiltin(1009, "{\"caf\xC3\xA9\",\xC3\xA9t\xC3\xA9}"), "[\"caf\xC3\xA9\",\"\xC3\xA9t\xC3\xA9\"]");
}

TEST(RenderArrayTest, ArrayInLexicalRules) {
  // Blanks around elements are skipped; blanks inside an unquoted element are kept.
  EXPECT_EQ(renderBuiltin(1007, "{ 1 , 2 }"), "[1,2]");
  EXPECT_EQ(renderBuiltin(1009, "{ a b ,c}"), R"(["a b","c"])");
  EXPECT_EQ(renderBuiltin(1009, R"({ "a " , b})"), R"(["a ","b"])");
  // Backslash escapes outside quotes, and an element made of quoted and unquoted parts.
  EXPECT_EQ(renderBuiltin(1009, R"({a\,b,c\ })"), R"(["a,b","c "])");
  EXPECT_EQ(renderBuiltin(1009, R"({a"b c"d})"), R"(["ab cd"])");
  EXPECT_EQ(renderBuiltin(1009, R"({"a"b})"), R"(["ab"])");
  EXPECT_EQ(renderBuiltin(1007, "{1,2} "), "[1,2]");
}

TEST(RenderArrayTest, Nested) {
  EXPECT_EQ(renderBuiltin(1007, "{{1,2},{3,4}}"), "[[1,2],[3,4]]");
  EXPECT_EQ(renderBuiltin(1007, "{{NULL,1},{2,NULL}}"), "[[null,1],[2,null]]");
  EXPECT_EQ(renderBuiltin(1007, "{{{1},{2}},{{3},{4}}}"), "[[[1],[2]],[[3],[4]]]");
  EXPECT_EQ(renderBuiltin(1009, R"({{"a,b",c},{"}",NULL}})"), R"([["a,b","c"],["}",null]])");
  EXPECT_EQ(renderBuiltin(1007, "{{{{{{1}}}}}}"), "[[[[[[1]]]]]]");
}

TEST(RenderArrayTest, ExplicitBoundsAreDropped) {
  EXPECT_EQ(renderBuiltin(1007, "[0:1]={1,2}"), "[1,2]");
  EXPECT_EQ(renderBuiltin(1007, "[-2:-1]={1,2}"), "[1,2]");
  EXPECT_EQ(renderBuiltin(1007, "[1:2][3:4]={{1,2},{3,4}}"), "[[1,2],[3,4]]");
  EXPECT_EQ(renderBuiltin(1009, "[5:5]={NULL}"), "[null]");
}

// ---------------------------------------------------------------------------------------------
// Type modifiers, bit strings, points, hstore

TypeInfo withModifier(ValueKind kind, int32_t typmod) {
  return *withTypmod(std::make_shared<const TypeInfo>(scalar(kind)), typmod);
}

TEST(RenderTypmodTest, PrecisionZeroToThreeCountsMilliseconds) {
  EXPECT_EQ(render(withModifier(ValueKind::Time, 3), "13:45:56.789"), "49556789");
  EXPECT_EQ(render(withModifier(ValueKind::Time, 6), "13:45:56.789"), "49556789000");
  EXPECT_EQ(render(withModifier(ValueKind::Timestamp, 0), "1969-12-31 23:59:59"), "-1000");
  EXPECT_EQ(render(withModifier(ValueKind::Timestamp, 3), "1900-01-01 00:00:00.123"), "-2208988799877");
  EXPECT_EQ(render(withModifier(ValueKind::TimestampTz, 3), "2038-01-19 03:14:08.9+00"),
            "\"2038-01-19T03:14:08.900Z\"");
  EXPECT_EQ(render(withModifier(ValueKind::TimestampTz, 0), "2100-01-01 00:00:00+00"),
            "\"2100-01-01T00:00:00Z\"");
  EXPECT_EQ(render(scalar(ValueKind::TimestampTz), "2040-01-01 00:00:00.5+02"),
            "\"2039-12-31T22:00:00.500000Z\"");
}

TEST(RenderTypmodTest, ArraysPassTheModifierToTheirElements) {
  auto array = std::make_shared<const TypeInfo>(arrayOf(ValueKind::Time));
  auto modified = withTypmod(array, 0);
  ASSERT_NE(modified, array);
  EXPECT_EQ(modified->element->typmod, 0);
  EXPECT_EQ(render(*modified, "{00:00:01}"), "[1000]");
  // A modifier that changes nothing keeps the shared info.
  auto text = std::make_shared<const TypeInfo>(scalar(ValueKind::Text));
  EXPECT_EQ(withTypmod(text, 40), text);
  EXPECT_EQ(withTypmod(array, -1), array);
}

TEST(RenderBitsTest, LittleEndianBytesOfTheBitsAsBase64) {
  EXPECT_EQ(render(withModifier(ValueKind::Bits, 3), "101"), "\"BQ==\"");
  EXPECT_EQ(render(withModifier(ValueKind::Bits, 3), "000"), "\"\"");
  EXPECT_EQ(render(scalar(ValueKind::Bits), "1101"), "\"DQ==\"");
  EXPECT_EQ(render(scalar(ValueKind::Bits), ""), "\"\"");
  EXPECT_EQ(render(withModifier(ValueKind::Bits, 80), "1" + std::string(78, '0') + "1"),
            "\"AQAAAAAAAAAAgA==\"");
  // bit(1) and varbit(1) are booleans.
  EXPECT_EQ(render(withModifier(ValueKind::Bits, 1), "1"), "true");
  EXPECT_EQ(render(withModifier(ValueKind::Bits, 1), "0"), "false");
  expectRejected(ValueKind::Bits, {"102", "1 0", "x"});
}

TEST(RenderPointTest, CoordinatesAndWellKnownBinary) {
  EXPECT_EQ(render(ValueKind::Point, "(-1.5,2.25)"),
            R"({"x":-1.5,"y":2.25,"wkb":"AQEAAAAAAAAAAAD4vwAAAAAAAAJA","srid":null})");
  expectRejected(ValueKind::Point, {"", "(1,2", "1,2", "(1;2)", "(a,2)"});
}

TEST(RenderHstoreTest, AJsonObjectInAString) {
  EXPECT_EQ(render(*hstoreType(), R"("k"=>"v", "a b"=>NULL, "q\"uote"=>"x\\y")"),
            R"("{\"k\":\"v\",\"a b\":null,\"q\\\"uote\":\"x\\\\y\"}")");
  EXPECT_EQ(render(*hstoreType(), ""), R"("{}")");
  expectRejected(*hstoreType(), {R"("k"=>)", R"(k=>"v")", R"("k"=>"v","l"=>"w")"});
}

TEST(RenderArrayTest, BoxUsesSemicolons) {
  EXPECT_EQ(renderBuiltin(1020, "{(1,1),(0,0);(3,3),(2,2)}"), R"j(["(1,1),(0,0)","(3,3),(2,2)"])j");
  EXPECT_EQ(renderBuiltin(1020, "{(1,1),(0,0)}"), R"j(["(1,1),(0,0)"])j");
  EXPECT_EQ(renderBuiltin(1020, "{NULL;(3,3),(2,2)}"), R"j([null,"(3,3),(2,2)"])j");
}

TEST(RenderArrayTest, ElementsUseTheirOwnKind) {
  EXPECT_EQ(renderBuiltin(1000, "{t,f,NULL}"), "[true,false,null]");
  EXPECT_EQ(renderBuiltin(1022, "{1.5,NaN,-Infinity,-0,1e+300}"), R"([1.5,"NaN","-Infinity",-0,1e+300])");
  EXPECT_EQ(renderBuiltin(1231, "{1.50,NaN}"), R"(["1.50","NAN"])");
  EXPECT_EQ(renderBuiltin(1001, R"({"\\x0102",NULL,"\\x"})"), R"(["AQI=",null,""])");
  EXPECT_EQ(renderBuiltin(3807, R"({"{\"a\": 1}",NULL})"), R"(["{\"a\": 1}",null])");
  EXPECT_EQ(renderBuiltin(1182, "{1970-01-02,infinity,\"0001-01-01 BC\"}"), "[1,2146033979,-719528]");
  EXPECT_EQ(renderBuiltin(1115, R"({"1970-01-01 00:00:01",-infinity})"), R"([1000000,"-infinity"])");
  EXPECT_EQ(renderBuiltin(1185, R"({"2024-01-02 03:04:05.123456+00",infinity})"),
            R"(["2024-01-02T03:04:05.123456Z","infinity"])");
  EXPECT_EQ(renderBuiltin(1183, "{00:00:01,24:00:00}"), "[1000000,86400000000]");
  EXPECT_EQ(renderBuiltin(1270, "{03:04:05+05:30}"), R"(["21:34:05Z"])");
  EXPECT_EQ(renderBuiltin(1187, "{P1D,PT0S}"), R"(["P0Y0M1DT0H0M0S","P0Y0M0DT0H0M0S"])");
  EXPECT_EQ(renderBuiltin(2951, "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}"), R"(["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"])");
}

TEST(RenderArrayTest, Rejects) {
  const TypeInfo ints = *builtinType(1007);
  for (std::string_view text :
       {"", "1,2", "{", "{1,2", "{1,2}}", "{1,,2}", "{,}", "{1,}", "{,1}", "{1 2}", "{1}x", "x{1}",
        "{{1,2},{3}}", "{{1},2}", "{1,{2}}", "{{1},{{2}}}", "{{{{{{{1}}}}}}}", "[0:1]{1,2}", "[0:1={1,2}",
        "[0]={1}", "[a:b]={1}", "=[0:1]{1}", "{a{b}}", "{\"1}", "{1\\", "{1;2}"}) {
    SCOPED_TRACE(std::string(text));
    errorOf(ints, text);
  }
}

TEST(RenderArrayTest, ElementErrorNamesArrayAndElement) {
  EXPECT_EQ(errorOf(*builtinType(1007), "{1,x}"),
            "cannot render \"{1,x}\" as array: cannot render \"x\" as integer: not an integer");
  EXPECT_EQ(errorOf(*builtinType(1182), R"({"2024-13-01"})"),
            "cannot render \"{\"2024-13-01\"}\" as array: cannot render \"2024-13-01\" as date: month out of range");
}

TEST(RenderArrayTest, MissingElementTypeIsABug) {
  const TypeInfo broken{ValueKind::Array, nullptr, ','};
  std::string out;
  JsonWriter writer(out);
  try {
    renderValue(broken, "{1}", writer);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.errorClass(), ErrorClass::Fatal);
  }
}

TEST(RenderArrayTest, CustomDelimiterOnTheArrayType) {
  EXPECT_EQ(render(arrayOf(ValueKind::Integer, ';'), "{1;2;NULL}"), "[1,2,null]");
  EXPECT_EQ(render(arrayOf(ValueKind::Text, ';'), "{a,b;c}"), R"(["a,b","c"])");
}

// ---------------------------------------------------------------------------------------------
// Placement inside a document and the TOAST placeholder

// GCC 12 at -O2 reports a null dereference inside std::vector<bool>::push_back when it can see
// that JsonWriter's nesting stack starts empty (a known false positive in libstdc++'s bit vector).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#endif
TEST(RenderValueTest, SeparatorsInsideObjectsAndArrays) {
  std::string out;
  JsonWriter writer(out);
  writer.beginObject();
  writer.key("id");
  renderValue(*builtinType(23), "7", writer);
  writer.key("tags");
  renderValue(*builtinType(1009), R"({a,"b c"})", writer);
  writer.key("grid");
  renderValue(*builtinType(1007), "{{1,2},{3,4}}", writer);
  writer.key("at");
  renderValue(*builtinType(1184), "2024-01-02 03:04:05+00", writer);
  writer.key("blob");
  renderUnavailable(*builtinType(17), writer);
  writer.key("list");
  renderUnavailable(*builtinType(1007), writer);
  writer.endObject();
  EXPECT_EQ(out,
            R"({"id":7,"tags":["a","b c"],"grid":[[1,2],[3,4]],"at":"2024-01-02T03:04:05.000000Z",)"
            R"("blob":"X19kZWJleml1bV91bmF2YWlsYWJsZV92YWx1ZQ==","list":["__debezium_unavailable_value"]})");
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

TEST(RenderValueTest, FailedRenderWritesNothing) {
  // Scalars and arrays alike: the writer stays usable and holds no partial value.
  for (auto [oid, text] : std::vector<std::pair<TypeOid, std::string_view>>{
           {1082, "2024-13-01"}, {1007, "{1,2,x}"}, {1007, "{{1,2},{3}}"}, {1009, "{a,b"}, {17, R"(\x0)"}}) {
    SCOPED_TRACE(std::string(text));
    std::string out;
    JsonWriter writer(out);
    renderValue(*builtinType(23), "1", writer);
    EXPECT_THROW(renderValue(*builtinType(oid), text, writer), Error);
    EXPECT_EQ(out, "1");
  }
}

TEST(RenderValueTest, WriterStaysConsistentAfterAFailedArray) {
  std::string out;
  JsonWriter writer(out);
  renderValue(*builtinType(1007), "{1}", writer);
  EXPECT_THROW(renderValue(*builtinType(1007), "{{1},{2,3}}", writer), Error);
  renderValue(*builtinType(1007), "{{2},{3}}", writer);
  renderValue(*builtinType(23), "4", writer);
  EXPECT_EQ(out, "[1][[2],[3]]4");
}

TEST(RenderValueTest, ElementKindArrayNestsRenderers) {
  // Not a PostgreSQL shape (arrays of arrays are one multi-dimensional array), but a hand-built
  // TypeInfo must still render without the two levels sharing a buffer.
  const TypeInfo nested{ValueKind::Array, builtinType(1007), ','};
  EXPECT_EQ(render(nested, R"({"{1,2}",NULL,"{}"})"), "[[1,2],null,[]]");
  EXPECT_NE(errorOf(nested, R"({"{1,x}"})").find("cannot render \"x\" as integer"), std::string::npos);
}

TEST(RenderUnavailableTest, PlaceholderPerKind) {
  auto placeholder = [](const TypeInfo& type) {
    std::string out;
    JsonWriter writer(out);
    renderUnavailable(type, writer);
    return out;
  };
  for (ValueKind kind : {ValueKind::Bool, ValueKind::Integer, ValueKind::Float, ValueKind::Numeric,
                         ValueKind::Text, ValueKind::Json, ValueKind::Uuid, ValueKind::Date,
                         ValueKind::Timestamp, ValueKind::TimestampTz, ValueKind::Time, ValueKind::TimeTz,
                         ValueKind::Interval}) {
    EXPECT_EQ(placeholder(scalar(kind)), "\"__debezium_unavailable_value\"");
  }
  EXPECT_EQ(placeholder(scalar(ValueKind::Bytea)), "\"X19kZWJleml1bV91bmF2YWlsYWJsZV92YWx1ZQ==\"");
  EXPECT_EQ(placeholder(*builtinType(1009)), "[\"__debezium_unavailable_value\"]");
  EXPECT_EQ(placeholder(*builtinType(1001)), "[\"__debezium_unavailable_value\"]");
}

}  // namespace
TEST(TimestampTzUnixMicros, CountsMicrosecondsSinceTheEpochInUtc) {
  EXPECT_EQ(timestampTzUnixMicros("1970-01-01 00:00:00+00"), 0);
  EXPECT_EQ(timestampTzUnixMicros("2024-01-02 03:04:05.123456+00"), 1704164645123456LL);
  EXPECT_EQ(timestampTzUnixMicros("2024-01-02 05:04:05.123456+02"), 1704164645123456LL);
  EXPECT_EQ(timestampTzUnixMicros("1969-12-31 23:59:59.999999+00"), -1);
  EXPECT_THROW(timestampTzUnixMicros("infinity"), Error);
  EXPECT_THROW(timestampTzUnixMicros("2024-01-02"), Error);
}

}  // namespace tidemark::events
