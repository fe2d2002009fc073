// Debezium's JSON values back into PostgreSQL's text input (sink/postgres/text_form.h), and the
// JSON reader the destination reads events with (base/json_reader.h).
#include <gtest/gtest.h>

#include <string>

#include "base/error.h"
#include "base/json_reader.h"
#include "sink/postgres/text_form.h"

namespace tidemark {
namespace {

using sinks::pgtext::Form;

std::string text(const Form& form, std::string_view json) {
  size_t end = 0;
  const jsonr::Value v = jsonr::parseValue(json, end);
  std::string out;
  sinks::pgtext::append(form, v, out);
  return out;
}

Form form(std::string value, std::string element = "", int32_t typmod = -1, bool varying = false) {
  Form f;
  f.value = std::move(value);
  f.element = std::move(element);
  f.typmod = typmod;
  f.varying = varying;
  return f;
}

TEST(TextForm, ScalarsAsPostgresReadsThem) {
  EXPECT_EQ(text(form("bool"), "true"), "t");
  EXPECT_EQ(text(form("integer"), "-9223372036854775808"), "-9223372036854775808");
  EXPECT_EQ(text(form("float"), "0.30000000000000004"), "0.30000000000000004");
  EXPECT_EQ(text(form("float"), "\"NaN\""), "NaN");
  EXPECT_EQ(text(form("numeric"), "\"12.50\""), "12.50");
  EXPECT_EQ(text(form("numeric"), "\"NAN\""), "NaN");
  EXPECT_EQ(text(form("numeric"), "\"NEGATIVE_INFINITY\""), "-Infinity");
  EXPECT_EQ(text(form("text"), R"("tab\there \"q\" \u00e9 \ud83d\ude00")"), "tab\there \"q\" \xC3\xA9 \xF0\x9F\x98\x80");
  EXPECT_EQ(text(form("bytea"), "\"AAH/\""), "\\x0001ff");
}

TEST(TextForm, DatesAndTimesIncludingBcAndInfinities) {
  EXPECT_EQ(text(form("date"), "0"), "1970-01-01");
  EXPECT_EQ(text(form("date"), "19844"), "2024-05-01");
  EXPECT_EQ(text(form("date"), "-744450"), "0070-10-08 BC");
  EXPECT_EQ(text(form("date"), "2146033979"), "infinity");
  EXPECT_EQ(text(form("date"), "-2147472691"), "-infinity");
  EXPECT_EQ(text(form("timestamp_us"), "1714564800500000"), "2024-05-01 12:00:00.500000");
  EXPECT_EQ(text(form("timestamp_ms"), "-1"), "1969-12-31 23:59:59.999000");
  EXPECT_EQ(text(form("timestamp_us"), "\"infinity\""), "infinity");
  EXPECT_EQ(text(form("time_us"), "86400000000"), "24:00:00");
  EXPECT_EQ(text(form("time_ms"), "45296789"), "12:34:56.789000");
  EXPECT_EQ(text(form("timestamptz"), "\"2024-05-01T12:00:00.5Z\""), "2024-05-01T12:00:00.5Z");
  EXPECT_EQ(text(form("timestamptz"), "\"-0043-03-15T00:00:00Z\""), "0044-03-15T00:00:00Z BC");
  EXPECT_EQ(text(form("timestamptz"), "\"+10000-01-01T00:00:00Z\""), "10000-01-01T00:00:00Z");
}

TEST(TextForm, BitsPointsHstoreAndArrays) {
  EXPECT_EQ(text(form("bit"), "true"), "1");
  EXPECT_EQ(text(form("bits", "", 8), "\"BQ==\""), "00000101");  // BitSet {0, 2}
  EXPECT_EQ(text(form("bits", "", 12, true), "\"BQ==\""), "101");  // varbit: leading zeros are lost
  EXPECT_EQ(text(form("point"), R"({"x":1.5,"y":-2,"wkb":"AQ==","srid":null})"), "(1.5,-2)");
  EXPECT_EQ(text(form("hstore"), R"("{\"a\":\"1\",\"b\":null}")"), R"("a"=>"1", "b"=>NULL)");
  EXPECT_EQ(text(form("array", "integer"), "[1,null,-3]"), R"({"1",NULL,"-3"})");
  EXPECT_EQ(text(form("array", "text"), R"([["a\"b","c\\d"],["e",null]])"), R"({{"a\"b","c\\d"},{"e",NULL}})");
  EXPECT_EQ(text(form("array", "date"), "[0,19844]"), R"({"1970-01-01","2024-05-01"})");
}

TEST(TextForm, AValueNotOfItsFormIsThatRowsError) {
  try {
    text(form("date"), "\"soon\"");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.errorClass(), ErrorClass::Poison);
    EXPECT_NE(std::string(e.what()).find("as date"), std::string::npos) << e.what();
  }
  EXPECT_THROW(text(form("bytea"), "\"not base64!\""), Error);
}

TEST(TextForm, CopyEscapesWhatCopyReads) {
  std::string out;
  sinks::pgtext::appendCopyEscaped("a\tb\nc\\d\re", out);
  EXPECT_EQ(out, "a\\tb\\nc\\\\d\\re");
}

TEST(JsonReader, MembersInOrderAsViewsWithEscapesOnDemand) {
  const std::string doc = R"( {"op":"c","after":{"id":1,"quo\"te":"x","n":null},"source":{"lsn":123,"a":[1,{"b":"}"}]}} )";
  size_t end = 0;
  const jsonr::Value v = jsonr::parseValue(doc, end);
  ASSERT_EQ(v.kind, jsonr::Kind::Object);
  EXPECT_EQ(jsonr::member(v, "op").string(), "c");
  const jsonr::Value after = jsonr::member(v, "after");
  std::vector<std::string> keys;
  for (jsonr::Members m(after); m.next();) keys.push_back(m.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"id", "quo\"te", "n"}));
  EXPECT_EQ(jsonr::member(after, "quo\"te").string(), "x");
  EXPECT_TRUE(jsonr::member(after, "n").isNull());
  EXPECT_TRUE(jsonr::member(after, "missing").isNull());
  EXPECT_EQ(jsonr::member(jsonr::member(v, "source"), "lsn").raw, "123");
  EXPECT_EQ(jsonr::member(jsonr::member(v, "source"), "a").raw, R"([1,{"b":"}"}])");
}

TEST(JsonReader, MalformedTextIsAnErrorNotAGuess) {
  size_t end = 0;
  EXPECT_THROW(jsonr::parseValue(R"({"a":"unterminated})", end), Error);
  const jsonr::Value v = jsonr::parseValue(R"({"a" 1})", end);
  EXPECT_THROW(jsonr::member(v, "a"), Error);
  EXPECT_THROW(jsonr::parseValue("nope", end), Error);
}

}  // namespace
}  // namespace tidemark
