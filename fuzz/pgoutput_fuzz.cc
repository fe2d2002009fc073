// libFuzzer target: any bytes as one pgoutput message. The decoder must accept them or throw
// tidemark's Error (a WireError naming the message and offset); never crash, read out of
// bounds or overflow (the sanitizers watch).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "base/error.h"
#include "source/postgres/pgoutput_decoder.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static tidemark::pgoutput::Decoder decoder;
  try {
    decoder.decode(std::string_view(reinterpret_cast<const char*>(data), size));
  } catch (const tidemark::Error&) {
  }
  return 0;
}
