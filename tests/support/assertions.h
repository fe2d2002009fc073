// Assertions on text that say what they looked for and in what.
#pragma once

#include <gtest/gtest.h>

#include <string>

namespace tidemark::test {

/// EXPECT_TRUE(contains(text, "needle")): on failure, the needle and the text.
inline ::testing::AssertionResult contains(const std::string& haystack, const std::string& needle) {
  if (haystack.find(needle) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "does not contain \"" << needle << "\":\n" << haystack;
}

}  // namespace tidemark::test
