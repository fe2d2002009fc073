// Debezium's envelope (schemas disabled), the same for every connector: {"before", "after",
// "source", "transaction", "op", "ts_ms", "ts_us", "ts_ns"} for rows, "op":"t" for truncates,
// "op":"m" with {"message": {"prefix", "content"}} for messages, members in Debezium 3.6's
// order, around the values and the `source` block a connector made (core/change.h). The key
// is the JSON object of the table's key columns. tests/compat holds the result to Debezium's
// own events.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/change.h"
#include "core/event.h"

namespace tidemark::debezium {

class Envelope {
 public:
  /// `server_name` is Debezium's topic.prefix (source.name).
  explicit Envelope(std::string server_name);

  /// The event of a change. Its views are valid until the next call.
  core::Event encode(const core::Change& change);
  /// Where each value of the last encoded change's `before` or `after` row begins in its
  /// event's value (the JSON that value.json of the row's Values was copied to).
  const std::vector<uint32_t>& valueOffsets(bool before) const { return before ? before_offsets_ : after_offsets_; }

  /// A Layer 1 heartbeat, as Debezium writes it: topic __debezium-heartbeat.<server_name>,
  /// key {"serverName": <server_name>}, value {"ts_ms": <now>}.
  core::Event heartbeat(int64_t now_ms);

 private:
  void writeRow(const core::Table& table, const core::Row& row, std::vector<uint32_t>& offsets);
  void writeKey(const core::Table& table, const core::Row& row);
  /// ,"transaction":null,"op":..,"ts_ms":..,"ts_us":..,"ts_ns":.. (the brace stays open).
  void writeTail(char op);
  core::Event message(const core::Change& change);

  std::string server_name_;
  std::string message_topic_;
  std::string heartbeat_topic_;
  std::string key_;
  std::string value_;
  std::vector<uint32_t> before_offsets_;
  std::vector<uint32_t> after_offsets_;
};

}  // namespace tidemark::debezium
