// Standard base64 (RFC 4648, with padding), as Kafka Connect's JSON converter writes bytes.
#pragma once

#include <string>
#include <string_view>

namespace tidemark {

void appendBase64(std::string& out, std::string_view bytes);
std::string base64(std::string_view bytes);

}  // namespace tidemark
