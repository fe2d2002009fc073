// An event as the change log holds it and a sink receives it, the shape of a Kafka record:
// a topic, a key and a value, both JSON in Debezium's form.
#pragma once

#include <cstdint>
#include <string_view>

namespace tidemark::core {

/// One event. The views are valid until whoever made it makes the next one.
struct Event {
  std::string_view topic;
  std::string_view key;    // JSON; empty means the event has no key (null)
  std::string_view value;  // JSON
  /// What typed destinations need beside Debezium's JSON (record headers in the change log):
  /// the version of the topic's table schema the row follows (core::TableSchema; empty for
  /// events of no table), and the positions of the columns whose value in `after` is Debezium's
  /// placeholder for a value the source did not resend (comma-separated; empty: none).
  std::string_view schema_version{};
  std::string_view unchanged{};
  /// The row as the source database printed it, when its table schema has a text_form
  /// (core/text_row.h); empty otherwise.
  std::string_view text{};
  uint64_t offset = 0;  // in the change log
};

}  // namespace tidemark::core
