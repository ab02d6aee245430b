#include "api/event_stream.h"

#include <array>

#include <boost/json.hpp>

namespace hearth::api {

namespace {

constexpr std::array<std::uint32_t, 256> MakeCrcTable() {
  std::array<std::uint32_t, 256> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    t[i] = c;
  }
  return t;
}
constexpr std::array<std::uint32_t, 256> kCrcTable = MakeCrcTable();

void PutU32(std::string& out, std::uint32_t v) {
  out.push_back(static_cast<char>(v >> 24));
  out.push_back(static_cast<char>(v >> 16));
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}

}  // namespace

std::uint32_t Crc32(std::string_view data, std::uint32_t crc) {
  crc = ~crc;
  for (unsigned char b : data) crc = kCrcTable[(crc ^ b) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

std::string EncodeEventMessage(const std::vector<std::pair<std::string, std::string>>& headers,
                               std::string_view payload) {
  std::string hdr;
  for (const auto& [name, value] : headers) {
    std::string_view n = std::string_view(name).substr(0, 255);
    std::string_view v = std::string_view(value).substr(0, 65535);
    hdr.push_back(static_cast<char>(n.size()));
    hdr.append(n);
    hdr.push_back(static_cast<char>(7));  // string
    hdr.push_back(static_cast<char>(v.size() >> 8));
    hdr.push_back(static_cast<char>(v.size() & 0xFF));
    hdr.append(v);
  }
  const std::uint32_t total = static_cast<std::uint32_t>(12 + hdr.size() + payload.size() + 4);
  std::string out;
  out.reserve(total);
  PutU32(out, total);
  PutU32(out, static_cast<std::uint32_t>(hdr.size()));
  PutU32(out, Crc32(out));
  out.append(hdr);
  out.append(payload);
  PutU32(out, Crc32(out));
  return out;
}

std::string EncodePayloadChunk(std::string_view bytes) {
  return EncodeEventMessage({{":event-type", "PayloadChunk"},
                             {":content-type", "application/octet-stream"},
                             {":message-type", "event"}},
                            bytes);
}

std::string EncodeInvokeComplete(std::string_view error_code, std::string_view error_details,
                                 std::string_view log_result_base64) {
  boost::json::object o;
  if (!error_code.empty()) o["ErrorCode"] = error_code;
  if (!error_details.empty()) o["ErrorDetails"] = error_details;
  if (!log_result_base64.empty()) o["LogResult"] = log_result_base64;
  return EncodeEventMessage({{":event-type", "InvokeComplete"},
                             {":content-type", "application/json"},
                             {":message-type", "event"}},
                            boost::json::serialize(o));
}

}  // namespace hearth::api
