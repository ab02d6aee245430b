#pragma once
// The launcher's door: starts an execution environment's runtime process. The plain process
// launcher (process_launcher.h) is the first implementation; the isolated sandbox replaces it
// behind this same interface.
//
// Thread safety: Launch() may be called from several worker threads at once. It blocks (process
// creation): call it off the event loop.

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/unique_fd.h"

namespace hearth::sandbox {

struct LaunchSpec {
  std::string environment_id;            // for names of per-environment resources
  std::filesystem::path code_dir;        // host path of the unpacked code (/var/task inside)
  std::filesystem::path opt_dir;         // host path of the assembled layers (/opt inside); empty:
                                         // an empty /opt
  std::filesystem::path runtime_dir;     // host path of a managed runtime (/var/runtime inside);
                                         // empty: none
  std::string entrypoint;                // the program as the runtime sees it: an absolute path
                                         // under /var/task, /opt or /var/runtime, e.g.
                                         // "/var/task/bootstrap" (see HostPath())
  std::vector<std::string> env;          // KEY=VALUE; the launcher adds LAMBDA_TASK_ROOT and
                                         // AWS_LAMBDA_RUNTIME_API itself
  int memory_mb = 128;
  int ephemeral_storage_mb = 512;
};

// A started runtime process and the endpoints the daemon keeps.
class Process {
 public:
  virtual ~Process() = default;
  virtual int pid() const = 0;
  // Readable once the process has exited (a pidfd).
  virtual int exit_fd() const = 0;
  // The process's stdout and stderr (read ends; the daemon owns them after Launch).
  virtual UniqueFd TakeStdout() = 0;
  virtual UniqueFd TakeStderr() = 0;
  // A listening TCP socket the Runtime API is served on, reachable by the process at
  // runtime_api_address() ("127.0.0.1:port"). The daemon takes ownership.
  virtual UniqueFd TakeRuntimeApiListener() = 0;
  virtual std::string runtime_api_address() const = 0;
  // Sends `sig` to every process of the environment.
  virtual void Signal(int sig) = 0;
  // Reaps the process if it has exited; returns the wait status, or nullopt if still running.
  virtual std::optional<int> TryReap() = 0;
  // Peak memory of the environment in bytes, as measured (not the configured limit).
  virtual int64_t PeakMemoryBytes() const = 0;
  // True once the environment's memory limit made the kernel kill one of its processes (the
  // sandbox's cgroup oom_kill count). Launchers without a memory limit always say false.
  virtual bool OomKilled() const { return false; }
  // The Init phase is over (the runtime's first `next`, or an init error). The sandbox gives Init
  // at least a full vCPU and lowers the CPU quota to the memory-proportional share here; the
  // plain process launcher has no CPU limit (no-op).
  virtual void EndInit() {}
  // Freezes (true) or thaws (false) every process of the environment; a frozen environment uses
  // no CPU until thawed. Asynchronous (the kernel stops the processes shortly after) and cheap
  // (one write to the cgroup's freeze file). Signal() thaws first. False when this launcher cannot
  // freeze (the plain process launcher, or a host without a freezer).
  virtual bool SetFrozen(bool /*frozen*/) { return false; }
};

using ProcessPtr = std::unique_ptr<Process>;

// How launches were served, since the launcher was made (GET /hearth/v1/stats, "launches").
struct LaunchStats {
  int64_t launched = 0;            // processes started
  int64_t failed = 0;              // Launch() calls that returned an error
  int64_t from_blank_pool = 0;     // claimed a pre-made blank sandbox
  int64_t blanks_made_on_demand = 0;  // the pool was empty: a blank made on the cold path
  int64_t prestarted = 0;          // claimed a sandbox whose runtime was already running
  int64_t prestart_failed = 0;     // such a claim failed; the function took the normal path
  int64_t dead_in_pool = 0;        // pooled sandboxes found dead when taken (skipped)
};

class Launcher {
 public:
  virtual ~Launcher() = default;
  // Starts `spec`: checks its entrypoint (InvalidArgument for a path outside the runtime's roots,
  // NotFound/PermissionDenied when it cannot be executed), then the launcher's Start(). Counts
  // every outcome (stats()). Safe to call from several threads.
  Result<ProcessPtr> Launch(const LaunchSpec& spec);
  // Removes what environments of a killed daemon left behind (called once at start).
  virtual Status SweepLeftovers() = 0;
  // The path under which the runtime sees `code_dir` (LAMBDA_TASK_ROOT): the host path itself for
  // the process launcher, /var/task in a sandbox.
  virtual std::string TaskRoot(const std::filesystem::path& code_dir) const = 0;
  // Human-readable name ("process", "sandbox").
  virtual const char* name() const = 0;
  // Counters; safe to call from any thread.
  LaunchStats stats() const;

 protected:
  // Starts `spec`, whose entrypoint is `entry` on the host (checked executable).
  virtual Result<ProcessPtr> Start(const LaunchSpec& spec, const std::filesystem::path& entry) = 0;
  // Adds the launcher's own counters (pools...); launched and failed are counted by Launch().
  virtual void AddStats(LaunchStats& /*stats*/) const {}

 private:
  std::atomic<int64_t> launched_{0};
  std::atomic<int64_t> failed_{0};
};

using LauncherPtr = std::unique_ptr<Launcher>;

// Where a path of the runtime's view (/var/task/..., /opt/..., /var/runtime/...) lives on the host
// for `spec`; empty when it is outside those roots (or the root is absent) or contains "..".
std::filesystem::path HostPath(const LaunchSpec& spec, std::string_view sandbox_path);

}  // namespace hearth::sandbox
