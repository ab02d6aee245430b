#pragma once
// Response streaming (reference section 1.6): what the environment hands a streamed response to,
// and the limits that apply to it. Free of I/O apart from the sink's interface.

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>

namespace hearth::runtimeapi {

// A streamed response is capped at 200 MiB.
inline constexpr std::uint64_t kMaxStreamedResponseBytes = 200ull << 20;
// The first 6 MiB go at full speed, the rest at most 2 MiB/s (Lambda's documented bandwidth; the
// reference emulator's defaults).
inline constexpr std::uint64_t kStreamBurstBytes = 6ull << 20;
inline constexpr std::uint64_t kStreamRateBytesPerSecond = 2ull << 20;

// How long to wait before relaying more, once `sent` bytes went out over `elapsed` since the
// stream began: zero within the burst or while under the rate.
std::chrono::microseconds StreamThrottleDelay(std::uint64_t sent, std::chrono::microseconds elapsed);

// Where the chunks of one streaming invocation go while they arrive: the caller of
// InvokeWithResponseStream. Implemented by the API; driven on the event loop by the environment,
// which awaits each Write (backpressure: a slow reader slows the runtime down).
class ResponseSink {
 public:
  virtual ~ResponseSink() = default;
  // The runtime's response starts; `content_type` is what it declared. Called once, before any
  // Write. False when the caller is gone (the rest of the response is then read and dropped).
  virtual boost::asio::awaitable<bool> Begin(const std::string& content_type) = 0;
  // One piece of the response, in order. False when the caller is gone.
  virtual boost::asio::awaitable<bool> Write(const std::string& bytes) = 0;
};

}  // namespace hearth::runtimeapi
