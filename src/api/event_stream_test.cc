#include "api/event_stream.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <boost/json.hpp>
#include <map>
#include <string>

namespace hearth::api {
namespace {

std::uint32_t U32(std::string_view s, size_t at) {
  auto b = [&](size_t i) { return static_cast<std::uint32_t>(static_cast<unsigned char>(s[at + i])); };
  return b(0) << 24 | b(1) << 16 | b(2) << 8 | b(3);
}

std::string Hex(std::string_view s) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out.push_back(d[c >> 4]);
    out.push_back(d[c & 15]);
  }
  return out;
}

struct Decoded {
  std::map<std::string, std::string> headers;
  std::string payload;
};

// An independent decoder that checks every length and both CRCs (with zlib's crc32).
Decoded Decode(std::string_view m) {
  Decoded d;
  EXPECT_GE(m.size(), 16u);
  std::uint32_t total = U32(m, 0), hlen = U32(m, 4);
  EXPECT_EQ(total, m.size());
  EXPECT_EQ(U32(m, 8), crc32(0, reinterpret_cast<const Bytef*>(m.data()), 8));
  EXPECT_EQ(U32(m, total - 4), crc32(0, reinterpret_cast<const Bytef*>(m.data()), total - 4));
  size_t p = 12, end = 12 + hlen;
  while (p < end) {
    size_t nl = static_cast<unsigned char>(m[p++]);
    std::string name(m.substr(p, nl));
    p += nl;
    EXPECT_EQ(m[p++], 7);
    size_t vl = static_cast<size_t>(static_cast<unsigned char>(m[p])) << 8 | static_cast<unsigned char>(m[p + 1]);
    p += 2;
    d.headers[name] = std::string(m.substr(p, vl));
    p += vl;
  }
  EXPECT_EQ(p, end);
  d.payload = std::string(m.substr(end, total - 4 - end));
  return d;
}

TEST(Crc32Test, KnownVectorsAndZlib) {
  EXPECT_EQ(Crc32(""), 0u);
  EXPECT_EQ(Crc32("123456789"), 0xCBF43926u);
  std::string data;
  for (int i = 0; i < 1000; ++i) data.push_back(static_cast<char>(i * 7));
  EXPECT_EQ(Crc32(data), crc32(0, reinterpret_cast<const Bytef*>(data.data()), data.size()));
  // Running form: CRC of the whole == CRC continued over the second half.
  EXPECT_EQ(Crc32(std::string_view(data).substr(500), Crc32(std::string_view(data).substr(0, 500))),
            Crc32(data));
}

TEST(EventStreamTest, PayloadChunkMatchesBotocoreGolden) {
  // Produced independently and parsed by botocore.eventstream.EventStreamBuffer into
  // {':event-type': 'PayloadChunk', ':content-type': 'application/octet-stream',
  //  ':message-type': 'event'} with payload b'hello'.
  EXPECT_EQ(Hex(EncodePayloadChunk("hello")),
            "0000006f0000005af5fe871f0b3a6576656e742d7479706507000c5061796c6f61644368756e6b0d3a63"
            "6f6e74656e742d747970650700186170706c69636174696f6e2f6f637465742d73747265616d0d3a6d65"
            "73736167652d747970650700056576656e7468656c6c6f29e71260");
}

TEST(EventStreamTest, BinaryPayloadRoundTrips) {
  std::string bytes("\0\x01\xff\r\n", 5);
  bytes += std::string(70000, 'x');
  Decoded d = Decode(EncodePayloadChunk(bytes));
  EXPECT_EQ(d.payload, bytes);
  EXPECT_EQ(d.headers[":event-type"], "PayloadChunk");
  EXPECT_EQ(d.headers[":message-type"], "event");
}

TEST(EventStreamTest, InvokeCompleteOmitsEmptyFields) {
  Decoded ok = Decode(EncodeInvokeComplete("", "", ""));
  EXPECT_EQ(ok.headers[":event-type"], "InvokeComplete");
  EXPECT_EQ(ok.headers[":content-type"], "application/json");
  EXPECT_EQ(ok.payload, "{}");

  Decoded err = Decode(EncodeInvokeComplete("Custom.Error", R"({"errorMessage":"x"})", "TG9n"));
  auto v = boost::json::parse(err.payload).as_object();
  EXPECT_EQ(v["ErrorCode"].as_string(), "Custom.Error");
  EXPECT_EQ(v["ErrorDetails"].as_string(), R"({"errorMessage":"x"})");
  EXPECT_EQ(v["LogResult"].as_string(), "TG9n");
}

TEST(EventStreamTest, LongHeaderValuesAreTruncatedNotCorrupted) {
  std::string longv(70000, 'v');
  Decoded d = Decode(EncodeEventMessage({{"k", longv}}, "p"));
  EXPECT_EQ(d.headers["k"].size(), 65535u);
  EXPECT_EQ(d.payload, "p");
}

}  // namespace
}  // namespace hearth::api
