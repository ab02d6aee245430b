// Network mode egress (slirp4netns) against mode none, with real sandboxes. Needs root, `ip` and
// slirp4netns; skips with the reason otherwise.
//
// The only outside peer is a TCP server this test runs on 10.203.<n>.2, in a network namespace it
// creates itself (`hearth-egress-test-<pid>`, a veth pair to the host with 10.203.<n>.1/30): no
// packet leaves the machine. DNS is not queried (there is no internet here): the test checks that
// /etc/resolv.conf names 10.0.2.3 and that a UDP socket can be connected to it.
#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "sandbox/net.h"
#include "sandbox/sandbox_launcher.h"
#include "sandbox/slirp.h"

namespace hearth::sandbox {
namespace {

namespace fs = std::filesystem;

constexpr const char* kBanner = "hearth-egress-banner";

int Sh(const std::string& cmd) {
  int rc = std::system((cmd + " >/dev/null 2>&1").c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

// Runs `f` on a short-lived thread that has entered the network namespace `ns_path`.
template <typename F>
bool InNetns(const std::string& ns_path, F f) {
  bool ok = false;
  std::thread([&] {
    UniqueFd ns(::open(ns_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!ns.valid() || ::setns(ns.get(), CLONE_NEWNET) != 0) return;
    f();
    ok = true;
  }).join();  // the thread (and its namespace) ends here; sockets it made stay where they were made
  return ok;
}

UniqueFd ListenOn(const char* ip, int port = 0) {
  UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, ip, &a.sin_addr);
  int one = 1;
  ::setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(s.get(), 16) != 0)
    return {};
  return s;
}

int PortOf(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

// Connect result as an errno name ("ok" on success).
std::string TryConnect(const char* ip, int port) {
  UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, ip, &a.sin_addr);
  timeval tv{2, 0};
  ::setsockopt(s.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (::connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) return "ok";
  return strerrorname_np(errno) ? strerrorname_np(errno) : std::to_string(errno);
}

// The test's own peer: a netns with a veth pair to the host and a TCP server on 10.203.<n>.2.
// Everything is removed in the destructor (also after a failed assertion).
class TestPeer {
 public:
  TestPeer() {
    const int pid = ::getpid();
    ns_ = "hearth-egress-test-" + std::to_string(pid);
    host_if_ = "hegt" + std::to_string(pid % 10000000) + "a";
    peer_if_ = "hegt" + std::to_string(pid % 10000000) + "b";
    const int n = 1 + pid % 250;
    host_ip_ = "10.203." + std::to_string(n) + ".1";
    peer_ip_ = "10.203." + std::to_string(n) + ".2";
    Cleanup();  // a previous run of this pid
    if (Sh("ip netns add " + ns_) != 0) {
      fail("ip netns add " + ns_);
      return;
    }
    if (Sh("ip link add " + host_if_ + " type veth peer name " + peer_if_ + " netns " + ns_) != 0) {
      fail("ip link add veth");
      return;
    }
    if (Sh("ip addr add " + host_ip_ + "/30 dev " + host_if_) != 0 ||
        Sh("ip link set " + host_if_ + " up") != 0 ||
        Sh("ip -n " + ns_ + " addr add " + peer_ip_ + "/30 dev " + peer_if_) != 0 ||
        Sh("ip -n " + ns_ + " link set " + peer_if_ + " up") != 0 ||
        Sh("ip -n " + ns_ + " link set lo up") != 0) {
      fail("ip addr/link");
      return;
    }
    // The veth takes a moment to be usable (DAD is off for IPv4; carrier comes up).
    InNetns("/run/netns/" + ns_, [&] { server_ = ListenOn(peer_ip_.c_str()); });
    if (!server_.valid()) {
      fail("listen on " + peer_ip_);
      return;
    }
    port_ = PortOf(server_.get());
    thread_ = std::thread([this] { Serve(); });
  }
  ~TestPeer() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    server_.Reset();
    Cleanup();
  }
  const std::string& error() const { return error_; }
  const std::string& ip() const { return peer_ip_; }
  const std::string& host_ip() const { return host_ip_; }
  int port() const { return port_; }
  int accepted() const { return accepted_; }

 private:
  void fail(std::string what) { error_ = what + " failed"; }
  void Cleanup() {
    Sh("ip netns del " + ns_);
    Sh("ip link del " + host_if_);  // normally gone with the netns already
  }
  void Serve() {
    while (!stop_) {
      pollfd p{server_.get(), POLLIN, 0};
      if (::poll(&p, 1, 100) != 1) continue;
      UniqueFd c(::accept4(server_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!c.valid()) continue;
      ++accepted_;
      std::string line = std::string(kBanner) + "\n";
      (void)!::write(c.get(), line.data(), line.size());
    }
  }
  std::string ns_, host_if_, peer_if_, host_ip_, peer_ip_, error_;
  UniqueFd server_;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::thread thread_;
};

struct RunResult {
  std::string out, err;
  int status = -1;
};

class EgressTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    state_ = fs::path(::testing::TempDir()) / ("hearth_egress_" + std::to_string(::getpid()));
    fs::remove_all(state_);
    auto skip = [](std::string why) {
      std::printf("SKIP egress tests: %s\n", why.c_str());
      skip_reason_ = new std::string(std::move(why));
    };
    if (::geteuid() != 0) return skip("not root: the sandbox needs root");
    if (Sh("ip -V") != 0) return skip("`ip` (iproute2) is not installed");
    auto slirp = FindSlirp4netns();
    if (!slirp) return skip(slirp.error().message());
    auto none = NewSandboxLauncher({.state_dir = state_ / "none"});
    if (!none) return skip(none.error().message());
    none_ = none->release();
    auto egress =
        NewSandboxLauncher({.state_dir = state_ / "egress", .network = NetworkMode::kEgress});
    if (!egress) {
      // slirp4netns is there: egress must work, so this is a failure, not a skip.
      egress_error_ = new std::string(egress.error().ToString());
      return;
    }
    egress_ = egress->release();
  }
  static void TearDownTestSuite() {
    delete none_;
    delete egress_;
    none_ = egress_ = nullptr;
    std::error_code ec;
    fs::remove_all(state_, ec);
  }
  void SetUp() override {
    if (skip_reason_) GTEST_SKIP() << *skip_reason_;
    ASSERT_EQ(egress_error_, nullptr) << *egress_error_;
    code_ = state_ / ("code_" + std::to_string(counter_++));
    fs::create_directories(code_);
    ::chmod(code_.c_str(), 0755);
  }
  void Write(const std::string& name, const std::string& text, mode_t mode = 0755) {
    std::ofstream(code_ / name) << text;
    ::chmod((code_ / name).c_str(), mode);
  }
  LaunchSpec Spec() {
    LaunchSpec s;
    s.environment_id = "e" + std::to_string(counter_++);
    s.code_dir = code_;
    s.entrypoint = "/var/task/bootstrap";
    s.env = {"PATH=/usr/bin:/bin"};
    s.ephemeral_storage_mb = 64;
    return s;
  }
  static std::string ReadAll(int fd) {
    std::string s;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) s.append(buf, n);
    return s;
  }
  RunResult Run(Launcher& l, const std::string& script) {
    Write("bootstrap", script);
    auto p = l.Launch(Spec());
    RunResult r;
    if (!p) {
      ADD_FAILURE() << p.error().ToString();
      return r;
    }
    UniqueFd out = (*p)->TakeStdout(), err = (*p)->TakeStderr();
    r.out = ReadAll(out.get());
    r.err = ReadAll(err.get());
    pollfd pf{(*p)->exit_fd(), POLLIN, 0};
    EXPECT_EQ(::poll(&pf, 1, 20000), 1);
    r.status = (*p)->TryReap().value_or(-1);
    return r;
  }
  // Pids of this launcher's slirp4netns processes (from its pid files).
  static std::vector<pid_t> SlirpPids() {
    std::vector<pid_t> pids;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(state_ / "egress" / "net", ec)) {
      pid_t pid = 0;
      std::ifstream(e.path()) >> pid;
      if (pid > 0) pids.push_back(pid);
    }
    return pids;
  }

  static inline fs::path state_;
  static inline Launcher* none_ = nullptr;
  static inline Launcher* egress_ = nullptr;
  static inline std::string* skip_reason_ = nullptr;
  static inline std::string* egress_error_ = nullptr;
  static inline int counter_ = 0;
  fs::path code_;
};

const char* kProbe =
    "import socket, os, sys, errno\n"
    "def tryit(name, f):\n"
    "    try:\n"
    "        r = f(); print(name, 'ok', r if r is not None else '')\n"
    "    except OSError as e:\n"
    "        print(name, errno.errorcode.get(e.errno, e.errno))\n"
    "def tcp(host, port):\n"
    "    s = socket.create_connection((host, port), timeout=3)\n"
    "    data = s.makefile().readline().strip(); s.close(); return data\n"
    "peer, port, host_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])\n"
    "print('ifaces', sorted(l.split(':')[0].strip() for l in "
    "open('/proc/net/dev').readlines()[2:]))\n"
    "print('resolv', open('/etc/resolv.conf').read().strip().replace('\\n', ';'))\n"
    "tryit('peer_tcp', lambda: tcp(peer, port))\n"
    "def udp_dns():\n"
    "    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.connect(('10.0.2.3', 53)); "
    "s.close()\n"
    "tryit('dns_udp_socket', udp_dns)\n"
    "tryit('runtime_api', lambda: socket.create_connection(('127.0.0.1', 9001), "
    "timeout=2).close())\n"
    "tryit('host_loopback', lambda: tcp('127.0.0.1', host_port))\n"
    "tryit('slirp_host_loopback', lambda: tcp('10.0.2.2', host_port))\n"
    "def lst():\n"
    "    s = socket.socket(); s.bind(('0.0.0.0', 0)); s.listen(1)\n"
    "tryit('listen', lst)\n"
    "tryit('raw', lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP))\n"
    "tryit('packet', lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW))\n";

TEST_F(EgressTest, EgressReachesTheTestPeerNoneCannotHostLoopbackStaysOut) {
  TestPeer peer;
  ASSERT_EQ(peer.error(), "");
  // A listener on the host's 127.0.0.1 (stands for the daemon's API): unreachable in both modes.
  UniqueFd host = ListenOn("127.0.0.1");
  ASSERT_TRUE(host.valid());
  Write("probe.py", kProbe, 0644);
  const std::string boot = "#!/bin/sh\nexec /usr/bin/python3 /var/task/probe.py " + peer.ip() +
                           " " + std::to_string(peer.port()) + " " +
                           std::to_string(PortOf(host.get())) + "\n";

  RunResult e = Run(*egress_, boot);
  EXPECT_TRUE(WIFEXITED(e.status) && WEXITSTATUS(e.status) == 0) << e.status << e.err;
  EXPECT_NE(e.out.find("ifaces ['lo', 'tap0']"), std::string::npos) << e.out;
  EXPECT_NE(e.out.find("resolv nameserver 10.0.2.3"), std::string::npos) << e.out;
  EXPECT_NE(e.out.find(std::string("peer_tcp ok ") + kBanner), std::string::npos) << e.out << e.err;
  EXPECT_NE(e.out.find("dns_udp_socket ok"), std::string::npos) << e.out;
  EXPECT_NE(e.out.find("runtime_api ok"), std::string::npos) << e.out;
  EXPECT_NE(e.out.find("host_loopback ECONNREFUSED"), std::string::npos) << e.out;
  EXPECT_NE(e.out.find("slirp_host_loopback ENETUNREACH"), std::string::npos) << e.out;
  EXPECT_NE(e.out.find("listen EACCES"), std::string::npos) << e.out;
  EXPECT_NE(e.out.find("raw EPERM"), std::string::npos) << e.out;
  EXPECT_NE(e.out.find("packet EPERM"), std::string::npos) << e.out;
  EXPECT_EQ(peer.accepted(), 1);

  RunResult n = Run(*none_, boot);
  EXPECT_TRUE(WIFEXITED(n.status) && WEXITSTATUS(n.status) == 0) << n.status << n.err;
  EXPECT_NE(n.out.find("ifaces ['lo']"), std::string::npos) << n.out;
  EXPECT_NE(n.out.find("peer_tcp ENETUNREACH"), std::string::npos) << n.out;
  EXPECT_NE(n.out.find("host_loopback ECONNREFUSED"), std::string::npos) << n.out;
  EXPECT_NE(n.out.find("listen EACCES"), std::string::npos) << n.out;
  EXPECT_EQ(peer.accepted(), 1);
}

// Nothing inbound: even a listener in the sandbox's netns (planted by this test, since seccomp
// refuses listen() to the sandbox) cannot be reached from the host, and slirp4netns holds no
// listening socket on the host (no port forwards, no API socket).
TEST_F(EgressTest, NothingInbound) {
  TestPeer peer;
  ASSERT_EQ(peer.error(), "");
  Write("bootstrap", "#!/bin/sh\nexec sleep 30\n");
  auto p = egress_->Launch(Spec());
  ASSERT_TRUE(p.has_value()) << p.error().ToString();
  UniqueFd planted;
  ASSERT_TRUE(
      InNetns(fmt::format("/proc/{}/ns/net", (*p)->pid()), [&] { planted = ListenOn("0.0.0.0"); }));
  ASSERT_TRUE(planted.valid());
  const int port = PortOf(planted.get());
  EXPECT_EQ(TryConnect("127.0.0.1", port), "ECONNREFUSED");
  EXPECT_EQ(TryConnect(peer.host_ip().c_str(), port), "ECONNREFUSED");
  InNetns("/run/netns/hearth-egress-test-" + std::to_string(::getpid()),
          [&] { EXPECT_NE(TryConnect(peer.host_ip().c_str(), port), "ok"); });
  // No slirp4netns of ours listens anywhere on the host: collect its socket inodes and look them
  // up in the host's TCP tables (state 0A = LISTEN).
  std::set<std::string> inodes;
  auto pids = SlirpPids();
  ASSERT_FALSE(pids.empty());
  for (pid_t pid : pids) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(fmt::format("/proc/{}/fd", pid), ec)) {
      std::string target = fs::read_symlink(e.path(), ec).string();
      if (target.starts_with("socket:[")) inodes.insert(target.substr(8, target.size() - 9));
    }
  }
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(table);
    std::string line;
    std::getline(in, line);
    while (std::getline(in, line)) {
      std::istringstream f(line);
      std::string sl, local, remote, st, q, tr, retr, uid, timeout, inode;
      f >> sl >> local >> remote >> st >> q >> tr >> retr >> uid >> timeout >> inode;
      EXPECT_FALSE(st == "0A" && inodes.contains(inode))
          << "slirp4netns listens on " << local << " (" << table << ")";
    }
  }
  (*p)->Signal(SIGKILL);
  p->reset();
}

// A slirp4netns whose owner dies exits on its own (exit pipe); one whose owner is alive but not
// this process is killed by the sweep; the sweep removes their pid files.
TEST_F(EgressTest, SlirpDiesWithItsOwnerAndTheSweepKillsLeftovers) {
  const fs::path dir = state_ / "sweep";
  fs::create_directories(dir);
  auto start_in_child = [&](bool die) -> std::pair<pid_t, pid_t> {
    int pfd[2];
    if (::pipe2(pfd, O_CLOEXEC) != 0) return {-1, -1};
    UniqueFd r(pfd[0]), w(pfd[1]);
    pid_t child = ::fork();
    if (child == 0) {
      r.Reset();
      pid_t slirp_pid = -1;
      UniqueFd home(::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC));
      bool lost = false;
      auto slot = MakeNetSlot(home.get(), nullptr, &lost);
      if (slot) {
        auto s = StartSlirp(SlirpOptions{.binary = *FindSlirp4netns(), .pid_dir = dir},
                            slot->netns.get());
        if (s) {
          slirp_pid = (*s)->pid();
          (void)(*s).release();  // leaked on purpose: this process plays a killed daemon
        }
      }
      (void)!::write(w.get(), &slirp_pid, sizeof slirp_pid);
      if (die) ::_exit(0);
      ::pause();
      ::_exit(0);
    }
    w.Reset();
    pid_t slirp_pid = -1;
    (void)!::read(r.get(), &slirp_pid, sizeof slirp_pid);
    return {child, slirp_pid};
  };
  auto gone = [](pid_t pid) {
    for (int i = 0; i < 200; ++i) {
      std::ifstream in(fmt::format("/proc/{}/stat", pid));
      std::string s;
      std::getline(in, s);
      auto close = s.rfind(')');
      if (s.empty() || (close != std::string::npos && (s[close + 2] == 'Z' || s[close + 2] == 'X')))
        return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  };
  // 1. The owner exits: the slirp4netns follows (its exit pipe saw EOF); the sweep drops its file.
  auto [c1, s1] = start_in_child(true);
  ASSERT_GT(s1, 0);
  int st;
  ::waitpid(c1, &st, 0);
  EXPECT_TRUE(gone(s1)) << "slirp4netns " << s1 << " outlived its owner";
  // 2. The owner lives on but is not us: the sweep kills it.
  auto [c2, s2] = start_in_child(false);
  ASSERT_GT(s2, 0);
  EXPECT_EQ(::kill(s2, 0), 0) << "slirp4netns " << s2 << " is not running";
  ASSERT_TRUE(SweepSlirp(dir).ok());
  EXPECT_TRUE(gone(s2)) << "the sweep did not kill slirp4netns " << s2;
  ::kill(c2, SIGKILL);
  ::waitpid(c2, &st, 0);
  std::error_code ec;
  EXPECT_TRUE(fs::is_empty(dir, ec)) << "pid files left in " << dir;
}

// Cold start, none against egress (both from their pools): Launch() and launch+exit+teardown.
TEST_F(EgressTest, ColdStartCostNoneVsEgress) {
  Write("bootstrap", "#!/bin/sh\nexec /bin/true\n");
  constexpr int kN = 40;
  for (Launcher* l : {none_, egress_}) {
    std::vector<double> launch, total;
    for (int i = 0; i < kN; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(15));  // let the pools refill
      auto t0 = std::chrono::steady_clock::now();
      auto p = l->Launch(Spec());
      ASSERT_TRUE(p.has_value()) << p.error().ToString();
      auto t1 = std::chrono::steady_clock::now();
      pollfd pf{(*p)->exit_fd(), POLLIN, 0};
      ASSERT_EQ(::poll(&pf, 1, 10000), 1);
      (*p)->TryReap();
      p->reset();
      auto t2 = std::chrono::steady_clock::now();
      launch.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
      total.push_back(std::chrono::duration<double, std::milli>(t2 - t0).count());
    }
    std::sort(launch.begin(), launch.end());
    std::sort(total.begin(), total.end());
    std::printf(
        "network %-6s n=%d Launch() p50 %.2f ms p99 %.2f ms; launch+exit+teardown p50 %.2f ms p99 "
        "%.2f ms\n",
        l == none_ ? "none" : "egress", kN, launch[kN / 2], launch[kN * 99 / 100], total[kN / 2],
        total[kN * 99 / 100]);
  }
}

}  // namespace
}  // namespace hearth::sandbox
