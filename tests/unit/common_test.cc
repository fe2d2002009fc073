#include <gtest/gtest.h>

#include "common/base64.h"
#include "common/json_writer.h"
#include "common/lsn.h"

namespace tidemark {
namespace {

TEST(Lsn, ParsesAndPrintsAsPostgres) {
  auto lsn = Lsn::parse("16/B374D848");
  ASSERT_TRUE(lsn);
  EXPECT_EQ(lsn->value(), (uint64_t{0x16} << 32) | 0xB374D848);
  EXPECT_EQ(lsn->str(), "16/B374D848");
  EXPECT_EQ(Lsn(0).str(), "0/0");
}

TEST(Lsn, RejectsMalformedText) {
  for (const char* bad : {"", "/", "1/", "/1", "x/1", "1/2/3", "123456789/0", "1 /2", "-1/0"}) {
    EXPECT_FALSE(Lsn::parse(bad)) << bad;
  }
}

TEST(JsonWriter, EscapesControlQuotesAndInvalidUtf8) {
  std::string out;
  JsonWriter::appendQuoted(out, std::string_view("a\"b\\c\n\x01\xff\xc3\xa9", 10));
  EXPECT_EQ(out, "\"a\\\"b\\\\c\\n\\u0001\xEF\xBF\xBD\xc3\xa9\"");
}

TEST(JsonWriter, WritesNestedStructures) {
  std::string out;
  JsonWriter w(out);
  w.beginObject();
  w.key("a");
  w.integer(-9223372036854775807LL - 1);
  w.key("b");
  w.beginArray();
  w.boolean(true);
  w.null();
  w.string("x");
  w.endArray();
  w.endObject();
  EXPECT_EQ(out, R"({"a":-9223372036854775808,"b":[true,null,"x"]})");
}

TEST(Base64, EncodesWithPadding) {
  EXPECT_EQ(base64(""), "");
  EXPECT_EQ(base64("f"), "Zg==");
  EXPECT_EQ(base64("fo"), "Zm8=");
  EXPECT_EQ(base64("foo"), "Zm9v");
  EXPECT_EQ(base64(std::string_view("\0\xff", 2)), "AP8=");
}

}  // namespace
}  // namespace tidemark
