// CRC-32C (Castagnoli), the checksum of each change log record, as Kafka's record batches and
// ext4's metadata use it. SSE4.2's crc32 instruction where the CPU has it, a table otherwise.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace tidemark::changelog {

/// Extends `crc` (0 to start) with `data`.
uint32_t crc32c(uint32_t crc, const void* data, size_t size);

inline uint32_t crc32c(std::string_view data) { return crc32c(0, data.data(), data.size()); }

}  // namespace tidemark::changelog
