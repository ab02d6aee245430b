#pragma once
// glibc's per-thread cache keeps 7 freed blocks per size class. An invoke allocates and frees a
// few dozen small objects (HTTP fields, strings, coroutine frames), and 64 invocations in flight
// overflow those 7 slots at once, so most allocations took glibc's locked slow path (malloc and
// free were ~12 % of the daemon's CPU at 64 connections; with 256 slots ~7 %: docs/benchmarks.md).
// The cache size is a glibc tunable, read only at process start: `hearth serve` re-executes
// itself once with it set.

#include <optional>
#include <string>

namespace hearth::daemon {

// Slots per size class the daemon asks for.
inline constexpr int kTcacheCount = 256;

// The GLIBC_TUNABLES value to run with, given the current one (nullptr: unset); nullopt when it
// already sets the cache size (the operator's choice, or our own after the re-exec).
std::optional<std::string> TunablesWithTcache(const char* current);

// If the tunable is missing, sets it and re-executes /proc/self/exe with the same arguments
// (does not return then). Returns when there is nothing to do, when HEARTH_NO_MALLOC_TUNING is
// set, or when the re-exec fails (the daemon then runs with glibc's defaults).
void ReexecWithMallocTunables(char** argv);

}  // namespace hearth::daemon
