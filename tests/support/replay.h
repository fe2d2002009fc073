// Tables of the shape (id int PRIMARY KEY, v int, note text), as their change events leave
// them and as the source holds them: what snapshot tests compare (with sameRows).
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/pg_cluster.h"

namespace tidemark::test {

/// Reads, creates and updates set a row, deletes remove it. Each row as "v|note".
inline std::map<int, std::string> replayIdVNote(const std::vector<nlohmann::json>& events) {
  std::map<int, std::string> rows;
  for (const nlohmann::json& e : events) {
    if (e["op"] == "d") {
      rows.erase(e["before"]["id"].get<int>());
      continue;
    }
    const nlohmann::json& a = e["after"];
    rows[a["id"].get<int>()] = std::to_string(a["v"].get<int>()) + "|" + a["note"].get<std::string>();
  }
  return rows;
}

/// The rows of SELECT id, v, note, each as "v|note".
inline std::map<int, std::string> idVNoteRows(const PgRows& result) {
  std::map<int, std::string> rows;
  for (const auto& r : result) rows[std::stoi(*r[0])] = *r[1] + "|" + *r[2];
  return rows;
}

}  // namespace tidemark::test
