#include "sandbox/process_launcher.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <optional>
#include <sstream>
#include <system_error>

#include <fmt/format.h>

namespace hearth::sandbox {

namespace {

namespace fs = std::filesystem;

int PidfdOpen(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

class ChildProcess final : public Process {
 public:
  ChildProcess(pid_t pid, UniqueFd pidfd, UniqueFd out, UniqueFd err, UniqueFd listener,
               std::string address, fs::path pid_file)
      : pid_(pid), pidfd_(std::move(pidfd)), out_(std::move(out)), err_(std::move(err)),
        listener_(std::move(listener)), address_(std::move(address)), pid_file_(std::move(pid_file)) {}

  ~ChildProcess() override {
    if (!reaped_) {
      Signal(SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
    std::error_code ec;
    fs::remove(pid_file_, ec);
  }

  int pid() const override { return pid_; }
  int exit_fd() const override { return pidfd_.get(); }
  UniqueFd TakeStdout() override { return std::move(out_); }
  UniqueFd TakeStderr() override { return std::move(err_); }
  UniqueFd TakeRuntimeApiListener() override { return std::move(listener_); }
  std::string runtime_api_address() const override { return address_; }

  void Signal(int sig) override {
    if (reaped_) return;
    // The child leads its own session and process group: signal the whole tree.
    ::kill(-pid_, sig);
    ::kill(pid_, sig);
  }

  std::optional<int> TryReap() override {
    if (reaped_) return status_;
    int status = 0;
    struct rusage ru{};
    pid_t r = ::wait4(pid_, &status, WNOHANG, &ru);
    if (r == pid_) {
      // /proc/<pid>/status is gone with the process: its peak comes from the kernel's rusage
      // (ru_maxrss, KiB), so a runtime that crashed before any sample still reports it.
      last_peak_ = std::max(last_peak_, static_cast<int64_t>(ru.ru_maxrss) * 1024);
      reaped_ = true;
      status_ = status;
      ::kill(-pid_, SIGKILL);  // orphans of the runtime must not outlive it
      return status;
    }
    return std::nullopt;
  }

  int64_t PeakMemoryBytes() const override {
    if (reaped_) return last_peak_;
    // Read after every invoke: /proc/<pid>/status stays open and is pread from the start (no
    // open/close and path walk per invoke).
    if (!status_fd_.valid()) {
      status_fd_.Reset(::open(fmt::format("/proc/{}/status", pid_).c_str(), O_RDONLY | O_CLOEXEC));
      if (!status_fd_.valid()) return last_peak_;
    }
    char buf[4096];
    ssize_t n = ::pread(status_fd_.get(), buf, sizeof(buf) - 1, 0);
    if (n <= 0) return last_peak_;
    buf[n] = '\0';
    constexpr std::string_view kKey = "\nVmHWM:";
    std::string_view text(buf, static_cast<size_t>(n));
    if (auto at = text.find(kKey); at != std::string_view::npos) {
      int64_t kb = std::strtoll(buf + at + kKey.size(), nullptr, 10);
      if (kb >= 0) last_peak_ = kb * 1024;
    }
    return last_peak_;
  }

 private:
  pid_t pid_;
  UniqueFd pidfd_, out_, err_, listener_;
  std::string address_;
  fs::path pid_file_;
  bool reaped_ = false;
  int status_ = 0;
  mutable int64_t last_peak_ = 0;
  mutable UniqueFd status_fd_;  // /proc/<pid>/status, opened at the first read
};

Result<std::pair<UniqueFd, std::string>> ListenLoopback() {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return std::unexpected(PosixError("socket", errno));
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0)
    return std::unexpected(PosixError("bind 127.0.0.1:0", errno));
  if (::listen(fd.get(), 64) != 0) return std::unexpected(PosixError("listen", errno));
  socklen_t len = sizeof(addr);
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    return std::unexpected(PosixError("getsockname", errno));
  return std::make_pair(std::move(fd), fmt::format("127.0.0.1:{}", ntohs(addr.sin_port)));
}

class ProcessLauncher final : public Launcher {
 public:
  explicit ProcessLauncher(fs::path state_dir) : state_dir_(std::move(state_dir)) {}

  const char* name() const override { return "process"; }
  std::string TaskRoot(const fs::path& code_dir) const override { return code_dir.string(); }

  // No mount namespace: the runtime sees host paths, so the entrypoint runs from its host
  // location `entry` (a runtime that hard-codes /opt or /var/runtime paths will not find them).
  Result<ProcessPtr> Start(const LaunchSpec& spec, const fs::path& entry) override {

    auto listener = ListenLoopback();
    if (!listener) return std::unexpected(listener.error());

    int out_pipe[2], err_pipe[2];
    if (::pipe2(out_pipe, O_CLOEXEC) != 0) return std::unexpected(PosixError("pipe", errno));
    UniqueFd out_r(out_pipe[0]), out_w(out_pipe[1]);
    if (::pipe2(err_pipe, O_CLOEXEC) != 0) return std::unexpected(PosixError("pipe", errno));
    UniqueFd err_r(err_pipe[0]), err_w(err_pipe[1]);

    std::vector<std::string> env = spec.env;
    env.push_back("LAMBDA_TASK_ROOT=" + spec.code_dir.string());
    env.push_back("AWS_LAMBDA_RUNTIME_API=" + listener->second);
    std::vector<char*> envp;
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    std::string argv0 = entry.string();
    char* argv[] = {argv0.data(), nullptr};

    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out_w.get(), 1);
    posix_spawn_file_actions_adddup2(&fa, err_w.get(), 2);
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    posix_spawn_file_actions_addchdir_np(&fa, spec.code_dir.c_str());
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK |
                                        POSIX_SPAWN_SETSIGDEF);
    pid_t pid = -1;
    int rc = ::posix_spawn(&pid, argv0.c_str(), &fa, &attr, argv, envp.data());
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) return std::unexpected(PosixError("exec " + argv0, rc));

    UniqueFd pidfd(PidfdOpen(pid));
    if (!pidfd.valid()) {
      Status st = PosixError("pidfd_open", errno);
      ::kill(pid, SIGKILL);
      int status;
      ::waitpid(pid, &status, 0);
      return std::unexpected(st);
    }
    fs::path pid_file = state_dir_ / fmt::format("{}.pid", spec.environment_id);
    {
      std::ofstream(pid_file) << pid << "\n";
    }
    return std::make_unique<ChildProcess>(pid, std::move(pidfd), std::move(out_r), std::move(err_r),
                                          std::move(listener->first), std::move(listener->second),
                                          std::move(pid_file));
  }

  Status SweepLeftovers() override {
    std::error_code ec;
    fs::create_directories(state_dir_, ec);
    if (ec) return Status::IOError(fmt::format("create '{}': {}", state_dir_.string(), ec.message()));
    for (const auto& entry : fs::directory_iterator(state_dir_, ec)) {
      if (entry.path().extension() != ".pid") continue;
      std::ifstream in(entry.path());
      long pid = 0;
      if (in >> pid && pid > 1) {
        // A leftover runtime leads its own process group; only kill it if it still looks like
        // one of ours (its session id is its own pid).
        if (::getsid(static_cast<pid_t>(pid)) == pid) ::kill(-static_cast<pid_t>(pid), SIGKILL);
      }
      fs::remove(entry.path(), ec);
    }
    return Status::Ok();
  }

 private:
  fs::path state_dir_;
};

}  // namespace

LauncherPtr NewProcessLauncher(std::filesystem::path state_dir) {
  return std::make_unique<ProcessLauncher>(std::move(state_dir));
}

}  // namespace hearth::sandbox
