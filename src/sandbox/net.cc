#include "sandbox/net.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include <fmt/format.h>

namespace hearth::sandbox {

int BringLoopbackUp(const char** what) {
  *what = "socket for SIOCSIFFLAGS";
  int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return errno;
  ifreq ifr{};
  ifr.ifr_name[0] = 'l', ifr.ifr_name[1] = 'o', ifr.ifr_name[2] = '\0';
  int rc = 0;
  *what = "SIOCGIFFLAGS lo";
  if (::ioctl(s, SIOCGIFFLAGS, &ifr) != 0) {
    rc = errno;
  } else {
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    *what = "SIOCSIFFLAGS lo up";
    if (::ioctl(s, SIOCSIFFLAGS, &ifr) != 0) rc = errno;
  }
  ::close(s);
  return rc;
}

int ListenRuntimeApi(const char** what) {
  *what = "socket";
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(kRuntimeApiPort);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  *what = "bind 127.0.0.1:9001";
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int e = errno;
    ::close(fd);
    return -e;
  }
  *what = "listen 127.0.0.1:9001";
  if (::listen(fd, 64) != 0) {
    int e = errno;
    ::close(fd);
    return -e;
  }
  return fd;
}

int SendRecordWithFd(int sock, const ChildRecord& record, int fd) {
  iovec iov{const_cast<ChildRecord*>(&record), sizeof record};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
  if (::sendmsg(sock, &msg, MSG_NOSIGNAL) < 0) return errno;
  return 0;
}

ssize_t ReceiveRecord(int sock, ChildRecord* record, UniqueFd* fd, int flags) {
  iovec iov{record, sizeof *record};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | flags);
  if (n < 0) return -errno;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      int received;
      std::memcpy(&received, CMSG_DATA(c), sizeof received);
      fd->Reset(received);
    }
  }
  return n;
}

Result<NetSlot> MakeNetSlot(int home_netns_fd, const SlirpOptions* egress, bool* lost_home) {
  *lost_home = false;
  NetSlot slot;
  std::string error;
  if (::unshare(CLONE_NEWNET) != 0)
    return std::unexpected(PosixError("unshare(CLONE_NEWNET)", errno));
  slot.netns.Reset(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  const char* what = "";
  if (!slot.netns.valid()) {
    error = fmt::format("open the new '/proc/thread-self/ns/net': {}", std::strerror(errno));
  } else if (int e = BringLoopbackUp(&what); e != 0) {
    error = fmt::format("{}: {}", what, std::strerror(e));
  } else if (int fd = ListenRuntimeApi(&what); fd < 0) {
    error = fmt::format("{}: {}", what, std::strerror(-fd));
  } else {
    slot.listener.Reset(fd);
  }
  if (::setns(home_netns_fd, CLONE_NEWNET) != 0) {
    *lost_home = true;
    return std::unexpected(PosixError("setns back to the daemon's netns", errno));
  }
  if (!error.empty()) return std::unexpected(Status::Internal(error));
  // slirp4netns runs in the daemon's namespace (its sockets are the sandbox's way out).
  if (egress) {
    auto slirp = StartSlirp(*egress, slot.netns.get());
    if (!slirp) return std::unexpected(slirp.error());
    slot.slirp = std::move(*slirp);
  }
  return slot;
}

NetnsPool::NetnsPool(int size, std::optional<SlirpOptions> egress) : size_(size), egress_(std::move(egress)) {}

NetnsPool::~NetnsPool() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void NetnsPool::Start() {
  if (size_ <= 0) return;
  std::lock_guard lock(mu_);
  if (thread_.joinable() || stop_) return;
  thread_ = std::thread([this] { Run(); });
}

Status NetnsPool::Prime() {
  Result<NetSlot> slot = std::unexpected(Status::Internal("not made"));
  std::thread([&] {
    UniqueFd home(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
    if (!home.valid()) {
      slot = std::unexpected(PosixError("open '/proc/thread-self/ns/net'", errno));
      return;
    }
    bool lost_home = false;
    slot = MakeNetSlot(home.get(), egress_ ? &*egress_ : nullptr, &lost_home);
    // A thread that lost its way home ends here: nothing else runs on it.
  }).join();
  if (!slot) return slot.error();
  std::lock_guard lock(mu_);
  ++counters_.made;
  ready_.push_back(std::move(*slot));
  return Status::Ok();
}

std::optional<NetSlot> NetnsPool::TryTake() {
  std::unique_lock lock(mu_);
  if (ready_.empty()) {
    ++counters_.misses;
    return std::nullopt;
  }
  NetSlot s = std::move(ready_.front());
  ready_.pop_front();
  ++counters_.hits;
  lock.unlock();
  cv_.notify_all();
  return s;
}

Result<NetSlot> NetnsPool::Take(std::chrono::milliseconds wait) {
  std::unique_lock lock(mu_);
  if (ready_.empty()) {
    ++counters_.misses;
    cv_.wait_for(lock, wait, [&] { return !ready_.empty() || stop_ || dead_; });
    if (ready_.empty()) {
      std::string why = counters_.error.empty() ? "" : ": " + counters_.error;
      if (dead_ || stop_) return std::unexpected(Status::Unavailable("no network namespace: the pool has stopped" + why));
      return std::unexpected(Status::Unavailable(
          fmt::format("no network namespace ready within {} ms{}", wait.count(), why)));
    }
  } else {
    ++counters_.hits;
  }
  NetSlot s = std::move(ready_.front());
  ready_.pop_front();
  lock.unlock();
  cv_.notify_all();
  return s;
}

NetnsPool::Counters NetnsPool::counters() const {
  std::lock_guard lock(mu_);
  return counters_;
}

void NetnsPool::Run() {
  // Refills are off the cold path: behind launches for the CPU (nice 10).
  ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 10);
  auto fail = [&](std::string why) {
    std::lock_guard lock(mu_);
    counters_.error = std::move(why);
    dead_ = true;
  };
  UniqueFd home(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  if (!home.valid()) {
    fail(fmt::format("open '/proc/thread-self/ns/net': {}", std::strerror(errno)));
    cv_.notify_all();
    return;
  }
  std::unique_lock lock(mu_);
  while (!stop_) {
    if (ready_.size() >= static_cast<size_t>(size_)) {
      cv_.wait(lock);
      continue;
    }
    lock.unlock();
    bool lost_home = false;
    Result<NetSlot> slot = MakeNetSlot(home.get(), egress_ ? &*egress_ : nullptr, &lost_home);
    lock.lock();
    if (lost_home) {
      // This thread cannot go home: it stops for good (Launch falls back to CLONE_NEWNET in mode
      // none; in egress, launches fail with this error).
      counters_.error = slot.error().message();
      dead_ = true;
      break;
    }
    if (!slot) {
      counters_.error = slot.error().message();
      cv_.wait_for(lock, std::chrono::seconds(1), [&] { return stop_; });  // back off
      continue;
    }
    ++counters_.made;
    ready_.push_back(std::move(*slot));
    lock.unlock();
    cv_.notify_all();
    lock.lock();
  }
  std::deque<NetSlot> drop;
  drop.swap(ready_);
  lock.unlock();
  cv_.notify_all();
}

}  // namespace hearth::sandbox
