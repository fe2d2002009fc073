#include <gtest/gtest.h>

#include "base/base64.h"
#include "base/error.h"
#include "base/json_writer.h"
#include "base/lsn.h"

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

TEST(JsonWriter, RejectPolicyThrowsNamingTheOffsetAndLeavesTheOutputAlone) {
  std::string out = "{";
  const std::string_view latin1("caf\xe9 ok", 8);
  try {
    JsonWriter::appendQuoted(out, latin1, Utf8Policy::Reject);
    FAIL() << "accepted bytes that are not UTF-8";
  } catch (const InvalidUtf8& e) {
    EXPECT_EQ(e.offset(), 3u);
    EXPECT_EQ(e.errorClass(), ErrorClass::Poison);
    std::string message = e.what();
    EXPECT_NE(message.find("byte 3"), std::string::npos) << message;
    EXPECT_NE(message.find("e9"), std::string::npos) << message;
    EXPECT_EQ(JsonWriter::firstInvalidUtf8(message), std::string::npos) << "raw bytes in the message";
  }
  EXPECT_EQ(out, "{");
  JsonWriter::appendQuoted(out, "caf\xc3\xa9", Utf8Policy::Reject);
  EXPECT_EQ(out, "{\"caf\xc3\xa9\"");
}

TEST(JsonWriter, EscapePolicyWritesEachInvalidByteAsALoneSurrogate) {
  std::string out;
  JsonWriter::appendQuoted(out, std::string_view("caf\xe9 \xff\xc3\xa9", 8), Utf8Policy::Escape);
  EXPECT_EQ(out, "\"caf\\udce9 \\udcff\xc3\xa9\"");
  // A writer carries its policy into strings and keys.
  std::string doc;
  JsonWriter w(doc, Utf8Policy::Escape);
  w.beginObject();
  w.key("k\x80");
  w.string("v\x81");
  w.endObject();
  EXPECT_EQ(doc, R"({"k\udc80":"v\udc81"})");
}

TEST(JsonWriter, FindsTheFirstInvalidUtf8Byte) {
  EXPECT_EQ(JsonWriter::firstInvalidUtf8("plain"), std::string_view::npos);
  EXPECT_EQ(JsonWriter::firstInvalidUtf8("\xf0\x9f\x98\x80 four bytes"), std::string_view::npos);
  EXPECT_EQ(JsonWriter::firstInvalidUtf8("ab\xc3"), 2u);             // cut short
  EXPECT_EQ(JsonWriter::firstInvalidUtf8("\xc0\xaf"), 0u);          // overlong
  EXPECT_EQ(JsonWriter::firstInvalidUtf8("x\xed\xa0\x80"), 1u);     // a surrogate
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
