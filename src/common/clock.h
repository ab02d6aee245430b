#pragma once
// Time as an injected dependency: production uses SystemClock, tests a FakeClock.

#include <chrono>
#include <cstdint>

namespace hearth {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock time (for LastModified, deadlines sent to runtimes).
  virtual std::chrono::system_clock::time_point Now() const = 0;
  // Monotonic time (for durations and timers).
  virtual std::chrono::steady_clock::time_point Monotonic() const = 0;
};

class SystemClock final : public Clock {
 public:
  std::chrono::system_clock::time_point Now() const override { return std::chrono::system_clock::now(); }
  std::chrono::steady_clock::time_point Monotonic() const override {
    return std::chrono::steady_clock::now();
  }
};

class FakeClock final : public Clock {
 public:
  std::chrono::system_clock::time_point Now() const override { return now_; }
  std::chrono::steady_clock::time_point Monotonic() const override { return mono_; }
  void Advance(std::chrono::nanoseconds d) {
    now_ += std::chrono::duration_cast<std::chrono::system_clock::duration>(d);
    mono_ += d;
  }
  void SetNow(std::chrono::system_clock::time_point t) { now_ = t; }

 private:
  std::chrono::system_clock::time_point now_{std::chrono::seconds(1700000000)};
  std::chrono::steady_clock::time_point mono_{};
};

// Milliseconds since the Unix epoch.
inline int64_t ToEpochMillis(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

}  // namespace hearth
