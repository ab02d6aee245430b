#pragma once
// The spawner: a small helper process forked from the daemon when the sandbox launcher starts
// (before the daemon has its worker threads and its heap), which clone()s the sandboxes' init
// processes on request.
//
// Why: clone() without CLONE_VM copies the caller's page tables and makes every private page of
// the caller copy-on-write. Cloning from the daemon costs more the bigger the daemon grows, and a
// sandbox's init never execs: it would keep a copy-on-write view of the whole daemon for the
// environment's life, and the daemon would take a page fault on the first write to each of its
// pages after every launch. The spawner is a copy of the daemon at start (single-threaded, a few
// MB) and does nothing but clone.
//
// Each child is cloned with CLONE_PARENT: it is the DAEMON's child, not the spawner's (the daemon
// reaps it and gets its wait status; its parent-death signal follows the daemon thread that
// started the spawner, so create the launcher on a thread that lives as long as the launcher). The
// child runs `entry(fds, nfds, payload, arg)`, which must not return; `arg` must point to memory
// that existed when the spawner was forked (the child sees the spawner's copy of it), `fds` are
// the descriptors of the request, open in the child (the spawner closes its own copies).
//
// Thread-safe: requests are serialized. The spawner exits when its socket closes (destructor) or
// when the daemon dies (PR_SET_PDEATHSIG); the destructor reaps it.

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <span>

#include "common/status.h"
#include "common/unique_fd.h"
#include "sandbox/fd_passing.h"

namespace hearth::sandbox {

inline constexpr int kSpawnMaxFds = kMaxPassedFds;
inline constexpr size_t kSpawnPayloadBytes = 32;

// Runs in the cloned child; must not return (_exit).
using SpawnEntry = void (*)(const int* fds, int nfds, const unsigned char* payload, void* arg);

struct SpawnRequest {
  uint64_t clone_flags = 0;     // CLONE_NEW* (CLONE_PARENT and CLONE_PIDFD are added)
  std::span<const int> fds;     // at most kSpawnMaxFds; passed to the child
  unsigned char payload[kSpawnPayloadBytes] = {};  // small data for the child
  // false: the spawner clones at nice 10 (a pool refill, off the hot path); true: at nice 0.
  bool urgent = false;
};

struct Spawned {
  pid_t pid = -1;     // a child of the calling process (CLONE_PARENT)
  UniqueFd pidfd;
};

class Spawner {
 public:
  // Forks the spawner now. Call before starting threads that may hold locks.
  static Result<std::unique_ptr<Spawner>> Start(SpawnEntry entry, void* arg);
  ~Spawner();
  Spawner(const Spawner&) = delete;
  Spawner& operator=(const Spawner&) = delete;

  // Clones one child. Unavailable if the spawner is gone; the clone3 errno otherwise.
  Result<Spawned> Spawn(const SpawnRequest& request);
  pid_t pid() const { return pid_; }

 private:
  Spawner(pid_t pid, UniqueFd sock) : pid_(pid), sock_(std::move(sock)) {}
  pid_t pid_;
  UniqueFd sock_;
  std::mutex mu_;
};

}  // namespace hearth::sandbox
