// Cold start of one execution environment, three ways in the same run (interleaved round-robin so
// they share the machine's noise):
//
//   process  the plain launcher (sandbox::NewProcessLauncher): a child process, no isolation
//   sandbox  the full sandbox (sandbox::NewSandboxLauncher): namespaces, pivot_root rootfs, fresh
//            cgroup with limits, ext4 /tmp on a loop device, uid 993, no caps, seccomp; a launch
//            claims a blank sandbox made ahead of need (SandboxOptions::blank_pool, default 3)
//   sandbox-nopool  the same with blank_pool = 0: every launch makes its blank sandbox on the spot
//            (namespaces, cgroup, base mounts, pivot_root on the cold path; /tmp and netns pools on)
//   bwrap    Debian's bubblewrap with a comparable layout: pid/ipc/uts/net/cgroup/user namespaces,
//            ro /usr (+ merged-/usr links), the sandbox's generated /etc ro, the code at /var/task
//            ro, /proc, /dev, a tmpfs /tmp, uid 993, no capabilities (no cgroup, no seccomp, no
//            ext4 /tmp: it does less than the sandbox)
//
// Each runs the same static bootstrap (cold_start_bootstrap.c), which writes "ready" and exits.
//   ready  = from the start of the launch until the bootstrap's "ready" reaches the parent
//   cycle  = ready + the bootstrap's exit, reaping and teardown (cgroup removal, etc.)
//
// Needs root for the sandbox and bwrap variants (they are skipped otherwise, with the reason).
//
//   cold_start_bench [--n 200] [--warmup 10] [--bootstrap PATH] [--bwrap PATH] [--json FILE]
//                    [--only process,sandbox,sandbox-nopool,bwrap]

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sandbox/process_launcher.h"
#include "sandbox/sandbox_launcher.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using hearth::sandbox::LaunchSpec;
using hearth::sandbox::Launcher;

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

struct Sample {
  double ready_ms;
  double cycle_ms;
};

struct Stats {
  std::vector<double> ready, cycle;
  int failures = 0;
  std::string first_error;
};

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  size_t idx = static_cast<size_t>(std::ceil(p * static_cast<double>(v.size())));
  return v[std::clamp<size_t>(idx, 1, v.size()) - 1];
}

// Waits until `fd` has data (or EOF); false on timeout.
bool WaitReadable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  for (;;) {
    int r = ::poll(&p, 1, timeout_ms);
    if (r < 0 && errno == EINTR) continue;
    return r > 0;
  }
}

// Reads until "ready\n" (or EOF/timeout). True if it arrived.
bool ReadReady(int fd) {
  char buf[64];
  size_t got = 0;
  while (got < 6) {
    if (!WaitReadable(fd, 10000)) return false;
    ssize_t n = ::read(fd, buf + got, sizeof buf - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    got += static_cast<size_t>(n);
  }
  return std::string_view(buf, 6) == "ready\n";
}

std::optional<std::string> MeasureLauncher(Launcher& launcher, const fs::path& code, int i, Sample* out) {
  LaunchSpec spec;
  spec.environment_id = "cold-" + std::to_string(i);
  spec.code_dir = code;
  spec.entrypoint = "/var/task/bootstrap";
  spec.memory_mb = 128;
  spec.ephemeral_storage_mb = 512;
  const auto t0 = Clock::now();
  auto p = launcher.Launch(spec);
  if (!p) return p.error().ToString();
  hearth::UniqueFd out_fd = (*p)->TakeStdout();
  if (!ReadReady(out_fd.get())) return std::string("no 'ready' from the bootstrap");
  const auto t_ready = Clock::now();
  if (!WaitReadable((*p)->exit_fd(), 10000)) return std::string("the bootstrap did not exit");
  auto st = (*p)->TryReap();
  if (!st || !WIFEXITED(*st) || WEXITSTATUS(*st) != 0) return "bootstrap wait status " + std::to_string(st.value_or(-1));
  p->reset();  // teardown: the launcher's cleanup (cgroup removal for the sandbox)
  const auto t_done = Clock::now();
  *out = {Ms(t_ready - t0), Ms(t_done - t0)};
  return std::nullopt;
}

std::optional<std::string> MeasureBwrap(const std::vector<std::string>& args, Sample* out) {
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return std::string("pipe2: ") + std::strerror(errno);
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
  const auto t0 = Clock::now();
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(pipefd[1]);
  if (rc != 0) {
    ::close(pipefd[0]);
    return std::string("posix_spawn bwrap: ") + std::strerror(rc);
  }
  bool ready = ReadReady(pipefd[0]);
  const auto t_ready = Clock::now();
  ::close(pipefd[0]);
  int status = 0;
  if (!ready) ::kill(pid, SIGKILL);
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  const auto t_done = Clock::now();
  if (!ready) return "no 'ready' from bwrap (wait status " + std::to_string(status) + ")";
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return "bwrap wait status " + std::to_string(status);
  *out = {Ms(t_ready - t0), Ms(t_done - t0)};
  return std::nullopt;
}

std::vector<std::string> BwrapArgs(const std::string& bwrap, const fs::path& etc, const fs::path& code) {
  std::vector<std::string> a = {bwrap, "--unshare-user", "--uid", "993", "--gid", "993", "--unshare-pid",
                                "--unshare-ipc", "--unshare-uts", "--unshare-net", "--unshare-cgroup",
                                "--die-with-parent", "--new-session", "--cap-drop", "ALL",
                                "--ro-bind", "/usr", "/usr"};
  for (const char* link : {"/bin", "/sbin", "/lib", "/lib32", "/lib64"}) {
    std::error_code ec;
    if (fs::is_symlink(link, ec)) {
      a.insert(a.end(), {"--symlink", fs::read_symlink(link, ec).string(), link});
    }
  }
  a.insert(a.end(), {"--ro-bind", etc.string(), "/etc", "--ro-bind", code.string(), "/var/task", "--dir", "/opt",
                     "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--remount-ro", "/", "--chdir",
                     "/var/task", "--hostname", "sandbox", "/var/task/bootstrap"});
  return a;
}

std::string FindOnPath(const std::string& name) {
  for (const char* dir : {"/usr/bin", "/bin", "/usr/local/bin"}) {
    fs::path p = fs::path(dir) / name;
    if (::access(p.c_str(), X_OK) == 0) return p.string();
  }
  return {};
}

void Usage() {
  std::fprintf(stderr,
               "usage: cold_start_bench [--n N] [--warmup N] [--bootstrap PATH] [--bwrap PATH] [--json FILE]\n"
               "                        [--only process,sandbox,sandbox-nopool,bwrap]\n");
}

}  // namespace

int main(int argc, char** argv) {
  int n = 200, warmup = 10;
  std::string bootstrap, bwrap, json_path, only = "process,sandbox,sandbox-nopool,bwrap";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        Usage();
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--n") n = std::max(1, std::atoi(next().c_str()));
    else if (a == "--warmup") warmup = std::max(0, std::atoi(next().c_str()));
    else if (a == "--bootstrap") bootstrap = next();
    else if (a == "--bwrap") bwrap = next();
    else if (a == "--json") json_path = next();
    else if (a == "--only") only = next();
    else {
      Usage();
      return a == "--help" || a == "-h" ? 0 : 2;
    }
  }
  if (bootstrap.empty()) bootstrap = (fs::read_symlink("/proc/self/exe").parent_path() / "cold_start_bootstrap").string();
  if (bwrap.empty()) bwrap = FindOnPath("bwrap");
  auto wanted = [&](const char* v) { return ("," + only + ",").find(std::string(",") + v + ",") != std::string::npos; };

  char tmpl[] = "/tmp/hearth-coldstart-XXXXXX";
  if (!::mkdtemp(tmpl)) {
    std::perror("mkdtemp");
    return 1;
  }
  const fs::path dir = tmpl;
  ::chmod(dir.c_str(), 0755);
  const fs::path code = dir / "code";
  fs::create_directories(code);
  ::chmod(code.c_str(), 0755);
  std::error_code ec;
  fs::copy_file(bootstrap, code / "bootstrap", ec);
  if (ec) {
    std::fprintf(stderr, "cannot copy the bootstrap '%s': %s (build target cold_start_bootstrap)\n",
                 bootstrap.c_str(), ec.message().c_str());
    fs::remove_all(dir, ec);
    return 1;
  }
  ::chmod((code / "bootstrap").c_str(), 0755);

  struct Variant {
    std::string name;
    std::function<std::optional<std::string>(int, Sample*)> run;
  };
  std::vector<Variant> variants;
  std::vector<std::string> skipped;
  hearth::sandbox::LauncherPtr process, sandbox, sandbox_nopool;
  if (wanted("process")) {
    process = hearth::sandbox::NewProcessLauncher(dir / "run");
    variants.push_back({"process", [&](int i, Sample* s) { return MeasureLauncher(*process, code, i, s); }});
  }
  if (wanted("sandbox")) {
    auto sbx = hearth::sandbox::NewSandboxLauncher({.state_dir = dir / "sandbox"});
    if (sbx) {
      sandbox = std::move(*sbx);
      variants.push_back({"sandbox", [&](int i, Sample* s) { return MeasureLauncher(*sandbox, code, i, s); }});
    } else {
      skipped.push_back("sandbox: " + sbx.error().message());
    }
  }
  if (wanted("sandbox-nopool")) {
    auto sbx = hearth::sandbox::NewSandboxLauncher({.state_dir = dir / "sandbox-nopool", .blank_pool = 0});
    if (sbx) {
      sandbox_nopool = std::move(*sbx);
      variants.push_back(
          {"sandbox-nopool", [&](int i, Sample* s) { return MeasureLauncher(*sandbox_nopool, code, i, s); }});
    } else {
      skipped.push_back("sandbox-nopool: " + sbx.error().message());
    }
  }
  if (wanted("bwrap")) {
    if (bwrap.empty()) {
      skipped.push_back("bwrap: not installed (apt-get install bubblewrap)");
    } else if (::geteuid() != 0) {
      skipped.push_back("bwrap: needs root here (uid 993 inside)");
    } else {
      fs::path etc = dir / "sandbox" / "etc";
      if (!fs::exists(etc / "passwd", ec)) {
        etc = dir / "etc";
        fs::create_directories(etc, ec);
        std::ofstream(etc / "passwd") << "sbx_user1051:x:993:993::/tmp:/sbin/nologin\n";
      }
      auto args = std::make_shared<std::vector<std::string>>(BwrapArgs(bwrap, etc, code));
      variants.push_back({"bwrap", [args](int, Sample* s) { return MeasureBwrap(*args, s); }});
    }
  }
  for (const auto& s : skipped) std::fprintf(stderr, "skipped %s\n", s.c_str());

  std::map<std::string, Stats> stats;
  for (int i = 0; i < warmup + n; ++i) {
    for (auto& v : variants) {
      Sample s{};
      auto err = v.run(i, &s);
      Stats& st = stats[v.name];
      if (err) {
        if (st.failures++ == 0) st.first_error = *err;
        continue;
      }
      if (i >= warmup) {
        st.ready.push_back(s.ready_ms);
        st.cycle.push_back(s.cycle_ms);
      }
    }
  }

  std::printf("cold start, n = %d per variant (after %d warm-up rounds), bootstrap = static 'ready' + exit\n", n,
              warmup);
  std::printf("%-14s %9s %9s %9s %9s | %9s %9s %9s | %s\n", "variant", "ready p50", "p90", "p99", "max", "cycle p50",
              "p99", "max", "failures");
  std::string json = "{";
  bool first = true;
  for (auto& v : variants) {
    Stats& st = stats[v.name];
    auto mx = [](const std::vector<double>& x) { return x.empty() ? NAN : *std::max_element(x.begin(), x.end()); };
    std::printf("%-14s %9.2f %9.2f %9.2f %9.2f | %9.2f %9.2f %9.2f | %d%s%s\n", v.name.c_str(),
                Percentile(st.ready, 0.5), Percentile(st.ready, 0.9), Percentile(st.ready, 0.99), mx(st.ready),
                Percentile(st.cycle, 0.5), Percentile(st.cycle, 0.99), mx(st.cycle), st.failures,
                st.failures ? " first: " : "", st.first_error.c_str());
    char buf[512];
    std::snprintf(buf, sizeof buf,
                  "%s\"%s\":{\"n\":%zu,\"ready_p50_ms\":%.3f,\"ready_p90_ms\":%.3f,\"ready_p99_ms\":%.3f,"
                  "\"cycle_p50_ms\":%.3f,\"cycle_p99_ms\":%.3f,\"failures\":%d}",
                  first ? "" : ",", v.name.c_str(), st.ready.size(), Percentile(st.ready, 0.5),
                  Percentile(st.ready, 0.9), Percentile(st.ready, 0.99), Percentile(st.cycle, 0.5),
                  Percentile(st.cycle, 0.99), st.failures);
    json += buf;
    first = false;
  }
  json += "}\n";
  if (!json_path.empty()) std::ofstream(json_path) << json;

  process.reset();
  sandbox.reset();
  sandbox_nopool.reset();
  fs::remove_all(dir, ec);
  int failures = 0;
  for (auto& [_, st] : stats) failures += st.failures;
  return failures == 0 ? 0 : 1;
}
