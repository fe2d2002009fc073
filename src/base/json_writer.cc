#include "base/json_writer.h"

#include <charconv>

#include <fmt/format.h>

namespace tidemark {

void JsonWriter::integer(int64_t v) {
  separate();
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out_.append(buf, end);
}

void JsonWriter::unsignedInteger(uint64_t v) {
  separate();
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out_.append(buf, end);
}

namespace {

// Length of the valid UTF-8 sequence starting at s[i], or 0 if it is not valid.
size_t utf8SequenceLength(std::string_view s, size_t i) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = byte(i);
  size_t n;
  uint32_t cp;
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0) { n = 2; cp = c & 0x1F; }
  else if ((c & 0xF0) == 0xE0) { n = 3; cp = c & 0x0F; }
  else if ((c & 0xF8) == 0xF0) { n = 4; cp = c & 0x07; }
  else return 0;
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i + k) & 0x3F);
  }
  // Reject overlong forms, surrogates and values past U+10FFFF.
  if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000)) return 0;
  if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

[[noreturn]] void throwInvalid(std::string_view s, size_t offset) {
  // Up to 8 bytes from the offending one, in hex: enough to find it, and never raw bytes in a
  // message that goes to logs and status documents.
  std::string bytes;
  for (size_t k = offset; k < s.size() && k < offset + 8; ++k) {
    if (!bytes.empty()) bytes += ' ';
    bytes += fmt::format("{:02x}", static_cast<unsigned char>(s[k]));
  }
  throw InvalidUtf8(fmt::format("not valid UTF-8: byte {} of {} starts no valid sequence (bytes {}{})",
                                offset, s.size(), bytes, offset + 8 < s.size() ? " ..." : ""),
                    offset);
}

}  // namespace

size_t JsonWriter::firstInvalidUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    size_t n = utf8SequenceLength(s, i);
    if (n == 0) return i;
    i += n;
  }
  return std::string_view::npos;
}

void JsonWriter::appendQuoted(std::string& out, std::string_view s, Utf8Policy policy) {
  static const char* hex = "0123456789abcdef";
  const size_t start = out.size();
  out += '"';
  size_t run_start = 0;
  size_t i = 0;
  auto flush = [&](size_t upto) { out.append(s.data() + run_start, upto - run_start); };
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
      ++i;
      continue;
    }
    if (c >= 0x80) {
      size_t n = utf8SequenceLength(s, i);
      if (n != 0) {
        i += n;
        continue;
      }
      if (policy == Utf8Policy::Reject) {
        out.resize(start);
        throwInvalid(s, i);
      }
      flush(i);
      if (policy == Utf8Policy::Escape) {
        out += "\\udc";
        out += hex[c >> 4];
        out += hex[c & 0xF];
      } else {
        out += "\xEF\xBF\xBD";
      }
      run_start = ++i;
      continue;
    }
    flush(i);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        out += "\\u00";
        out += hex[c >> 4];
        out += hex[c & 0xF];
    }
    run_start = ++i;
  }
  flush(i);
  out += '"';
}

}  // namespace tidemark
