#pragma once
// Environment pools: warm reuse, the per-host cap, idle reaping, retirement on update/delete.
//
// An environment belongs to one exact configuration (function, version and RevisionId), so an
// update never serves a request from code or settings that are gone.
//
// Threading: loop-confined, like Environment.

#include <chrono>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "scheduler/environment.h"

namespace hearth::scheduler {

struct ManagerOptions {
  int max_environments = 256;                        // cap on live environments on this host
  std::chrono::milliseconds idle_timeout{300000};    // idle environments are shut down after it
};

struct ManagerStats {
  int live = 0;        // starting + idle + busy
  int idle = 0;
  int busy = 0;
  int64_t cold_starts = 0;
  int64_t warm_starts = 0;
  int64_t throttles = 0;
};

class EnvironmentManager {
 public:
  EnvironmentManager(EnvironmentContext ctx, ManagerOptions opts);

  // An environment for `cfg` and whether it is new (cold). Prefers the most recently used idle
  // one; otherwise starts one, evicting the longest-idle environment of another configuration
  // when the host is full. ResourceExhausted (Reason ConcurrentInvocationLimitExceeded) when
  // every slot is busy.
  struct Lease {
    EnvironmentPtr env;
    bool cold = false;
    // Set when the environment could not start: the error the invoke must return.
    std::optional<runtimeapi::InvocationResult> start_error;
  };
  boost::asio::awaitable<Result<Lease>> Acquire(const config::FunctionConfig& cfg,
                                                const std::filesystem::path& code_dir,
                                                const std::filesystem::path& opt_dir,
                                                const std::string& request_id);

  // Returns a leased environment: idle again, or gone if it broke or was retired meanwhile.
  void Release(const EnvironmentPtr& env);

  // Shuts down every environment of `function` (all versions): idle ones now, busy ones when
  // they are released.
  void Retire(const std::string& function);

  // Starts the idle reaper.
  void Start();
  // Shuts down everything (daemon exit).
  void ShutdownAll();

  ManagerStats stats() const;

 private:
  static std::string Key(const config::FunctionConfig& cfg);
  void Forget(const EnvironmentPtr& env);
  bool EvictOneIdle();
  boost::asio::awaitable<void> ReapLoop();

  EnvironmentContext ctx_;
  ManagerOptions opts_;
  std::map<std::string, std::vector<EnvironmentPtr>> idle_;  // by Key(); back = most recent
  std::map<std::string, EnvironmentPtr> live_;               // by environment id
  std::map<std::string, std::string> retired_;               // env id -> function, retire on release
  int64_t cold_starts_ = 0, warm_starts_ = 0, throttles_ = 0;
  std::unique_ptr<boost::asio::steady_timer> reap_timer_;
  bool stopping_ = false;
};

}  // namespace hearth::scheduler
