// Decodes one pgoutput message (the payload of an XLogData frame) into a Message. Protocol
// only: no catalog, no policy. Every read is bounds-checked; a malformed message throws
// WireError naming the message type, the offset and the lengths involved.
#pragma once

#include <string_view>

#include "source/postgres/pgoutput_messages.h"

namespace tidemark::pgoutput {

class Decoder {
 public:
  /// Decodes `bytes`. Views in the result point into `bytes` and into this decoder's tuple
  /// buffers, so they are valid until the next call and while `bytes` lives.
  Message decode(std::string_view bytes);

 private:
  // Reused across messages so decoding a row allocates nothing once warmed up.
  TupleData old_tuple_;
  TupleData new_tuple_;
};

/// The protocol's name for a message type byte ("Insert" for 'I'), or "unknown".
std::string_view messageTypeName(char type);

}  // namespace tidemark::pgoutput
