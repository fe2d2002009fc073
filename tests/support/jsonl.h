// Reading what a jsonl sink wrote: one JSON document per line.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace tidemark::test {

/// All complete lines of `file`, parsed. A missing file reads as no lines, because a sink
/// creates a topic's file only when its first event arrives. A last line without its newline
/// is still being written by a running sink and is left out. Throws std::runtime_error naming
/// the file and line when a complete line is not JSON.
std::vector<nlohmann::json> readJsonLines(const std::filesystem::path& file);

/// Every `<topic>.jsonl` file in `dir`, read with readJsonLines, by topic. Empty when `dir`
/// does not exist.
std::map<std::string, std::vector<nlohmann::json>> readJsonLinesDir(const std::filesystem::path& dir);

}  // namespace tidemark::test
