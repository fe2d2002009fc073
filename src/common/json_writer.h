// A small, fast JSON writer that appends to a std::string. Events are written with it on the
// hot path (no DOM, no allocation beyond the output buffer). Numbers are passed as text where
// they come from PostgreSQL's text form, so they stay exact.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tidemark {

class JsonWriter {
 public:
  explicit JsonWriter(std::string& out) : out_(out) {}

  void beginObject() { separate(); out_ += '{'; first_.push_back(true); }
  void endObject() { out_ += '}'; first_.pop_back(); }
  void beginArray() { separate(); out_ += '['; first_.push_back(true); }
  void endArray() { out_ += ']'; first_.pop_back(); }

  /// Writes an object key; the next value call writes its value.
  void key(std::string_view k) {
    separate();
    appendQuoted(out_, k);
    out_ += ':';
    after_key_ = true;
  }

  void string(std::string_view s) { separate(); appendQuoted(out_, s); }
  void null() { separate(); out_ += "null"; }
  void boolean(bool b) { separate(); out_ += b ? "true" : "false"; }
  void integer(int64_t v);
  void unsignedInteger(uint64_t v);
  /// A JSON number given as text the caller has validated (digits, sign, '.', exponent).
  void rawNumber(std::string_view text) { separate(); out_ += text; }
  /// Already-encoded JSON (an object or value built elsewhere).
  void rawJson(std::string_view json) { separate(); out_ += json; }

  /// Appends s as a JSON string literal (quotes included) with RFC 8259 escaping. Bytes that
  /// are not valid UTF-8 are replaced by U+FFFD so the output is always valid JSON.
  static void appendQuoted(std::string& out, std::string_view s);

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
  std::vector<bool> first_;
  bool after_key_ = false;
};

}  // namespace tidemark
