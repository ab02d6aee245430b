#pragma once
// Network namespace, "none" mode: the sandbox has only `lo`. The CHILD brings lo up and creates the
// Runtime API listener on 127.0.0.1:9001 inside its own namespace, then passes it to the parent
// (SCM_RIGHTS on the handshake socket); the daemon accepts on it from the host namespace. Nothing
// outside can connect in, and the host's loopback is a different one (ECONNREFUSED from inside).

#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "common/status.h"
#include "common/unique_fd.h"
#include "sandbox/child_report.h"

namespace hearth::sandbox {

inline constexpr int kRuntimeApiPort = 9001;
inline constexpr const char* kRuntimeApiAddress = "127.0.0.1:9001";

// Child side (async-signal-safe). Return 0 or errno; *what names the failing call.
int BringLoopbackUp(const char** what);
// Creates, binds and listens; returns the fd or -errno.
int ListenRuntimeApi(const char** what);
// Sends `record` with `fd` attached. Returns 0 or errno.
int SendRecordWithFd(int sock, const ChildRecord& record, int fd);

// Parent side: receives one record (and an fd if attached, else *fd stays invalid).
// Returns bytes read (0 = EOF) or -errno.
ssize_t ReceiveRecord(int sock, ChildRecord* record, UniqueFd* fd, int flags = 0);

// A network namespace made ahead of need: lo up and the Runtime API listener already bound in it.
// The child enters it with setns() instead of clone(CLONE_NEWNET), which costs about 0.35 ms
// median with a heavy tail (machine.md A), and skips the in-child lo/listener steps. Single use:
// the environment that takes it owns it; the netns lives as long as its processes or the listener,
// and the kernel deletes it after.
struct NetSlot {
  UniqueFd netns;     // /proc/thread-self/ns/net of the namespace
  UniqueFd listener;  // 127.0.0.1:9001 inside it
};

// Keeps `size` slots ready, made by its own thread (unshare(CLONE_NEWNET) changes only the calling
// thread's namespace; the thread steps back into the daemon's namespace after each one and stops
// for good if it ever cannot). Nothing of it survives the daemon: the namespaces are held by fds
// only.
class NetnsPool {
 public:
  explicit NetnsPool(int size);
  ~NetnsPool();
  NetnsPool(const NetnsPool&) = delete;
  NetnsPool& operator=(const NetnsPool&) = delete;
  void Start();
  // A ready slot, or nullopt (the pool is empty, off or stopped): then clone with CLONE_NEWNET.
  std::optional<NetSlot> TryTake();
  struct Counters {
    uint64_t hits = 0, misses = 0, made = 0;
    std::string error;  // why the thread stopped, if it did
  };
  Counters counters() const;

 private:
  void Run();
  const int size_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<NetSlot> ready_;  // GUARDED_BY(mu_)
  Counters counters_;          // GUARDED_BY(mu_)
  bool stop_ = false;          // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace hearth::sandbox
