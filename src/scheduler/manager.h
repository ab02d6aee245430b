#pragma once
// Environment pools: admission (account and reserved concurrency, scaling rate, host memory and
// the per-host cap), warm reuse, provisioned concurrency, idle reaping, retirement on
// update/delete, and the counters of all of it.
//
// An environment belongs to one exact configuration (function, version and RevisionId), so an
// update never serves a request from code or settings that are gone.
//
// Threading: loop-confined, like Environment.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "scheduler/admission.h"
#include "scheduler/environment.h"

namespace hearth::scheduler {

struct ManagerOptions {
  int max_environments = 256;                        // cap on live environments on this host
  std::chrono::milliseconds idle_timeout{300000};    // idle environments are shut down after it
  // Account concurrency limit; the effective limit is min(this, max_environments).
  int account_concurrency = 1000;
  // Scaling rate: new environments per function per period (token bucket).
  int scaling_rate = 1000;
  std::chrono::milliseconds scaling_period{10000};
  MemoryPolicy memory;
  // How long an invoke waits for memory or an environment slot before 429.
  std::chrono::milliseconds admission_wait{1000};
  // Measured available memory in bytes; empty: /proc/meminfo MemAvailable (cached 10 ms).
  std::function<int64_t()> memory_available;
  // Init limit of provisioned environments: max(this, the function's timeout) (section 3.1).
  std::chrono::milliseconds provisioned_init_timeout{130000};
};

// Counters, kept on the loop (GET /hearth/v1/stats).
struct ManagerStats {
  // Environments by state. On-demand ones: starting (Init not over), idle, busy.
  int live = 0;  // every environment, provisioned included
  int starting = 0;
  int idle = 0;
  int busy = 0;
  // Provisioned ones, by the same states.
  int provisioned_starting = 0;
  int provisioned_idle = 0;
  int provisioned_busy = 0;
  int max_environments = 0;
  // Concurrency.
  int concurrent_executions = 0;
  int concurrent_executions_peak = 0;
  int account_limit = 0;
  int unreserved = 0;
  // Since start.
  int64_t cold_starts = 0;
  int64_t warm_starts = 0;              // every non-cold invocation, provisioned ones included
  int64_t provisioned_invocations = 0;  // served by a provisioned environment
  int64_t spillover_invocations = 0;    // provisioned config present, on-demand environment used
  int64_t throttles = 0;
  std::map<std::string, int64_t> throttles_by_reason;
  int64_t admission_waits = 0;          // invokes that waited for memory or a slot
  // Memory admission.
  int64_t memory_available_bytes = 0;
  int64_t memory_pending_bytes = 0;
  int64_t memory_reserve_bytes = 0;
};

// What a provisioned concurrency config has (GetProvisionedConcurrencyConfig).
struct ProvisionedStatus {
  int requested = 0;
  int allocated = 0;  // environments initialized and kept for it
  int available = 0;  // of those, ready for an invocation now or busy with one
  std::string status;  // IN_PROGRESS | READY | FAILED
  std::string reason;  // StatusReason when FAILED
};

class EnvironmentManager {
 public:
  EnvironmentManager(EnvironmentContext ctx, ManagerOptions opts);

  // An environment for `cfg` and whether it is new (cold).
  //
  // First admission (immediate, no queueing): the function's reserved concurrency, else the
  // unreserved pool of the account limit; ResourceExhausted with Reason
  // ReservedFunctionConcurrentInvocationLimitExceeded / ConcurrentInvocationLimitExceeded.
  // Then, for `qualifier` (the caller's version or alias) with provisioned concurrency, an idle
  // provisioned environment; else the most recently used idle one (warm); otherwise a new one
  // (cold): within the function's scaling rate (FunctionInvocationRateLimitExceeded), then a
  // slot under max_environments (evicting the longest-idle environment of another
  // configuration) and the host's memory, waiting up to admission_wait for them
  // (ConcurrentInvocationLimitExceeded / HostMemoryExhausted after it).
  // Every success holds one concurrent execution until Release (or, when the environment could
  // not start, until this returns).
  struct Lease {
    EnvironmentPtr env;
    bool cold = false;
    // Set when the environment could not start: the error the invoke must return.
    std::optional<runtimeapi::InvocationResult> start_error;
  };
  boost::asio::awaitable<Result<Lease>> Acquire(const config::FunctionConfig& cfg,
                                                const std::filesystem::path& code_dir,
                                                const std::filesystem::path& opt_dir,
                                                const std::string& request_id,
                                                const std::string& qualifier);
  // The same with no qualifier ($LATEST or a resolved version: no provisioned environments).
  boost::asio::awaitable<Result<Lease>> Acquire(const config::FunctionConfig& cfg,
                                                const std::filesystem::path& code_dir,
                                                const std::filesystem::path& opt_dir,
                                                const std::string& request_id);

  // Returns a leased environment: idle again, or gone if it broke or was retired meanwhile.
  // Ends its concurrent execution.
  void Release(const EnvironmentPtr& env);

  // Shuts down every on-demand environment of `function` (all versions): idle ones now, busy
  // ones when they are released. Provisioned ones stay (they run published versions).
  void Retire(const std::string& function);
  // DeleteFunction: Retire, drop every provisioned pool, reservation and learned estimate.
  void DropFunction(const std::string& function);

  // --- Concurrency settings (the API validates with Check*, stores, then sets) ---
  const ConcurrencyLimits& limits() const { return limits_; }
  Status CheckReserved(const std::string& function, int n) const {
    return limits_.CheckReserved(function, n);
  }
  void SetReserved(const std::string& function, std::optional<int> n) {
    limits_.SetReserved(function, n);
  }
  // Whether `function`'s provisioned configs may hold `requested` for `qualifier` (the others
  // unchanged).
  Status CheckProvisioned(const std::string& function, const std::string& qualifier,
                          int requested) const;

  // Provisioned concurrency for `qualifier` of `cfg.name`: keeps `requested` environments of
  // exactly `cfg` initialized ahead of traffic (AWS_LAMBDA_INITIALIZATION_TYPE=
  // provisioned-concurrency), never reaped. A new `cfg` (e.g. an alias moved to another version)
  // replaces the environments.
  void SetProvisioned(const std::string& qualifier, int requested,
                      const config::FunctionConfig& cfg, const std::filesystem::path& code_dir,
                      const std::filesystem::path& opt_dir);
  // Releases them (idle now, busy ones when their invocation ends).
  void DropProvisioned(const std::string& function, const std::string& qualifier);
  std::optional<ProvisionedStatus> provisioned_status(const std::string& function,
                                                      const std::string& qualifier) const;
  // The configuration a provisioned pool runs, nullptr when there is none.
  const config::FunctionConfig* provisioned_config(const std::string& function,
                                                   const std::string& qualifier) const;

  // Starts the idle reaper.
  void Start();
  // Shuts down everything (daemon exit).
  void ShutdownAll();

  ManagerStats stats() const;
  int max_environments() const { return opts_.max_environments; }

 private:
  struct ProvisionedPool {
    std::string function, qualifier;
    int requested = 0;
    config::FunctionConfig cfg;
    std::filesystem::path code_dir, opt_dir;
    std::set<std::string> members;       // environment ids: starting, idle or busy
    std::vector<EnvironmentPtr> idle;    // initialized, waiting; back = most recent
    bool failed = false;
    std::string reason;
  };

  static std::string Key(const config::FunctionConfig& cfg);
  static std::string PoolKey(const std::string& function, const std::string& qualifier);
  Status Throttle(Status st);
  void Forget(const EnvironmentPtr& env);
  bool EvictOneIdle();
  boost::asio::awaitable<void> ReapLoop();
  // Starts environments until the pool has `requested` members.
  void Fill(ProvisionedPool& pool);
  boost::asio::awaitable<void> RunProvisioned(Environment* env);
  // Detaches every member from `pool`: idle ones shut down now, busy ones on release, starting
  // ones when their Init ends.
  void Drain(ProvisionedPool& pool);
  void UpdateProvisionedTotal(const std::string& function);
  // Takes `env` for an invocation: waits for its runtime to park in `next` (bounded by the
  // function's timeout). False when it died or never parked (then it is gone).
  boost::asio::awaitable<bool> TakeIdle(const EnvironmentPtr& env,
                                        const config::FunctionConfig& cfg);

  EnvironmentContext ctx_;
  ManagerOptions opts_;
  ConcurrencyLimits limits_;
  MemoryGate memory_;
  std::map<std::string, TokenBucket, std::less<>> buckets_;  // by function name
  std::map<std::string, std::vector<EnvironmentPtr>> idle_;  // by Key(); back = most recent
  std::map<std::string, EnvironmentPtr> live_;               // by environment id
  std::map<std::string, std::string> retired_;               // env id -> function, retire on release
  std::map<std::string, std::string> leases_;                // env id -> function holding a slot
  std::map<std::string, int64_t> pending_memory_;            // env id -> bytes reserved at start
  std::map<std::string, std::unique_ptr<ProvisionedPool>> pools_;  // by PoolKey()
  std::map<std::string, std::string> provisioned_member_;    // env id -> PoolKey()
  int64_t cold_starts_ = 0, warm_starts_ = 0, provisioned_invocations_ = 0, spillovers_ = 0;
  int64_t throttles_ = 0, admission_waits_ = 0;
  int concurrent_peak_ = 0;
  std::map<std::string, int64_t> throttles_by_reason_;
  std::unique_ptr<boost::asio::steady_timer> reap_timer_;
  bool stopping_ = false;
};

}  // namespace hearth::scheduler
