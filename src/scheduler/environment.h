#pragma once
// One execution environment: a runtime process started by the launcher, its own Runtime API
// server, its log capture, and the Init -> Invoke -> Shutdown lifecycle of section 3.1.
//
// Threading: every member function and coroutine runs on the event loop's executor (`ctx.loop`);
// only the launch itself runs on the worker pool. Environments are shared_ptr-owned: the
// coroutines serving the Runtime API keep theirs alive until the runtime is gone.

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include "common/clock.h"
#include "common/notifier.h"
#include "common/status.h"
#include "config/function_config.h"
#include "http/server.h"
#include "runtimeapi/invocation.h"
#include "runtimeapi/state.h"
#include "sandbox/launcher.h"
#include "telemetry/log_sink.h"

namespace hearth::scheduler {

// The world an environment lives in (owned by the daemon, outlives every environment).
struct EnvironmentContext {
  boost::asio::any_io_executor loop;
  boost::asio::thread_pool* workers = nullptr;
  sandbox::Launcher* launcher = nullptr;
  telemetry::LogSink* logs = nullptr;
  const Clock* clock = nullptr;
  std::string region = "us-east-1";
  std::chrono::milliseconds init_timeout{10000};
  std::chrono::milliseconds shutdown_grace{500};
  // An idle environment whose runtime is parked in `next` is frozen (no CPU for background work
  // left running after a response, as Lambda) after this long, and thawed by its next invoke.
  // 0: never. Only launchers that can freeze (the sandbox) do anything.
  std::chrono::milliseconds freeze_idle{0};
  // Managed runtimes, one directory per runtime name (see scheduler/runtimes.h).
  std::filesystem::path runtimes_dir;
};

// What one invocation produced, for the Invoke API.
struct InvokeOutcome {
  runtimeapi::InvocationResult result;
  std::string executed_version;
  std::string log_tail;  // the invocation's last 4 KB of log (START .. REPORT)
};

class Environment : public std::enable_shared_from_this<Environment> {
 public:
  enum class State { kNew, kStarting, kIdle, kBusy, kDead };

  // `opt_dir`: the function's assembled layers, mounted at /opt (empty: an empty /opt).
  Environment(const EnvironmentContext& ctx, config::FunctionConfig cfg,
              std::filesystem::path code_dir, std::filesystem::path opt_dir = {});
  ~Environment();
  Environment(const Environment&) = delete;
  Environment& operator=(const Environment&) = delete;

  // Starts the runtime process and serves its Runtime API. On failure the environment is dead and
  // the returned result is the function error the first invoke must see (e.g.
  // Runtime.InvalidEntrypoint); nullopt on success. Init continues in the background; Invoke
  // waits for it.
  boost::asio::awaitable<std::optional<runtimeapi::InvocationResult>> Start(const std::string& request_id);

  // Runs one invocation to completion (response, error, timeout or crash).
  // REQUIRES: Start() succeeded and no other Invoke is running on this environment.
  boost::asio::awaitable<InvokeOutcome> Invoke(runtimeapi::Invocation&& inv);

  // SIGTERM, then SIGKILL after the grace period; the environment is dead afterwards.
  void Shutdown();

  const std::string& id() const { return id_; }
  const config::FunctionConfig& config() const { return cfg_; }
  State state() const { return state_; }
  void set_state(State s) { state_ = s; }
  bool dead() const { return dead_; }
  // The runtime is parked in `next`: the previous invocation is over as Lambda counts it, and the
  // environment may take the next one.
  bool parked() const { return parked_; }
  // Frozen while idle (see EnvironmentContext::freeze_idle).
  bool frozen() const { return frozen_; }
  // Suspends until parked(), dead(), or `deadline`.
  boost::asio::awaitable<void> WaitParked(std::chrono::steady_clock::time_point deadline);
  std::chrono::steady_clock::time_point last_used() const { return last_used_; }

  // AWS_LAMBDA_INITIALIZATION_TYPE: "on-demand" (default) or "provisioned-concurrency".
  // REQUIRES: before Start().
  void set_initialization_type(std::string t) { init_type_ = std::move(t); }
  // The runtime finished Init (asked for its first invocation).
  bool initialized() const { return api_.init_done(); }
  // Provisioned concurrency: suspends until Init is over (true) or failed, the runtime died, or
  // `deadline` passed (false; `error` says why). After true the first invocation is warm: its
  // REPORT carries no Init Duration. REQUIRES: Start() succeeded, no Invoke yet.
  boost::asio::awaitable<bool> WaitInitialized(std::chrono::steady_clock::time_point deadline,
                                               std::string* error);
  // Peak memory of the environment measured after its latest invocation (0 before any).
  int64_t last_peak_bytes() const { return last_peak_bytes_; }

  // Writes a START line still held back for the function's first output (a silent invocation
  // that runs long shows its START in the log while it runs; the manager's reaper calls this).
  void FlushHeldLog();

 private:
  boost::asio::awaitable<http::Response> HandleRuntimeApi(http::Request& req);
  // A streaming /response (Lambda-Runtime-Function-Response-Mode: streaming), read and relayed
  // as it arrives (see runtimeapi/stream.h).
  boost::asio::awaitable<std::optional<http::Response>> HandleStreamingResponse(http::Exchange& ex);
  http::Response RuntimeTooLarge(const http::RequestHeader& h);
  boost::asio::awaitable<void> PumpOutput(int fd);
  boost::asio::awaitable<void> WatchExit();
  void OnOutput(std::string_view chunk, std::string& partial);
  void EmitLine(std::string_view line);  // line includes '\n'
  void DrainOutputNow();
  void Complete(runtimeapi::InvocationResult r);
  std::string ExitMessage() const;
  std::vector<std::string> BuildEnvironment() const;
  double MsSince(std::chrono::steady_clock::time_point t) const;

  EnvironmentContext ctx_;
  config::FunctionConfig cfg_;
  std::filesystem::path code_dir_;
  std::filesystem::path opt_dir_;
  std::string id_;
  State state_ = State::kNew;

  sandbox::ProcessPtr process_;
  std::unique_ptr<boost::asio::ip::tcp::acceptor> acceptor_;
  std::unique_ptr<boost::asio::posix::stream_descriptor> exit_watch_;
  std::unique_ptr<boost::asio::steady_timer> kill_timer_;
  // Freezing while idle: one timer, armed when the environment becomes idle and re-armed for the
  // rest of the period if it was used meanwhile (so back-to-back invokes never touch it).
  void ArmFreeze();
  std::unique_ptr<boost::asio::steady_timer> freeze_timer_;
  bool freeze_armed_ = false;
  bool frozen_ = false;
  int out_fds_[2] = {-1, -1};  // non-owning copies for DrainOutputNow (owned by the pumps)
  std::string out_partial_[2];

  runtimeapi::RuntimeApiState api_;
  Notifier next_wake_;    // wakes a parked `next`
  Notifier caller_wake_;  // wakes the Invoke coroutine (init done, result, death)
  Notifier park_wake_;    // wakes WaitParked (the runtime parked in `next`, or death)
  bool parked_ = false;
  std::optional<runtimeapi::InvocationResult> result_;
  std::optional<runtimeapi::InvocationResult> init_error_;
  bool dead_ = false;
  std::optional<int> wait_status_;

  std::chrono::steady_clock::time_point started_at_;
  double init_duration_ms_ = -1;
  bool init_reported_ = false;
  std::string init_type_ = "on-demand";
  int64_t last_peak_bytes_ = 0;
  std::chrono::steady_clock::time_point last_used_;
  bool capturing_ = false;
  std::string tail_;  // log of the in-flight invocation (bounded)
  // START of the in-flight invocation, not written yet: it goes out with the function's first
  // output line or, when the function printed nothing, with END + REPORT (one write per invoke).
  std::string log_pending_;
};

using EnvironmentPtr = std::shared_ptr<Environment>;

}  // namespace hearth::scheduler
