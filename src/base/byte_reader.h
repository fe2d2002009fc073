// The one checked cursor for every wire format tidemark reads (replication CopyData frames,
// pgoutput messages). Every read checks the bytes left, in every build; a short or malformed
// input becomes a WireError that says what was being read, where, and how much was wanted vs
// left. Nothing here trusts a length that came off the wire.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "base/error.h"

namespace tidemark {

class ByteReader {
 public:
  /// `what` names the message being read ("pgoutput Insert"), for error messages.
  ByteReader(std::string_view bytes, std::string_view what) : bytes_(bytes), what_(what) {}

  size_t remaining() const { return bytes_.size() - pos_; }
  size_t offset() const { return pos_; }
  size_t size() const { return bytes_.size(); }

  uint8_t readU8(std::string_view field) { return static_cast<uint8_t>(take(1, field)[0]); }
  uint16_t readU16(std::string_view field) { return static_cast<uint16_t>(readBigEndian(2, field)); }
  uint32_t readU32(std::string_view field) { return static_cast<uint32_t>(readBigEndian(4, field)); }
  uint64_t readU64(std::string_view field) { return readBigEndian(8, field); }
  int16_t readI16(std::string_view field) { return static_cast<int16_t>(readU16(field)); }
  int32_t readI32(std::string_view field) { return static_cast<int32_t>(readU32(field)); }
  int64_t readI64(std::string_view field) { return static_cast<int64_t>(readU64(field)); }

  /// A NUL-terminated string whose terminator lies inside the input; returned without it.
  std::string_view readCString(std::string_view field);

  /// `n` bytes; a negative length (as read from an Int32) is rejected before any read.
  std::string_view readBytes(int64_t n, std::string_view field);

  /// Everything left.
  std::string_view readRest() { return take(remaining(), "rest"); }

  /// Fails unless every byte has been consumed (trailing garbage means a misparse).
  void expectEnd();

  /// Throws a WireError at the current offset with a custom description.
  [[noreturn]] void fail(const std::string& problem) const;

 private:
  std::string_view take(size_t n, std::string_view field) {
    if (n > remaining()) underflow(n, field);
    std::string_view out = bytes_.substr(pos_, n);
    pos_ += n;
    return out;
  }
  uint64_t readBigEndian(size_t n, std::string_view field) {
    std::string_view b = take(n, field);
    uint64_t v = 0;
    for (char c : b) v = (v << 8) | static_cast<unsigned char>(c);
    return v;
  }
  [[noreturn]] void underflow(size_t wanted, std::string_view field) const;

  std::string_view bytes_;
  std::string_view what_;
  size_t pos_ = 0;
};

/// A malformed message on the wire. Fatal: the stream cannot be trusted past it, so the
/// pipeline stops without confirming anything beyond what is already durable.
class WireError : public Error {
 public:
  explicit WireError(std::string message)
      : Error(ErrorClass::Fatal, std::move(message),
              "the server sent bytes tidemark cannot decode; nothing past the last durable "
              "position was confirmed, so restarting resumes there. Report this with the log.") {}
};

}  // namespace tidemark
