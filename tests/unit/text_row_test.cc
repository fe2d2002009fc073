// The row header of the change log (tidemark.text): what the source packs, a destination reads
// back cell by cell, and a damaged one is said to be damaged, never read past its end.
#include "core/text_row.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tidemark::core {
namespace {

TEST(TextRow, RoundTripsNullsUnchangedEmptyAndBinaryText) {
  const std::string binary("a\0b\tc\n\xff", 7);
  const Row row = {{Value::State::Present, "1", "1"},
                   {Value::State::Null, {}, {}},
                   {Value::State::Unchanged, R"("__debezium_unavailable_value")", {}},
                   {Value::State::Present, R"("")", ""},
                   {Value::State::Present, "x", binary}};
  std::string packed;
  appendTextRow('u', row, {}, packed);

  TextRowReader reader(packed, "");
  EXPECT_EQ(reader.op(), 'u');
  std::vector<TextRowReader::Cell> cells;
  TextRowReader::Cell cell;
  while (reader.next(cell)) cells.push_back(cell);
  EXPECT_FALSE(reader.malformed());
  ASSERT_EQ(cells.size(), row.size());
  EXPECT_EQ(cells[0].state, Value::State::Present);
  EXPECT_EQ(cells[0].text, "1");
  EXPECT_EQ(cells[1].state, Value::State::Null);
  EXPECT_EQ(cells[2].state, Value::State::Unchanged);
  EXPECT_EQ(cells[3].state, Value::State::Present);
  EXPECT_EQ(cells[3].text, "");
  EXPECT_EQ(cells[4].text, binary);
}

TEST(TextRow, ALengthPastTheEndOrAnUnknownTagIsMalformed) {
  std::string packed;
  appendTextRow('c', {{Value::State::Present, "\"abc\"", "abc"}}, {}, packed);
  for (size_t cut = 2; cut < packed.size(); ++cut) {
    TextRowReader reader(std::string_view(packed).substr(0, cut), "");
    ASSERT_EQ(reader.op(), 'c');
    TextRowReader::Cell cell;
    EXPECT_FALSE(reader.next(cell)) << "cut at " << cut;
    EXPECT_TRUE(reader.malformed()) << "cut at " << cut;
  }
  TextRowReader unknown("cx", "");
  ASSERT_EQ(unknown.op(), 'c');
  TextRowReader::Cell cell;
  EXPECT_FALSE(unknown.next(cell));
  EXPECT_TRUE(unknown.malformed());

  TextRowReader empty("", "");
  EXPECT_EQ(empty.op(), std::nullopt);
  EXPECT_TRUE(empty.malformed());
}

// Values whose JSON is their text, bare or in quotes with nothing escaped, point into the event
// instead of being written twice; the others are written out.
TEST(TextRow, ValuesTheJsonAlreadyHoldsPointIntoTheEvent) {
  const std::string event = R"({"id":42,"name":"plain","q":"say \"hi\"","ts":1700000000000})";
  const Row row = {{Value::State::Present, "42", "42"},
                   {Value::State::Present, R"("plain")", "plain"},
                   {Value::State::Present, R"("say \"hi\"")", R"(say "hi")"},
                   {Value::State::Present, "1700000000000", "2023-11-14 22:13:20+00"}};
  const std::vector<uint32_t> offsets = {6, 16, 28, 46};
  ASSERT_EQ(event.substr(offsets[1], 7), R"("plain")");
  std::string packed;
  appendTextRow('c', row, offsets, packed);
  EXPECT_EQ(packed.size(), 1 + 9 + 9 + 5 + 8 + 5 + 22) << "two references, two texts";

  TextRowReader reader(packed, event);
  ASSERT_EQ(reader.op(), 'c');
  TextRowReader::Cell cell;
  for (const Value& v : row) {
    ASSERT_TRUE(reader.next(cell));
    EXPECT_EQ(cell.text, v.text);
  }
  EXPECT_FALSE(reader.next(cell));
  EXPECT_FALSE(reader.malformed());

  // A reference past the end of the value it is read against is malformed, not read.
  TextRowReader short_value(packed, std::string_view(event).substr(0, 10));
  ASSERT_EQ(short_value.op(), 'c');
  EXPECT_TRUE(short_value.next(cell));
  EXPECT_FALSE(short_value.next(cell));
  EXPECT_TRUE(short_value.malformed());
}

}  // namespace
}  // namespace tidemark::core
