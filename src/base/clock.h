// Wall-clock time as the status, heartbeats and logs write it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tidemark {

/// Unix microseconds now.
int64_t unixMicrosNow();

/// "2026-11-21T06:01:02.345Z" for Unix microseconds (millisecond precision).
std::string isoTime(int64_t unix_us);
/// The inverse of isoTime; nullopt for any other text.
std::optional<int64_t> parseIsoTime(std::string_view text);

}  // namespace tidemark
