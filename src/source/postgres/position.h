// The PostgreSQL source's position, and its opaque form in the state store
// (state::SourcePosition): which cluster, timeline and slot, and the LSN to resume from.
#pragma once

#include <cstdint>
#include <string>

#include "base/lsn.h"
#include "core/offset_store.h"

namespace tidemark::pg {

struct Position {
  std::string system_identifier;
  uint32_t timeline = 0;
  std::string slot;
  Lsn lsn;
};

/// {"system_identifier":..,"timeline":..,"slot":..,"lsn":"0/16B3748"}, readable as the LSN.
state::SourcePosition encodePosition(const Position& position);

/// The position a token holds. Throws Error(Fatal) naming the state store when the token is
/// not one encodePosition wrote (a store of another source kind, or changed by hand).
Position decodePosition(const state::SourcePosition& stored);

}  // namespace tidemark::pg
