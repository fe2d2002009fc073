#include "source/postgres/position.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/error.h"

namespace tidemark::pg {

state::SourcePosition encodePosition(const Position& p) {
  nlohmann::ordered_json doc{{"system_identifier", p.system_identifier},
                             {"timeline", p.timeline},
                             {"slot", p.slot},
                             {"lsn", p.lsn.str()}};
  return state::SourcePosition{doc.dump(), p.lsn.str()};
}

Position decodePosition(const state::SourcePosition& stored) {
  Position p;
  try {
    auto doc = nlohmann::json::parse(stored.token);
    p.system_identifier = doc.at("system_identifier").get<std::string>();
    p.timeline = doc.at("timeline").get<uint32_t>();
    p.slot = doc.at("slot").get<std::string>();
    auto lsn = Lsn::parse(doc.at("lsn").get<std::string>());
    if (!lsn) throw std::invalid_argument("lsn is not an LSN");
    p.lsn = *lsn;
  } catch (const std::exception& e) {
    throw Error(ErrorClass::Fatal,
                fmt::format("the state store's position \"{}\" is not a PostgreSQL position ({})", stored.token,
                            e.what()),
                "the state directory belongs to another pipeline or was changed by hand; point state_dir at "
                "this pipeline's own, or move it aside and run again, which starts a new slot");
  }
  return p;
}

}  // namespace tidemark::pg
