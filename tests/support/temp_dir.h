// A directory under $TMPDIR (or /tmp) that exists for the lifetime of the object. Tests put
// their configuration, state and sink output here so that runs never share files.
#pragma once

#include <filesystem>
#include <string>

namespace tidemark::test {

class TempDir {
 public:
  /// Creates a fresh, empty directory whose name starts with `prefix`.
  explicit TempDir(const std::string& prefix = "tidemark-test");
  ~TempDir();

  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::filesystem::path& p) const { return path_ / p; }

  /// Leaves the directory on disk when this object goes away, so a failed test can be
  /// inspected afterwards.
  void keep() { keep_ = true; }

 private:
  std::filesystem::path path_;
  bool keep_ = false;
};

}  // namespace tidemark::test
