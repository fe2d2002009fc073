// Standard base64 (RFC 4648, with padding), as Kafka Connect's JSON converter writes bytes.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace tidemark {

void appendBase64(std::string& out, std::string_view bytes);
std::string base64(std::string_view bytes);
/// The bytes `text` encodes, or nothing when it is not padded standard base64.
std::optional<std::string> decodeBase64(std::string_view text);

}  // namespace tidemark
