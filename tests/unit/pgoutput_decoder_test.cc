#include <gtest/gtest.h>

#include "base/byte_reader.h"
#include "source/postgres/pgoutput_decoder.h"
#include "support/bytes.h"

namespace tidemark::pgoutput {
namespace {

using test::Bytes;
using test::ordersRelationMessage;

// Decodes and expects a WireError whose message contains every fragment.
void expectWireError(std::string_view bytes, std::initializer_list<std::string_view> fragments) {
  Decoder d;
  try {
    d.decode(bytes);
    FAIL() << "decoded malformed bytes without error";
  } catch (const WireError& e) {
    EXPECT_EQ(e.errorClass(), ErrorClass::Fatal);
    for (auto f : fragments) EXPECT_NE(std::string(e.what()).find(f), std::string::npos) << e.what();
  }
}

TEST(PgoutputDecoder, DecodesBegin) {
  Decoder d;
  auto m = std::get<BeginMessage>(d.decode(Bytes().ch('B').u64(0x16B3748).u64(123456789).u32(777)));
  EXPECT_EQ(m.final_lsn, Lsn(0x16B3748));
  EXPECT_EQ(m.commit_time, 123456789);
  EXPECT_EQ(m.xid.value, 777u);
}

TEST(PgoutputDecoder, DecodesCommit) {
  Decoder d;
  auto m = std::get<CommitMessage>(d.decode(Bytes().ch('C').u8(0).u64(100).u64(140).u64(5)));
  EXPECT_EQ(m.commit_lsn, Lsn(100));
  EXPECT_EQ(m.end_lsn, Lsn(140));
}

TEST(PgoutputDecoder, RejectsCommitWithUnknownFlags) {
  expectWireError(Bytes().ch('C').u8(4).u64(100).u64(140).u64(5), {"Commit", "flags"});
}

TEST(PgoutputDecoder, RejectsCommitEndingBeforeItStarts) {
  expectWireError(Bytes().ch('C').u8(0).u64(200).u64(140).u64(5), {"end_lsn is before commit_lsn"});
}

TEST(PgoutputDecoder, DecodesRelationWithKeyFlags) {
  Decoder d;
  Bytes b = ordersRelationMessage();  // views in the message point into b
  auto m = std::get<RelationMessage>(d.decode(b));
  EXPECT_EQ(m.relid.value, 16384u);
  EXPECT_EQ(m.nspname, "public");
  EXPECT_EQ(m.relname, "orders");
  ASSERT_EQ(m.columns.size(), 2u);
  EXPECT_TRUE(m.columns[0].part_of_key);
  EXPECT_EQ(m.columns[0].name, "id");
  EXPECT_EQ(m.columns[0].type, 23u);
  EXPECT_EQ(m.columns[0].typmod, -1);
  EXPECT_FALSE(m.columns[1].part_of_key);
}

TEST(PgoutputDecoder, DecodesInsertWithNullUnchangedAndText) {
  Decoder d;
  Bytes b;
  b.ch('I').u32(16384).ch('N').u16(3).text("42").ch('n').ch('u');
  auto m = std::get<InsertMessage>(d.decode(b));
  ASSERT_EQ(m.new_tuple->size(), 3u);
  EXPECT_EQ((*m.new_tuple)[0].kind, ColumnKind::Text);
  EXPECT_EQ((*m.new_tuple)[0].value, "42");
  EXPECT_EQ((*m.new_tuple)[1].kind, ColumnKind::Null);
  EXPECT_EQ((*m.new_tuple)[2].kind, ColumnKind::UnchangedToast);
}

TEST(PgoutputDecoder, DecodesUpdateWithOldKeyAndNewTuple) {
  Decoder d;
  Bytes b;
  b.ch('U').u32(16384).ch('K').u16(2).text("1").ch('n').ch('N').u16(2).text("2").text("x");
  auto m = std::get<UpdateMessage>(d.decode(b));
  EXPECT_EQ(m.old_kind, OldTupleKind::Key);
  ASSERT_NE(m.old_tuple, nullptr);
  EXPECT_EQ((*m.old_tuple)[0].value, "1");
  EXPECT_EQ((*m.new_tuple)[0].value, "2");
  EXPECT_EQ((*m.new_tuple)[1].value, "x");
}

TEST(PgoutputDecoder, DecodesUpdateWithoutOldTuple) {
  Decoder d;
  auto m = std::get<UpdateMessage>(d.decode(Bytes().ch('U').u32(16384).ch('N').u16(1).text("2")));
  EXPECT_EQ(m.old_kind, OldTupleKind::None);
  EXPECT_EQ(m.old_tuple, nullptr);
}

TEST(PgoutputDecoder, DecodesDeleteWithFullOldTuple) {
  Decoder d;
  // The tuple's values view the message's bytes: they must outlive the checks.
  const std::string bytes = Bytes().ch('D').u32(16384).ch('O').u16(1).text("7").str();
  auto m = std::get<DeleteMessage>(d.decode(bytes));
  EXPECT_EQ(m.old_kind, OldTupleKind::Full);
  EXPECT_EQ((*m.old_tuple)[0].value, "7");
}

TEST(PgoutputDecoder, DecodesTruncateOfSeveralRelations) {
  Decoder d;
  auto m = std::get<TruncateMessage>(d.decode(Bytes().ch('T').u32(2).u8(3).u32(16384).u32(16390)));
  EXPECT_TRUE(m.cascade);
  EXPECT_TRUE(m.restart_identity);
  ASSERT_EQ(m.relids.size(), 2u);
  EXPECT_EQ(m.relids[1].value, 16390u);
}

TEST(PgoutputDecoder, DecodesLogicalMessageWithBinaryContent) {
  Decoder d;
  std::string content("a\0b", 3);
  Bytes b;
  b.ch('M').u8(1).u64(500).cstr("tidemark").u32(3).raw(content);
  auto m = std::get<LogicalDecodingMessage>(d.decode(b));
  EXPECT_TRUE(m.transactional);
  EXPECT_EQ(m.lsn, Lsn(500));
  EXPECT_EQ(m.prefix, "tidemark");
  EXPECT_EQ(m.content, content);
}

TEST(PgoutputDecoder, DecodesTypeAndOrigin) {
  Decoder d;
  Bytes type_bytes;
  type_bytes.ch('Y').u32(16400).cstr("public").cstr("mood");
  auto t = std::get<TypeMessage>(d.decode(type_bytes));
  EXPECT_EQ(t.type, 16400u);
  EXPECT_EQ(t.typname, "mood");
  Bytes origin_bytes;
  origin_bytes.ch('O').u64(0x10).cstr("node_a");
  auto o = std::get<OriginMessage>(d.decode(origin_bytes));
  EXPECT_EQ(o.origin_name, "node_a");
}

TEST(PgoutputDecoder, EveryTruncationOfAValidMessageIsATypedError) {
  std::vector<Bytes> messages = {
      Bytes().ch('B').u64(1).u64(2).u32(3),
      Bytes().ch('C').u8(0).u64(100).u64(140).u64(5),
      ordersRelationMessage(),
      Bytes().ch('I').u32(16384).ch('N').u16(2).text("42").text("hello"),
      Bytes().ch('U').u32(16384).ch('O').u16(1).text("1").ch('N').u16(1).text("2"),
      Bytes().ch('D').u32(16384).ch('K').u16(1).text("7"),
      Bytes().ch('T').u32(1).u8(0).u32(16384),
      Bytes().ch('M').u8(0).u64(500).cstr("p").u32(2).raw("hi"),
      Bytes().ch('Y').u32(16400).cstr("public").cstr("mood"),
  };
  for (const auto& full : messages) {
    std::string_view bytes = full;
    {
      Decoder d;
      EXPECT_NO_THROW(d.decode(bytes)) << "type " << bytes[0];
    }
    for (size_t len = 0; len < bytes.size(); ++len) {
      Decoder d;
      EXPECT_THROW(d.decode(bytes.substr(0, len)), WireError)
          << "type " << bytes[0] << " cut at " << len << " of " << bytes.size();
    }
  }
}

TEST(PgoutputDecoder, ErrorNamesTypeOffsetAndLengths) {
  // Insert whose only column claims 1000 bytes but carries 5.
  Bytes b;
  b.ch('I').u32(16384).ch('N').u16(1).ch('t').u32(1000).raw("short");
  expectWireError(b, {"Insert", "(18 bytes) at offset 13", "wants 1000 bytes, 5 left"});
}

TEST(PgoutputDecoder, AValueCutShortNamesItsColumn) {
  Bytes cut;
  cut.ch('I').u32(16384).ch('N').u16(2).ch('n').ch('t').u32(1000).raw("short");
  expectWireError(cut, {"tuple column 1 value", "wants 1000 bytes, 5 left"});
  Bytes negative;
  negative.ch('I').u32(16384).ch('N').u16(2).ch('t').u32(1).raw("x").ch('t').u32(0xFFFFFFF0);
  expectWireError(negative, {"tuple column 1 value", "negative length"});
}

TEST(PgoutputDecoder, RejectsNegativeColumnLength) {
  Bytes b;
  b.ch('I').u32(16384).ch('N').u16(1).ch('t').u32(0xFFFFFFF0).raw("x");
  expectWireError(b, {"negative length"});
}

TEST(PgoutputDecoder, RejectsUnknownTupleKind) {
  expectWireError(Bytes().ch('I').u32(16384).ch('N').u16(1).ch('z'), {"unknown kind byte 0x7a"});
}

TEST(PgoutputDecoder, RejectsTrailingBytes) {
  expectWireError(Bytes().ch('B').u64(1).u64(2).u32(3).u8(0), {"Begin", "trailing"});
}

TEST(PgoutputDecoder, RejectsUnterminatedString) {
  expectWireError(Bytes().ch('Y').u32(1).cstr("public").raw("mood"), {"not terminated"});
}

TEST(PgoutputDecoder, RejectsUnknownMessageType) {
  expectWireError(Bytes().ch('Z').u32(1), {"unknown message type 0x5a"});
}

TEST(PgoutputDecoder, RejectsTruncateCountLargerThanMessage) {
  expectWireError(Bytes().ch('T').u32(0x7FFFFFFF).u8(0).u32(1), {"relation ids want"});
}

TEST(PgoutputDecoder, RejectsZeroRelationIdAndUnsetLsn) {
  expectWireError(Bytes().ch('I').u32(0).ch('N').u16(0), {"relation id is 0"});
  expectWireError(Bytes().ch('B').u64(0).u64(2).u32(3), {"final_lsn is unset"});
}

TEST(PgoutputDecoder, RejectsEmptyMessage) { expectWireError("", {"empty message"}); }

}  // namespace
}  // namespace tidemark::pgoutput
