// Builds protocol messages byte by byte for decoder tests (big-endian, as on the wire).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace tidemark::test {

class Bytes {
 public:
  Bytes& u8(uint8_t v) { s_ += static_cast<char>(v); return *this; }
  Bytes& ch(char c) { s_ += c; return *this; }
  Bytes& u16(uint16_t v) { return be(v, 2); }
  Bytes& u32(uint32_t v) { return be(v, 4); }
  Bytes& u64(uint64_t v) { return be(v, 8); }
  Bytes& cstr(std::string_view v) { s_ += v; s_ += '\0'; return *this; }
  Bytes& raw(std::string_view v) { s_ += v; return *this; }
  /// A text tuple column: 't', Int32 length, bytes.
  Bytes& text(std::string_view v) { ch('t'); u32(static_cast<uint32_t>(v.size())); return raw(v); }
  const std::string& str() const { return s_; }
  operator std::string_view() const { return s_; }

 private:
  Bytes& be(uint64_t v, int n) {
    for (int i = n - 1; i >= 0; --i) s_ += static_cast<char>((v >> (i * 8)) & 0xFF);
    return *this;
  }
  std::string s_;
};

/// A pgoutput Relation message for public.orders (relid 16384): "id" int4, part of the key,
/// and "note" text.
inline Bytes ordersRelationMessage() {
  Bytes b;
  b.ch('R').u32(16384).cstr("public").cstr("orders").ch('d').u16(2);
  b.u8(1).cstr("id").u32(23).u32(0xFFFFFFFF);
  b.u8(0).cstr("note").u32(25).u32(0xFFFFFFFF);
  return b;
}

}  // namespace tidemark::test
