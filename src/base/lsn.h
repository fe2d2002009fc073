// Strong types for PostgreSQL positions and identifiers, so an LSN is never mixed up with an
// XID, a byte count or a relation id.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tidemark {

/// A WAL position (XLogRecPtr). Printed and parsed as PostgreSQL does: "16/B374D848".
class Lsn {
 public:
  constexpr Lsn() = default;
  constexpr explicit Lsn(uint64_t value) : value_(value) {}

  static constexpr Lsn invalid() { return Lsn{}; }
  /// Parses "X/Y" (hex, as pg_lsn). Returns nothing for any other text.
  static std::optional<Lsn> parse(std::string_view text);

  constexpr uint64_t value() const { return value_; }
  constexpr bool valid() const { return value_ != 0; }
  std::string str() const;

  constexpr auto operator<=>(const Lsn&) const = default;

 private:
  uint64_t value_ = 0;
};

/// A transaction id as pgoutput sends it (32-bit).
struct Xid {
  uint32_t value = 0;
  constexpr auto operator<=>(const Xid&) const = default;
};

/// A relation's OID as pgoutput names it.
struct RelationId {
  uint32_t value = 0;
  constexpr auto operator<=>(const RelationId&) const = default;
};

/// A type's OID.
using TypeOid = uint32_t;

}  // namespace tidemark

template <>
struct std::hash<tidemark::RelationId> {
  size_t operator()(const tidemark::RelationId& r) const noexcept { return r.value; }
};
