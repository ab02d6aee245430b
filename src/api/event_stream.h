#pragma once
// The AWS event stream binary framing (`application/vnd.amazon.eventstream`) used by
// InvokeWithResponseStream, encoding side only. One message:
//
//   prelude   total length (u32 BE) | headers length (u32 BE) | CRC32 of those 8 bytes (u32 BE)
//   headers   per header: name length (u8) | name | type (u8, 7 = string) | value length (u16 BE) | value
//   payload   bytes
//   trailer   CRC32 of everything before it (u32 BE)
//
// CRC32 is the IEEE/zlib polynomial (reflected 0xEDB88320). Pure functions, no I/O.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hearth::api {

// CRC-32 (IEEE 802.3, as zlib's crc32): `crc` is the running value (0 to start).
std::uint32_t Crc32(std::string_view data, std::uint32_t crc = 0);

// One message with string-typed headers, in the given order. Names must be < 256 bytes and
// values < 65536 bytes (longer ones are truncated).
std::string EncodeEventMessage(const std::vector<std::pair<std::string, std::string>>& headers,
                               std::string_view payload);

// InvokeWithResponseStream events (`:message-type` event).
// PayloadChunk: the raw bytes of one piece of the function's response.
std::string EncodePayloadChunk(std::string_view bytes);
// InvokeComplete: JSON {"ErrorCode","ErrorDetails","LogResult"}, each omitted when empty.
std::string EncodeInvokeComplete(std::string_view error_code, std::string_view error_details,
                                 std::string_view log_result_base64);

}  // namespace hearth::api
