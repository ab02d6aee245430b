#include "sandbox/sandbox_launcher.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <cstring>
#include <fstream>
#include <functional>
#include <tuple>

#include <fmt/format.h>

#include "common/encoding.h"
#include "sandbox/cgroups.h"
#include "sandbox/child_report.h"
#include "sandbox/claim.h"
#include "sandbox/fd_passing.h"
#include "sandbox/identity.h"
#include "sandbox/mounts.h"
#include "sandbox/net.h"
#include "sandbox/seccomp_policy.h"
#include "sandbox/slirp.h"
#include "sandbox/spawner.h"
#include "sandbox/tmp_storage.h"

namespace hearth::sandbox {

namespace fs = std::filesystem;

const char* ChildStepName(ChildStep step) {
  switch (step) {
    case ChildStep::kReady: return "ready";
    case ChildStep::kExited: return "exited";
    case ChildStep::kListener: return "listener";
    case ChildStep::kBlank: return "blank";
    case ChildStep::kPrestarted: return "prestarted";
    case ChildStep::kClaim: return "claim";
    case ChildStep::kCgroup: return "cgroup";
    case ChildStep::kSignals: return "signals";
    case ChildStep::kFds: return "fds";
    case ChildStep::kNetwork: return "network";
    case ChildStep::kMount: return "mount";
    case ChildStep::kPivotRoot: return "pivot_root";
    case ChildStep::kHostname: return "hostname";
    case ChildStep::kRlimit: return "rlimit";
    case ChildStep::kIdentity: return "identity";
    case ChildStep::kSeccomp: return "seccomp";
    case ChildStep::kFork: return "fork";
    case ChildStep::kExec: return "execve";
  }
  return "?";
}

namespace {

constexpr const char* kTaskRoot = "/var/task";
constexpr int kSetupTimeoutMs = 10000;
constexpr size_t kBootStackBytes = 64 << 10;
constexpr auto kRefillDelay = std::chrono::milliseconds(5);

// Fixed when the launcher starts, before the spawner is forked: the spawner and every sandbox it
// clones see their own copy of it (and of what it points to).
struct BlankSetup {
  const MountPlan* base_plan = nullptr;  // the root's common part (BuildBaseRootfsSpec)
  const sock_fprog* seccomp = nullptr;
  uid_t uid = 0;
  gid_t gid = 0;
};

// The spawn request's payload: which of its fds are what. The fds are, in order: the handshake
// socket, stdout and stderr write ends, the pooled netns (if has_netns), the cgroup.procs files.
struct BlankPayload {
  int32_t has_netns;
  int32_t n_procs;
};

// ---- the sandbox's init: async-signal-safe only (no allocation, no locks, no exceptions) ----
//
// It is a clone() of the spawner (single-threaded), so this is a discipline rather than a
// necessity, kept so the same code stays correct if it is ever cloned from a threaded process.

volatile sig_atomic_t g_forward_ready = 0;
// Per process (each sandbox has its own copy): the bootstrap's stack until execve, the claim.
alignas(16) char g_boot_stack[kBootStackBytes];
alignas(8) char g_claim_buf[kClaimMaxBytes];
DecodedClaim g_claim;

void ForwardSignal(int sig) {
  // From pid 1, kill(-1) reaches every other process of the sandbox.
  if (g_forward_ready) ::kill(-1, sig);
}

struct BootArgs {
  const DecodedClaim* claim;
  int out_w, err_w;
  volatile int exec_err;  // written by the bootstrap (shared memory) if execve fails
  // A pre-start: the socket the function's environment will arrive on (becomes fd 3), and the
  // identity and seccomp the bootstrap takes itself (the init stays root for the claim). Else -1.
  int prestart_fd = -1;
  const BlankSetup* setup = nullptr;
};

// Runs in the bootstrap (CLONE_VM | CLONE_VFORK) until execve: the init's memory, our own stack.
int BootMain(void* p) {
  auto* b = static_cast<BootArgs*>(p);
  ::setsid();
  int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null < 0 || ::dup2(null, 0) < 0 || ::dup2(b->out_w, 1) < 0 || ::dup2(b->err_w, 2) < 0) {
    b->exec_err = errno;
    ::_exit(127);
  }
  if (b->prestart_fd >= 0) {
    // fd 3: the socket the function arrives on (kPrestartFdVariable says so).
    if (b->prestart_fd == 3 ? ::fcntl(3, F_SETFD, 0) < 0 : ::dup2(b->prestart_fd, 3) < 0) {
      b->exec_err = errno;
      ::_exit(127);
    }
    ::syscall(SYS_close_range, 4, ~0U, CLOSE_RANGE_CLOEXEC);
  } else {
    ::syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC);
  }
  // The init's forwarding handlers must not run here; execve would reset them anyway.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2}) ::sigaction(sig, &dfl, nullptr);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  if (b->setup != nullptr) {
    // Raw system calls (identity.cc): this task shares the init's memory, not its credentials.
    const char* what = "";
    if (int e = DropIdentity(b->setup->uid, b->setup->gid, &what); e != 0) {
      b->exec_err = e;
      ::_exit(127);
    }
    if (int e = LoadSeccompPolicy(b->setup->seccomp); e != 0) {
      b->exec_err = e;
      ::_exit(127);
    }
  }
  ::execve(b->claim->exec_path, b->claim->argv, b->claim->envp);
  b->exec_err = errno ? errno : ENOEXEC;
  ::_exit(127);
}

[[noreturn]] void ChildFail(int sock, ChildStep step, int err, const char* what, const char* path = nullptr) {
  child::Report(sock, step, err, what, path);
  ::_exit(127);
}

// Receives the claim into g_claim_buf and the mount fds beside it. Bytes, 0 on EOF, -errno.
static_assert(kClaimMaxFds <= kMaxPassedFds);
ssize_t ReceiveClaim(int sock, int* fds, int* nfds) {
  return ReceiveWithFds(sock, g_claim_buf, sizeof g_claim_buf, fds, kClaimMaxFds, nfds);
}

// Waits for the claim and decodes it into g_claim; exits quietly when the socket closes first
// (retired unclaimed, or the daemon is gone).
void AwaitClaim(int sock) {
  int mount_fds[kClaimMaxFds];
  int n_mount_fds = 0;
  ssize_t n = ReceiveClaim(sock, mount_fds, &n_mount_fds);
  if (n == 0) ::_exit(0);
  if (n < 0) ChildFail(sock, ChildStep::kClaim, static_cast<int>(-n), "receive the claim");
  const char* what = "";
  if (!DecodeClaim(g_claim_buf, static_cast<size_t>(n), mount_fds, n_mount_fds, &g_claim, &what))
    ChildFail(sock, ChildStep::kClaim, EINVAL, what);
}

// The claim's detached mounts (the code, runtime, layers, /tmp) attached on their mount points,
// then into /var/task.
void AttachFunctionMounts(int sock) {
  int err = 0;
  const char* what = "";
  const char* path = "";
  if (!ExecuteMountOps(g_claim.ops, g_claim.n_ops, &err, &what, &path))
    ChildFail(sock, ChildStep::kMount, err, what, path);
  if (::chdir(kTaskRoot) != 0) ChildFail(sock, ChildStep::kPivotRoot, errno, "chdir", kTaskRoot);
}

// The last steps before the function's code runs, the same for a plain claim and a pre-started
// runtime's: signals sent to the init are forwarded to the runtime, the sandbox user, the
// parent-death signal again (changing credentials clears it), and seccomp last: from here on,
// only what the bootstrap may do.
void EnterFunctionIdentity(const BlankSetup& setup, int sock) {
  struct sigaction fwd {};
  fwd.sa_handler = ForwardSignal;
  fwd.sa_flags = SA_RESTART;
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2}) ::sigaction(sig, &fwd, nullptr);
  const char* what = "";
  if (int e = DropIdentity(setup.uid, setup.gid, &what); e != 0) ChildFail(sock, ChildStep::kIdentity, e, what);
  ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  if (int e = LoadSeccompPolicy(setup.seccomp); e != 0) ChildFail(sock, ChildStep::kSeccomp, e, "seccomp(SET_MODE_FILTER)");
}

[[noreturn]] void RunClaimed(const BlankSetup& setup, int sock, int out_w, int err_w);
[[noreturn]] void RunPrestarted(const BlankSetup& setup, int sock, int out_w, int err_w);
[[noreturn]] void ReapUntilBootstrapExits(int sock, pid_t boot);

// Phase 1, ahead of need: everything that does not depend on the function. The spawner's clone3
// made the mount, pid, ipc and uts namespaces (and net, without a pooled one); this is pid 1.
[[noreturn]] void RunBlank(const int* fds, int nfds, const unsigned char* payload_bytes, void* arg) {
  const BlankSetup& setup = *static_cast<const BlankSetup*>(arg);
  BlankPayload payload;
  __builtin_memcpy(&payload, payload_bytes, sizeof payload);
  const int sock = fds[0], out_w = fds[1], err_w = fds[2];
  const int netns = payload.has_netns ? fds[3] : -1;
  const int* procs = fds + 3 + (payload.has_netns ? 1 : 0);
  if (nfds != 3 + (payload.has_netns ? 1 : 0) + payload.n_procs) ::_exit(127);

  // Dies with the daemon (CLONE_PARENT made it the daemon's child): no orphaned sandboxes.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  ::prctl(PR_SET_NAME, "hearth-init", 0, 0, 0);
  child::ResetSignals();

  // Close every fd but ours (the spawner holds only its socket; be sure anyway).
  {
    int keep[kSpawnMaxFds];
    int n = 0;
    for (int i = 0; i < nfds; ++i) {
      int fd = fds[i], j = n++;
      while (j > 0 && keep[j - 1] > fd) keep[j] = keep[j - 1], --j;
      keep[j] = fd;
    }
    int prev = 2;
    for (int i = 0; i < n; ++i) {
      if (keep[i] > prev + 1) ::syscall(SYS_close_range, prev + 1, keep[i] - 1, 0);
      prev = keep[i];
    }
    ::syscall(SYS_close_range, prev + 1, ~0U, 0);
  }

  // Join the environment's cgroups ("0" = this process), then make them our cgroup root.
  for (int i = 0; i < payload.n_procs; ++i) {
    if (::write(procs[i], "0", 1) != 1) ChildFail(sock, ChildStep::kCgroup, errno, "join cgroup (write cgroup.procs)");
    ::close(procs[i]);
  }
  if (::unshare(CLONE_NEWCGROUP) != 0) ChildFail(sock, ChildStep::kCgroup, errno, "unshare(CLONE_NEWCGROUP)");

  // Network: enter the pooled netns (the daemon already holds its listener), or, in the fresh one
  // clone() made: lo up, the Runtime API listener on 127.0.0.1:9001, handed to the daemon.
  const char* what = "";
  if (netns >= 0) {
    if (::setns(netns, CLONE_NEWNET) != 0) ChildFail(sock, ChildStep::kNetwork, errno, "setns(pooled netns)");
    ::close(netns);
  } else {
    if (int e = BringLoopbackUp(&what); e != 0) ChildFail(sock, ChildStep::kNetwork, e, what);
    int listener = ListenRuntimeApi(&what);
    if (listener < 0) ChildFail(sock, ChildStep::kNetwork, -listener, what);
    ChildRecord r;
    r.step = ChildStep::kListener;
    if (int e = SendRecordWithFd(sock, r, listener); e != 0) ChildFail(sock, ChildStep::kNetwork, e, "send listener");
    ::close(listener);
  }

  if (::sethostname("sandbox", 7) != 0) ChildFail(sock, ChildStep::kHostname, errno, "sethostname");
  if (::setdomainname("localdomain", 11) != 0) ChildFail(sock, ChildStep::kHostname, errno, "setdomainname");

  // The common part of the root (/usr, /etc, /proc, /dev, empty mount points for the function),
  // then pivot_root into it, the host's tree detached and "/" read-only: the mount syscalls that
  // wait for RCU grace periods (tens of ms on a loaded host) happen here, off the cold path.
  {
    int err = 0;
    const char* path = "";
    if (!ExecuteMountPlan(*setup.base_plan, &err, &what, &path)) ChildFail(sock, ChildStep::kMount, err, what, path);
    if (!EnterNewRoot(setup.base_plan->new_root.c_str(), "/", &err, &what))
      ChildFail(sock, ChildStep::kPivotRoot, err, what);
  }
  if (int e = ApplyRlimits(&what); e != 0) ChildFail(sock, ChildStep::kRlimit, e, what);

  child::Report(sock, ChildStep::kBlank, 0, "");
  RunClaimed(setup, sock, out_w, err_w);
}

// Phase 2, on the cold path: the function's mounts, the final root, the identity, seccomp, and
// the bootstrap; then the init's reaping loop.
[[noreturn]] void RunClaimed(const BlankSetup& setup, int sock, int out_w, int err_w) {
  AwaitClaim(sock);
  if (g_claim.prestart) RunPrestarted(setup, sock, out_w, err_w);
  // Made at the spawner's low priority; the function runs at the normal one.
  if (::setpriority(PRIO_PROCESS, 0, 0) != 0) ChildFail(sock, ChildStep::kClaim, errno, "setpriority 0");

  AttachFunctionMounts(sock);
  EnterFunctionIdentity(setup, sock);

  // The bootstrap: clone(CLONE_VM | CLONE_VFORK) on our own stack block, as posix_spawn does: no
  // copy of the init's address space, and the init resumes only once the bootstrap has executed or
  // failed to (its errno is then in boot.exec_err, shared memory). Every signal is blocked across
  // the clone, so no handler of the init runs on the bootstrap's stack before execve.
  BootArgs boot_args{&g_claim, out_w, err_w, 0};
  sigset_t all, old;
  sigfillset(&all);
  ::sigprocmask(SIG_SETMASK, &all, &old);
  pid_t boot = ::clone(BootMain, g_boot_stack + sizeof g_boot_stack, CLONE_VM | CLONE_VFORK | SIGCHLD, &boot_args);
  int clone_err = errno;
  ::sigprocmask(SIG_SETMASK, &old, nullptr);
  if (boot < 0) ChildFail(sock, ChildStep::kFork, clone_err, "clone bootstrap");
  g_forward_ready = 1;
  ::close(out_w);
  ::close(err_w);
  if (boot_args.exec_err != 0) {
    int st;
    while (::waitpid(boot, &st, 0) < 0 && errno == EINTR) {
    }
    ChildFail(sock, ChildStep::kExec, boot_args.exec_err, "execve", g_claim.exec_path);
  }
  child::Report(sock, ChildStep::kReady, 0, "", nullptr, boot);
  ReapUntilBootstrapExits(sock, boot);
}

// Init: reap everything; when the bootstrap is gone, so is the sandbox.
[[noreturn]] void ReapUntilBootstrapExits(int sock, pid_t boot) {
  int boot_status = 0;
  for (;;) {
    int st = 0;
    pid_t p = ::waitpid(-1, &st, 0);
    if (p < 0) {
      if (errno == EINTR) continue;
      break;  // ECHILD
    }
    if (p == boot) {
      boot_status = st;
      g_forward_ready = 0;
      ::kill(-1, SIGKILL);
    }
  }
  child::Report(sock, ChildStep::kExited, 0, "", nullptr, boot_status);
  ::_exit(0);
}

// A pre-start (still off the cold path, at the spawner's low priority): the runtime attached at
// /var/runtime, its program started as the sandbox user under seccomp, with its end of a socket on fd 3; then, on the cold path, the function's claim: its mounts, nice 0, the init's
// own identity and seccomp (as on the normal path), and its environment sent to the runtime.
[[noreturn]] void RunPrestarted(const BlankSetup& setup, int sock, int out_w, int err_w) {
  const char* what = "";
  {
    int err = 0;
    const char* path = "";
    if (!ExecuteMountOps(g_claim.ops, g_claim.n_ops, &err, &what, &path))
      ChildFail(sock, ChildStep::kMount, err, what, path);
  }
  int chan[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, chan) != 0)
    ChildFail(sock, ChildStep::kFork, errno, "socketpair for the pre-started runtime");
  BootArgs boot_args{&g_claim, out_w, err_w, 0, chan[1], &setup};
  sigset_t all, old;
  sigfillset(&all);
  ::sigprocmask(SIG_SETMASK, &all, &old);
  pid_t boot = ::clone(BootMain, g_boot_stack + sizeof g_boot_stack, CLONE_VM | CLONE_VFORK | SIGCHLD, &boot_args);
  int clone_err = errno;
  ::sigprocmask(SIG_SETMASK, &old, nullptr);
  if (boot < 0) ChildFail(sock, ChildStep::kFork, clone_err, "clone bootstrap");
  ::close(chan[1]);
  if (boot_args.exec_err != 0) {
    int st;
    while (::waitpid(boot, &st, 0) < 0 && errno == EINTR) {
    }
    ChildFail(sock, ChildStep::kExec, boot_args.exec_err, "execve (pre-start)", g_claim.exec_path);
  }
  child::Report(sock, ChildStep::kPrestarted, 0, "", nullptr, boot);

  // Wait for the function; a runtime that exits (or talks) meanwhile ends this sandbox, so the
  // pool sees it dead and skips it.
  for (;;) {
    pollfd p[2] = {{sock, POLLIN, 0}, {chan[0], POLLIN, 0}};
    int pr = ::poll(p, 2, -1);
    if (pr < 0 && errno == EINTR) continue;
    if (pr < 0 || p[1].revents != 0) {
      ::kill(-1, SIGKILL);
      ::_exit(1);
    }
    if (p[0].revents != 0) break;
  }
  AwaitClaim(sock);  // exits when retired unclaimed: the pid namespace (the runtime) goes with us
  if (g_claim.prestart) ChildFail(sock, ChildStep::kClaim, EINVAL, "a second pre-start");
  // The function runs at the normal priority: the init and every thread of the runtime (its
  // process group: the bootstrap called setsid()).
  if (::setpriority(PRIO_PROCESS, 0, 0) != 0 || ::setpriority(PRIO_PGRP, static_cast<id_t>(boot), 0) != 0)
    ChildFail(sock, ChildStep::kClaim, errno, "setpriority 0");
  AttachFunctionMounts(sock);
  EnterFunctionIdentity(setup, sock);
  // The function's environment, NUL-terminated entries, then end of stream.
  for (size_t i = 0; i < g_claim.n_env; ++i) {
    const char* e = g_claim.envp[i];
    size_t len = __builtin_strlen(e) + 1, off = 0;
    while (off < len) {
      ssize_t w = ::send(chan[0], e + off, len - off, MSG_NOSIGNAL);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) ChildFail(sock, ChildStep::kExec, w < 0 ? errno : EPIPE, "hand the function to the pre-started runtime");
      off += static_cast<size_t>(w);
    }
  }
  ::close(chan[0]);
  g_forward_ready = 1;
  ::close(out_w);
  ::close(err_w);
  child::Report(sock, ChildStep::kReady, 0, "", nullptr, boot);
  ReapUntilBootstrapExits(sock, boot);
}

// ---- the parent ----

// Reads handshake records until `want` (collecting a listener on the way), an error record, EOF
// or the deadline. The error names the failing step.
Status AwaitStep(int sock, ChildStep want, std::chrono::steady_clock::time_point deadline, UniqueFd* listener,
                 int* value = nullptr) {
  for (;;) {
    int left = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count());
    pollfd p{sock, POLLIN, 0};
    int pr = left > 0 ? ::poll(&p, 1, left) : 0;
    if (pr < 0 && errno == EINTR) continue;
    if (pr <= 0) return Status::DeadlineExceeded("sandbox setup did not finish within 10 s");
    ChildRecord r;
    UniqueFd fd;
    ssize_t n = ReceiveRecord(sock, &r, &fd);
    if (n != sizeof r)
      return Status::Internal(n == 0 ? "sandbox init exited during setup without a report"
                                     : "bad handshake record from the sandbox");
    if (r.step == ChildStep::kListener) {
      *listener = std::move(fd);
      continue;
    }
    if (r.step == want) {
      if (value) *value = r.value;
      return Status::Ok();
    }
    r.message[sizeof r.message - 1] = '\0';
    std::string msg = fmt::format("sandbox setup step '{}' failed: {}: {}", ChildStepName(r.step), r.message,
                                  std::strerror(r.err));
    if (r.step == ChildStep::kExec && (r.err == ENOENT || r.err == EACCES || r.err == ENOEXEC))
      return r.err == ENOENT ? Status::NotFound(msg) : Status::PermissionDenied(msg);
    return Status::Internal(msg);
  }
}

// A blank sandbox: the init of a sandbox made ahead of need (namespaces, cgroup without limits,
// network, the common part of the root), parked in recvmsg() until its claim. The daemon owns it:
// destroying an unclaimed one kills and reaps the init and removes its cgroup.
struct Blank {
  pid_t pid = -1;
  UniqueFd pidfd, sock, out_r, err_r, listener;
  std::unique_ptr<EnvironmentCgroup> cgroup;
  std::unique_ptr<Slirp> slirp;  // egress mode only

  Blank() = default;
  Blank(const Blank&) = delete;
  Blank& operator=(const Blank&) = delete;
  ~Blank() {
    if (pid > 0) {
      ::syscall(SYS_pidfd_send_signal, pidfd.get(), SIGKILL, nullptr, 0);
      int status;
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
    }
    if (cgroup) (void)cgroup->Destroy();
  }
};
using BlankPtr = std::unique_ptr<Blank>;

// Keeps `size` blank sandboxes ready, made by its own thread at low priority (nice 10; the
// spawner clones them at nice 10 too, and their cgroups have the lowest CPU weight until claimed).
class BlankPool {
 public:
  using Make = std::function<Result<BlankPtr>()>;
  BlankPool(int size, Make make) : size_(size), make_(std::move(make)) {}
  ~BlankPool() { Stop(); }
  void Start() {
    if (size_ <= 0) return;
    std::lock_guard lock(mu_);
    if (!thread_.joinable() && !stop_) thread_ = std::thread([this] { Run(); });
  }
  void Stop() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    std::deque<BlankPtr> drop;
    std::lock_guard lock(mu_);
    drop.swap(ready_);
  }
  BlankPtr TryTake() {
    std::unique_lock lock(mu_);
    if (ready_.empty()) {
      ++misses_;
      return nullptr;
    }
    BlankPtr b = std::move(ready_.front());
    ready_.pop_front();
    ++hits_;
    last_take_ = std::chrono::steady_clock::now();
    lock.unlock();
    cv_.notify_all();
    return b;
  }

 private:
  void Run() {
    ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 10);
    std::unique_lock lock(mu_);
    while (!stop_) {
      if (ready_.size() >= static_cast<size_t>(size_)) {
        cv_.wait(lock);
        continue;
      }
      // Not while the launch that just took one is still starting its bootstrap (2 vCPUs): unless
      // the pool is empty, wait until kRefillDelay after the last take.
      if (!ready_.empty() && std::chrono::steady_clock::now() < last_take_ + kRefillDelay) {
        cv_.wait_until(lock, last_take_ + kRefillDelay, [&] { return stop_; });
        continue;
      }
      lock.unlock();
      Result<BlankPtr> b = make_();
      lock.lock();
      if (!b) {
        error_ = b.error().message();
        cv_.wait_for(lock, std::chrono::seconds(1), [&] { return stop_; });  // back off
        continue;
      }
      ++made_;
      ready_.push_back(std::move(*b));
    }
  }

  const int size_;
  const Make make_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<BlankPtr> ready_;  // GUARDED_BY(mu_)
  std::chrono::steady_clock::time_point last_take_;  // GUARDED_BY(mu_)
  uint64_t hits_ = 0, misses_ = 0, made_ = 0;  // GUARDED_BY(mu_)
  std::string error_;           // GUARDED_BY(mu_)
  bool stop_ = false;           // GUARDED_BY(mu_)
  std::thread thread_;
};

class SandboxProcess final : public Process {
 public:
  SandboxProcess(pid_t pid, UniqueFd pidfd, UniqueFd sock, UniqueFd out, UniqueFd err, UniqueFd listener,
                 std::unique_ptr<EnvironmentCgroup> cgroup, std::unique_ptr<Slirp> slirp)
      : pid_(pid), pidfd_(std::move(pidfd)), sock_(std::move(sock)), out_(std::move(out)), err_(std::move(err)),
        listener_(std::move(listener)), cgroup_(std::move(cgroup)), slirp_(std::move(slirp)) {}

  ~SandboxProcess() override {
    if (frozen_) SetFrozen(false);  // a v1-frozen task dies only once thawed
    if (!reaped_) {
      // Killing pid 1 of the namespace kills every process in it.
      ::syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGKILL, nullptr, 0);
      int status;
      while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
    }
    if (cgroup_) (void)cgroup_->Destroy();
    slirp_.reset();  // egress: its slirp4netns goes with it
  }

  int pid() const override { return pid_; }
  int exit_fd() const override { return pidfd_.get(); }
  UniqueFd TakeStdout() override { return std::move(out_); }
  UniqueFd TakeStderr() override { return std::move(err_); }
  UniqueFd TakeRuntimeApiListener() override { return std::move(listener_); }
  std::string runtime_api_address() const override { return kRuntimeApiAddress; }

  void Signal(int sig) override {
    if (reaped_) return;
    if (frozen_) SetFrozen(false);  // a frozen runtime would not see SIGTERM
    // The init forwards catchable signals to every process of the sandbox.
    ::syscall(SYS_pidfd_send_signal, pidfd_.get(), sig, nullptr, 0);
  }

  std::optional<int> TryReap() override {
    if (reaped_) return status_;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) != pid_) return std::nullopt;
    reaped_ = true;
    status_ = status;  // the init's own status if it never reported (killed by us, OOM...)
    ChildRecord r;
    UniqueFd ignored;
    while (ReceiveRecord(sock_.get(), &r, &ignored, MSG_DONTWAIT) == sizeof r) {
      if (r.step == ChildStep::kExited) status_ = r.value;
    }
    if (cgroup_) {
      peak_ = cgroup_->PeakMemoryBytes();
      oom_ = cgroup_->OomKills() > 0;
      (void)cgroup_->Destroy();
    }
    slirp_.reset();
    return status_;
  }

  int64_t PeakMemoryBytes() const override {
    if (!reaped_ && cgroup_) peak_ = cgroup_->PeakMemoryBytes();
    return peak_;
  }
  bool OomKilled() const override {
    if (!reaped_ && cgroup_) oom_ = oom_ || cgroup_->OomKills() > 0;
    return oom_;
  }
  void EndInit() override {
    if (!reaped_ && cgroup_) cgroup_->EndInit();
  }
  bool SetFrozen(bool frozen) override {
    if (reaped_ || !cgroup_ || !cgroup_->SetFrozen(frozen).ok()) return false;
    frozen_ = frozen;
    return true;
  }

 private:
  pid_t pid_;
  UniqueFd pidfd_, sock_, out_, err_, listener_;
  std::unique_ptr<EnvironmentCgroup> cgroup_;
  std::unique_ptr<Slirp> slirp_;  // egress mode only
  bool reaped_ = false;
  bool frozen_ = false;
  int status_ = 0;
  mutable int64_t peak_ = 0;
  mutable bool oom_ = false;
};

Status WriteText(const fs::path& p, std::string_view text) {
  std::ofstream out(p, std::ios::trunc);
  out << text;
  out.close();
  if (!out) return Status::IOError(fmt::format("write '{}'", p.string()));
  ::chmod(p.c_str(), 0644);
  return Status::Ok();
}

// The sandbox's /etc: generated files plus mount points for what is bound from the host.
Status GenerateEtc(const fs::path& etc, uid_t uid, gid_t gid, NetworkMode network) {
  std::error_code ec;
  fs::create_directories(etc, ec);
  if (ec) return Status::IOError(fmt::format("create '{}': {}", etc.string(), ec.message()));
  ::chmod(etc.c_str(), 0755);
  HEARTH_RETURN_IF_ERROR(WriteText(etc / "passwd", fmt::format("root:x:0:0:root:/root:/sbin/nologin\n"
                                                               "{0}:x:{1}:{2}::/home/{0}:/sbin/nologin\n"
                                                               "nobody:x:65534:65534:nobody:/:/sbin/nologin\n",
                                                               kSandboxUser, uid, gid)));
  HEARTH_RETURN_IF_ERROR(WriteText(etc / "group", fmt::format("root:x:0:\n{}:x:{}:\nnogroup:x:65534:\n",
                                                              kSandboxUser, gid)));
  HEARTH_RETURN_IF_ERROR(WriteText(etc / "hosts", "127.0.0.1\tlocalhost sandbox sandbox.localdomain\n"
                                                  "::1\tlocalhost ip6-localhost ip6-loopback\n"));
  HEARTH_RETURN_IF_ERROR(WriteText(etc / "hostname", "sandbox\n"));
  HEARTH_RETURN_IF_ERROR(WriteText(etc / "nsswitch.conf", "passwd: files\ngroup: files\nshadow: files\n"
                                                          "hosts: files dns\nnetworks: files\nprotocols: files\n"
                                                          "services: files\n"));
  std::string resolv;
  {
    std::ifstream in("/etc/resolv.conf");
    std::stringstream ss;
    ss << in.rdbuf();
    resolv = ss.str();
  }
  // Egress: slirp4netns's DNS forwarder (it asks the host's resolvers). None: the host's file,
  // harmless (nothing is reachable).
  if (network == NetworkMode::kEgress) resolv = fmt::format("nameserver {}\n", kSlirpDnsAddress);
  HEARTH_RETURN_IF_ERROR(WriteText(etc / "resolv.conf", resolv.empty() ? "nameserver 127.0.0.53\n" : resolv));
  fs::remove(etc / "localtime", ec);
  fs::create_symlink("/usr/share/zoneinfo/Etc/UTC", etc / "localtime", ec);
  for (const char* dir : {"ssl", "alternatives", "ca-certificates"}) {
    fs::create_directories(etc / dir, ec);
    ::chmod((etc / dir).c_str(), 0755);
  }
  if (!fs::exists(etc / "ld.so.cache", ec)) HEARTH_RETURN_IF_ERROR(WriteText(etc / "ld.so.cache", ""));
  return Status::Ok();
}

std::string Tag(const fs::path& state_dir) {
  return fmt::format("{:08x}", static_cast<uint32_t>(std::hash<std::string>{}(state_dir.string())));
}

class SandboxLauncher final : public Launcher {
 public:
  SandboxLauncher(SandboxOptions opt, std::unique_ptr<CgroupManager> cgroups, SeccompPolicy seccomp)
      : opt_(std::move(opt)),
        cgroups_(std::move(cgroups)),
        seccomp_(std::move(seccomp)),
        seccomp_prog_(seccomp_.prog()),
        tmp_(opt_.state_dir / "tmp-images", opt_.uid, opt_.gid,
             TmpPoolOptions{.per_size = opt_.tmp_pool_per_size, .prefill_sizes = opt_.tmp_prefill_sizes}),
        net_(opt_.network == NetworkMode::kEgress ? std::max(1, opt_.netns_pool) : opt_.netns_pool,
             opt_.network == NetworkMode::kEgress
                 ? std::optional<SlirpOptions>(SlirpOptions{.binary = opt_.slirp4netns, .pid_dir = SlirpDir()})
                 : std::nullopt),
        blanks_(opt_.blank_pool, [this] { return MakeBlank(false); }) {
    for (size_t i = 0; i < opt_.prestart.size(); ++i) {
      opt_.prestart[i].runtime_dir = fs::absolute(opt_.prestart[i].runtime_dir);
      prestarted_.push_back(std::make_unique<BlankPool>(opt_.prestart[i].count, [this, i] { return MakePrestarted(i); }));
    }
    RootfsInputs in;
    in.etc_dir = opt_.state_dir / "etc";
    base_spec_ = BuildBaseRootfsSpec(in);
    base_plan_ = PrepareMountPlan(base_spec_, NewRoot());
    setup_.base_plan = base_plan_.get();
    setup_.seccomp = &seccomp_prog_;
    setup_.uid = opt_.uid;
    setup_.gid = opt_.gid;
  }

  // Forks the spawner (before any thread of ours runs): every sandbox is cloned by it.
  Status StartSpawner() {
    // The common part of the root must be sound with any function part after it.
    RootfsInputs probe;
    probe.etc_dir = opt_.state_dir / "etc";
    probe.code_dir = opt_.state_dir;
    probe.tmp_tmpfs_options = "size=1m";
    HEARTH_RETURN_IF_ERROR(ValidateMountSpec(BuildRootfsSpec(probe)));
    auto s = Spawner::Start(&RunBlank, &setup_);
    if (!s) return s.error();
    spawner_ = std::move(*s);
    return Status::Ok();
  }

  fs::path SlirpDir() const { return opt_.state_dir / "net"; }
  std::string NewRoot() const { return (opt_.state_dir / "root").string(); }

  // Egress: one slot (netns + slirp4netns) made now, the start-up check that it really works.
  Status PrimeNetwork() { return opt_.network == NetworkMode::kEgress ? net_.Prime() : Status::Ok(); }

  // The background threads that keep /tmp volumes, network namespaces and blank sandboxes ready.
  void StartPools() {
    tmp_.Start();
    net_.Start();
    blanks_.Start();
    for (auto& pool : prestarted_) pool->Start();
  }

  const char* name() const override { return "sandbox"; }
  std::string TaskRoot(const fs::path&) const override { return kTaskRoot; }

  Status SweepLeftovers() override {
    // Killing what is in our cgroups kills each sandbox's init, and with it its pid namespace;
    // the mount namespace goes, the /tmp filesystem is unmounted and its loop device detaches.
    // slirp4netns processes of a killed daemon exit on their own (their exit pipe closed); any
    // still alive are killed from their pid files. This launcher's own cgroups (its blanks may
    // exist already) carry its instance id and are kept.
    Status st = cgroups_->Sweep(instance_ + "-");
    Status st2 = tmp_.Sweep();
    Status st3 = SweepSlirp(SlirpDir());
    if (!st.ok()) return st;
    return st2.ok() ? st3 : st2;
  }

  // A new blank sandbox (the pool's refill, or a launch that found the pool empty: `urgent`).
  Result<BlankPtr> MakeBlank(bool urgent) {
    auto blank = std::make_unique<Blank>();
    auto cg = cgroups_->Create(fmt::format("{}-{}", instance_, ++blank_counter_),
                               CgroupLimits{.memory_mb = 0, .background = !urgent});
    if (!cg) return std::unexpected(cg.error());
    blank->cgroup = std::move(*cg);
    // None: a pooled netns if one is ready, else clone(CLONE_NEWNET). Egress: only a pooled one
    // (it carries the slirp4netns), waiting for the pool if needed; never a silent downgrade.
    std::optional<NetSlot> net;
    if (opt_.network == NetworkMode::kEgress) {
      auto slot = net_.Take(std::chrono::milliseconds(kSetupTimeoutMs));
      if (!slot) return std::unexpected(Status::Unavailable("network egress: " + slot.error().message()));
      net = std::move(*slot);
    } else {
      net = net_.TryTake();
    }
    int out_pipe[2], err_pipe[2], sv[2];
    if (::pipe2(out_pipe, O_CLOEXEC) != 0) return std::unexpected(PosixError("pipe", errno));
    blank->out_r.Reset(out_pipe[0]);
    UniqueFd out_w(out_pipe[1]);
    if (::pipe2(err_pipe, O_CLOEXEC) != 0) return std::unexpected(PosixError("pipe", errno));
    blank->err_r.Reset(err_pipe[0]);
    UniqueFd err_w(err_pipe[1]);
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
      return std::unexpected(PosixError("socketpair", errno));
    blank->sock.Reset(sv[0]);
    UniqueFd child_sock(sv[1]);

    std::vector<int> fds = {child_sock.get(), out_w.get(), err_w.get()};
    if (net) fds.push_back(net->netns.get());
    const auto& procs = blank->cgroup->ProcsFds();
    fds.insert(fds.end(), procs.begin(), procs.end());
    SpawnRequest req;
    req.clone_flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | (net ? 0 : CLONE_NEWNET);
    req.fds = fds;
    req.urgent = urgent;
    BlankPayload payload{net ? 1 : 0, static_cast<int32_t>(procs.size())};
    std::memcpy(req.payload, &payload, sizeof payload);
    auto spawned = spawner_->Spawn(req);
    if (!spawned) return std::unexpected(spawned.error());
    blank->pid = spawned->pid;
    blank->pidfd = std::move(spawned->pidfd);
    blank->cgroup->CloseProcsFds();
    if (net) {
      blank->listener = std::move(net->listener);
      blank->slirp = std::move(net->slirp);
    }
    // Our copies of the child's ends close here (child_sock, out_w, err_w, the netns).
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kSetupTimeoutMs);
    HEARTH_RETURN_IF_ERROR(AwaitStep(blank->sock.get(), ChildStep::kBlank, deadline, &blank->listener));
    if (!blank->listener.valid())
      return std::unexpected(Status::Internal("sandbox did not hand over its Runtime API listener"));
    return blank;
  }

  // The first sandbox of `pool` still alive (dead ones are dropped and counted); null when empty.
  BlankPtr TakeLive(BlankPool& pool) {
    BlankPtr blank = pool.TryTake();
    while (blank && !Alive(*blank)) {
      Count(counters_.dead_in_pool);
      blank = pool.TryTake();
    }
    return blank;
  }

  static void Count(std::atomic<int64_t>& counter) { counter.fetch_add(1, std::memory_order_relaxed); }

  static bool Alive(const Blank& b) {
    pollfd p{b.pidfd.get(), POLLIN, 0};
    return ::poll(&p, 1, 0) == 0;  // a pidfd becomes readable when the process exits
  }

  // A pre-start of runtime `index` (PrestartRuntime): a blank sandbox whose init attaches the
  // runtime and starts it, waiting for its function.
  Result<BlankPtr> MakePrestarted(size_t index) {
    const PrestartRuntime& rt = opt_.prestart[index];
    auto made = MakeBlank(false);
    if (!made) return std::unexpected(made.error());
    BlankPtr blank = std::move(*made);
    auto runtime_mnt = CloneReadOnlyMount(rt.runtime_dir);
    if (!runtime_mnt) return std::unexpected(runtime_mnt.error());
    Claim claim;
    claim.prestart = true;
    claim.exec_path = rt.entrypoint;
    claim.env = rt.env;
    claim.env.push_back(fmt::format("{}=3", kPrestartFdVariable));
    claim.mounts.push_back({.kind = MountKind::kAttachMount, .target = "/var/runtime", .fd = runtime_mnt->get()});
    HEARTH_RETURN_IF_ERROR(SendClaim(*blank, claim));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kSetupTimeoutMs);
    HEARTH_RETURN_IF_ERROR(AwaitStep(blank->sock.get(), ChildStep::kPrestarted, deadline, &blank->listener));
    return blank;
  }

  // The pre-started runtime that can serve `spec`, if any (PrestartRuntime).
  BlankPool* PrestartPoolFor(const LaunchSpec& spec) {
    if (spec.runtime_dir.empty()) return nullptr;
    for (size_t i = 0; i < opt_.prestart.size(); ++i) {
      const PrestartRuntime& rt = opt_.prestart[i];
      if (rt.count > 0 && rt.entrypoint == spec.entrypoint && rt.runtime_dir == fs::absolute(spec.runtime_dir) &&
          PrestartCompatible(rt.env, spec.env))
        return prestarted_[i].get();
    }
    return nullptr;
  }

  Status SendClaim(const Blank& blank, const Claim& claim) {
    // Targets as seen after pivot_root (the blank is in its new root already).
    auto message = EncodeClaim(claim, "");
    if (!message) return message.error();
    if (SendWithFds(blank.sock.get(), message->bytes.data(), message->bytes.size(),
                    message->fds.data(), static_cast<int>(message->fds.size())) < 0)
      return PosixError("send the claim to the blank sandbox", errno);
    return Status::Ok();
  }

  void AddStats(LaunchStats& st) const override {
    auto get = [](const std::atomic<int64_t>& a) { return a.load(std::memory_order_relaxed); };
    st.from_blank_pool = get(counters_.from_blank_pool);
    st.blanks_made_on_demand = get(counters_.blanks_made_on_demand);
    st.prestarted = get(counters_.prestarted);
    st.prestart_failed = get(counters_.prestart_failed);
    st.dead_in_pool = get(counters_.dead_in_pool);
  }

  Result<ProcessPtr> Start(const LaunchSpec& spec, const fs::path& /*entry*/) override {

    // A pre-started runtime for it, if there is one ready; on any failure there, the normal path.
    if (BlankPool* pool = PrestartPoolFor(spec)) {
      BlankPtr blank = TakeLive(*pool);
      if (blank) {
        auto p = LaunchIn(std::move(blank), spec, true);
        if (p) {
          Count(counters_.prestarted);
          return p;
        }
        // That sandbox is gone (destroyed with its runtime); the function still gets its start,
        // and the failure shows in stats().
        Count(counters_.prestart_failed);
      }
    }
    // A blank sandbox from the pool (skipping any that died while it waited), or one made now.
    BlankPtr blank = TakeLive(blanks_);
    if (blank) {
      Count(counters_.from_blank_pool);
    } else {
      auto made = MakeBlank(true);
      if (!made) return std::unexpected(made.error());
      blank = std::move(*made);
      Count(counters_.blanks_made_on_demand);
    }
    return LaunchIn(std::move(blank), spec, false);
  }

  // Claims `blank` for `spec`; `prestarted`: its runtime already runs (attached at /var/runtime).
  Result<ProcessPtr> LaunchIn(BlankPtr blank, const LaunchSpec& spec, bool prestarted) {
    HEARTH_RETURN_IF_ERROR(blank->cgroup->SetLimits(CgroupLimits{.memory_mb = spec.memory_mb}));
    auto tmp = tmp_.Acquire(spec.ephemeral_storage_mb);
    if (!tmp) return std::unexpected(tmp.error());

    // The blank sandbox has left the host's tree: the code, the runtime and the layers go in as
    // detached read-only clones (a few us each), attached like /tmp.
    RootfsInputs in;
    in.code_dir = fs::absolute(spec.code_dir);
    if (!spec.opt_dir.empty()) in.opt_dir = fs::absolute(spec.opt_dir);
    if (!spec.runtime_dir.empty() && !prestarted) in.runtime_dir = fs::absolute(spec.runtime_dir);
    in.tmp_mount_fd = tmp->mount_fd.get();
    UniqueFd code_mnt, runtime_mnt, opt_mnt;
    for (auto [dir, owner, fd] : {std::tuple{&in.code_dir, &code_mnt, &in.code_mount_fd},
                                  std::tuple{&in.runtime_dir, &runtime_mnt, &in.runtime_mount_fd},
                                  std::tuple{&in.opt_dir, &opt_mnt, &in.opt_mount_fd}}) {
      if (dir->empty()) continue;
      auto m = CloneReadOnlyMount(*dir);
      if (!m) return std::unexpected(m.error());
      *owner = std::move(*m);
      *fd = owner->get();
    }
    Claim claim;
    claim.mounts = BuildFunctionRootfsSpec(in);
    {
      MountSpec full = base_spec_;
      full.insert(full.end(), claim.mounts.begin(), claim.mounts.end());
      HEARTH_RETURN_IF_ERROR(ValidateMountSpec(full));
    }
    claim.exec_path = spec.entrypoint;
    claim.env = spec.env;
    claim.env.push_back(fmt::format("LAMBDA_TASK_ROOT={}", kTaskRoot));
    claim.env.push_back(fmt::format("AWS_LAMBDA_RUNTIME_API={}", kRuntimeApiAddress));
    HEARTH_RETURN_IF_ERROR(SendClaim(*blank, claim));
    // The sandbox holds the mounts from here on (our fds close on return).
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kSetupTimeoutMs);
    HEARTH_RETURN_IF_ERROR(AwaitStep(blank->sock.get(), ChildStep::kReady, deadline, &blank->listener));
    const pid_t pid = std::exchange(blank->pid, -1);  // the SandboxProcess owns the init now
    return std::make_unique<SandboxProcess>(pid, std::move(blank->pidfd), std::move(blank->sock),
                                            std::move(blank->out_r), std::move(blank->err_r),
                                            std::move(blank->listener), std::move(blank->cgroup),
                                            std::move(blank->slirp));
  }

 private:
  SandboxOptions opt_;
  std::unique_ptr<CgroupManager> cgroups_;
  SeccompPolicy seccomp_;
  sock_fprog seccomp_prog_;
  MountSpec base_spec_;
  std::unique_ptr<MountPlan> base_plan_;
  BlankSetup setup_;
  // Names this launcher's cgroups ("hearth-<tag>-<instance>-<n>"), so that a sweep spares them.
  const std::string instance_ = NewUuid().substr(0, 8);
  std::atomic<uint64_t> blank_counter_{0};
  TmpStorage tmp_;
  NetnsPool net_;
  std::unique_ptr<Spawner> spawner_;
  struct Counters {
    std::atomic<int64_t> from_blank_pool{0}, blanks_made_on_demand{0}, prestarted{0}, prestart_failed{0},
        dead_in_pool{0};
  } counters_;
  // Last: their threads use everything above, so they stop first.
  BlankPool blanks_;
  std::vector<std::unique_ptr<BlankPool>> prestarted_;  // one per opt_.prestart entry
};

Status SelfTest(Launcher& launcher, const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  HEARTH_RETURN_IF_ERROR(WriteText(dir / "bootstrap", "#!/bin/sh\nexec /bin/true\n"));
  ::chmod((dir / "bootstrap").c_str(), 0755);
  ::chmod(dir.c_str(), 0755);
  LaunchSpec spec;
  spec.environment_id = "selftest";
  spec.code_dir = dir;
  spec.entrypoint = "/var/task/bootstrap";
  auto p = launcher.Launch(spec);
  if (!p) return p.error();
  pollfd pf{(*p)->exit_fd(), POLLIN, 0};
  if (::poll(&pf, 1, 10000) <= 0) return Status::DeadlineExceeded("self-test sandbox did not exit within 10 s");
  auto st = (*p)->TryReap();
  if (!st || !WIFEXITED(*st) || WEXITSTATUS(*st) != 0)
    return Status::Internal(fmt::format("self-test sandbox (/bin/true) ended with wait status {}", st.value_or(-1)));
  return Status::Ok();
}

}  // namespace

Result<LauncherPtr> NewSandboxLauncher(SandboxOptions opt) {
  auto fail = [](std::string why) -> Result<LauncherPtr> {
    return std::unexpected(Status::FailedPrecondition(fmt::format(
        "the sandbox cannot run on this machine: {}. Run `hearth serve --isolation=process` to use plain "
        "child processes instead (functions are then NOT isolated)", why)));
  };
  auto fail_net = [](std::string why) -> Result<LauncherPtr> {
    return std::unexpected(Status::FailedPrecondition(fmt::format(
        "network mode egress is not available on this machine: {}. Install slirp4netns, or run with "
        "`--network=none` (loopback only)", why)));
  };
  if (::geteuid() != 0) return fail("it needs root (the daemon runs as uid " + std::to_string(::geteuid()) + ")");
  if (::access("/dev/loop-control", R_OK | W_OK) != 0)
    return fail(fmt::format("/dev/loop-control: {} (the ext4 /tmp needs loop devices)", std::strerror(errno)));
  opt.state_dir = fs::absolute(opt.state_dir);
  std::error_code ec;
  fs::create_directories(opt.state_dir / "root", ec);
  if (ec) return fail(fmt::format("create '{}': {}", (opt.state_dir / "root").string(), ec.message()));
  ::chmod(opt.state_dir.c_str(), 0755);
  if (opt.network == NetworkMode::kEgress) {
    if (opt.slirp4netns.empty()) {
      auto slirp = FindSlirp4netns();
      if (!slirp) return fail_net(slirp.error().message());
      opt.slirp4netns = *slirp;
    }
    fs::create_directories(opt.state_dir / "net", ec);
    if (ec) return fail_net(fmt::format("create '{}': {}", (opt.state_dir / "net").string(), ec.message()));
  }
  if (Status st = GenerateEtc(opt.state_dir / "etc", opt.uid, opt.gid, opt.network); !st.ok())
    return fail(st.message());
  auto cgroups = NewCgroupManager(Tag(opt.state_dir));
  if (!cgroups) return fail(cgroups.error().message());
  auto seccomp = CompileSeccompPolicy();
  if (!seccomp) return fail("seccomp: " + seccomp.error().message());
  const bool self_test = opt.self_test;
  const fs::path selftest_dir = opt.state_dir / "selftest";
  auto launcher = std::make_unique<SandboxLauncher>(std::move(opt), std::move(*cgroups), std::move(*seccomp));
  // First, while this process has no threads of ours: every sandbox is cloned by the spawner.
  if (Status st = launcher->StartSpawner(); !st.ok()) return fail("spawner: " + st.message());
  if (self_test) {
    if (Status st = launcher->SweepLeftovers(); !st.ok()) return fail("sweep: " + st.message());
  }
  // Egress: slirp4netns must really attach to a namespace (the self-test then runs in that one).
  if (Status st = launcher->PrimeNetwork(); !st.ok())
    return fail_net("a network namespace with slirp4netns attached could not be made: " + st.message());
  if (self_test) {
    if (Status st = SelfTest(*launcher, selftest_dir); !st.ok()) return fail("self-test: " + st.ToString());
  }
  launcher->StartPools();
  return launcher;
}

}  // namespace hearth::sandbox
