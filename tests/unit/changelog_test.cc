#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "base/error.h"
#include "log/local/crc32c.h"
#include "log/local/local_log.h"
#include "support/temp_dir.h"

namespace tidemark::changelog {
namespace {

using namespace std::chrono_literals;

RecordView event(const std::string& topic, const std::string& key, const std::string& value) {
  return RecordView{topic, key, value, {}};
}

// Everything from `offset` to the end, as "offset:topic:key:value" strings.
std::vector<std::string> readAll(const LocalLog& log, uint64_t offset = 0) {
  auto reader = log.reader(offset);
  std::vector<std::string> out;
  while (const StoredRecord* r = reader->next()) {
    out.push_back(std::to_string(r->offset) + ":" + std::string(r->record.topic) + ":" +
                  std::string(r->record.key.value_or("<null>")) + ":" +
                  std::string(r->record.value.value_or("<null>")));
  }
  return out;
}

std::vector<std::filesystem::path> segments(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(Crc32cTest, KnownValues) {
  // RFC 3720, B.4: 32 bytes of zeros, and "123456789" (the check value of CRC-32C).
  EXPECT_EQ(crc32c(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);
  // Extending in two steps is the same as in one.
  const std::string text = "the quick brown fox jumps over the lazy dog, twice over";
  EXPECT_EQ(crc32c(crc32c(0, text.data(), 13), text.data() + 13, text.size() - 13), crc32c(text));
}

TEST(LocalLogTest, RecordsComeBackAsAppendedOnlyOnceCommitted) {
  test::TempDir tmp;
  LocalLog log({tmp.path() / "log"});
  EXPECT_EQ(log.startOffset(), 0u);
  EXPECT_EQ(log.endOffset(), 0u);
  EXPECT_EQ(log.append(event("shop.public.orders", R"({"id":1})", R"({"op":"c"})")), 0u);
  EXPECT_EQ(log.append(RecordView{"shop.message", std::nullopt, std::nullopt,
                                  {{"position", "0/16B3748"}, {"", ""}}}),
            1u);
  EXPECT_GT(log.pendingBytes(), 0u);
  // Appended, not committed: no reader sees them.
  EXPECT_EQ(log.endOffset(), 0u);
  EXPECT_TRUE(readAll(log).empty());
  log.commit();
  EXPECT_EQ(log.pendingBytes(), 0u);
  EXPECT_EQ(log.endOffset(), 2u);
  EXPECT_EQ(readAll(log), (std::vector<std::string>{R"(0:shop.public.orders:{"id":1}:{"op":"c"})",
                                                    "1:shop.message:<null>:<null>"}));
  auto reader = log.reader(1);
  const StoredRecord* r = reader->next();
  ASSERT_NE(r, nullptr);
  ASSERT_EQ(r->record.headers.size(), 2u);
  EXPECT_EQ(headerValue(r->record, "position"), "0/16B3748");
  EXPECT_EQ(headerValue(r->record, ""), "");
  EXPECT_EQ(headerValue(r->record, "missing"), std::nullopt);
  // An empty key is not a null key.
  log.append(event("t", "", ""));
  log.commit();
  EXPECT_EQ(readAll(log, 2), (std::vector<std::string>{"2:t::"}));
}

TEST(LocalLogTest, RollbackDropsWhatWasNotCommitted) {
  test::TempDir tmp;
  LocalLog log({tmp.path() / "log"});
  log.append(event("t", "1", "a"));
  log.commit();
  log.append(event("t", "2", "b"));
  log.rollback();
  EXPECT_EQ(log.append(event("t", "3", "c")), 1u);
  log.commit();
  EXPECT_EQ(readAll(log), (std::vector<std::string>{"0:t:1:a", "1:t:3:c"}));
}

TEST(LocalLogTest, ReopeningContinuesWhereTheLastCommitEnded) {
  test::TempDir tmp;
  {
    LocalLog log({tmp.path() / "log", 100});  // small segments: several files
    for (int i = 0; i < 10; ++i) {
      log.append(event("t", std::to_string(i), std::string(30, 'x')));
      log.commit();
    }
    log.append(event("t", "lost", "appended but never committed"));
  }
  EXPECT_GT(segments(tmp.path() / "log").size(), 3u);
  LocalLog log({tmp.path() / "log", 100});
  EXPECT_EQ(log.recovery().cut_bytes, 0u);
  EXPECT_EQ(log.endOffset(), 10u);
  EXPECT_EQ(log.append(event("t", "10", "y")), 10u);
  log.commit();
  auto all = readAll(log);
  ASSERT_EQ(all.size(), 11u);
  EXPECT_EQ(all[10], "10:t:10:y");
  EXPECT_EQ(readAll(log, 7).front(), "7:t:7:" + std::string(30, 'x'));
}

TEST(LocalLogTest, ATornTailIsCutBackToTheLastWholeRecord) {
  test::TempDir tmp;
  std::filesystem::path last;
  uint64_t whole = 0;
  {
    LocalLog log({tmp.path() / "log"});
    log.append(event("t", "1", "a"));
    log.append(event("t", "2", "b"));
    log.commit();
    last = segments(tmp.path() / "log").back();
    whole = std::filesystem::file_size(last);
    log.append(event("t", "3", "c"));
    log.commit();
  }
  // A crash in the middle of the last commit: its frame is cut short.
  const auto full = std::filesystem::file_size(last);
  std::filesystem::resize_file(last, full - 3);
  {
    LocalLog log({tmp.path() / "log"});
    EXPECT_EQ(log.recovery().cut_bytes, full - 3 - whole);
    EXPECT_EQ(log.recovery().segment, last.string());
    EXPECT_EQ(log.endOffset(), 2u);
    EXPECT_EQ(std::filesystem::file_size(last), whole);
    EXPECT_EQ(log.append(event("t", "3", "again")), 2u);
    log.commit();
    EXPECT_EQ(readAll(log), (std::vector<std::string>{"0:t:1:a", "1:t:2:b", "2:t:3:again"}));
  }
  // Zeros after the last record (a file extended but never written) are cut back too.
  {
    std::ofstream out(last, std::ios::app | std::ios::binary);
    out << std::string(20, '\0');
  }
  LocalLog log({tmp.path() / "log"});
  EXPECT_EQ(log.recovery().cut_bytes, 20u);
  EXPECT_EQ(log.endOffset(), 3u);
}

TEST(LocalLogTest, ADamagedRecordBeforeTheEndStopsTheReaderNamingTheFile) {
  test::TempDir tmp;
  {
    LocalLog log({tmp.path() / "log", 64});
    for (int i = 0; i < 6; ++i) {
      log.append(event("t", std::to_string(i), "value"));
      log.commit();
    }
  }
  // One byte of a value in the first segment changed behind the log's back.
  const auto first = segments(tmp.path() / "log").front();
  {
    std::fstream f(first, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-2, std::ios::end);
    f.put('X');
  }
  LocalLog log({tmp.path() / "log", 64});
  auto reader = log.reader(0);
  try {
    while (reader->next() != nullptr) {
    }
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("fails its checksum"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(first.string()), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.hint()).find("damaged"), std::string::npos);
  }
}

TEST(LocalLogTest, SegmentsEveryReaderIsPastAreRemoved) {
  test::TempDir tmp;
  LocalLog log({tmp.path() / "log", 64});
  for (int i = 0; i < 8; ++i) {
    log.append(event("t", std::to_string(i), "value"));
    log.commit();
  }
  const auto before = segments(tmp.path() / "log").size();
  const uint64_t size = log.sizeBytes();
  EXPECT_GT(before, 3u);
  EXPECT_GT(log.removeBefore(5), 0u);
  EXPECT_LT(segments(tmp.path() / "log").size(), before);
  EXPECT_LT(log.sizeBytes(), size);
  EXPECT_GT(log.startOffset(), 0u);
  EXPECT_LE(log.startOffset(), 5u);
  EXPECT_EQ(readAll(log, 5).front(), "5:t:5:value");
  EXPECT_THROW(log.reader(0), Error);
  // The segment being written stays, however far the readers are.
  log.removeBefore(100);
  EXPECT_EQ(segments(tmp.path() / "log").size(), 1u);
  EXPECT_EQ(log.startOffset(), log.endOffset());
  log.append(event("t", "8", "more"));
  log.commit();
  EXPECT_EQ(readAll(log, log.startOffset()), (std::vector<std::string>{"8:t:8:more"}));
}

// A reader at the end of a segment that retention deletes (it read all of it) goes on in the
// next one instead of calling the log damaged.
TEST(LocalLogTest, AReaderAtTheEndOfARemovedSegmentGoesOnInTheNext) {
  test::TempDir tmp;
  LocalLog log({tmp.path() / "log", 64});
  log.append(event("t", "0", std::string(100, 'v')));
  log.commit();  // the first segment is full: the next commit goes to a new one
  auto reader = log.reader(0);
  ASSERT_NE(reader->next(), nullptr);
  EXPECT_EQ(reader->next(), nullptr);
  log.append(event("t", "1", "value"));
  log.commit();
  ASSERT_GT(log.removeBefore(1), 0u);
  const StoredRecord* r = reader->next();
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->offset, 1u);
}

TEST(LocalLogTest, ATransactionCommittedInPartIsOpenAfterReopeningUntilAborted) {
  test::TempDir tmp;
  {
    LocalLog log({tmp.path() / "log"});
    log.append(event("t", "1", "whole"));
    log.append(transactionEnd("0/10"));
    log.append(event("t", "2", "first part"));
    EXPECT_TRUE(log.inTransaction());
    log.commit();
  }
  LocalLog log({tmp.path() / "log"});
  EXPECT_TRUE(log.inTransaction());
  EXPECT_EQ(log.lastPosition(), "0/10");
  log.append(transactionAbort());
  EXPECT_FALSE(log.inTransaction());
  log.rollback();
  EXPECT_TRUE(log.inTransaction()) << "rolled back to what is committed";
  log.append(transactionAbort());
  log.commit();
  LocalLog again({tmp.path() / "log"});
  EXPECT_FALSE(again.inTransaction());
}

TEST(LocalLogTest, AReaderOnAnotherThreadSeesEachCommitInOrder) {
  test::TempDir tmp;
  LocalLog log({tmp.path() / "log", 4096});
  constexpr int kRecords = 20000;
  std::vector<uint64_t> seen;
  std::thread consumer([&] {
    auto reader = log.reader(0);
    while (seen.size() < kRecords) {
      if (const StoredRecord* r = reader->next()) {
        EXPECT_EQ(r->record.key, std::to_string(r->offset));
        seen.push_back(r->offset);
      } else {
        log.waitBeyond(reader->position(), 1000ms);
      }
    }
  });
  for (int i = 0; i < kRecords; ++i) {
    log.append(event("t", std::to_string(i), std::string(static_cast<size_t>(i % 300), 'v')));
    if (i % 97 == 0) log.commit();
  }
  log.commit();
  consumer.join();
  ASSERT_EQ(seen.size(), static_cast<size_t>(kRecords));
  for (int i = 0; i < kRecords; ++i) ASSERT_EQ(seen[static_cast<size_t>(i)], static_cast<uint64_t>(i));
}

TEST(LocalLogTest, AMarkDropsAHalfAppendedTransactionOnly) {
  test::TempDir tmp;
  LocalLog log({tmp.path() / "log"});
  log.append(event("t", "1", "a"));
  log.append(transactionEnd("0/10"));
  const LocalLog::Mark mark = log.mark();
  log.append(event("t", "2", "half"));
  log.rollbackTo(mark);
  EXPECT_EQ(log.append(event("t", "3", "b")), 2u);
  log.append(transactionEnd("0/30"));
  log.commit();
  auto all = readAll(log);
  ASSERT_EQ(all.size(), 4u);
  EXPECT_EQ(all[2], "2:t:3:b");
  EXPECT_EQ(log.lastPosition(), "0/30");
}

TEST(LocalLogTest, TheLastTransactionEndsPositionSurvivesReopeningAndRollingOver) {
  test::TempDir tmp;
  {
    LocalLog log({tmp.path() / "log", 64});
    EXPECT_EQ(log.lastPosition(), std::nullopt);
    log.append(event("t", "1", "a"));
    log.append(transactionEnd("0/10"));
    log.commit();
    EXPECT_EQ(log.lastPosition(), "0/10");
    log.append(event("t", "2", "b"));
    log.append(transactionEnd("0/20"));
    // Appended, not committed: not the log's position yet.
    EXPECT_EQ(log.lastPosition(), "0/10");
    log.commit();
    EXPECT_EQ(log.lastPosition(), "0/20");
  }
  // The commit rolled over to a new, empty segment: the position is found in the one before.
  ASSERT_GT(segments(tmp.path() / "log").size(), 1u);
  EXPECT_EQ(std::filesystem::file_size(segments(tmp.path() / "log").back()), 0u);
  LocalLog log({tmp.path() / "log", 64});
  EXPECT_EQ(log.lastPosition(), "0/20");
  log.append(event("t", "3", "c"));
  log.rollback();
  EXPECT_EQ(log.lastPosition(), "0/20");
}

TEST(LocalLogTest, ADirectoryThatCannotBeCreatedIsAnErrorNamingIt) {
  test::TempDir tmp;
  std::ofstream(tmp.path() / "file") << "not a directory";
  try {
    LocalLog log({tmp.path() / "file" / "log"});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find((tmp.path() / "file" / "log").string()), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tidemark::changelog
