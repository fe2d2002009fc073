#include "support/jsonl.h"

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace tidemark::test {

std::vector<nlohmann::json> readJsonLines(const std::filesystem::path& file) {
  std::vector<nlohmann::json> out;
  std::ifstream in(file, std::ios::binary);
  if (!in) return out;
  std::ostringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  size_t pos = 0;
  size_t lineNo = 0;
  while (pos < text.size()) {
    const size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) break;
    ++lineNo;
    std::string_view line(text.data() + pos, nl - pos);
    pos = nl + 1;
    if (line.empty()) continue;
    try {
      out.push_back(nlohmann::json::parse(line));
    } catch (const nlohmann::json::parse_error& e) {
      throw std::runtime_error(file.string() + ":" + std::to_string(lineNo) +
                               ": not JSON: " + e.what());
    }
  }
  return out;
}

std::map<std::string, std::vector<nlohmann::json>> readJsonLinesDir(
    const std::filesystem::path& dir) {
  std::map<std::string, std::vector<nlohmann::json>> out;
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return out;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (!entry.is_regular_file() || entry.path().extension() != ".jsonl") continue;
    out[entry.path().stem().string()] = readJsonLines(entry.path());
  }
  return out;
}

}  // namespace tidemark::test
