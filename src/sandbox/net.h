#pragma once
// Network namespace, "none" mode: the sandbox has only `lo`. The CHILD brings lo up and creates the
// Runtime API listener on 127.0.0.1:9001 inside its own namespace, then passes it to the parent
// (SCM_RIGHTS on the handshake socket); the daemon accepts on it from the host namespace. Nothing
// outside can connect in, and the host's loopback is a different one (ECONNREFUSED from inside).
// Network mode "egress" adds a slirp4netns to each pooled namespace (slirp.h): outbound TCP/UDP
// through user-mode NAT, DNS at 10.0.2.3, still nothing inbound.

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "common/status.h"
#include "common/unique_fd.h"
#include "sandbox/child_report.h"
#include "sandbox/slirp.h"

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
  // Network mode "egress" only: the slirp4netns attached to it (tap0, NAT, DNS at 10.0.2.3). The
  // environment that takes the slot owns it and kills it when it ends.
  std::unique_ptr<Slirp> slirp;
};

// Makes one slot on the calling thread, which enters the new namespace and steps back into
// `home_netns_fd` (*lost_home is set if it could not: the thread is then in the wrong namespace).
// With `egress`, a slirp4netns is attached (from the home namespace) before it returns.
Result<NetSlot> MakeNetSlot(int home_netns_fd, const SlirpOptions* egress, bool* lost_home);

// Keeps `size` slots ready, made by its own thread (unshare(CLONE_NEWNET) changes only the calling
// thread's namespace; the thread steps back into the daemon's namespace after each one and stops
// for good if it ever cannot). Nothing of it survives the daemon: the namespaces are held by fds
// only.
//
// Network mode "egress" (`egress` set): every slot also gets its slirp4netns (about 4-8 ms, so
// off the cold path too), and a launch must not fall back to a bare CLONE_NEWNET: it waits for a
// slot with Take().
class NetnsPool {
 public:
  explicit NetnsPool(int size, std::optional<SlirpOptions> egress = std::nullopt);
  ~NetnsPool();
  NetnsPool(const NetnsPool&) = delete;
  NetnsPool& operator=(const NetnsPool&) = delete;
  void Start();
  // A ready slot, or nullopt (the pool is empty, off or stopped): then clone with CLONE_NEWNET.
  std::optional<NetSlot> TryTake();
  // A ready slot, waiting up to `wait` for the thread to make one; the error says why there is
  // none (the thread's last error, or a stopped pool).
  Result<NetSlot> Take(std::chrono::milliseconds wait);
  // Makes one slot now, on a short-lived thread of its own, and adds it to the ready ones: the
  // start-up check of egress mode (slirp4netns really attaches). Call before Start().
  Status Prime();
  struct Counters {
    uint64_t hits = 0, misses = 0, made = 0;
    std::string error;  // why the thread stopped, if it did
  };
  Counters counters() const;

 private:
  void Run();
  const int size_;
  const std::optional<SlirpOptions> egress_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<NetSlot> ready_;  // GUARDED_BY(mu_)
  Counters counters_;          // GUARDED_BY(mu_)
  bool stop_ = false;          // GUARDED_BY(mu_)
  bool dead_ = false;          // GUARDED_BY(mu_): the thread stopped for good
  std::thread thread_;
};

}  // namespace hearth::sandbox
