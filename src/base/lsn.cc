#include "base/lsn.h"

#include <charconv>
#include <cstdio>

namespace tidemark {

std::optional<Lsn> Lsn::parse(std::string_view text) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == text.size()) return {};
  uint32_t hi = 0, lo = 0;
  auto parse_half = [](std::string_view part, uint32_t& out) {
    if (part.size() > 8) return false;
    auto [ptr, ec] = std::from_chars(part.data(), part.data() + part.size(), out, 16);
    return ec == std::errc{} && ptr == part.data() + part.size();
  };
  if (!parse_half(text.substr(0, slash), hi) || !parse_half(text.substr(slash + 1), lo)) return {};
  return Lsn{(uint64_t{hi} << 32) | lo};
}

std::string Lsn::str() const {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%X/%X", static_cast<uint32_t>(value_ >> 32),
                static_cast<uint32_t>(value_));
  return buf;
}

}  // namespace tidemark
