// Reading log text as records: a record starts on a line that begins with a timestamp
// ("2026-..."; both tidemark's stderr and the test server's log_line_prefix start with one)
// and goes on over the lines that follow it without one (a hint, a multi-line SQL statement).
#pragma once

#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>
#include <vector>

namespace tidemark::test {

/// True when `line` starts with "dddd-dd-dd".
inline bool startsWithDate(std::string_view line) {
  if (line.size() < 10) return false;
  for (size_t i = 0; i < 10; ++i) {
    const bool digit = std::isdigit(static_cast<unsigned char>(line[i])) != 0;
    if ((i == 4 || i == 7) ? line[i] != '-' : !digit) return false;
  }
  return true;
}

/// `text` split into records (see above); a record keeps its newlines, not the last one.
inline std::vector<std::string> logRecords(const std::string& text) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    std::string_view line(text.data() + pos, nl - pos);
    if (out.empty() || startsWithDate(line)) {
      out.emplace_back(line);
    } else {
      out.back() += "\n";
      out.back() += line;
    }
    pos = nl + 1;
  }
  return out;
}

inline std::string lowerCase(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

/// The records of `text` that contain every one of `needles` (case-insensitive).
inline std::vector<std::string> recordsWith(const std::string& text,
                                            const std::vector<std::string>& needles) {
  std::vector<std::string> out;
  for (auto& r : logRecords(text)) {
    const std::string lower = lowerCase(r);
    bool all = true;
    for (const auto& n : needles) all = all && lower.find(lowerCase(n)) != std::string::npos;
    if (all) out.push_back(r);
  }
  return out;
}

}  // namespace tidemark::test
