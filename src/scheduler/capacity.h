#pragma once
// What this host can hold: the default cap on live execution environments
// (`max_environments` = 0, "auto"), derived from real limits, and the measured memory the
// MemoryGate admits against.

#include <cstdint>
#include <optional>
#include <string>

#include "common/status.h"

namespace hearth::scheduler {

// Facts about the host (read by ReadHostFacts; injected in tests).
struct HostFacts {
  int64_t mem_total_bytes = 0;      // /proc/meminfo MemTotal
  int64_t open_files_limit = 0;     // RLIMIT_NOFILE soft limit of the daemon (after raising)
  int64_t pid_max = 0;              // /proc/sys/kernel/pid_max
  int64_t threads_max = 0;          // /proc/sys/kernel/threads-max
};

// Per-environment costs the derivation uses (measured; see docs/architecture.md).
struct EnvironmentCosts {
  // Descriptors the daemon holds per environment: Runtime API listener and connection, stdout
  // and stderr pipes, pidfd, exit watch, cgroup and freezer files; with headroom.
  int64_t fds = 12;
  // Processes/threads per environment: the sandbox init and the runtime (a few threads for a
  // managed runtime).
  int64_t tasks = 8;
  // The smallest real footprint of an idle environment (a C++ bootstrap: ~2-4 MiB) with margin.
  int64_t min_memory_bytes = int64_t{8} << 20;
  // Kept for the daemon itself.
  int64_t reserved_fds = 1024;
  int64_t reserved_tasks = 1024;
};

// min(MemTotal / min_memory, (nofile - reserved_fds) / fds, (min(pid_max, threads_max) -
// reserved_tasks) / tasks), at least 1. `why` (optional) names the binding limit.
int DeriveMaxEnvironments(const HostFacts& facts, const EnvironmentCosts& costs = {},
                          std::string* why = nullptr);

// Reads MemTotal, pid_max, threads-max and RLIMIT_NOFILE.
HostFacts ReadHostFacts();

// Raises the daemon's RLIMIT_NOFILE soft limit to its hard limit; returns the new soft limit.
int64_t RaiseOpenFilesLimit();

// Bytes MemAvailable in /proc/meminfo (-1 when unreadable). Cheap: one small read.
int64_t ReadMemAvailable();

}  // namespace hearth::scheduler
