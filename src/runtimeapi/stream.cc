#include "runtimeapi/stream.h"

namespace hearth::runtimeapi {

std::chrono::microseconds StreamThrottleDelay(std::uint64_t sent, std::chrono::microseconds elapsed) {
  if (sent <= kStreamBurstBytes) return std::chrono::microseconds(0);
  // The bytes beyond the burst may take no less than this long.
  const std::uint64_t beyond = sent - kStreamBurstBytes;
  const auto earliest = std::chrono::microseconds(beyond * 1000000 / kStreamRateBytesPerSecond);
  return elapsed >= earliest ? std::chrono::microseconds(0) : earliest - elapsed;
}

}  // namespace hearth::runtimeapi
