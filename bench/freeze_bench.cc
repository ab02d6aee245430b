// Freezing an idle execution environment between invocations: what it costs and what it protects
// (docs/benchmarks.md, "Freeze/thaw"). As root (the sandbox launcher).
//
//   round trip   a 1-byte request/response with the runtime (freeze_bootstrap.c) over its Runtime
//                API socket, after an idle gap (--gap-ms), three ways interleaved:
//                  plain   the runtime was left running during the gap
//                  thaw    it was frozen during the gap; the request thaws it first (what an
//                          invoke after an idle period pays)
//                and the cost of the freeze and thaw calls themselves (one cgroup write each)
//   background   a runtime whose second thread spins after "responding": the CPU it used over 1 s
//                running, then over 1 s frozen
//
//   freeze_bench [--n 1000] [--gap-ms 2] [--memory-mb 1769] [--bootstrap PATH]

#include <poll.h>
#include <sys/socket.h>
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
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "sandbox/sandbox_launcher.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using hearth::UniqueFd;

double Us(Clock::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

double Pct(std::vector<double> v, double p) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(std::ceil(p * static_cast<double>(v.size())));
  return v[std::clamp<size_t>(i, 1, v.size()) - 1];
}

struct Env {
  hearth::sandbox::ProcessPtr p;
  UniqueFd conn;
};

// Launches the bootstrap and accepts its connection.
bool Start(hearth::sandbox::Launcher& l, const fs::path& code, int memory_mb, bool spin, Env* env) {
  static int counter = 0;
  hearth::sandbox::LaunchSpec spec;
  spec.environment_id = "freeze-" + std::to_string(counter++);
  spec.code_dir = code;
  spec.entrypoint = "/var/task/bootstrap";
  spec.memory_mb = memory_mb;
  if (spin) spec.env = {"SPIN=1"};
  auto p = l.Launch(spec);
  if (!p) {
    std::fprintf(stderr, "launch: %s\n", p.error().ToString().c_str());
    return false;
  }
  UniqueFd listener = (*p)->TakeRuntimeApiListener();
  pollfd pf{listener.get(), POLLIN, 0};
  if (::poll(&pf, 1, 10000) != 1) return false;
  env->conn.Reset(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!env->conn.valid()) return false;
  (*p)->EndInit();
  env->p = std::move(*p);
  return true;
}

bool RoundTrip(int fd) {
  char c = 'x';
  if (::write(fd, &c, 1) != 1) return false;
  return ::read(fd, &c, 1) == 1;
}

// Host pid of the bootstrap: the only child of the sandbox's init.
pid_t BootstrapPid(pid_t init) {
  std::ifstream in("/proc/" + std::to_string(init) + "/task/" + std::to_string(init) + "/children");
  pid_t p = -1;
  in >> p;
  return p;
}

// utime + stime of `pid` (all its threads), in seconds.
double CpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto close = s.rfind(')');
  if (close == std::string::npos) return NAN;
  std::istringstream rest(s.substr(close + 2));
  std::string f;
  long v[20] = {};
  for (int i = 0; i < 13 && rest >> f; ++i) v[i] = std::atol(f.c_str());
  // fields after ')': state(0) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime(11) stime(12)
  return static_cast<double>(v[11] + v[12]) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

}  // namespace

int main(int argc, char** argv) {
  int n = 1000, gap_ms = 2, memory_mb = 1769;
  std::string bootstrap;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--n") n = std::max(1, std::atoi(argv[i + 1]));
    else if (a == "--gap-ms") gap_ms = std::max(0, std::atoi(argv[i + 1]));
    else if (a == "--memory-mb") memory_mb = std::atoi(argv[i + 1]);
    else if (a == "--bootstrap") bootstrap = argv[i + 1];
    else {
      std::fprintf(stderr, "usage: freeze_bench [--n N] [--gap-ms MS] [--memory-mb MB] [--bootstrap PATH]\n");
      return 2;
    }
  }
  if (bootstrap.empty()) bootstrap = (fs::read_symlink("/proc/self/exe").parent_path() / "freeze_bootstrap").string();
  char tmpl[] = "/tmp/hearth-freeze-XXXXXX";
  if (!::mkdtemp(tmpl)) return 1;
  const fs::path dir = tmpl;
  ::chmod(dir.c_str(), 0755);
  const fs::path code = dir / "code";
  fs::create_directories(code);
  ::chmod(code.c_str(), 0755);
  std::error_code ec;
  fs::copy_file(bootstrap, code / "bootstrap", ec);
  if (ec) {
    std::fprintf(stderr, "copy %s: %s\n", bootstrap.c_str(), ec.message().c_str());
    return 1;
  }
  ::chmod((code / "bootstrap").c_str(), 0755);
  int rc = 0;
  {
    auto launcher = hearth::sandbox::NewSandboxLauncher({.state_dir = dir / "state"});
    if (!launcher) {
      std::fprintf(stderr, "sandbox: %s\n", launcher.error().message().c_str());
      fs::remove_all(dir, ec);
      return 1;
    }
    Env plain, frozen;
    if (!Start(**launcher, code, memory_mb, false, &plain) || !Start(**launcher, code, memory_mb, false, &frozen)) {
      std::fprintf(stderr, "could not start the runtimes\n");
      rc = 1;
    } else if (!frozen.p->SetFrozen(false)) {
      std::fprintf(stderr, "this host cannot freeze environments\n");
      rc = 1;
    } else {
      std::vector<double> rt_plain, rt_thaw, freeze_call, thaw_call;
      for (int i = 0; i < n + 20; ++i) {
        // plain: idle gap, then a round trip
        std::this_thread::sleep_for(std::chrono::milliseconds(gap_ms));
        auto t0 = Clock::now();
        if (!RoundTrip(plain.conn.get())) return 1;
        auto t1 = Clock::now();
        // thaw: frozen during the gap; thaw, then the round trip
        auto f0 = Clock::now();
        frozen.p->SetFrozen(true);
        auto f1 = Clock::now();
        std::this_thread::sleep_for(std::chrono::milliseconds(gap_ms));
        auto t2 = Clock::now();
        frozen.p->SetFrozen(false);
        auto t3 = Clock::now();
        if (!RoundTrip(frozen.conn.get())) return 1;
        auto t4 = Clock::now();
        if (i < 20) continue;
        rt_plain.push_back(Us(t1 - t0));
        rt_thaw.push_back(Us(t4 - t2));
        freeze_call.push_back(Us(f1 - f0));
        thaw_call.push_back(Us(t3 - t2));
      }
      std::printf("round trip after a %d ms idle gap, n = %d, memory %d MB (us):\n", gap_ms, n, memory_mb);
      std::printf("  %-28s p50 %7.1f  p90 %7.1f  p99 %7.1f\n", "left running", Pct(rt_plain, .5), Pct(rt_plain, .9), Pct(rt_plain, .99));
      std::printf("  %-28s p50 %7.1f  p90 %7.1f  p99 %7.1f\n", "frozen, thawed by the call", Pct(rt_thaw, .5), Pct(rt_thaw, .9), Pct(rt_thaw, .99));
      std::printf("  %-28s p50 %7.1f  p90 %7.1f  p99 %7.1f\n", "freeze call (daemon side)", Pct(freeze_call, .5), Pct(freeze_call, .9), Pct(freeze_call, .99));
      std::printf("  %-28s p50 %7.1f  p90 %7.1f  p99 %7.1f\n", "thaw call (daemon side)", Pct(thaw_call, .5), Pct(thaw_call, .9), Pct(thaw_call, .99));
    }
    if (rc == 0) {
      Env spin;
      if (!Start(**launcher, code, memory_mb, true, &spin)) {
        rc = 1;
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        pid_t boot = BootstrapPid(spin.p->pid());
        double c0 = CpuSeconds(boot);
        std::this_thread::sleep_for(std::chrono::seconds(1));
        double c1 = CpuSeconds(boot);
        spin.p->SetFrozen(true);
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        double c2 = CpuSeconds(boot);
        std::this_thread::sleep_for(std::chrono::seconds(1));
        double c3 = CpuSeconds(boot);
        spin.p->SetFrozen(false);
        std::printf("background thread spinning after the response, memory %d MB: running %.0f%% of a CPU, "
                    "frozen %.1f%%\n", memory_mb, (c1 - c0) * 100, (c3 - c2) * 100);
      }
    }
  }
  fs::remove_all(dir, ec);
  return rc;
}
