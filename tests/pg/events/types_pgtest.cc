// Column values as the Debezium PostgreSQL connector renders them (decimal.handling.mode=string,
// binary.handling.mode=base64), at the edges where a careless conversion changes meaning:
// 64-bit extremes, NaN and infinities, numeric scale, bytes that are zero, text that needs
// escaping, nested and NULL-holding arrays.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/pipeline_fixture.h"

namespace tidemark::test {
namespace {

using nlohmann::json;

class TypeRenderingTest : public PgPipelineTest {
 protected:
  // Creates public.t (id int primary key, <columns>), inserts `rows` (SQL VALUES tuples)
  // after the slot exists, streams them, and fills `after` with the after image by id.
  void captureInserts(const std::string& columns, const std::vector<std::string>& rows,
                      std::map<int, json>& after) {
    sql("CREATE TABLE t (id int PRIMARY KEY, " + columns + ")");
    auto config = writeConfig(TidemarkConfig({"public.t"}));
    ASSERT_NO_FATAL_FAILURE(initPipeline(config));
    for (const auto& row : rows) sql("INSERT INTO t VALUES " + row);
    RunResult r = runUntil(config, currentLsn());
    ASSERT_EQ(r.exitCode, 0) << r.description;
    for (const auto& e : events("public.t")) {
      ASSERT_EQ(e.at("op"), "c") << e.dump();
      after[e.at("after").at("id").get<int>()] = e.at("after");
    }
    ASSERT_EQ(after.size(), rows.size()) << "events: " << json(events("public.t")).dump();
  }

  // The server's own text for `expr` of row `id`, to compare exact-string renderings with.
  std::string serverText(const std::string& expr, int id) {
    return scalar("SELECT (" + expr + ")::text FROM t WHERE id = " + std::to_string(id));
  }
};

void expectExactInteger(const json& v, int64_t expected, const std::string& what) {
  ASSERT_TRUE(v.is_number_integer()) << what << " is not a JSON integer: " << v.dump();
  EXPECT_EQ(v.get<int64_t>(), expected) << what;
}

TEST_F(TypeRenderingTest, IntegersKeepAllSixtyFourBitsExactly) {
  std::map<int, json> a;
  ASSERT_NO_FATAL_FAILURE(captureInserts(
      "i2 int2, i4 int4, i8 int8, o oid",
      {"(1, -32768, -2147483648, -9223372036854775808, 0)",
       "(2, 32767, 2147483647, 9223372036854775807, 4294967295)",
       // 2^53 + 1 is the first integer a double cannot hold.
       "(3, 0, 0, 9007199254740993, NULL)"}, a));
  expectExactInteger(a[1]["i2"], -32768, "int2 min");
  expectExactInteger(a[1]["i4"], -2147483648LL, "int4 min");
  expectExactInteger(a[1]["i8"], std::numeric_limits<int64_t>::min(), "int8 min");
  expectExactInteger(a[1]["o"], 0, "oid 0");
  expectExactInteger(a[2]["i2"], 32767, "int2 max");
  expectExactInteger(a[2]["i4"], 2147483647, "int4 max");
  expectExactInteger(a[2]["i8"], std::numeric_limits<int64_t>::max(), "int8 max");
  expectExactInteger(a[2]["o"], 4294967295LL, "oid max");
  expectExactInteger(a[3]["i8"], 9007199254740993LL, "int8 2^53+1");
  EXPECT_TRUE(a[3]["o"].is_null());
}

TEST_F(TypeRenderingTest, FloatSpecialValuesAreStringsAndFiniteValuesRoundTrip) {
  std::map<int, json> a;
  ASSERT_NO_FATAL_FAILURE(captureInserts(
      "f4 float4, f8 float8",
      {"(1, 'NaN', 'NaN')", "(2, 'Infinity', 'Infinity')", "(3, '-Infinity', '-Infinity')",
       "(4, 1.5, 0.1)", "(5, 3.4028235e38, 1e308)", "(6, -1.17549435e-38, 5e-324)"}, a));
  EXPECT_EQ(a[1]["f4"], "NaN");
  EXPECT_EQ(a[1]["f8"], "NaN");
  EXPECT_EQ(a[2]["f4"], "Infinity");
  EXPECT_EQ(a[2]["f8"], "Infinity");
  EXPECT_EQ(a[3]["f4"], "-Infinity");
  EXPECT_EQ(a[3]["f8"], "-Infinity");
  for (int id : {4, 5, 6}) {
    ASSERT_TRUE(a[id]["f4"].is_number()) << a[id].dump();
    ASSERT_TRUE(a[id]["f8"].is_number()) << a[id].dump();
  }
  // float4 is compared as float: its shortest text form is what identifies it exactly.
  EXPECT_EQ(static_cast<float>(a[4]["f4"].get<double>()), 1.5f);
  EXPECT_EQ(a[4]["f8"].get<double>(), 0.1);
  EXPECT_EQ(static_cast<float>(a[5]["f4"].get<double>()), 3.4028235e38f);
  EXPECT_EQ(a[5]["f8"].get<double>(), 1e308);
  EXPECT_EQ(static_cast<float>(a[6]["f4"].get<double>()), -1.17549435e-38f);
  EXPECT_EQ(a[6]["f8"].get<double>(), 5e-324);
}

TEST_F(TypeRenderingTest, NumericIsTheExactDecimalStringWithItsScale) {
  std::map<int, json> a;
  ASSERT_NO_FATAL_FAILURE(captureInserts(
      "n numeric, n2 numeric(40,20), n3 numeric(5,2)",
      {"(1, 'NaN', 1.5, 1.5)",
       "(2, '12345678901234567890123456789.123456789012345678901234567890', "
       "'-0.00000000000000000001', -999.99)",
       "(3, 'Infinity', 0, 0)", "(4, '-Infinity', NULL, NULL)",
       "(5, 0.000001, '99999999999999999999.99999999999999999999', 123)"}, a));
  // The special values as Debezium's decimal.handling.mode=string spells them.
  EXPECT_EQ(a[1]["n"], "NAN");
  EXPECT_EQ(a[1]["n2"], "1.50000000000000000000");
  EXPECT_EQ(a[1]["n3"], "1.50");
  EXPECT_EQ(a[2]["n"], "12345678901234567890123456789.123456789012345678901234567890");
  EXPECT_EQ(a[2]["n2"], "-0.00000000000000000001");
  EXPECT_EQ(a[2]["n3"], "-999.99");
  EXPECT_EQ(a[3]["n"], "POSITIVE_INFINITY");
  EXPECT_EQ(a[3]["n2"], "0.00000000000000000000");
  EXPECT_EQ(a[4]["n"], "NEGATIVE_INFINITY");
  EXPECT_TRUE(a[4]["n2"].is_null());
  EXPECT_EQ(a[5]["n"], "0.000001");
  EXPECT_EQ(a[5]["n2"], "99999999999999999999.99999999999999999999");
  EXPECT_EQ(a[5]["n3"], "123.00");
  for (int id : {2, 5}) {
    EXPECT_EQ(a[id]["n"], serverText("n", id)) << "row " << id;
  }
}

TEST_F(TypeRenderingTest, TextWithQuotesNewlinesControlCharactersAndUnicodeSurvives) {
  std::map<int, json> a;
  ASSERT_NO_FATAL_FAILURE(captureInserts(
      "b bool, t text, vc varchar(10), ch char(4), nm name",
      {"(1, true, E'He said \"hi\"\\n\\ttab \\\\ backslash ''single''', 'ünïcödé', 'ab', 'pg_name')",
       "(2, false, E'ctrl\\x01\\x1f' || 'end', '', '', '')",
       "(3, NULL, '😀 emoji, 中文, é, \u00a0nbsp', NULL, NULL, NULL)", "(4, NULL, '', NULL, NULL, NULL)"},
      a));
  EXPECT_EQ(a[1]["b"], true);
  EXPECT_EQ(a[2]["b"], false);
  EXPECT_TRUE(a[3]["b"].is_null());
  EXPECT_EQ(a[1]["t"], "He said \"hi\"\n\ttab \\ backslash 'single'");
  EXPECT_EQ(a[1]["vc"], "ünïcödé");
  // char(n) keeps its blank padding, as the server returns it.
  EXPECT_EQ(a[1]["ch"], "ab  ");
  EXPECT_EQ(a[1]["nm"], "pg_name");
  EXPECT_EQ(a[2]["t"], std::string("ctrl\x01\x1f") + "end");
  EXPECT_EQ(a[2]["vc"], "");
  EXPECT_EQ(a[2]["ch"], "    ");
  EXPECT_EQ(a[3]["t"], "😀 emoji, 中文, é, \u00a0nbsp");
  EXPECT_TRUE(a[3]["vc"].is_null());
  // The empty string and NULL stay different.
  EXPECT_EQ(a[4]["t"], "");
  EXPECT_TRUE(a[4]["vc"].is_null());
}

TEST_F(TypeRenderingTest, ByteaIsBase64IncludingZeroBytes) {
  std::map<int, json> a;
  ASSERT_NO_FATAL_FAILURE(captureInserts(
      "b bytea",
      {"(1, '\\x00ff0001')", "(2, '')", "(3, '\\x000000')", "(4, convert_to('hello', 'UTF8'))",
       "(5, decode(repeat('00', 1000) || 'ff', 'hex'))", "(6, NULL)"}, a));
  EXPECT_EQ(a[1]["b"], "AP8AAQ==");
  EXPECT_EQ(a[2]["b"], "");
  EXPECT_EQ(a[3]["b"], "AAAA");
  EXPECT_EQ(a[4]["b"], "aGVsbG8=");
  // The server's base64 breaks lines every 76 characters; Debezium's does not.
  EXPECT_EQ(a[5]["b"], serverText("translate(encode(b, 'base64'), E'\\n', '')", 5));
  EXPECT_TRUE(a[6]["b"].is_null());
}

TEST_F(TypeRenderingTest, JsonAndJsonbAreJsonTextStringsAndUuidIsAString) {
  std::map<int, json> a;
  ASSERT_NO_FATAL_FAILURE(captureInserts(
      "j json, jb jsonb, u uuid",
      {"(1, '{\"a\": [1, 2.50, \"x\"], \"b\": null}', "
       "'{\"b\": 1, \"a\": [true, null, 1.50], \"s\": \"q\\\"uote\"}', "
       "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11')",
       "(2, '\"just a string\"', 'null', NULL)",
       "(3, NULL, '[]', '00000000-0000-0000-0000-000000000000')"}, a));
  // json keeps its text byte for byte; jsonb is the server's normalized text.
  EXPECT_EQ(a[1]["j"], "{\"a\": [1, 2.50, \"x\"], \"b\": null}");
  EXPECT_EQ(a[1]["jb"], serverText("jb", 1));
  ASSERT_TRUE(a[1]["jb"].is_string()) << a[1].dump();
  EXPECT_EQ(json::parse(a[1]["jb"].get<std::string>()),
            json::parse(R"({"a": [true, null, 1.50], "b": 1, "s": "q\"uote"})"));
  EXPECT_EQ(a[1]["u"], "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
  EXPECT_EQ(a[2]["j"], "\"just a string\"");
  // A JSON null document is the string "null", not an SQL NULL.
  EXPECT_EQ(a[2]["jb"], "null");
  EXPECT_TRUE(a[2]["u"].is_null());
  EXPECT_TRUE(a[3]["j"].is_null());
  EXPECT_EQ(a[3]["jb"], "[]");
  EXPECT_EQ(a[3]["u"], "00000000-0000-0000-0000-000000000000");
}

TEST_F(TypeRenderingTest, DatesTimestampsTimesAndIntervalsUseDebeziumUnits) {
  std::map<int, json> a;
  ASSERT_NO_FATAL_FAILURE(captureInserts(
      "d date, ts timestamp, tstz timestamptz, tm time, tmtz timetz, iv interval",
      {"(1, '2024-02-29', '2024-02-29 12:34:56.789012', '2024-02-29 12:34:56.789012+02', "
       "'12:34:56.789012', '12:34:56.789012+02', '1 year 2 months 3 days 04:05:06.789')",
       "(2, '1969-12-31', '1969-12-31 23:59:59.999999', '1969-12-31 23:59:59.999999+00', "
       "'00:00:00', '00:00:00.000001+00', '-1 days')",
       "(3, '1970-01-01', '1970-01-01 00:00:00', '2000-01-01 00:00:00.000001-08:30', "
       "'23:59:59.999999', '23:59:59.999999-01', '0')",
       "(4, '0001-01-01', '1900-03-01 00:00:00.5', '9999-12-31 23:59:59.999999+00', "
       "NULL, NULL, '-1 year -2 mons +3 days -00:00:00.000001')"}, a));
  // date: days since 1970-01-01.
  EXPECT_EQ(a[1]["d"], 19782);
  EXPECT_EQ(a[2]["d"], -1);
  EXPECT_EQ(a[3]["d"], 0);
  EXPECT_EQ(a[4]["d"], -719162);
  // timestamp: microseconds since the epoch.
  expectExactInteger(a[1]["ts"], 1709210096789012LL, "timestamp 2024");
  expectExactInteger(a[2]["ts"], -1, "timestamp just before the epoch");
  expectExactInteger(a[3]["ts"], 0, "timestamp at the epoch");
  expectExactInteger(a[4]["ts"], -2203891199500000LL, "timestamp 1900");
  // timestamptz: ISO-8601 in UTC with microseconds.
  EXPECT_EQ(a[1]["tstz"], "2024-02-29T10:34:56.789012Z");
  EXPECT_EQ(a[2]["tstz"], "1969-12-31T23:59:59.999999Z");
  EXPECT_EQ(a[3]["tstz"], "2000-01-01T08:30:00.000001Z");
  EXPECT_EQ(a[4]["tstz"], "9999-12-31T23:59:59.999999Z");
  // time: microseconds since midnight.
  expectExactInteger(a[1]["tm"], 45296789012LL, "time");
  expectExactInteger(a[2]["tm"], 0, "midnight");
  expectExactInteger(a[3]["tm"], 86399999999LL, "last microsecond of the day");
  // timetz: ISO-8601 time in UTC, the fraction without trailing zeros.
  EXPECT_EQ(a[1]["tmtz"], "10:34:56.789012Z");
  EXPECT_EQ(a[2]["tmtz"], "00:00:00.000001Z");
  EXPECT_EQ(a[3]["tmtz"], "00:59:59.999999Z");
  // interval: Debezium's interval.handling.mode=string, every part written, each as stored.
  EXPECT_EQ(a[1]["iv"], "P1Y2M3DT4H5M6.789S");
  EXPECT_EQ(a[2]["iv"], "P0Y0M-1DT0H0M0S");
  EXPECT_EQ(a[3]["iv"], "P0Y0M0DT0H0M0S");
  EXPECT_EQ(a[4]["iv"], "P-1Y-2M3DT0H0M-0.000001S");
}

TEST_F(TypeRenderingTest, InfiniteDatesAndTimestampsStayDistinctFromRealValues) {
  std::map<int, json> a;
  ASSERT_NO_FATAL_FAILURE(captureInserts(
      "d date, ts timestamp, tstz timestamptz",
      {"(1, 'infinity', 'infinity', 'infinity')", "(2, '-infinity', '-infinity', '-infinity')",
       "(3, '5874897-12-31', '294246-12-31 23:59:59.999999', NULL)",
       "(4, '4714-11-24 BC', '4713-11-24 00:00:00 BC', NULL)"},
      a));
  // Debezium's epoch days for infinite dates, outside the server's date range
  // (-2440588 .. 2145042905 days), so no stored date can render the same.
  expectExactInteger(a[1]["d"], 2146033979LL, "date infinity");
  expectExactInteger(a[2]["d"], -2147472691LL, "date -infinity");
  expectExactInteger(a[3]["d"], 2145042905LL, "largest date");
  expectExactInteger(a[4]["d"], -2440588LL, "smallest date");
  // Debezium writes 9223372036825200000 for an infinite timestamp, which a real timestamp in
  // year 294247 also renders as; tidemark writes strings instead (src/source/postgres/README.md).
  EXPECT_EQ(a[1]["ts"], "infinity");
  EXPECT_EQ(a[2]["ts"], "-infinity");
  ASSERT_TRUE(a[3]["ts"].is_number_integer()) << a[3].dump();
  ASSERT_TRUE(a[4]["ts"].is_number_integer()) << a[4].dump();
  EXPECT_EQ(a[1]["tstz"], "infinity");
  EXPECT_EQ(a[2]["tstz"], "-infinity");
}

TEST_F(TypeRenderingTest, ArraysAreJsonArraysWithNullsNestingAndElementRendering) {
  sql("CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')");
  std::map<int, json> a;
  ASSERT_NO_FATAL_FAILURE(captureInserts(
      "ia int4[], ba int8[], ta text[], na numeric[], m2 int4[][], ea mood[], m mood, "
      "e int4[], ja jsonb[]",
      {"(1, '{1,NULL,3}', '{-9223372036854775808,9223372036854775807}', "
       "'{\"a,b\",\"with \\\"quote\\\"\",NULL,\"NULL\",\"\",\"back\\\\slash\",\"{x}\"}', "
       "'{1.50,NaN}', '{{1,2},{3,4}}', '{sad,happy}', 'ok', '{}', "
       "ARRAY['{\"k\": [1, 2]}'::jsonb, 'null'::jsonb])",
       "(2, NULL, '{}', '{NULL}', NULL, '{{NULL,2},{3,NULL}}', NULL, 'happy', NULL, NULL)"},
      a));
  EXPECT_EQ(a[1]["ia"], json::parse("[1, null, 3]"));
  ASSERT_TRUE(a[1]["ba"].is_array()) << a[1].dump();
  ASSERT_EQ(a[1]["ba"].size(), 2u);
  expectExactInteger(a[1]["ba"][0], std::numeric_limits<int64_t>::min(), "int8[] min");
  expectExactInteger(a[1]["ba"][1], std::numeric_limits<int64_t>::max(), "int8[] max");
  EXPECT_EQ(a[1]["ta"],
            json::parse(R"(["a,b", "with \"quote\"", null, "NULL", "", "back\\slash", "{x}"])"));
  EXPECT_EQ(a[1]["na"], json::parse(R"(["1.50", "NAN"])"));
  EXPECT_EQ(a[1]["m2"], json::parse("[[1, 2], [3, 4]]"));
  EXPECT_EQ(a[1]["ea"], json::parse(R"(["sad", "happy"])"));
  EXPECT_EQ(a[1]["m"], "ok");
  EXPECT_EQ(a[1]["e"], json::array());
  ASSERT_TRUE(a[1]["ja"].is_array()) << a[1].dump();
  ASSERT_EQ(a[1]["ja"].size(), 2u);
  EXPECT_EQ(json::parse(a[1]["ja"][0].get<std::string>()), json::parse(R"({"k": [1, 2]})"));
  EXPECT_EQ(a[1]["ja"][1], "null");
  EXPECT_TRUE(a[2]["ia"].is_null());
  EXPECT_EQ(a[2]["ba"], json::array());
  EXPECT_EQ(a[2]["ta"], json::parse("[null]"));
  EXPECT_EQ(a[2]["m2"], json::parse("[[null, 2], [3, null]]"));
  EXPECT_EQ(a[2]["m"], "happy");
}

// A value renders by the type it had when it was written, also once a column's domain was
// changed to its base type and dropped (pgoutput names the base type as it was). A type that
// cannot be told any more is an error naming the table and column, never a value in another
// form.
TEST_F(TypeRenderingTest, ValuesRenderByTheirTypeAtTheChangeEvenOnceItWasDropped) {
  sql("CREATE DOMAIN bytes_d AS bytea; CREATE DOMAIN count_d AS int; CREATE DOMAIN counts_d AS int[]");
  sql("CREATE TYPE mood AS ENUM ('calm')");
  sql("CREATE TABLE dom (id int PRIMARY KEY, b bytes_d, n count_d, counts counts_d)");
  sql("CREATE TABLE moods (id int PRIMARY KEY, m mood)");
  auto config = writeConfig(TidemarkConfig({"public.dom", "public.moods"}));
  ASSERT_NO_FATAL_FAILURE(initPipeline(config));
  sql("INSERT INTO dom VALUES (1, '\\x00ff', 5, '{1,2}')");
  sql("ALTER TABLE dom ALTER COLUMN b TYPE bytea, ALTER COLUMN n TYPE int, ALTER COLUMN counts TYPE int[]");
  sql("DROP DOMAIN bytes_d; DROP DOMAIN count_d; DROP DOMAIN counts_d");
  RunResult r = runUntil(config, currentLsn());
  ASSERT_EQ(r.exitCode, 0) << r.description;
  auto ev = events("public.dom");
  ASSERT_EQ(ev.size(), 1u) << r.description;
  EXPECT_EQ(ev[0]["after"]["b"], "AP8=");
  EXPECT_EQ(ev[0]["after"]["n"], 5);
  EXPECT_EQ(ev[0]["after"]["counts"], json::parse("[1,2]"));

  sql("INSERT INTO moods VALUES (1, 'calm')");
  sql("ALTER TABLE moods ALTER COLUMN m TYPE text");
  sql("DROP TYPE mood");
  r = runUntil(config, currentLsn());
  EXPECT_EQ(r.exitCode, 2) << r.description;
  EXPECT_NE(r.err.find("column \"m\" of public.moods"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("public.mood ("), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("no longer exists"), std::string::npos) << r.err;
  EXPECT_TRUE(events("public.moods").empty()) << "a value of a dropped type was written in another form";
}

}  // namespace
}  // namespace tidemark::test
