#include "sandbox/spawner.h"

#include "sandbox/child_report.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <linux/sched.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include <fmt/format.h>

namespace hearth::sandbox {

namespace {

constexpr uint32_t kMagic = 0x53504157;  // "SPAW"
constexpr int kBackgroundNice = 10;

struct WireRequest {
  uint32_t magic;
  uint32_t urgent;
  uint64_t clone_flags;
  unsigned char payload[kSpawnPayloadBytes];
};

struct WireReply {
  int32_t pid;  // or -errno
  int32_t err;
};

// The spawner's whole life. Single-threaded, and it only makes system calls.
[[noreturn]] void SpawnerMain(int sock, pid_t daemon, SpawnEntry entry, void* arg) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  if (::getppid() != daemon) ::_exit(0);  // the daemon died before the prctl
  ::prctl(PR_SET_NAME, "hearth-spawner", 0, 0, 0);
  // Nothing of the daemon's but our socket: other processes' pipes must see EOF without us.
  if (sock != 3) {
    if (::dup3(sock, 3, O_CLOEXEC) < 0) ::_exit(1);
    sock = 3;
  }
  ::syscall(SYS_close_range, 4, ~0U, 0);
  child::ResetSignals();
  int nice_now = 0;
  for (;;) {
    WireRequest req{};
    int fds[kSpawnMaxFds];
    int nfds = 0;
    ssize_t n = ReceiveWithFds(sock, &req, sizeof req, fds, kSpawnMaxFds, &nfds);
    if (n <= 0) ::_exit(0);  // the daemon closed the socket (or died)
    WireReply reply{-EINVAL, EINVAL};
    int pidfd = -1;
    if (n == static_cast<ssize_t>(sizeof req) && req.magic == kMagic) {
      int want = req.urgent ? 0 : kBackgroundNice;
      if (want != nice_now && ::setpriority(PRIO_PROCESS, 0, want) == 0) nice_now = want;
      clone_args ca{};
      ca.flags = req.clone_flags | CLONE_PARENT | CLONE_PIDFD;
      ca.pidfd = reinterpret_cast<uint64_t>(&pidfd);
      ca.exit_signal = 0;  // CLONE_PARENT: the child gets our own exit signal (SIGCHLD)
      long pid = ::syscall(SYS_clone3, &ca, sizeof ca);
      if (pid == 0) {
        ::close(sock);
        entry(fds, nfds, req.payload, arg);
        ::_exit(127);
      }
      reply.pid = pid > 0 ? static_cast<int32_t>(pid) : -errno;
      reply.err = pid > 0 ? 0 : errno;
    }
    for (int i = 0; i < nfds; ++i) ::close(fds[i]);
    SendWithFds(sock, &reply, sizeof reply, &pidfd, pidfd >= 0 ? 1 : 0);
    if (pidfd >= 0) ::close(pidfd);
  }
}

}  // namespace

Result<std::unique_ptr<Spawner>> Spawner::Start(SpawnEntry entry, void* arg) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
    return std::unexpected(PosixError("socketpair for the spawner", errno));
  UniqueFd ours(sv[0]), theirs(sv[1]);
  const pid_t daemon = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) return std::unexpected(PosixError("fork the spawner", errno));
  if (pid == 0) {
    ::close(ours.Release());
    SpawnerMain(theirs.Release(), daemon, entry, arg);
  }
  return std::unique_ptr<Spawner>(new Spawner(pid, std::move(ours)));
}

Spawner::~Spawner() {
  sock_.Reset();  // the spawner sees EOF and exits
  int status;
  for (int i = 0; i < 200; ++i) {
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_ || (r < 0 && errno != EINTR)) return;
    ::usleep(1000);
  }
  ::kill(pid_, SIGKILL);
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
}

Result<Spawned> Spawner::Spawn(const SpawnRequest& request) {
  if (request.fds.size() > static_cast<size_t>(kSpawnMaxFds))
    return std::unexpected(Status::InvalidArgument("too many fds for the spawner"));
  WireRequest req{};
  req.magic = kMagic;
  req.urgent = request.urgent ? 1 : 0;
  req.clone_flags = request.clone_flags;
  std::memcpy(req.payload, request.payload, sizeof req.payload);
  std::lock_guard lock(mu_);
  if (!sock_.valid()) return std::unexpected(Status::Unavailable("the sandbox spawner is gone"));
  if (SendWithFds(sock_.get(), &req, sizeof req, request.fds.data(), static_cast<int>(request.fds.size())) < 0)
    return std::unexpected(PosixError("send a request to the sandbox spawner", errno));
  pollfd p{sock_.get(), POLLIN, 0};
  int pr;
  do {
    pr = ::poll(&p, 1, 10000);
  } while (pr < 0 && errno == EINTR);
  if (pr <= 0) {
    sock_.Reset();  // out of step: never use it again
    return std::unexpected(Status::Unavailable("the sandbox spawner did not answer within 10 s"));
  }
  WireReply reply{};
  int fds[kSpawnMaxFds];
  int nfds = 0;
  ssize_t n = ReceiveWithFds(sock_.get(), &reply, sizeof reply, fds, kSpawnMaxFds, &nfds);
  Spawned out;
  if (nfds > 0) out.pidfd.Reset(fds[0]);
  for (int i = 1; i < nfds; ++i) ::close(fds[i]);
  if (n != static_cast<ssize_t>(sizeof reply)) {
    sock_.Reset();
    return std::unexpected(Status::Unavailable(n == 0 ? "the sandbox spawner exited" : "bad reply from the spawner"));
  }
  if (reply.pid < 0)
    return std::unexpected(PosixError("clone3 in the spawner (new mount/pid/ipc/uts(/net) namespaces)", reply.err));
  if (!out.pidfd.valid()) return std::unexpected(Status::Internal("the spawner sent no pidfd"));
  out.pid = reply.pid;
  return out;
}

}  // namespace hearth::sandbox
