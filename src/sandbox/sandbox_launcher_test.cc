// Real sandboxes: needs root, cgroups, loop devices. Skips with the reason otherwise.
#include "sandbox/sandbox_launcher.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

namespace hearth::sandbox {
namespace {

namespace fs = std::filesystem;

struct RunResult {
  std::string out, err;
  int status = -1;
  bool oom = false;
  int64_t peak = 0;
};

class SandboxTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    state_ = fs::path(::testing::TempDir()) / ("hearth_sbx_" + std::to_string(::getpid()));
    fs::remove_all(state_);
    if (::geteuid() != 0) {
      skip_reason_ = new std::string("not root: the sandbox needs root");
      return;
    }
    auto l = NewSandboxLauncher({.state_dir = state_ / "state"});
    if (!l) {
      skip_reason_ = new std::string(l.error().message());
      return;
    }
    launcher_ = l->release();
  }
  static void TearDownTestSuite() {
    delete launcher_;
    launcher_ = nullptr;
    // Nothing may be left: no cgroups of ours, no images but the templates.
    std::error_code ec;
    fs::remove_all(state_, ec);
  }
  void SetUp() override {
    if (skip_reason_) GTEST_SKIP() << *skip_reason_;
    code_ = state_ / ("code_" + std::to_string(counter_++));
    fs::create_directories(code_);
    ::chmod(code_.c_str(), 0755);
  }

  void Write(const std::string& name, const std::string& text, mode_t mode = 0755) {
    std::ofstream(code_ / name) << text;
    ::chmod((code_ / name).c_str(), mode);
  }
  static std::string ReadAll(int fd) {
    std::string s;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) s.append(buf, n);
    return s;
  }
  LaunchSpec Spec(int memory_mb = 128, int tmp_mb = 64) {
    LaunchSpec s;
    s.environment_id = "t" + std::to_string(counter_++);
    s.code_dir = code_;
    s.entrypoint = "/var/task/bootstrap";
    s.env = {"PATH=/usr/bin:/bin", "FOO=bar"};
    s.memory_mb = memory_mb;
    s.ephemeral_storage_mb = tmp_mb;
    return s;
  }
  RunResult Run(const std::string& script, int memory_mb = 128, int tmp_mb = 64) {
    Write("bootstrap", script);
    auto p = launcher_->Launch(Spec(memory_mb, tmp_mb));
    RunResult r;
    if (!p) {
      ADD_FAILURE() << p.error().ToString();
      return r;
    }
    UniqueFd out = (*p)->TakeStdout(), err = (*p)->TakeStderr();
    r.out = ReadAll(out.get());
    r.err = ReadAll(err.get());
    pollfd pf{(*p)->exit_fd(), POLLIN, 0};
    EXPECT_EQ(::poll(&pf, 1, 10000), 1);
    auto st = (*p)->TryReap();
    r.status = st.value_or(-1);
    r.oom = (*p)->OomKilled();
    r.peak = (*p)->PeakMemoryBytes();
    return r;
  }

  static inline fs::path state_;
  static inline Launcher* launcher_ = nullptr;
  static inline std::string* skip_reason_ = nullptr;
  static inline int counter_ = 0;
  fs::path code_;
};

TEST_F(SandboxTest, IdentityPidAndNamespaces) {
  auto r = Run("#!/bin/sh\n"
               "echo \"pid=$$ uid=$(id -u) user=$(id -un) groups=$(id -G) host=$(hostname)\"\n"
               "grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb)' /proc/self/status | tr -s '\\t' ' '\n"
               "grep NoNewPrivs /proc/self/status | tr -s '\\t' ' '\n"
               "echo procs=$(ls /proc | grep -c '^[0-9]')\n"
               "echo \"task=$LAMBDA_TASK_ROOT api=$AWS_LAMBDA_RUNTIME_API foo=$FOO pwd=$PWD\"\n"
               "ls / | tr '\\n' ' '; echo\n");
  EXPECT_TRUE(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0) << r.status << r.err;
  EXPECT_NE(r.out.find("pid=2 uid=993 user=sbx_user1051 groups=993 host=sandbox"), std::string::npos) << r.out;
  for (const char* cap : {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"})
    EXPECT_NE(r.out.find(std::string(cap) + ": 0000000000000000"), std::string::npos) << cap << "\n" << r.out;
  EXPECT_NE(r.out.find("NoNewPrivs: 1"), std::string::npos) << r.out;
  // init, sh, and the pipeline's processes; never the host's.
  EXPECT_NE(r.out.find("procs="), std::string::npos);
  int procs = std::atoi(r.out.substr(r.out.find("procs=") + 6).c_str());
  EXPECT_LE(procs, 6) << r.out;
  EXPECT_NE(r.out.find("task=/var/task api=127.0.0.1:9001 foo=bar pwd=/var/task"), std::string::npos) << r.out;
  for (const char* name : {"bin ", "dev ", "etc ", "lib ", "lib64 ", "opt ", "proc ", "sbin ", "tmp ", "usr ", "var "})
    EXPECT_NE(r.out.find(name), std::string::npos) << name << r.out;
  EXPECT_EQ(r.out.find("home "), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("root "), std::string::npos) << r.out;
}

TEST_F(SandboxTest, OnlyTmpIsWritable) {
  auto r = Run("#!/bin/sh\n"
               "for d in / /var/task /opt /etc /usr /dev /proc/sys; do\n"
               "  if touch $d/hearth-probe 2>/dev/null; then echo \"WROTE $d\"; fi\n"
               "done\n"
               "echo hi > /tmp/x && cat /tmp/x\n"
               "grep -E ' / | /tmp | /usr ' /proc/self/mounts | cut -d' ' -f2-4\n");
  EXPECT_EQ(r.out.find("WROTE"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("hi\n"), std::string::npos) << r.out << r.err;
  EXPECT_NE(r.out.find("/ tmpfs ro"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("/usr ext4 ro"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("/tmp ext4 rw"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(code_ / "hearth-probe"));
}

TEST_F(SandboxTest, TmpHoldsItsSizeBeyondMemoryThenENOSPC) {
  // 160 MB of /tmp in a 128 MB function: the page cache must not get the function OOM-killed.
  auto r = Run("#!/bin/sh\n"
               "df -k /tmp | tail -1 | awk '{print \"size_kb=\" $2}'\n"
               "dd if=/dev/zero of=/tmp/fill bs=1M count=400 2>&1 | grep -o 'No space left on device'\n"
               "ls -s -k /tmp/fill | awk '{print \"written_kb=\" $1}'\n",
               128, 160);
  EXPECT_TRUE(WIFEXITED(r.status)) << "status " << r.status << " oom " << r.oom << "\n" << r.out;
  EXPECT_FALSE(r.oom);
  EXPECT_NE(r.out.find("No space left on device"), std::string::npos) << r.out;
  auto num = [&](const char* key) {
    auto at = r.out.find(key);
    return at == std::string::npos ? 0L : std::atol(r.out.c_str() + at + std::strlen(key));
  };
  EXPECT_GE(num("size_kb="), 160L * 1024) << r.out;
  // All of the configured size fits, and at most 0.5 % more (the image is sized by measuring).
  EXPECT_GE(num("written_kb="), 160L * 1024) << r.out;
  EXPECT_LE(num("written_kb="), 160L * 1024 * 1005 / 1000) << r.out;
}

TEST_F(SandboxTest, LoopbackOnlyNetworkAndSeccomp) {
  // A host listener the sandbox must not reach.
  UniqueFd host(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(host.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(host.get(), 4), 0);
  socklen_t len = sizeof a;
  ::getsockname(host.get(), reinterpret_cast<sockaddr*>(&a), &len);
  Write("probe.py",
        "import socket, os, sys, errno\n"
        "def tryit(name, f):\n"
        "    try:\n"
        "        f(); print(name, 'ok')\n"
        "    except OSError as e:\n"
        "        print(name, errno.errorcode.get(e.errno, e.errno))\n"
        "print('ifaces', sorted(os.listdir('/sys/class/net')) if os.path.exists('/sys/class/net') else\n"
        "      [l.split(':')[0].strip() for l in open('/proc/net/dev').readlines()[2:]])\n"
        "tryit('runtime_api', lambda: socket.create_connection(('127.0.0.1', 9001), timeout=2))\n"
        "tryit('host_loopback', lambda: socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=2))\n"
        "def lst():\n"
        "    s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(1)\n"
        "tryit('listen', lst)\n"
        "tryit('packet', lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW))\n"
        "tryit('raw', lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP))\n"
        "import ctypes\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "def mnt():\n"
        "    if libc.mount(b'none', b'/tmp', b'tmpfs', 0, None) != 0:\n"
        "        raise OSError(ctypes.get_errno(), 'mount')\n"
        "tryit('mount', mnt)\n"
        "def unshare():\n"
        "    if libc.unshare(0x10000000) != 0:\n"
        "        raise OSError(ctypes.get_errno(), 'unshare')\n"
        "tryit('unshare_user', unshare)\n"
        "def ptrace():\n"
        "    if libc.ptrace(16, 1, 0, 0) != 0:\n"
        "        raise OSError(ctypes.get_errno(), 'ptrace')\n"
        "tryit('ptrace_init', ptrace)\n"
        "os.kill(1, 9)  # ignored: pid 1 of a namespace cannot be SIGKILLed from inside\n"
        "print('init survived')\n",
        0644);
  auto r = Run("#!/bin/sh\nexec /usr/bin/python3 /var/task/probe.py " + std::to_string(ntohs(a.sin_port)) + "\n");
  EXPECT_TRUE(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0) << r.status << r.err;
  EXPECT_NE(r.out.find("ifaces ['lo']"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("runtime_api ok"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("host_loopback ECONNREFUSED"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("listen EACCES"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("packet EPERM"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("raw EPERM"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("mount EPERM"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("unshare_user EPERM"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("ptrace_init EPERM"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("init survived"), std::string::npos) << r.out;
}

TEST_F(SandboxTest, MemoryLimitOomKillsAndIsReported) {
  auto r = Run("#!/usr/bin/python3\nb = bytearray(300 << 20)\nprint('survived')\n", 128);
  EXPECT_TRUE(WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGKILL) << "status " << r.status << r.out;
  EXPECT_TRUE(r.oom);
  EXPECT_EQ(r.out.find("survived"), std::string::npos);
  EXPECT_GE(r.peak, 100LL << 20);
  EXPECT_LE(r.peak, 129LL << 20);
}

TEST_F(SandboxTest, PidsLimitStopsForkBomb) {
  auto r = Run("#!/usr/bin/python3\n"
               "import os, signal, errno\n"
               "n = 0\n"
               "while True:\n"
               "    try:\n"
               "        p = os.fork()\n"
               "    except OSError as e:\n"
               "        print('stopped', n, errno.errorcode[e.errno]); break\n"
               "    if p == 0:\n"
               "        signal.pause(); os._exit(0)\n"
               "    n += 1\n"
               "    if n > 5000: print('unbounded'); break\n",
               1769);  // one full vCPU, so that forking is not CPU-throttled
  EXPECT_NE(r.out.find("stopped 102"), std::string::npos) << r.out << r.err;  // 1024 - init, python
  EXPECT_NE(r.out.find("EAGAIN"), std::string::npos) << r.out;
}

TEST_F(SandboxTest, SignalIsForwardedAndExecErrorsNameTheStep) {
  Write("bootstrap", "#!/bin/sh\ntrap 'echo got-term; exit 3' TERM\nwhile :; do sleep 0.02; done\n");
  auto p = launcher_->Launch(Spec());
  ASSERT_TRUE(p.has_value()) << p.error().ToString();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  (*p)->Signal(SIGTERM);
  UniqueFd out = (*p)->TakeStdout();
  EXPECT_EQ(ReadAll(out.get()), "got-term\n");
  pollfd pf{(*p)->exit_fd(), POLLIN, 0};
  ASSERT_EQ(::poll(&pf, 1, 5000), 1);
  auto st = (*p)->TryReap();
  ASSERT_TRUE(st.has_value());
  EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 3) << *st;

  // Not readable by the sandbox user: execve fails inside, and the error says so.
  Write("bootstrap", "#!/bin/sh\ntrue\n", 0700);
  auto bad = launcher_->Launch(Spec());
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code(), StatusCode::kPermissionDenied) << bad.error().ToString();
  EXPECT_NE(bad.error().message().find("'execve'"), std::string::npos) << bad.error().message();
  EXPECT_NE(bad.error().message().find("/var/task/bootstrap"), std::string::npos) << bad.error().message();
}

TEST_F(SandboxTest, SweepKillsWhatAKilledDaemonLeft) {
  Write("bootstrap", "#!/bin/sh\nsleep 30 & sleep 30\n");
  auto p = launcher_->Launch(Spec());
  ASSERT_TRUE(p.has_value()) << p.error().ToString();
  // A second launcher on the same state directory plays the restarted daemon.
  auto again = NewSandboxLauncher({.state_dir = state_ / "state", .self_test = false});
  ASSERT_TRUE(again.has_value()) << again.error().ToString();
  ASSERT_TRUE((*again)->SweepLeftovers().ok());
  pollfd pf{(*p)->exit_fd(), POLLIN, 0};
  ASSERT_EQ(::poll(&pf, 1, 5000), 1);
  auto st = (*p)->TryReap();
  ASSERT_TRUE(st.has_value());
  EXPECT_TRUE(WIFSIGNALED(*st) && WTERMSIG(*st) == SIGKILL) << *st;
  p->reset();
  // No image of ours is left (the cgroups are checked by Sweep's own rmdir).
  std::string leftovers;
  for (const auto& e : fs::recursive_directory_iterator(state_ / "state" / "tmp-images"))
    if (!e.path().filename().string().starts_with("template-")) leftovers += e.path().string() + " ";
  EXPECT_EQ(leftovers, "");
}


// ---- blank sandboxes (made ahead of need, claimed by a launch) and freezing ----

// The host-side view of what a launcher of `state_dir` owns: its cgroups are named
// "hearth-<tag>-..." in every hierarchy; the tag is learnt from a launched sandbox's cgroup.
struct Owned {
  fs::path memory_parent;  // the memory hierarchy directory holding our cgroups
  std::string prefix;      // "hearth-<tag>-"
};

std::string ReadText(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The memory cgroup directory of host pid `pid` (v1 hybrid: "N:memory:/path"; v2: "0::/path").
fs::path MemoryCgroupOf(pid_t pid) {
  std::istringstream in(ReadText("/proc/" + std::to_string(pid) + "/cgroup"));
  std::string line, v2;
  while (std::getline(in, line)) {
    auto c1 = line.find(':'), c2 = line.find(':', c1 + 1);
    std::string ctrls = line.substr(c1 + 1, c2 - c1 - 1), path = line.substr(c2 + 1);
    if (ctrls == "memory") return fs::path("/sys/fs/cgroup/memory") / path.substr(1);
    if (ctrls.empty()) v2 = path;
  }
  return fs::path("/sys/fs/cgroup") / v2.substr(1);
}

Owned OwnedBy(pid_t sandbox_init) {
  fs::path dir = MemoryCgroupOf(sandbox_init);
  std::string name = dir.filename().string();  // hearth-<tag>-<instance>-<n>
  Owned o;
  o.memory_parent = dir.parent_path();
  o.prefix = name.substr(0, name.find('-', std::string("hearth-").size()) + 1);
  // An init that is already gone has no cgroup: an empty prefix would count every cgroup.
  EXPECT_TRUE(o.prefix.starts_with("hearth-") && o.prefix.size() > 7)
      << "no sandbox cgroup for pid " << sandbox_init << ": '" << name << "'";
  if (o.prefix.size() <= 7) o.prefix = "hearth-<none>";
  return o;
}

// Our cgroups in the memory hierarchy; `unclaimed`: only blanks without a memory limit yet.
int CountCgroups(const Owned& o, bool unclaimed) {
  int n = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(o.memory_parent, ec)) {
    std::string name = e.path().filename().string();
    if (!name.starts_with(o.prefix)) continue;
    std::string limit = ReadText(e.path() / "memory.limit_in_bytes");
    if (limit.empty()) limit = ReadText(e.path() / "memory.max");
    bool unlimited = limit.starts_with("max") || std::strtoll(limit.c_str(), nullptr, 10) > (int64_t{1} << 50);
    if (!unclaimed || unlimited) ++n;
  }
  return n;
}

// Children of this process named `comm` (sandbox inits are our children: CLONE_PARENT).
std::vector<pid_t> ChildrenNamed(const std::string& comm) {
  std::vector<pid_t> out;
  for (const auto& e : fs::directory_iterator("/proc")) {
    std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string stat = ReadText(e.path() / "stat");
    auto open = stat.find('('), close = stat.rfind(')');
    if (open == std::string::npos || close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 2));
    std::string state;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (state == "Z") continue;  // exited, not yet reaped
    if (ppid == ::getpid() && stat.substr(open + 1, close - open - 1) == comm) out.push_back(std::stoi(name));
  }
  return out;
}

int NetnsFdsOfThisProcess() {
  int n = 0;
  for (const auto& e : fs::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    if (fs::read_symlink(e.path(), ec).string().starts_with("net:[")) ++n;
  }
  return n;
}

// Mounts in this (the host's) mount namespace whose mount point is under `dir`: what a sandbox
// would leak here if its mounts propagated. Not the total: other tests running at the same time
// mount and unmount elsewhere.
int MountsUnder(const fs::path& dir) {
  std::istringstream in(ReadText("/proc/self/mountinfo"));
  std::string line;
  const std::string prefix = dir.string();
  int n = 0;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, devno, root, mount_point;
    fields >> id >> parent >> devno >> root >> mount_point;
    if (mount_point.starts_with(prefix)) ++n;
  }
  return n;
}

// Loop devices whose backing file lives under `dir`.
int LoopDevicesUnder(const fs::path& dir) {
  int n = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/sys/block", ec)) {
    std::string backing = ReadText(e.path() / "loop" / "backing_file");
    if (!backing.empty() && backing.starts_with(dir.string())) ++n;
  }
  return n;
}

bool WaitFor(const std::function<bool()>& done, int ms) {
  for (int i = 0; i < ms / 10; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return done();
}

TEST_F(SandboxTest, BlankPoolRefillsAndClaimedBlanksRunTheirFunctionWithItsLimits) {
  const fs::path state = state_ / "blank_state";
  const int mounts_before = MountsUnder(state_);
  // The suite's own launcher refills its pools in the background: count once they are full.
  auto settled_netns = [] {
    for (int i = 0; i < 50; ++i) {
      int a = NetnsFdsOfThisProcess();
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      if (a == NetnsFdsOfThisProcess()) return a;
    }
    return -1;
  };
  const int netns_before = settled_netns();
  const size_t spawners_before = ChildrenNamed("hearth-spawner").size();
  Owned owned;
  {
    auto l = NewSandboxLauncher({.state_dir = state, .blank_pool = 2});
    ASSERT_TRUE(l.has_value()) << l.error().ToString();
    EXPECT_EQ(ChildrenNamed("hearth-spawner").size(), spawners_before + 1);
    // Each launch runs its own code with its own limits, whether its blank came from the pool or
    // was made on the spot (the first few, while the pool fills).
    for (int i = 0; i < 12; ++i) {
      const int memory = i % 2 ? 256 : 512;
      Write("bootstrap", "#!/bin/sh\necho \"code " + std::to_string(i) +
                             " mem=$AWS_MEM pid=$$ uid=$(id -u)\"\nread line < /dev/null; sleep 0.2\n");
      LaunchSpec spec = Spec(memory);
      spec.env.push_back("AWS_MEM=" + std::to_string(memory));
      auto p = (*l)->Launch(spec);
      ASSERT_TRUE(p.has_value()) << p.error().ToString();
      if (i == 0) owned = OwnedBy((*p)->pid());
      fs::path cg = MemoryCgroupOf((*p)->pid());
      EXPECT_TRUE(cg.filename().string().starts_with(owned.prefix)) << cg;
      std::string limit = ReadText(cg / "memory.limit_in_bytes");
      if (limit.empty()) limit = ReadText(cg / "memory.max");
      EXPECT_EQ(std::strtoll(limit.c_str(), nullptr, 10), int64_t{memory} << 20) << cg;
      UniqueFd out = (*p)->TakeStdout();
      EXPECT_EQ(ReadAll(out.get()), "code " + std::to_string(i) + " mem=" + std::to_string(memory) +
                                        " pid=2 uid=993\n");
      pollfd pf{(*p)->exit_fd(), POLLIN, 0};
      ASSERT_EQ(::poll(&pf, 1, 10000), 1);
      auto st = (*p)->TryReap();
      EXPECT_TRUE(st && WIFEXITED(*st) && WEXITSTATUS(*st) == 0) << st.value_or(-1);
      if (i == 3) {
        // The pool refills in the background: two unclaimed blanks (no memory limit yet).
        EXPECT_TRUE(WaitFor([&] { return CountCgroups(owned, true) == 2; }, 10000))
            << CountCgroups(owned, true) << " unclaimed blanks";
      }
    }
    EXPECT_TRUE(WaitFor([&] { return CountCgroups(owned, true) == 2; }, 10000));
    // Reaped environments left nothing: only the two waiting blanks have cgroups.
    EXPECT_EQ(CountCgroups(owned, false), 2);
  }
  // The launcher is gone: its blanks, its spawner, their cgroups, mounts, netns and loop devices.
  EXPECT_EQ(CountCgroups(owned, false), 0);
  EXPECT_EQ(ChildrenNamed("hearth-spawner").size(), spawners_before);
  for (pid_t init : ChildrenNamed("hearth-init"))
    EXPECT_FALSE(MemoryCgroupOf(init).filename().string().starts_with(owned.prefix)) << "blank " << init << " left";
  EXPECT_EQ(MountsUnder(state_), mounts_before);
  EXPECT_EQ(settled_netns(), netns_before);
  EXPECT_TRUE(WaitFor([&] { return LoopDevicesUnder(state) == 0; }, 5000)) << LoopDevicesUnder(state);
}

TEST_F(SandboxTest, ABlankThatDiedInThePoolIsSkipped) {
  const fs::path state = state_ / "dead_blank_state";
  auto l = NewSandboxLauncher({.state_dir = state, .blank_pool = 1});
  ASSERT_TRUE(l.has_value()) << l.error().ToString();
  const LaunchStats before = (*l)->stats();  // the launcher's self-test launched already
  // Alive a little: OwnedBy() reads the first sandbox's cgroup (an exited init has none, and an
  // empty prefix would match every sandbox of this process).
  Write("bootstrap", "#!/bin/sh\necho alive\nsleep 0.3\n");
  auto first = (*l)->Launch(Spec());
  ASSERT_TRUE(first.has_value()) << first.error().ToString();
  Owned owned = OwnedBy((*first)->pid());
  ASSERT_TRUE(WaitFor([&] { return CountCgroups(owned, true) == 1; }, 10000));
  // Kill the waiting blank from outside (as an OOM or an operator might).
  int killed = 0;
  for (pid_t init : ChildrenNamed("hearth-init")) {
    fs::path cg = MemoryCgroupOf(init);
    bool unclaimed = ReadText(cg / "memory.limit_in_bytes").size() > 15;  // "9223372036854771712"
    if (cg.filename().string().starts_with(owned.prefix) && unclaimed && init != (*first)->pid()) {
      ::kill(init, SIGKILL);
      ++killed;
    }
  }
  ASSERT_EQ(killed, 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  auto p = (*l)->Launch(Spec());
  ASSERT_TRUE(p.has_value()) << p.error().ToString();
  UniqueFd out = (*p)->TakeStdout();
  EXPECT_EQ(ReadAll(out.get()), "alive\n");
  const LaunchStats st = (*l)->stats();
  EXPECT_EQ(st.launched - before.launched, 2);
  EXPECT_EQ(st.failed, 0);
  EXPECT_EQ(st.dead_in_pool - before.dead_in_pool, 1);  // the killed blank, skipped and counted
  EXPECT_EQ(st.from_blank_pool + st.blanks_made_on_demand - before.from_blank_pool - before.blanks_made_on_demand, 2);
}

// The pre-started runtimes of the launcher whose cgroups are `o`: processes running
// /var/runtime/bootstrap in one of its cgroups.
std::vector<pid_t> RuntimesOf(const Owned& o) {
  std::vector<pid_t> out;
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string cmd = ReadText(e.path() / "cmdline");
    std::replace(cmd.begin(), cmd.end(), '\0', ' ');
    if (cmd.find("/var/runtime/bootstrap") == std::string::npos) continue;
    const pid_t pid = std::stoi(name);
    if (MemoryCgroupOf(pid).filename().string().starts_with(o.prefix)) out.push_back(pid);
  }
  return out;
}

TEST_F(SandboxTest, PrestartedRuntimeTakesItsFunctionWithItsEnvCwdAndLimitsAndLeavesNothing) {
  const fs::path state = state_ / "prestart_state";
  const fs::path runtime = state_ / "prestart_runtime";
  fs::create_directories(runtime);
  ::chmod(runtime.c_str(), 0755);
  // A stand-in runtime: reports what it started with, then what it was handed.
  std::ofstream(runtime / "bootstrap") << R"(#!/usr/bin/python3 -S
import posix
started = sorted(k.decode() for k in posix.environ)
fd = posix.environ.get(b"_HEARTH_PRESTART_FD")
if fd is None:
    env = [k + b"=" + v for k, v in posix.environ.items()]
else:
    data = b""
    while True:
        b = posix.read(int(fd), 65536)
        if not b:
            break
        data += b
    env = [x for x in data.split(b"\0") if x]
posix.chdir("/var/task")
status = dict(l.split(":\t", 1) for l in open("/proc/self/status").read().splitlines() if ":\t" in l)
print("started", ",".join(started))
print("env", ",".join(x.decode() for x in env))
print("cwd", posix.getcwd(), "uid", posix.getuid(), "pid", posix.getpid(), "nice", posix.getpriority(0, 0),
      "seccomp", status["Seccomp"], "nnp", status["NoNewPrivs"])
print("task", ",".join(sorted(posix.listdir("/var/task"))))
open("/tmp/written", "w").write("ok")
print("tmp", open("/tmp/written").read())
)";
  ::chmod((runtime / "bootstrap").c_str(), 0755);
  const int mounts_before = MountsUnder(state_);
  Owned owned;
  {
    SandboxOptions opt{.state_dir = state, .blank_pool = 1};
    opt.prestart.push_back(
        PrestartRuntime{.name = "fake", .runtime_dir = runtime, .env = {"LANG=C.UTF-8", "TZ=:UTC"}, .count = 1});
    auto l = NewSandboxLauncher(std::move(opt));
    ASSERT_TRUE(l.has_value()) << l.error().ToString();
    const LaunchStats before = (*l)->stats();  // the launcher's self-test launched already
    Write("handler.py", "x = 1\n", 0644);
    auto spec_for = [&](std::vector<std::string> env, int memory) {
      LaunchSpec s = Spec(memory);
      s.runtime_dir = runtime;
      s.entrypoint = "/var/runtime/bootstrap";
      s.env = std::move(env);
      return s;
    };
    auto run = [&](const LaunchSpec& spec, pid_t* init) {
      auto p = (*l)->Launch(spec);
      if (!p) {
        ADD_FAILURE() << p.error().ToString();
        return std::string();
      }
      *init = (*p)->pid();
      fs::path cg = MemoryCgroupOf(*init);
      std::string limit = ReadText(cg / "memory.limit_in_bytes");
      if (limit.empty()) limit = ReadText(cg / "memory.max");
      EXPECT_EQ(std::strtoll(limit.c_str(), nullptr, 10), int64_t{spec.memory_mb} << 20) << cg;
      UniqueFd out = (*p)->TakeStdout();
      std::string text = ReadAll(out.get());
      pollfd pf{(*p)->exit_fd(), POLLIN, 0};
      EXPECT_EQ(::poll(&pf, 1, 10000), 1);
      auto st = (*p)->TryReap();
      EXPECT_TRUE(st && WIFEXITED(*st) && WEXITSTATUS(*st) == 0) << st.value_or(-1) << text;
      return text;
    };
    const std::string tail = "cwd /var/task uid 993 pid 2 nice 0 seccomp 2 nnp 1\ntask bootstrap,handler.py\ntmp ok\n";
    pid_t init = -1;
    // A plain launch first: it names this launcher's cgroups.
    // It outlives the look at its cgroup (a gone init has none, and the prefix would match all).
    Write("bootstrap", "#!/bin/sh\necho plain\nsleep 0.3\n");
    {
      auto p = (*l)->Launch(Spec());
      ASSERT_TRUE(p.has_value()) << p.error().ToString();
      owned = OwnedBy((*p)->pid());
    }
    // The pool fills in the background: one pre-started runtime waits.
    ASSERT_TRUE(WaitFor([&] { return RuntimesOf(owned).size() == 1; }, 10000));
    // Claimed: it started with only the start-up variables, and gets exactly the function's.
    std::string out = run(spec_for({"LANG=C.UTF-8", "TZ=:UTC", "FOO=bar"}, 256), &init);
    EXPECT_EQ(out, "started LANG,TZ,_HEARTH_PRESTART_FD\n"
                   "env LANG=C.UTF-8,TZ=:UTC,FOO=bar,LAMBDA_TASK_ROOT=/var/task,AWS_LAMBDA_RUNTIME_API=127.0.0.1:9001\n" +
                       tail);
    // The pool refills; a function with another start-up variable takes the normal path.
    ASSERT_TRUE(WaitFor([&] { return RuntimesOf(owned).size() == 1; }, 10000));
    out = run(spec_for({"LANG=C.UTF-8", "TZ=:UTC", "PYTHONPATH=/x"}, 128), &init);
    EXPECT_EQ(out, "started AWS_LAMBDA_RUNTIME_API,LAMBDA_TASK_ROOT,LANG,PYTHONPATH,TZ\n"
                   "env LANG=C.UTF-8,TZ=:UTC,PYTHONPATH=/x,LAMBDA_TASK_ROOT=/var/task,AWS_LAMBDA_RUNTIME_API=127.0.0.1:9001\n" +
                       tail);
    // ... and the pre-started one is still there for the next compatible function.
    out = run(spec_for({"LANG=C.UTF-8", "TZ=:UTC"}, 128), &init);
    EXPECT_TRUE(out.starts_with("started LANG,TZ,_HEARTH_PRESTART_FD\n")) << out;
    ASSERT_TRUE(WaitFor([&] { return RuntimesOf(owned).size() == 1; }, 10000));
    // A pre-started runtime that dies while waiting is skipped (its sandbox ends with it).
    for (pid_t pid : RuntimesOf(owned)) ::kill(pid, SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    out = run(spec_for({"LANG=C.UTF-8", "TZ=:UTC"}, 128), &init);
    EXPECT_TRUE(out.ends_with(tail)) << out;
    // The counters say how each of the five launches was served.
    const LaunchStats st = (*l)->stats();
    EXPECT_EQ(st.launched - before.launched, 5);
    EXPECT_EQ(st.failed, 0);
    EXPECT_EQ(st.prestarted - before.prestarted, 2);
    // The killed runtime: skipped as dead, or its claim refused.
    EXPECT_EQ(st.dead_in_pool + st.prestart_failed - before.dead_in_pool - before.prestart_failed, 1);
    EXPECT_EQ(st.from_blank_pool + st.blanks_made_on_demand - before.from_blank_pool - before.blanks_made_on_demand, 3);
  }
  // The launcher is gone, with its waiting runtimes: no cgroups, processes, mounts or loop devices.
  EXPECT_EQ(CountCgroups(owned, false), 0);
  EXPECT_TRUE(RuntimesOf(owned).empty());
  for (pid_t init : ChildrenNamed("hearth-init"))
    EXPECT_FALSE(MemoryCgroupOf(init).filename().string().starts_with(owned.prefix)) << "sandbox " << init << " left";
  EXPECT_EQ(MountsUnder(state_), mounts_before);
  EXPECT_TRUE(WaitFor([&] { return LoopDevicesUnder(state) == 0; }, 5000)) << LoopDevicesUnder(state);
}

TEST_F(SandboxTest, FrozenEnvironmentStopsUntilThawed) {
  Write("bootstrap", "#!/bin/sh\ni=0\nwhile [ $i -lt 400 ]; do echo tick $i; i=$((i+1)); sleep 0.01; done\n");
  auto p = launcher_->Launch(Spec(1769));
  ASSERT_TRUE(p.has_value()) << p.error().ToString();
  UniqueFd out = (*p)->TakeStdout();
  ::fcntl(out.get(), F_SETFL, O_NONBLOCK);
  auto drain = [&] {
    std::string s;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(out.get(), buf, sizeof buf)) > 0) s.append(buf, n);
    return s;
  };
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_NE(drain(), "");  // it ticks
  ASSERT_TRUE((*p)->SetFrozen(true));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  drain();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(drain(), "");  // frozen: not a single tick in 300 ms
  ASSERT_TRUE((*p)->SetFrozen(false));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_NE(drain().find("tick"), std::string::npos);  // running again
  // A frozen environment still shuts down: Signal() thaws it first.
  ASSERT_TRUE((*p)->SetFrozen(true));
  (*p)->Signal(SIGTERM);
  pollfd pf{(*p)->exit_fd(), POLLIN, 0};
  ASSERT_EQ(::poll(&pf, 1, 5000), 1);
  auto st = (*p)->TryReap();
  ASSERT_TRUE(st.has_value());
  EXPECT_TRUE(WIFSIGNALED(*st) && WTERMSIG(*st) == SIGTERM) << *st;
}
}  // namespace
}  // namespace hearth::sandbox
