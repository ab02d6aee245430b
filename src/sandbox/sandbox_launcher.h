#pragma once
// The Linux sandbox launcher: every execution environment in its own mount, pid, ipc, uts, net and
// cgroup namespaces, with a read-only root built from the host's /usr, a fresh cgroup (memory =
// MemorySize, CPU proportional to memory, pids 1024), an ext4 /tmp of EphemeralStorage size, an
// unprivileged uid without capabilities, no_new_privs and a seccomp filter. See docs/security.md.
//
// Pid 1 of each sandbox is a tiny init, cloned by the spawner (spawner.h: a process forked at
// start, so no clone copies the grown daemon) as the daemon's own child. It builds the sandbox in
// two phases: ahead of need, as a "blank sandbox" kept in a pool (namespaces, its cgroup, the
// network, the common part of the root, pivot_root), then, when a launch claims it (claim.h), the
// function's part (limits, the code, runtime, layers and /tmp attached as detached mounts, the
// identity, seccomp). Then it forks the bootstrap, forwards catchable signals to every process of
// the sandbox, reaps every zombie, and reports the bootstrap's wait status to the daemon on the
// handshake socket before it exits (taking the whole pid namespace with it). The bootstrap
// therefore is pid 2, never an init with its odd signal semantics, and orphans cannot pile up as
// zombies against pids.max.
//
// Create the launcher on a thread that lives as long as it (the sandboxes' parent-death signal
// follows that thread). Requires root (real, not in a user namespace), cgroups with memory and
// pids, /dev/loop-control, mkfs.ext4 and seccomp (and slirp4netns in network mode egress).
// NewSandboxLauncher() checks all of it and runs one real sandbox as a self-test; its error says
// what is missing.

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

#include "sandbox/launcher.h"

namespace hearth::sandbox {

// "none": loopback only. "egress": outbound TCP and DNS through a slirp4netns per environment
// (slirp.h), attached ahead of need; still nothing inbound. See docs/security.md.
enum class NetworkMode { kNone, kEgress };

// A managed runtime started ahead of need in blank sandboxes ("pre-started"): the interpreter
// already runs there, as the sandbox user with seccomp loaded, with `runtime_dir` attached at
// /var/runtime and only `env` (plus kPrestartFdVariable, claim.h) in its environment, waiting on a
// socket from the sandbox's init. A launch of that runtime (same runtime_dir and entrypoint) whose
// environment agrees with `env` on every startup variable (PrestartCompatible) claims one: the
// init attaches the function's /var/task, /opt and /tmp (the interpreter shares its mount
// namespace), the limits are set, the interpreter gets nice 0, the init drops its identity and
// loads seccomp as on the normal path, then sends the function's whole environment to the
// runtime, which replaces its own with it and continues as a normal start would. Anything else
// (other variables at start, an empty pool, a pre-started runtime that failed) takes the normal path.
struct PrestartRuntime {
  std::string name;                   // for messages, e.g. "python3.11"
  std::filesystem::path runtime_dir;  // host directory, mounted at /var/runtime
  std::string entrypoint = "/var/runtime/bootstrap";
  std::vector<std::string> env;       // KEY=VALUE the runtime starts with
  int count = 1;                      // kept ready
};

struct SandboxOptions {
  // Per-daemon state: generated /etc, the mount point of new roots, /tmp image templates.
  std::filesystem::path state_dir;
  uid_t uid = 993;
  gid_t gid = 993;
  // Launch one /bin/true sandbox before returning. Default: true
  bool self_test = true;
  // Made ahead of need by background threads of the launcher, so that a cold start only attaches
  // them (0 turns a pool off: each launch then makes its own, a few ms more):
  // ready /tmp volumes per EphemeralStorage size in use (sizes in tmp_prefill_sizes from the start),
  int tmp_pool_per_size = 4;
  std::vector<int> tmp_prefill_sizes = {512};
  // ready network namespaces (lo up, Runtime API listener bound; in egress mode with their
  // slirp4netns attached, and at least 1),
  int netns_pool = 2;
  // blank sandboxes: made up to everything that does not depend on the function (namespaces, a
  // cgroup without limits yet, the network, the common part of the root), so that a launch only
  // sets the limits, mounts the code and /tmp and executes the bootstrap. Each holds a network
  // namespace taken from the pool above.
  int blank_pool = 3;
  // Runtimes kept pre-started (see PrestartRuntime). Default: none.
  std::vector<PrestartRuntime> prestart;
  // Default: none (least privilege: a function gets a network only where the host opts in).
  NetworkMode network = NetworkMode::kNone;
  // slirp4netns binary; empty: looked up on PATH (then /usr/bin, /usr/sbin) at start.
  std::string slirp4netns;
};

Result<LauncherPtr> NewSandboxLauncher(SandboxOptions options);

}  // namespace hearth::sandbox
