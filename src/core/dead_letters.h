// The dead letter queue: changes a destination rejected one by one (a constraint or data error
// in that row), set aside with the error so that the rest flows on. It lives in the state
// directory (state/dlq_store.h); `tidemark dlq` lists, shows, retries and discards its records.
//
// A record is added before the destination commits past it, and adding the same record (sink,
// change-log offset) twice keeps one: a crash between the two sets it aside once.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tidemark::core {

struct DeadLetter {
  int64_t id = 0;          // assigned by the store
  std::string sink;
  uint64_t offset = 0;     // in the change log
  std::string topic;
  std::string table;       // "schema"."table" at the destination
  std::string key;         // the event's key (JSON)
  std::string value;       // the whole event (JSON)
  std::string schema;      // its table's schema record (JSON), to write it again
  std::string unchanged;   // the columns the source did not resend (core::Event::unchanged)
  std::string position;    // the change's source position, readable (PostgreSQL: its LSN)
  std::string error;
  std::string state = "pending";  // pending | retried | discarded | superseded
  std::string created_at;  // ISO-8601 UTC
};

class DeadLetters {
 public:
  virtual ~DeadLetters() = default;
  /// Sets `letter` aside, durably; a record of the same sink and offset already there stays.
  virtual void add(const DeadLetter& letter) = 0;
  /// Records of `sink` still pending.
  virtual uint64_t pending(const std::string& sink) = 0;
  /// Records of `sink` (all when empty) in `ids` (all when empty), oldest first.
  virtual std::vector<DeadLetter> list(const std::string& sink, const std::vector<int64_t>& ids) = 0;
  virtual void setState(int64_t id, const std::string& state, const std::string& note) = 0;
};

}  // namespace tidemark::core
