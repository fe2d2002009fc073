// An event as the change log holds it and a sink receives it, the shape of a Kafka record:
// a topic, a key and a value, both JSON in Debezium's form.
#pragma once

#include <string_view>

namespace tidemark::core {

/// One event. The views are valid until whoever made it makes the next one.
struct Event {
  std::string_view topic;
  std::string_view key;    // JSON; empty means the event has no key (null)
  std::string_view value;  // JSON
};

}  // namespace tidemark::core
