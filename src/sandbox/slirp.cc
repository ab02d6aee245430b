#include "sandbox/slirp.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/close_range.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>
#include <vector>

extern char** environ;

namespace hearth::sandbox {

namespace fs = std::filesystem;

namespace {

constexpr int kReadyTimeoutMs = 5000;
constexpr size_t kSpawnStackBytes = 64 << 10;

// Fixed descriptor numbers in slirp4netns (argv below names them).
constexpr int kNetnsFd = 3, kReadyFd = 4, kExitFd = 5;
const char* const kSlirpArgs[] = {"slirp4netns",
                                  "--netns-type=path",
                                  "--ready-fd=4",
                                  "--exit-fd=5",
                                  "--configure",
                                  "--mtu=65520",
                                  "--disable-host-loopback",
                                  "--enable-sandbox",
                                  "--enable-seccomp",
                                  "/proc/self/fd/3",
                                  "tap0",
                                  nullptr};
const char* const kSlirpEnv[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", nullptr};

// Everything the spawned child reads; it writes only `err`/`step` (shared memory, CLONE_VM).
struct SpawnArgs {
  const char* binary;
  int netns_fd, ready_w, exit_r, err_fd;
  volatile int err = 0;
  const char* volatile step = "";
};

// The child of clone(CLONE_VM | CLONE_VFORK) until execve: async-signal-safe calls only.
[[noreturn]] void SpawnFail(SpawnArgs* a, const char* step) {
  a->err = errno ? errno : EINVAL;
  a->step = step;
  ::_exit(127);
}

int SpawnMain(void* p) {
  auto* a = static_cast<SpawnArgs*>(p);
  // The daemon's handlers must not run here (the parent blocked every signal across clone).
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) ::sigaction(sig, &dfl, nullptr);
  }
  // Its own session: a Ctrl-C meant for the daemon must not cut the sandboxes' network first.
  if (::setsid() < 0) SpawnFail(a, "setsid");
  // Made by a pool thread at nice 10; the function's traffic goes through it at the normal one.
  ::setpriority(PRIO_PROCESS, 0, 0);
  // Its own mount namespace with private propagation, so that what --enable-sandbox unmounts
  // (it pivots into an empty root) cannot propagate to the host's mounts.
  if (::unshare(CLONE_NEWNS) != 0) SpawnFail(a, "unshare(CLONE_NEWNS)");
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
    SpawnFail(a, "mount / MS_REC|MS_PRIVATE");
  int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null < 0) SpawnFail(a, "open /dev/null");
  // Move every source above the targets first, so no dup2 below overwrites one still needed.
  int t_null = ::fcntl(null, F_DUPFD_CLOEXEC, 64);
  int t_err = ::fcntl(a->err_fd, F_DUPFD_CLOEXEC, 64);
  int t_netns = ::fcntl(a->netns_fd, F_DUPFD_CLOEXEC, 64);
  int t_ready = ::fcntl(a->ready_w, F_DUPFD_CLOEXEC, 64);
  int t_exit = ::fcntl(a->exit_r, F_DUPFD_CLOEXEC, 64);
  if (t_null < 0 || t_err < 0 || t_netns < 0 || t_ready < 0 || t_exit < 0)
    SpawnFail(a, "fcntl(F_DUPFD_CLOEXEC)");
  if (::dup2(t_null, 0) < 0 || ::dup2(t_null, 1) < 0 || ::dup2(t_err, 2) < 0 ||
      ::dup2(t_netns, kNetnsFd) < 0 || ::dup2(t_ready, kReadyFd) < 0 || ::dup2(t_exit, kExitFd) < 0)
    SpawnFail(a, "dup2");
  // Nothing else of the daemon's may reach slirp4netns (another environment's exit pipe would
  // keep that slirp4netns alive).
  if (::syscall(SYS_close_range, kExitFd + 1, ~0U, CLOSE_RANGE_CLOEXEC) != 0)
    SpawnFail(a, "close_range");
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::execve(a->binary, const_cast<char* const*>(kSlirpArgs), const_cast<char* const*>(kSlirpEnv));
  SpawnFail(a, "execve");
}

std::string ReadMemfd(int fd) {
  std::string s;
  char buf[1024];
  ssize_t n;
  off_t off = 0;
  while (s.size() < 4096 && (n = ::pread(fd, buf, sizeof buf, off)) > 0) {
    s.append(buf, n);
    off += n;
  }
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  for (auto& c : s)
    if (c == '\n') c = ';';
  return s;
}

// (comm, ppid, starttime) of a live process.
struct ProcInfo {
  std::string comm;
  pid_t ppid = 0;
  unsigned long long starttime = 0;
  char state = '?';
};
std::optional<ProcInfo> ReadProc(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto open = data.find('('), close = data.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close + 2 > data.size())
    return std::nullopt;
  ProcInfo p;
  p.comm = data.substr(open + 1, close - open - 1);
  std::istringstream rest(data.substr(close + 2));
  std::string field;
  std::vector<std::string> f;
  while (rest >> field) f.push_back(field);
  if (f.size() < 20) return std::nullopt;
  p.state = f[0].empty() ? '?' : f[0][0];
  p.ppid = static_cast<pid_t>(std::atoi(f[1].c_str()));
  p.starttime = std::strtoull(f[19].c_str(), nullptr, 10);
  return p;
}

// Reaps killed slirp4netns processes off the caller's thread: a slirp4netns that holds a tap
// device takes about 17 ms (median, 32 ms max) from SIGKILL until it can be reaped (the kernel
// unregisters the device), and environments end on the daemon's event loop.
class Reaper {
 public:
  Reaper() : thread_([this] { Run(); }) {}
  ~Reaper() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void Add(pid_t pid, fs::path pid_file) {
    {
      std::lock_guard lock(mu_);
      queue_.emplace_back(pid, std::move(pid_file));
    }
    cv_.notify_all();
  }

 private:
  void Run() {
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stop_, nothing left
      auto [pid, file] = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      int status;
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      std::error_code ec;
      fs::remove(file, ec);
      lock.lock();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<pid_t, fs::path>> queue_;  // GUARDED_BY(mu_)
  bool stop_ = false;                             // GUARDED_BY(mu_)
  std::thread thread_;
};

Reaper& TheReaper() {
  static Reaper reaper;
  return reaper;
}

}  // namespace

Slirp::~Slirp() {
  exit_w_.Reset();  // slirp4netns exits on its own when it sees EOF; SIGKILL does not wait for it
  if (pidfd_.valid()) ::syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGKILL, nullptr, 0);
  TheReaper().Add(pid_, std::move(pid_file_));  // waitpid and the pid file, off this thread
}

Result<std::unique_ptr<Slirp>> StartSlirp(const SlirpOptions& options, int netns_fd) {
  int ready[2], exitp[2];
  if (::pipe2(ready, O_CLOEXEC) != 0)
    return std::unexpected(PosixError("slirp4netns: pipe (ready)", errno));
  UniqueFd ready_r(ready[0]), ready_w(ready[1]);
  if (::pipe2(exitp, O_CLOEXEC) != 0)
    return std::unexpected(PosixError("slirp4netns: pipe (exit)", errno));
  UniqueFd exit_r(exitp[0]), exit_w(exitp[1]);
  UniqueFd err(static_cast<int>(
      ::syscall(SYS_memfd_create, "hearth-slirp4netns-stderr", MFD_CLOEXEC | MFD_ALLOW_SEALING)));
  if (!err.valid()) return std::unexpected(PosixError("slirp4netns: memfd_create (stderr)", errno));

  TheReaper();  // its thread exists before the first slirp4netns, not created when one ends
  SpawnArgs a{options.binary.c_str(), netns_fd, ready_w.get(), exit_r.get(), err.get()};
  auto stack = std::make_unique<char[]>(kSpawnStackBytes);
  sigset_t all, old;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t pid = ::clone(SpawnMain, stack.get() + (kSpawnStackBytes & ~size_t{15}),
                      CLONE_VM | CLONE_VFORK | SIGCHLD, &a);
  int clone_err = errno;
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0) return std::unexpected(PosixError("slirp4netns: clone", clone_err));
  if (a.err != 0) {
    int status;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return std::unexpected(
        Status::FailedPrecondition(fmt::format("slirp4netns: starting '{}' failed at {}: {}",
                                               options.binary, a.step, std::strerror(a.err))));
  }
  ready_w.Reset();
  exit_r.Reset();
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd.valid()) {
    int e = errno;
    ::kill(pid, SIGKILL);
    int status;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return std::unexpected(PosixError("slirp4netns: pidfd_open", e));
  }
  // The pid file first, so a daemon killed from here on leaves something the sweep can find.
  fs::path pid_file = options.pid_dir / fmt::format("slirp-{}", pid);
  {
    auto info = ReadProc(pid);
    std::ofstream out(pid_file, std::ios::trunc);
    out << pid << ' ' << (info ? info->starttime : 0) << '\n';
  }
  auto slirp = std::make_unique<Slirp>(pid, std::move(pidfd), std::move(exit_w), pid_file);

  // Ready: it writes "1" on the ready fd once tap0 is configured; or it exits; or it hangs.
  pollfd pf[2] = {{ready_r.get(), POLLIN, 0},
                  {static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)), POLLIN, 0}};
  UniqueFd exit_watch(pf[1].fd);
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(kReadyTimeoutMs);
  std::string why;
  for (;;) {
    int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                    deadline - std::chrono::steady_clock::now())
                                    .count());
    int n = left > 0 ? ::poll(pf, 2, left) : 0;
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      why = fmt::format("not ready within {} ms", kReadyTimeoutMs);
      break;
    }
    if (pf[0].revents & POLLIN) {
      char c = 0;
      if (::read(ready_r.get(), &c, 1) == 1 && c == '1') break;
      why = "it closed its ready fd without reporting ready";
      break;
    }
    if (pf[1].revents) {
      why = "it exited before it was ready";
      break;
    }
    if (pf[0].revents & (POLLHUP | POLLERR)) {
      why = "it closed its ready fd without reporting ready";
      break;
    }
  }
  if (why.empty()) {
    // From now on it may not grow its stderr (its writes fail; it does not care).
    ::fcntl(err.get(), F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL);
    return slirp;
  }
  slirp.reset();  // killed (and reaped in the background); what it wrote so far is in the memfd
  std::string text = ReadMemfd(err.get());
  return std::unexpected(
      Status::FailedPrecondition(fmt::format("slirp4netns ('{}'): {}{}", options.binary, why,
                                             text.empty() ? "" : "; its stderr: " + text)));
}

Result<std::string> FindSlirp4netns() {
  std::string found;
  std::string path = std::getenv("PATH") ? std::getenv("PATH") : "";
  path += ":/usr/bin:/usr/sbin:/bin:/sbin";
  std::istringstream dirs(path);
  for (std::string dir; std::getline(dirs, dir, ':');) {
    if (dir.empty() || dir.front() != '/') continue;
    fs::path p = fs::path(dir) / "slirp4netns";
    if (::access(p.c_str(), X_OK) == 0) {
      found = p.string();
      break;
    }
  }
  if (found.empty())
    return std::unexpected(
        Status::FailedPrecondition("network egress needs slirp4netns, which is not installed "
                                   "(Debian/Ubuntu: apt-get install slirp4netns)"));
  // It must run: `slirp4netns --version`, its output read back.
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return std::unexpected(PosixError("pipe", errno));
  UniqueFd out_r(out[0]), out_w(out[1]);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out_w.get(), 1);
  posix_spawn_file_actions_adddup2(&fa, out_w.get(), 2);
  const char* argv[] = {found.c_str(), "--version", nullptr};
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, found.c_str(), &fa, nullptr, const_cast<char* const*>(argv),
                         const_cast<char* const*>(kSlirpEnv));
  posix_spawn_file_actions_destroy(&fa);
  out_w.Reset();
  if (rc != 0)
    return std::unexpected(
        PosixError(fmt::format("network egress: run '{} --version'", found), rc));
  std::string text;
  char buf[512];
  ssize_t n;
  while ((n = ::read(out_r.get(), buf, sizeof buf)) > 0 && text.size() < 8192) text.append(buf, n);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !text.starts_with("slirp4netns version"))
    return std::unexpected(Status::FailedPrecondition(
        fmt::format("network egress: '{} --version' failed (wait status {}): {}", found, status,
                    text.substr(0, 300))));
  return found;
}

Status SweepSlirp(const fs::path& pid_dir) {
  std::error_code ec;
  if (!fs::exists(pid_dir, ec)) return Status::Ok();
  for (const auto& e : fs::directory_iterator(pid_dir, ec)) {
    const std::string name = e.path().filename().string();
    if (!name.starts_with("slirp-")) continue;
    pid_t pid = 0;
    unsigned long long start = 0;
    {
      std::ifstream in(e.path());
      in >> pid >> start;
    }
    auto info = pid > 1 ? ReadProc(pid) : std::nullopt;
    if (info && info->ppid == ::getpid()) continue;  // ours: alive and owned by a Slirp object
    if (info && info->state != 'Z' && info->comm == "slirp4netns" && info->starttime == start)
      ::kill(pid, SIGKILL);
    fs::remove(e.path(), ec);
  }
  if (ec) return Status::IOError(fmt::format("sweep '{}': {}", pid_dir.string(), ec.message()));
  return Status::Ok();
}

}  // namespace hearth::sandbox
