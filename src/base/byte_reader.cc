#include "base/byte_reader.h"

#include <fmt/format.h>

namespace tidemark {

std::string_view ByteReader::readCString(std::string_view field) {
  const void* nul = std::memchr(bytes_.data() + pos_, '\0', remaining());
  if (nul == nullptr) {
    fail(fmt::format("{}: string not terminated within the {} bytes left", field, remaining()));
  }
  size_t len = static_cast<size_t>(static_cast<const char*>(nul) - (bytes_.data() + pos_));
  std::string_view out = bytes_.substr(pos_, len);
  pos_ += len + 1;
  return out;
}

std::string_view ByteReader::readBytes(int64_t n, std::string_view field) {
  if (n < 0) fail(fmt::format("{}: negative length {}", field, n));
  if (static_cast<uint64_t>(n) > remaining()) underflow(static_cast<size_t>(n), field);
  return take(static_cast<size_t>(n), field);
}

void ByteReader::expectEnd() {
  if (remaining() != 0) fail(fmt::format("{} unexpected trailing bytes", remaining()));
}

void ByteReader::fail(const std::string& problem) const {
  throw WireError(fmt::format("malformed {} message ({} bytes) at offset {}: {}", what_,
                              bytes_.size(), pos_, problem));
}

void ByteReader::underflow(size_t wanted, std::string_view field) const {
  fail(fmt::format("{} wants {} bytes, {} left", field, wanted, remaining()));
}

}  // namespace tidemark
