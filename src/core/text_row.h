// A row's values as the source database prints them, packed for a record header of the change
// log (tidemark.text): what a destination of the source's own kind writes as it is, with no
// trip through Debezium's rendering (exact, and cheaper than reading the event's JSON).
//
// Layout: the event's op (c, u, d, r), then one cell per column of the row the event is about
// (`after`; `before` for a delete), in the table's column order:
//   'n'                               NULL, or a column a key-only image does not carry
//   'u'                               not resent by the source (an unchanged TOASTed value)
//   'j' <u32 offset> <u32 length>     the text is these bytes of the event's value (JSON):
//                                     where the value's JSON is the text itself (a number) or
//                                     the text in quotes with nothing escaped, which is most
//                                     values, so the log does not hold them twice
//   'v' <u32 length> <bytes>          the text, where it differs from the JSON
// Integers are little-endian.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/change.h"

namespace tidemark::core {

namespace text_row_detail {
inline void put32(std::string& out, uint32_t n) {
  const char b[4] = {static_cast<char>(n & 0xFF), static_cast<char>((n >> 8) & 0xFF),
                     static_cast<char>((n >> 16) & 0xFF), static_cast<char>(n >> 24)};
  out.append(b, 4);
}
inline bool get32(std::string_view& in, uint32_t& n) {
  if (in.size() < 4) return false;
  const auto* b = reinterpret_cast<const unsigned char*>(in.data());
  n = b[0] | (b[1] << 8) | (b[2] << 16) | (static_cast<uint32_t>(b[3]) << 24);
  in.remove_prefix(4);
  return true;
}
}  // namespace text_row_detail

/// Appends `row` (which must have a text for every Present value) to `out`. `offsets` says
/// where each value's JSON (Value::json) begins in the event's value; empty: nowhere (every
/// text is then written out).
inline void appendTextRow(char op, const Row& row, const std::vector<uint32_t>& offsets, std::string& out) {
  using text_row_detail::put32;
  out += op;
  for (size_t i = 0; i < row.size(); ++i) {
    const Value& v = row[i];
    switch (v.state) {
      case Value::State::Null:
        out += 'n';
        break;
      case Value::State::Unchanged:
        out += 'u';
        break;
      case Value::State::Present: {
        const auto n = static_cast<uint32_t>(v.text.size());
        if (i < offsets.size()) {
          if (v.json == v.text) {
            out += 'j';
            put32(out, offsets[i]);
            put32(out, n);
            break;
          }
          if (v.json.size() == v.text.size() + 2 && v.json.front() == '"' && v.json.back() == '"' &&
              v.json.substr(1, n) == v.text) {
            out += 'j';
            put32(out, offsets[i] + 1);
            put32(out, n);
            break;
          }
        }
        out += 'v';
        put32(out, n);
        out += v.text;
        break;
      }
    }
  }
}

/// Reads a packed row cell by cell, against the event's value its 'j' cells point into. A
/// malformed one (not written by appendTextRow for this value) makes op() or next() return
/// nullopt / false with `malformed()` set, never a read past either.
class TextRowReader {
 public:
  TextRowReader(std::string_view packed, std::string_view event_value) : rest_(packed), value_(event_value) {}

  std::optional<char> op() {
    if (rest_.empty()) return fail();
    const char c = rest_.front();
    rest_.remove_prefix(1);
    return c;
  }
  struct Cell {
    Value::State state = Value::State::Null;
    std::string_view text;
  };
  /// The next column's cell; false at the end or when malformed.
  bool next(Cell& cell) {
    using text_row_detail::get32;
    if (rest_.empty()) return false;
    const char tag = rest_.front();
    rest_.remove_prefix(1);
    cell.text = {};
    uint32_t at = 0;
    uint32_t n = 0;
    switch (tag) {
      case 'n':
        cell.state = Value::State::Null;
        return true;
      case 'u':
        cell.state = Value::State::Unchanged;
        return true;
      case 'j':
        if (!get32(rest_, at) || !get32(rest_, n) || at > value_.size() || value_.size() - at < n) break;
        cell.state = Value::State::Present;
        cell.text = value_.substr(at, n);
        return true;
      case 'v':
        if (!get32(rest_, n) || rest_.size() < n) break;
        cell.state = Value::State::Present;
        cell.text = rest_.substr(0, n);
        rest_.remove_prefix(n);
        return true;
      default:
        break;
    }
    fail();
    return false;
  }
  bool malformed() const { return malformed_; }

 private:
  std::nullopt_t fail() {
    malformed_ = true;
    rest_ = {};
    return std::nullopt;
  }
  std::string_view rest_;
  std::string_view value_;
  bool malformed_ = false;
};

}  // namespace tidemark::core
