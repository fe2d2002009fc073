// A JSON reader for the hot path: walks a document once and hands out its values as views of
// the text (no tree, no allocation), for readers that need a few members of each of many
// small documents (a destination reading Debezium events). Strings are unescaped only when
// asked for. Malformed input is an Error(Poison) naming the offset.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace tidemark::jsonr {

enum class Kind { Null, Bool, Number, String, Array, Object };

/// One value: its kind and its whole text (a string with its quotes).
struct Value {
  Kind kind = Kind::Null;
  std::string_view raw;

  bool isNull() const { return kind == Kind::Null; }
  /// The string's characters, unescaped (Kind::String only).
  std::string string() const;
  /// Appends the string's characters, unescaped.
  void appendString(std::string& out) const;
};

/// The value at the start of `text` (after whitespace); `end` gets the offset after it.
Value parseValue(std::string_view text, size_t& end);
/// `text` as the object it holds, without reading it through first (Members checks it as it
/// goes): for a document read once. A Null value when it does not start with '{'.
Value document(std::string_view text);

/// The members of an object, in order: `for (auto it = Members(v); it.next();) it.key(), it.value()`.
class Members {
 public:
  explicit Members(Value object);
  /// Moves to the next member; false after the last.
  bool next();
  /// The member's key as written between its quotes (escapes kept), and whether it has any.
  std::string_view rawKey() const { return key_; }
  bool keyEscaped() const { return key_escaped_; }
  /// The key, unescaped.
  std::string key() const;
  const Value& value() const { return value_; }

 private:
  std::string_view text_;
  size_t pos_ = 0;
  std::string_view key_;
  bool key_escaped_ = false;
  Value value_;
};

/// The member `name` of `object` (the first of that name), or a Null value when it has none.
Value member(Value object, std::string_view name);

}  // namespace tidemark::jsonr
