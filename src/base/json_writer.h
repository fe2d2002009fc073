// A small, fast JSON writer that appends to a std::string. Events are written with it on the
// hot path (no DOM, no allocation beyond the output buffer). Numbers are passed as text where
// they come from PostgreSQL's text form, so they stay exact.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace tidemark {

/// What a string with bytes that are not valid UTF-8 becomes. Only UTF-8 is valid JSON text.
enum class Utf8Policy : uint8_t {
  /// U+FFFD for each invalid byte: for tidemark's own documents (status, messages), never for
  /// captured data, since it loses the bytes.
  Replace,
  /// InvalidUtf8 is thrown: the value cannot be written as it is.
  Reject,
  /// Each invalid byte 0xXX becomes the escape \udcXX, a lone surrogate that valid UTF-8 never
  /// holds (Python's "surrogateescape"), so the original bytes can be recovered exactly.
  Escape,
};

/// A string holds bytes that are not valid UTF-8 (under Utf8Policy::Reject). The message shows
/// the offending bytes in hex, never raw.
class InvalidUtf8 : public Error {
 public:
  InvalidUtf8(std::string message, size_t offset)
      : Error(ErrorClass::Poison, std::move(message)), offset_(offset) {}
  size_t offset() const { return offset_; }

 private:
  size_t offset_;
};

class JsonWriter {
 public:
  explicit JsonWriter(std::string& out, Utf8Policy policy = Utf8Policy::Replace)
      : out_(out), policy_(policy) {}

  void beginObject() { separate(); out_ += '{'; first_.push_back(true); }
  void endObject() { out_ += '}'; first_.pop_back(); }
  void beginArray() { separate(); out_ += '['; first_.push_back(true); }
  void endArray() { out_ += ']'; first_.pop_back(); }

  /// Writes an object key; the next value call writes its value.
  void key(std::string_view k) {
    separate();
    appendQuoted(out_, k, policy_);
    out_ += ':';
    after_key_ = true;
  }

  void string(std::string_view s) { separate(); appendQuoted(out_, s, policy_); }
  void null() { separate(); out_ += "null"; }
  void boolean(bool b) { separate(); out_ += b ? "true" : "false"; }
  void integer(int64_t v);
  void unsignedInteger(uint64_t v);
  /// A JSON number given as text the caller has validated (digits, sign, '.', exponent).
  void rawNumber(std::string_view text) { separate(); out_ += text; }
  Utf8Policy policy() const { return policy_; }

  /// Already-encoded JSON (an object or value built elsewhere).
  void rawJson(std::string_view json) { separate(); out_ += json; }

  /// Appends s as a JSON string literal (quotes included) with RFC 8259 escaping. Bytes that
  /// are not valid UTF-8 are handled by `policy`, so the output is always valid JSON. Under
  /// Reject, `out` is left as it was when InvalidUtf8 is thrown.
  static void appendQuoted(std::string& out, std::string_view s,
                           Utf8Policy policy = Utf8Policy::Replace);

  /// The offset of the first byte of `s` that does not start a valid UTF-8 sequence, or
  /// npos when `s` is valid UTF-8.
  static size_t firstInvalidUtf8(std::string_view s);

 private:
  void separate() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (!first_.empty()) {
      if (!first_.back()) out_ += ',';
      first_.back() = false;
    }
  }

  std::string& out_;
  Utf8Policy policy_;
  std::vector<bool> first_;
  bool after_key_ = false;
};

}  // namespace tidemark
