#pragma once
// Network mode "egress": a slirp4netns process (user-mode NAT) attached to a pooled network
// namespace. It creates `tap0` (10.0.2.100/24, default route via 10.0.2.2, MTU 65520) in the
// namespace and makes every outbound TCP/UDP connection of the sandbox with its own sockets in
// the daemon's network namespace. Its DNS forwarder answers on 10.0.2.3. It is started with:
//  - --disable-host-loopback: 10.0.2.2 does not lead to the host's 127.0.0.1 (ENETUNREACH), so
//    the daemon's API and every host service bound to loopback stay out of reach;
//  - no API socket and no port forwards: nothing can connect in;
//  - --exit-fd: it exits as soon as the daemon's end of a pipe closes (environment gone, or the
//    daemon killed: the kernel closes the daemon's fds);
//  - --enable-sandbox --enable-seccomp, inside a mount namespace of its own with private
//    propagation: it drops every capability but CAP_NET_BIND_SERVICE and pivots into an empty
//    root. (Without the private mount namespace, slirp4netns 1.2.0's --enable-sandbox unmounts
//    the host's /run/netns/* bind mounts through propagation: measured, see docs/security.md.)
// See docs/security.md, "Network egress".

#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <string>

#include "common/status.h"
#include "common/unique_fd.h"

namespace hearth::sandbox {

inline constexpr const char* kSlirpDnsAddress = "10.0.2.3";
inline constexpr const char* kSlirpSandboxAddress = "10.0.2.100";

struct SlirpOptions {
  std::string binary;             // absolute path of slirp4netns
  std::filesystem::path pid_dir;  // one file per live slirp4netns ("slirp-<pid>"), for the sweep
};

// One running slirp4netns. The destructor closes the exit pipe and SIGKILLs it (pidfd) without
// waiting: a reaper thread of this file reaps it and removes its pid file (the kernel takes about
// 17 ms to tear its tap device down, too long for the event loop).
class Slirp {
 public:
  Slirp(pid_t pid, UniqueFd pidfd, UniqueFd exit_w, std::filesystem::path pid_file)
      : pid_(pid),
        pidfd_(std::move(pidfd)),
        exit_w_(std::move(exit_w)),
        pid_file_(std::move(pid_file)) {}
  ~Slirp();
  Slirp(const Slirp&) = delete;
  Slirp& operator=(const Slirp&) = delete;
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_;
  UniqueFd pidfd_, exit_w_;
  std::filesystem::path pid_file_;
};

// Attaches a slirp4netns to the network namespace `netns_fd` and waits (up to 5 s) until it has
// configured tap0. Call it from the daemon's own network namespace. Errors name the step and
// carry slirp4netns's stderr.
Result<std::unique_ptr<Slirp>> StartSlirp(const SlirpOptions& options, int netns_fd);

// Finds slirp4netns on PATH (then /usr/bin, /usr/sbin) and checks that `--version` runs.
// FailedPrecondition with the reason otherwise.
Result<std::string> FindSlirp4netns();

// Kills every slirp4netns listed in `pid_dir` that this process did not start (what a SIGKILLed
// daemon left: normally they have already exited through their exit pipe) and removes the files.
Status SweepSlirp(const std::filesystem::path& pid_dir);

}  // namespace hearth::sandbox
