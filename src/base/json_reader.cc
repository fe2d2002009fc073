#include "base/json_reader.h"

#include <cctype>
#include <cstdint>

#include <fmt/format.h>

#include "base/error.h"

namespace tidemark::jsonr {

namespace {

[[noreturn]] void malformed(std::string_view, size_t pos, std::string_view what) {
  throw Error(ErrorClass::Poison, fmt::format("malformed JSON at offset {}: {}", pos, what));
}

size_t skipSpace(std::string_view t, size_t p) {
  while (p < t.size() && (t[p] == ' ' || t[p] == '\n' || t[p] == '\r' || t[p] == '\t')) ++p;
  return p;
}

// The offset after the string whose opening quote is at `p`; `escaped` says whether it has escapes.
size_t skipString(std::string_view t, size_t p, bool& escaped) {
  escaped = false;
  for (++p; p < t.size(); ++p) {
    if (t[p] == '\\') {
      escaped = true;
      ++p;
    } else if (t[p] == '"') {
      return p + 1;
    }
  }
  malformed(t, p, "a string is not closed");
}

size_t skipValue(std::string_view t, size_t p, Kind& kind) {
  p = skipSpace(t, p);
  if (p >= t.size()) malformed(t, p, "a value is missing");
  const char c = t[p];
  if (c == '"') {
    bool escaped = false;
    kind = Kind::String;
    return skipString(t, p, escaped);
  }
  if (c == '{' || c == '[') {
    kind = c == '{' ? Kind::Object : Kind::Array;
    int depth = 0;
    for (; p < t.size(); ++p) {
      const char d = t[p];
      if (d == '"') {
        bool escaped = false;
        p = skipString(t, p, escaped) - 1;
      } else if (d == '{' || d == '[') {
        ++depth;
      } else if (d == '}' || d == ']') {
        if (--depth == 0) return p + 1;
      }
    }
    malformed(t, p, "an object or array is not closed");
  }
  auto word = [&](std::string_view w, Kind k) {
    if (t.substr(p, w.size()) != w) malformed(t, p, "an unknown word");
    kind = k;
    return p + w.size();
  };
  if (c == 'n') return word("null", Kind::Null);
  if (c == 't') return word("true", Kind::Bool);
  if (c == 'f') return word("false", Kind::Bool);
  if (c == '-' || (c >= '0' && c <= '9')) {
    kind = Kind::Number;
    size_t e = p + 1;
    while (e < t.size() && (std::isdigit(static_cast<unsigned char>(t[e])) || t[e] == '.' || t[e] == 'e' ||
                            t[e] == 'E' || t[e] == '+' || t[e] == '-')) {
      ++e;
    }
    return e;
  }
  malformed(t, p, "an unexpected character");
}

void appendUtf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

uint32_t hex4(std::string_view s, size_t p) {
  if (p + 4 > s.size()) malformed(s, p, "a \\u escape is cut short");
  uint32_t v = 0;
  for (size_t i = p; i < p + 4; ++i) {
    const char c = s[i];
    v <<= 4;
    if (c >= '0' && c <= '9') {
      v |= static_cast<uint32_t>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      v |= static_cast<uint32_t>(c - 'a' + 10);
    } else if (c >= 'A' && c <= 'F') {
      v |= static_cast<uint32_t>(c - 'A' + 10);
    } else {
      malformed(s, i, "a \\u escape holds a non-hex digit");
    }
  }
  return v;
}

// Appends the characters of `s` (a string's inside, without its quotes), unescaped.
void unescape(std::string_view s, std::string& out) {
  out.reserve(out.size() + s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\') {
      out += s[i];
      continue;
    }
    if (++i >= s.size()) malformed(s, i, "an escape is cut short");
    switch (s[i]) {
      case '"': out += '"'; break;
      case '\\': out += '\\'; break;
      case '/': out += '/'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'u': {
        uint32_t cp = hex4(s, i + 1);
        i += 4;
        if (cp >= 0xD800 && cp < 0xDC00 && i + 6 < s.size() && s[i + 1] == '\\' && s[i + 2] == 'u') {
          const uint32_t low = hex4(s, i + 3);
          if (low >= 0xDC00 && low < 0xE000) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            i += 6;
          }
        }
        appendUtf8(cp, out);
        break;
      }
      default: malformed(s, i, "an unknown escape");
    }
  }
}

}  // namespace

Value parseValue(std::string_view text, size_t& end) {
  const size_t start = skipSpace(text, 0);
  Value v;
  end = skipValue(text, start, v.kind);
  v.raw = text.substr(start, end - start);
  return v;
}

Value document(std::string_view text) {
  const size_t start = skipSpace(text, 0);
  if (start >= text.size() || text[start] != '{') return Value{};
  return Value{Kind::Object, text.substr(start)};
}

std::string Value::string() const {
  std::string out;
  appendString(out);
  return out;
}

void Value::appendString(std::string& out) const {
  if (kind != Kind::String || raw.size() < 2) return;
  const std::string_view inside = raw.substr(1, raw.size() - 2);
  if (inside.find('\\') == std::string_view::npos) {
    out += inside;
  } else {
    unescape(inside, out);
  }
}

Members::Members(Value object) : text_(object.raw), pos_(1) {
  if (object.kind != Kind::Object) text_ = {};
}

bool Members::next() {
  if (text_.empty()) return false;
  size_t p = skipSpace(text_, pos_);
  if (p < text_.size() && text_[p] == ',') p = skipSpace(text_, p + 1);
  if (p >= text_.size() || text_[p] == '}') {
    text_ = {};
    return false;
  }
  if (text_[p] != '"') malformed(text_, p, "a key is not a string");
  const size_t key_end = skipString(text_, p, key_escaped_);
  key_ = text_.substr(p + 1, key_end - p - 2);
  p = skipSpace(text_, key_end);
  if (p >= text_.size() || text_[p] != ':') malformed(text_, p, "a ':' is missing after a key");
  const size_t start = skipSpace(text_, p + 1);
  const size_t end = skipValue(text_, start, value_.kind);
  value_.raw = text_.substr(start, end - start);
  pos_ = end;
  return true;
}

std::string Members::key() const {
  std::string out;
  if (key_escaped_) {
    unescape(key_, out);
  } else {
    out = key_;
  }
  return out;
}

Value member(Value object, std::string_view name) {
  for (Members m(object); m.next();) {
    if (!m.keyEscaped() ? m.rawKey() == name : m.key() == name) return m.value();
  }
  return Value{};
}

}  // namespace tidemark::jsonr
