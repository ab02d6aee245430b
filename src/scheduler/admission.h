#pragma once
// Admission policy, free of I/O and of the event loop (lambda-reference.md section 6):
//
//   ConcurrencyLimits  the account limit and reserved concurrency per function: who may start
//                      one more concurrent execution, answered at once (no queueing).
//   TokenBucket        the per-function scaling rate (new environments per period, refilled
//                      continuously, never banked beyond the bucket).
//   MemoryGate         whether the host's memory can hold one more environment, from a measured
//                      source of available memory and a per-function estimate of an environment's
//                      real footprint learned from earlier environments.
//
// Everything the policy depends on (time, available memory) is injected, so it is unit-tested
// with fakes (admission_test.cc). The EnvironmentManager owns one of each and calls them on the
// event loop.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace hearth::scheduler {

// Throttling reasons (the TooManyRequestsException `Reason`).
inline constexpr const char* kReasonAccountLimit = "ConcurrentInvocationLimitExceeded";
inline constexpr const char* kReasonReservedLimit =
    "ReservedFunctionConcurrentInvocationLimitExceeded";
// The per-function scaling rate (new environments per period) is exhausted.
inline constexpr const char* kReasonScalingRate = "FunctionInvocationRateLimitExceeded";
// Hearth's own: the host has no memory for one more environment (after a bounded wait).
inline constexpr const char* kReasonHostMemory = "HostMemoryExhausted";

// Lambda: at least this much of the account limit stays unreserved.
inline constexpr int kMinimumUnreserved = 100;

// The account concurrency limit and each function's reserved concurrency.
//
// A function's guarantee G(f) is its reserved concurrency when set, otherwise the provisioned
// concurrency allocated to its versions and aliases. The unreserved pool is
//   limit - sum over functions of G(f).
// A function with reserved concurrency R runs at most R executions at once (all versions and
// aliases together) and never draws on the pool; R = 0 disables it. A function without it runs
// up to its provisioned total on its own slots and beyond that on the pool, shared with every
// other function without reserved concurrency.
class ConcurrencyLimits {
 public:
  explicit ConcurrencyLimits(int account_limit) : limit_(account_limit) {}

  int account_limit() const { return limit_; }
  // limit - sum of guarantees (GetAccountSettings' UnreservedConcurrentExecutions).
  int unreserved() const { return limit_ - guaranteed_; }

  std::optional<int> reserved(std::string_view function) const;
  int provisioned(std::string_view function) const;

  // Whether `function` may reserve `n` (>= 0): InvalidArgument with Lambda's message when the
  // pool would fall below kMinimumUnreserved, or when n is below the function's provisioned total.
  Status CheckReserved(std::string_view function, int n) const;
  void SetReserved(const std::string& function, std::optional<int> n);

  // Whether `function`'s provisioned total may become `total`: within its reserved concurrency
  // when that is set, otherwise within the pool minus kMinimumUnreserved.
  Status CheckProvisioned(std::string_view function, int total) const;
  void SetProvisioned(const std::string& function, int total);

  // Drops the function's reservation and provisioned total (executions in flight still end
  // through Release).
  void Forget(std::string_view function);

  // One more concurrent execution of `function`, or ResourceExhausted("Rate Exceeded.", reason)
  // with kReasonReservedLimit or kReasonAccountLimit. Every success is paired with a Release.
  Status TryAcquire(const std::string& function);
  void Release(const std::string& function);

  int in_flight() const { return total_in_flight_; }
  int in_flight(std::string_view function) const;
  int pool_in_use() const { return pool_in_use_; }

 private:
  struct Entry {
    std::optional<int> reserved;
    int provisioned = 0;
    int in_flight = 0;
  };
  static int Guarantee(const Entry& e) { return e.reserved ? *e.reserved : e.provisioned; }
  static int PoolUse(const Entry& e) {
    if (e.reserved) return 0;
    return e.in_flight > e.provisioned ? e.in_flight - e.provisioned : 0;
  }
  void Recompute();
  void Prune(std::map<std::string, Entry, std::less<>>::iterator it);

  int limit_;
  int guaranteed_ = 0;        // sum of Guarantee()
  int pool_in_use_ = 0;       // sum of PoolUse()
  int total_in_flight_ = 0;
  std::map<std::string, Entry, std::less<>> entries_;
};

// Continuous-refill token bucket: `capacity` tokens, refilled at capacity/period, never above
// capacity (an idle function cannot bank more than one bucket).
class TokenBucket {
 public:
  TokenBucket(double capacity, std::chrono::nanoseconds period,
              std::chrono::steady_clock::time_point now)
      : capacity_(capacity), period_(period), tokens_(capacity), last_(now) {}

  // Takes one token if there is one.
  bool TryTake(std::chrono::steady_clock::time_point now);
  // Tokens at `now`.
  double tokens(std::chrono::steady_clock::time_point now) const;
  // Full again at `now` (then it can be dropped).
  bool Full(std::chrono::steady_clock::time_point now) const { return tokens(now) >= capacity_; }

 private:
  double capacity_;
  std::chrono::nanoseconds period_;
  double tokens_;
  std::chrono::steady_clock::time_point last_;
};

struct MemoryPolicy {
  // Never let available memory fall below this.
  int64_t reserve_bytes = int64_t{512} << 20;
  // An environment's footprint until one of its function has been measured.
  int64_t default_estimate_bytes = int64_t{16} << 20;
};

// Whether one more environment fits in the host's memory.
//
// available() is measured memory (MemAvailable). Environments that are starting have not
// allocated yet, so each start reserves its estimate until the manager calls Unreserve (after
// its first invocation, by when the footprint shows in available()). An environment fits when
//   available - pending - reserve >= estimate(function, memory_mb)
// where estimate is the largest peak measured for the function's environments (Learn), else the
// default, and never more than its configured MemorySize (the cgroup limit).
class MemoryGate {
 public:
  using AvailableSource = std::function<int64_t()>;
  MemoryGate(AvailableSource available, MemoryPolicy policy)
      : available_(std::move(available)), policy_(policy) {}

  int64_t Estimate(std::string_view function, int memory_mb) const;
  // Records a measured peak of one of `function`'s environments.
  void Learn(const std::string& function, int64_t peak_bytes);
  void Forget(std::string_view function);

  // Reserves the estimate when it fits; returns the bytes reserved (>0), or 0 when it does not.
  int64_t TryReserve(std::string_view function, int memory_mb);
  void Unreserve(int64_t bytes);

  int64_t pending() const { return pending_; }
  int64_t available() const { return available_(); }
  const MemoryPolicy& policy() const { return policy_; }

 private:
  AvailableSource available_;
  MemoryPolicy policy_;
  int64_t pending_ = 0;
  std::map<std::string, int64_t, std::less<>> learned_;
};

}  // namespace hearth::scheduler
