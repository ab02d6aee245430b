#include "sandbox/sandbox_launcher.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>

#include <fmt/format.h>

#include "sandbox/cgroups.h"
#include "sandbox/child_report.h"
#include "sandbox/identity.h"
#include "sandbox/mounts.h"
#include "sandbox/net.h"
#include "sandbox/seccomp_policy.h"
#include "sandbox/slirp.h"
#include "sandbox/tmp_storage.h"

namespace hearth::sandbox {

namespace fs = std::filesystem;

const char* ChildStepName(ChildStep step) {
  switch (step) {
    case ChildStep::kReady: return "ready";
    case ChildStep::kExited: return "exited";
    case ChildStep::kListener: return "listener";
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

// Everything the child needs, prepared before clone(): the child only reads it.
struct ChildArgs {
  int sock = -1;
  int netns_fd = -1;  // a pooled netns to enter (lo up, listener already made), or -1: own netns
  int out_w = -1, err_w = -1;
  std::vector<int> keep_fds;  // sorted
  std::vector<int> procs_fds;
  const MountPlan* plan = nullptr;
  const char* exec_path = nullptr;
  std::vector<char*> argv, envp;
  const sock_fprog* seccomp = nullptr;
  void* boot_stack_top = nullptr;  // for the bootstrap's CLONE_VM clone (16-byte aligned)
  uid_t uid = 0;
  gid_t gid = 0;
};

// ---- the child: async-signal-safe only (no allocation, no locks, no exceptions) ----

volatile sig_atomic_t g_forward_ready = 0;

void ForwardSignal(int sig) {
  // From pid 1, kill(-1) reaches every other process of the sandbox.
  if (g_forward_ready) ::kill(-1, sig);
}

struct BootArgs {
  const ChildArgs* a;
  volatile int exec_err;  // written by the bootstrap (shared memory) if execve fails
};

// Runs in the bootstrap (CLONE_VM | CLONE_VFORK) until execve: the init's memory, our own stack.
int BootMain(void* p) {
  auto* b = static_cast<BootArgs*>(p);
  const ChildArgs& a = *b->a;
  ::setsid();
  int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null < 0 || ::dup2(null, 0) < 0 || ::dup2(a.out_w, 1) < 0 || ::dup2(a.err_w, 2) < 0) {
    b->exec_err = errno;
    ::_exit(127);
  }
  ::syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC);
  // The init's forwarding handlers must not run here; execve would reset them anyway.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2}) ::sigaction(sig, &dfl, nullptr);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::execve(a.exec_path, a.argv.data(), a.envp.data());
  b->exec_err = errno ? errno : ENOEXEC;
  ::_exit(127);
}

[[noreturn]] void ChildFail(const ChildArgs& a, ChildStep step, int err, const char* what, const char* path = nullptr) {
  child::Report(a.sock, step, err, what, path);
  ::_exit(127);
}

[[noreturn]] void RunChild(const ChildArgs& a) {
  // Dies with the thread that launched it (the daemon's worker): no orphaned sandboxes.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  // The daemon's handlers and ignored signals (SIGPIPE) must not leak into the sandbox.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) ::sigaction(sig, &dfl, nullptr);
  }
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);

  // Close every daemon fd except ours (other environments' pipes must see EOF without us).
  {
    int prev = 2;
    for (int fd : a.keep_fds) {
      if (fd > prev + 1) ::syscall(SYS_close_range, prev + 1, fd - 1, 0);
      prev = fd;
    }
    ::syscall(SYS_close_range, prev + 1, ~0U, 0);
  }

  // Join the environment's cgroups ("0" = this process), then make them our cgroup root.
  for (int fd : a.procs_fds) {
    if (::write(fd, "0", 1) != 1) ChildFail(a, ChildStep::kCgroup, errno, "join cgroup (write cgroup.procs)");
    ::close(fd);
  }
  if (::unshare(CLONE_NEWCGROUP) != 0) ChildFail(a, ChildStep::kCgroup, errno, "unshare(CLONE_NEWCGROUP)");

  // Network: enter the pooled netns (the daemon already holds its listener), or, in the fresh one
  // clone() made: lo up, the Runtime API listener on 127.0.0.1:9001, handed to the daemon.
  const char* what = "";
  if (a.netns_fd >= 0) {
    if (::setns(a.netns_fd, CLONE_NEWNET) != 0) ChildFail(a, ChildStep::kNetwork, errno, "setns(pooled netns)");
    ::close(a.netns_fd);
  } else {
    if (int e = BringLoopbackUp(&what); e != 0) ChildFail(a, ChildStep::kNetwork, e, what);
    int listener = ListenRuntimeApi(&what);
    if (listener < 0) ChildFail(a, ChildStep::kNetwork, -listener, what);
    ChildRecord r;
    r.step = ChildStep::kListener;
    if (int e = SendRecordWithFd(a.sock, r, listener); e != 0) ChildFail(a, ChildStep::kNetwork, e, "send listener");
    ::close(listener);
  }

  if (::sethostname("sandbox", 7) != 0) ChildFail(a, ChildStep::kHostname, errno, "sethostname");
  if (::setdomainname("localdomain", 11) != 0) ChildFail(a, ChildStep::kHostname, errno, "setdomainname");

  // Filesystem.
  {
    int err = 0;
    const char* path = "";
    if (!ExecuteMountPlan(*a.plan, &err, &what, &path)) ChildFail(a, ChildStep::kMount, err, what, path);
    if (!EnterNewRoot(a.plan->new_root.c_str(), kTaskRoot, &err, &what))
      ChildFail(a, ChildStep::kPivotRoot, err, what);
  }

  if (int e = ApplyRlimits(&what); e != 0) ChildFail(a, ChildStep::kRlimit, e, what);

  struct sigaction fwd {};
  fwd.sa_handler = ForwardSignal;
  fwd.sa_flags = SA_RESTART;
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2}) ::sigaction(sig, &fwd, nullptr);

  if (int e = DropIdentity(a.uid, a.gid, &what); e != 0) ChildFail(a, ChildStep::kIdentity, e, what);
  // The kernel clears the parent-death signal when credentials change: set it again.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  // Seccomp last: from here on, only what the bootstrap may do.
  if (int e = LoadSeccompPolicy(a.seccomp); e != 0) ChildFail(a, ChildStep::kSeccomp, e, "seccomp(SET_MODE_FILTER)");

  // The bootstrap: clone(CLONE_VM | CLONE_VFORK) on a stack the parent allocated, as posix_spawn
  // does: no copy of the init's address space (which is a copy of the whole daemon's), and the
  // init resumes only once the bootstrap has executed or failed to (its errno is then in
  // boot.exec_err, shared memory). Not fork(): glibc's atfork handlers may wait for locks held by
  // the daemon's other threads at the time of our clone(). Every signal is blocked across the
  // clone, so no handler of the init runs on the bootstrap's stack before execve.
  BootArgs boot_args{&a, 0};
  sigset_t all, old;
  sigfillset(&all);
  ::sigprocmask(SIG_SETMASK, &all, &old);
  pid_t boot = ::clone(BootMain, a.boot_stack_top, CLONE_VM | CLONE_VFORK | SIGCHLD, &boot_args);
  int clone_err = errno;
  ::sigprocmask(SIG_SETMASK, &old, nullptr);
  if (boot < 0) ChildFail(a, ChildStep::kFork, clone_err, "clone bootstrap");
  g_forward_ready = 1;
  ::close(a.out_w);
  ::close(a.err_w);
  if (boot_args.exec_err != 0) {
    int st;
    while (::waitpid(boot, &st, 0) < 0 && errno == EINTR) {
    }
    ChildFail(a, ChildStep::kExec, boot_args.exec_err, "execve", a.exec_path);
  }
  child::Report(a.sock, ChildStep::kReady, 0, "", nullptr, boot);

  // Init: reap everything; when the bootstrap is gone, so is the sandbox.
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
  child::Report(a.sock, ChildStep::kExited, 0, "", nullptr, boot_status);
  ::_exit(0);
}

// ---- the parent ----

class SandboxProcess final : public Process {
 public:
  SandboxProcess(pid_t pid, UniqueFd pidfd, UniqueFd sock, UniqueFd out, UniqueFd err, UniqueFd listener,
                 std::unique_ptr<EnvironmentCgroup> cgroup, std::unique_ptr<Slirp> slirp)
      : pid_(pid), pidfd_(std::move(pidfd)), sock_(std::move(sock)), out_(std::move(out)), err_(std::move(err)),
        listener_(std::move(listener)), cgroup_(std::move(cgroup)), slirp_(std::move(slirp)) {}

  ~SandboxProcess() override {
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

 private:
  pid_t pid_;
  UniqueFd pidfd_, sock_, out_, err_, listener_;
  std::unique_ptr<EnvironmentCgroup> cgroup_;
  std::unique_ptr<Slirp> slirp_;  // egress mode only
  bool reaped_ = false;
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
                 : std::nullopt) {}

  fs::path SlirpDir() const { return opt_.state_dir / "net"; }

  // Egress: one slot (netns + slirp4netns) made now, the start-up check that it really works.
  Status PrimeNetwork() { return opt_.network == NetworkMode::kEgress ? net_.Prime() : Status::Ok(); }

  // The background threads that keep /tmp volumes and network namespaces ready.
  void StartPools() {
    tmp_.Start();
    net_.Start();
  }

  const char* name() const override { return "sandbox"; }
  std::string TaskRoot(const fs::path&) const override { return kTaskRoot; }
  const CgroupManager& cgroups() const { return *cgroups_; }

  Status SweepLeftovers() override {
    // Killing what is in our cgroups kills each sandbox's init, and with it its pid namespace;
    // the mount namespace goes, the /tmp filesystem is unmounted and its loop device detaches.
    // slirp4netns processes of a killed daemon exit on their own (their exit pipe closed); any
    // still alive are killed from their pid files.
    Status st = cgroups_->Sweep();
    Status st2 = tmp_.Sweep();
    Status st3 = SweepSlirp(SlirpDir());
    if (!st.ok()) return st;
    return st2.ok() ? st3 : st2;
  }

  Result<ProcessPtr> Launch(const LaunchSpec& spec) override {
    fs::path entry = HostPath(spec, spec.entrypoint);
    if (entry.empty())
      return std::unexpected(Status::InvalidArgument(fmt::format("bad entrypoint '{}'", spec.entrypoint)));
    if (::access(entry.c_str(), X_OK) != 0) return std::unexpected(PosixError(entry.string(), errno));

    auto cg = cgroups_->Create(spec.environment_id, CgroupLimits{.memory_mb = spec.memory_mb});
    if (!cg) return std::unexpected(cg.error());
    auto tmp = tmp_.Acquire(spec.ephemeral_storage_mb);
    if (!tmp) return std::unexpected(tmp.error());
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

    RootfsInputs in;
    in.etc_dir = opt_.state_dir / "etc";
    in.code_dir = fs::absolute(spec.code_dir);
    if (!spec.opt_dir.empty()) in.opt_dir = fs::absolute(spec.opt_dir);
    if (!spec.runtime_dir.empty()) in.runtime_dir = fs::absolute(spec.runtime_dir);
    in.tmp_mount_fd = tmp->mount_fd.get();
    MountSpec mspec = BuildRootfsSpec(in);
    HEARTH_RETURN_IF_ERROR(ValidateMountSpec(mspec));
    auto plan = PrepareMountPlan(mspec, (opt_.state_dir / "root").string());

    int out_pipe[2], err_pipe[2], sv[2];
    if (::pipe2(out_pipe, O_CLOEXEC) != 0) return std::unexpected(PosixError("pipe", errno));
    UniqueFd out_r(out_pipe[0]), out_w(out_pipe[1]);
    if (::pipe2(err_pipe, O_CLOEXEC) != 0) return std::unexpected(PosixError("pipe", errno));
    UniqueFd err_r(err_pipe[0]), err_w(err_pipe[1]);
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
      return std::unexpected(PosixError("socketpair", errno));
    UniqueFd sock(sv[0]), child_sock(sv[1]);

    std::vector<std::string> env = spec.env;
    env.push_back(fmt::format("LAMBDA_TASK_ROOT={}", kTaskRoot));
    env.push_back(fmt::format("AWS_LAMBDA_RUNTIME_API={}", kRuntimeApiAddress));
    std::string exec_path = spec.entrypoint;

    ChildArgs a;
    a.sock = child_sock.get();
    a.out_w = out_w.get();
    a.err_w = err_w.get();
    a.procs_fds = (*cg)->ProcsFds();
    a.keep_fds = a.procs_fds;
    a.keep_fds.insert(a.keep_fds.end(), {a.sock, a.out_w, a.err_w, in.tmp_mount_fd});
    if (net) {
      a.netns_fd = net->netns.get();
      a.keep_fds.push_back(a.netns_fd);
    }
    std::sort(a.keep_fds.begin(), a.keep_fds.end());
    a.plan = plan.get();
    a.exec_path = exec_path.c_str();
    a.argv = {exec_path.data(), nullptr};
    for (auto& e : env) a.envp.push_back(e.data());
    a.envp.push_back(nullptr);
    a.seccomp = &seccomp_prog_;
    // The bootstrap's stack until its execve; the init has its own copy of this block.
    auto boot_stack = std::make_unique<char[]>(kBootStackBytes);
    a.boot_stack_top = boot_stack.get() + (kBootStackBytes & ~size_t{15});
    a.uid = opt_.uid;
    a.gid = opt_.gid;

    int pidfd = -1;
    clone_args ca{};
    ca.flags = CLONE_PIDFD | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | (net ? 0 : CLONE_NEWNET);
    ca.pidfd = reinterpret_cast<uint64_t>(&pidfd);
    ca.exit_signal = SIGCHLD;
    long pid = ::syscall(SYS_clone3, &ca, sizeof ca);
    if (pid < 0) return std::unexpected(PosixError("clone3 (new mount/pid/ipc/uts(/net) namespaces)", errno));
    if (pid == 0) RunChild(a);  // never returns

    UniqueFd pidfd_owner(pidfd);
    child_sock.Reset();
    out_w.Reset();
    err_w.Reset();
    (*cg)->CloseProcsFds();
    auto kill_child = [&]() {
      ::syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0);
      int status;
      while (::waitpid(static_cast<pid_t>(pid), &status, 0) < 0 && errno == EINTR) {
      }
    };

    UniqueFd listener;
    if (net) listener = std::move(net->listener);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kSetupTimeoutMs);
    for (;;) {
      int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                      deadline - std::chrono::steady_clock::now()).count());
      pollfd p{sock.get(), POLLIN, 0};
      int pr = left > 0 ? ::poll(&p, 1, left) : 0;
      if (pr < 0 && errno == EINTR) continue;
      if (pr <= 0) {
        kill_child();
        return std::unexpected(Status::DeadlineExceeded("sandbox setup did not finish within 10 s"));
      }
      ChildRecord r;
      UniqueFd fd;
      ssize_t n = ReceiveRecord(sock.get(), &r, &fd);
      if (n != sizeof r) {
        kill_child();
        return std::unexpected(Status::Internal(
            n == 0 ? "sandbox init exited during setup without a report" : "bad handshake record from the sandbox"));
      }
      if (r.step == ChildStep::kListener) {
        listener = std::move(fd);
        continue;
      }
      if (r.step == ChildStep::kReady) break;
      kill_child();
      r.message[sizeof r.message - 1] = '\0';
      std::string msg = fmt::format("sandbox setup step '{}' failed: {}: {}", ChildStepName(r.step), r.message,
                                    std::strerror(r.err));
      if (r.step == ChildStep::kExec && (r.err == ENOENT || r.err == EACCES || r.err == ENOEXEC))
        return std::unexpected(r.err == ENOENT ? Status::NotFound(msg) : Status::PermissionDenied(msg));
      return std::unexpected(Status::Internal(msg));
    }
    if (!listener.valid()) {
      kill_child();
      return std::unexpected(Status::Internal("sandbox did not hand over its Runtime API listener"));
    }
    // tmp->mount_fd and net->netns close here: the sandbox's namespaces hold them from now on.
    return std::make_unique<SandboxProcess>(static_cast<pid_t>(pid), std::move(pidfd_owner), std::move(sock),
                                            std::move(out_r), std::move(err_r), std::move(listener),
                                            std::move(*cg), net ? std::move(net->slirp) : nullptr);
  }

 private:
  SandboxOptions opt_;
  std::unique_ptr<CgroupManager> cgroups_;
  SeccompPolicy seccomp_;
  sock_fprog seccomp_prog_;
  TmpStorage tmp_;
  NetnsPool net_;
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
