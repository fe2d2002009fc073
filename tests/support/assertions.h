// Assertions on text that say what they looked for and in what.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <sstream>
#include <string>

namespace tidemark::test {

/// EXPECT_TRUE(contains(text, "needle")): on failure, the needle and the text.
inline ::testing::AssertionResult contains(const std::string& haystack, const std::string& needle) {
  if (haystack.find(needle) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "does not contain \"" << needle << "\":\n" << haystack;
}

/// EXPECT_TRUE(sameRows(got, want)): on failure, how many rows differ and the first few of
/// them, rather than both tables whole.
template <typename Key, typename Row>
::testing::AssertionResult sameRows(const std::map<Key, Row>& got, const std::map<Key, Row>& want) {
  std::ostringstream out;
  size_t differ = 0;
  auto note = [&](const Key& key, const Row* g, const Row* w) {
    if (++differ > 5) return;
    out << "\n  key " << key << ": got " << (g ? ::testing::PrintToString(*g) : "nothing") << ", want "
        << (w ? ::testing::PrintToString(*w) : "nothing");
  };
  for (const auto& [key, row] : got) {
    auto it = want.find(key);
    if (it == want.end()) note(key, &row, nullptr);
    else if (it->second != row) note(key, &row, &it->second);
  }
  for (const auto& [key, row] : want) {
    if (got.find(key) == got.end()) note(key, nullptr, &row);
  }
  if (differ == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << differ << " of " << want.size() << " row(s) differ:" << out.str();
}

}  // namespace tidemark::test
