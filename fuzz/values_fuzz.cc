// libFuzzer target: value rendering. The first byte picks the kind (and, for arrays, the
// element's), the second the type modifier, the rest is the text as pgoutput would send it.
// Text a renderer accepts must come out as valid JSON; text it refuses must be an Error.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/json_writer.h"
#include "source/postgres/values.h"

using tidemark::events::TypeInfo;
using tidemark::events::ValueKind;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  constexpr int kKinds = static_cast<int>(ValueKind::Array) + 1;
  const auto kind = static_cast<ValueKind>(data[0] % kKinds);
  const auto element = static_cast<ValueKind>((data[0] / kKinds) % static_cast<int>(ValueKind::Array));
  const int32_t typmod = data[1] == 0xFF ? -1 : data[1] % 100;
  const std::string_view text(reinterpret_cast<const char*>(data + 2), size - 2);

  auto type = std::make_shared<TypeInfo>();
  type->kind = kind;
  if (kind == ValueKind::Array) {
    auto inner = std::make_shared<TypeInfo>();
    inner->kind = element;
    type->element = inner;
  }
  const auto info = tidemark::events::withTypmod(type, typmod);
  std::string out;
  try {
    tidemark::JsonWriter writer(out);
    tidemark::events::renderValue(*info, text, writer);
  } catch (const tidemark::Error&) {
    return 0;
  }
  if (!nlohmann::json::accept(out)) std::abort();  // accepted text must render as JSON
  return 0;
}
