// libFuzzer target: any bytes as one CopyData message of the replication stream, and an
// XLogData payload on into the pgoutput decoder, as the session reads them.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <variant>

#include "base/error.h"
#include "source/postgres/pgoutput_decoder.h"
#include "source/postgres/replication.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static tidemark::pgoutput::Decoder decoder;
  try {
    tidemark::pg::Frame frame =
        tidemark::pg::parseCopyData(std::string_view(reinterpret_cast<const char*>(data), size));
    if (auto* d = std::get_if<tidemark::pg::XLogData>(&frame)) decoder.decode(d->payload);
  } catch (const tidemark::Error&) {
  }
  return 0;
}
