#include "sink/stdout/stdout_sink.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <fmt/format.h>

#include "base/error.h"

namespace tidemark::sinks {

void StdoutSink::write(const core::Event& event) {
  line_.clear();
  if (with_key_) {
    line_ += "{\"key\":";
    line_ += event.key.empty() ? std::string_view("null") : event.key;
    line_ += ",\"topic\":\"";
    line_ += event.topic;
    line_ += "\",\"value\":";
    line_ += event.value;
    line_ += "}\n";
  } else {
    line_ += event.value;
    line_ += '\n';
  }
  if (std::fwrite(line_.data(), 1, line_.size(), stdout) != line_.size()) {
    throw Error(ErrorClass::Fatal, fmt::format("stdout sink: write failed: {}", std::strerror(errno)));
  }
  pending_bytes_ += line_.size();
}

void StdoutSink::flush() {
  if (std::fflush(stdout) != 0) {
    throw Error(ErrorClass::Fatal, fmt::format("stdout sink: flush failed: {}", std::strerror(errno)));
  }
  pending_bytes_ = 0;
}

}  // namespace tidemark::sinks
