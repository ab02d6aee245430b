#include "sandbox/process_launcher.h"

#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <chrono>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

namespace hearth::sandbox {
namespace {

namespace fs = std::filesystem;

class ProcessLauncherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::path(::testing::TempDir()) / ("launcher_" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_ / "code");
    fs::create_directories(root_ / "state");
  }
  void TearDown() override { fs::remove_all(root_); }
  void WriteScript(const std::string& body) {
    std::ofstream(root_ / "code" / "bootstrap") << "#!/bin/sh\n" << body;
    ::chmod((root_ / "code" / "bootstrap").c_str(), 0755);
  }
  std::string ReadAll(int fd) {
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, n);
    return out;
  }
  LaunchSpec Spec() {
    LaunchSpec s;
    s.environment_id = "env1";
    s.code_dir = root_ / "code";
    s.entrypoint = "/var/task/bootstrap";
    s.env = {"FOO=bar"};
    return s;
  }
  fs::path root_;
};

TEST_F(ProcessLauncherTest, RunsInCodeDirWithEnvironment) {
  WriteScript("echo \"$PWD|$FOO|$LAMBDA_TASK_ROOT|$AWS_LAMBDA_RUNTIME_API\"\n");
  auto launcher = NewProcessLauncher(root_ / "state");
  auto p = launcher->Launch(Spec());
  ASSERT_TRUE(p.has_value()) << p.error().ToString();
  UniqueFd out = (*p)->TakeStdout();
  std::string text = ReadAll(out.get());
  std::string code = (root_ / "code").string();
  EXPECT_EQ(text, code + "|bar|" + code + "|" + (*p)->runtime_api_address() + "\n");
  EXPECT_TRUE((*p)->runtime_api_address().starts_with("127.0.0.1:"));
  EXPECT_TRUE(fs::exists(root_ / "state" / "env1.pid"));
  pollfd pfd{(*p)->exit_fd(), POLLIN, 0};
  ASSERT_EQ(::poll(&pfd, 1, 5000), 1);
  auto st = (*p)->TryReap();
  ASSERT_TRUE(st.has_value());
  EXPECT_TRUE(WIFEXITED(*st));
  p->reset();
  EXPECT_FALSE(fs::exists(root_ / "state" / "env1.pid"));
}

TEST_F(ProcessLauncherTest, MissingEntrypointIsNotFound) {
  auto launcher = NewProcessLauncher(root_ / "state");
  auto p = launcher->Launch(Spec());
  ASSERT_FALSE(p.has_value());
  EXPECT_EQ(p.error().code(), StatusCode::kNotFound);
  // Counted as a failed launch; a launch that works counts as launched.
  EXPECT_EQ(launcher->stats().failed, 1);
  EXPECT_EQ(launcher->stats().launched, 0);
  WriteScript("exit 0\n");
  auto ok = launcher->Launch(Spec());
  ASSERT_TRUE(ok.has_value()) << ok.error().ToString();
  EXPECT_EQ(launcher->stats().launched, 1);
  EXPECT_EQ(launcher->stats().failed, 1);
  EXPECT_EQ(launcher->stats().from_blank_pool, 0);  // no pools without a sandbox
}

TEST_F(ProcessLauncherTest, SignalKillsTheWholeTree) {
  WriteScript("sleep 100 &\necho $!\nwait\n");
  auto launcher = NewProcessLauncher(root_ / "state");
  auto p = launcher->Launch(Spec());
  ASSERT_TRUE(p.has_value());
  UniqueFd out = (*p)->TakeStdout();
  std::string line;
  char c;
  while (::read(out.get(), &c, 1) == 1 && c != '\n') line.push_back(c);
  pid_t grandchild = std::stoi(line);
  (*p)->Signal(SIGKILL);
  pollfd pfd{(*p)->exit_fd(), POLLIN, 0};
  ASSERT_EQ(::poll(&pfd, 1, 5000), 1);
  ASSERT_TRUE((*p)->TryReap().has_value());
  bool gone = false;
  for (int i = 0; i < 100 && !gone; ++i) {
    // Gone, or a zombie waiting for its new parent to reap it: either way it no longer runs.
    std::ifstream stat("/proc/" + std::to_string(grandchild) + "/stat");
    std::string pid_s, comm, state;
    gone = !(stat >> pid_s >> comm >> state) || state == "Z";
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(gone) << "the runtime's child survived";
}

TEST_F(ProcessLauncherTest, SweepKillsLeftoversOfAKilledDaemon) {
  WriteScript("exec sleep 100\n");
  auto launcher = NewProcessLauncher(root_ / "state");
  auto p = launcher->Launch(Spec());
  ASSERT_TRUE(p.has_value());
  pid_t pid = (*p)->pid();
  // Simulate a daemon that died without cleaning up: a new launcher sweeps the pid file.
  auto fresh = NewProcessLauncher(root_ / "state");
  ASSERT_TRUE(fresh->SweepLeftovers().ok());
  pollfd pfd{(*p)->exit_fd(), POLLIN, 0};
  ASSERT_EQ(::poll(&pfd, 1, 5000), 1);
  auto st = (*p)->TryReap();
  ASSERT_TRUE(st.has_value());
  EXPECT_TRUE(WIFSIGNALED(*st));
  EXPECT_EQ(WTERMSIG(*st), SIGKILL);
  (void)pid;
}

}  // namespace
}  // namespace hearth::sandbox

namespace hearth::sandbox {
namespace {

TEST(HostPathTest, MapsTheRuntimesRootsOnly) {
  LaunchSpec s;
  s.code_dir = "/data/code/abc";
  s.opt_dir = "/data/opt/xyz";
  EXPECT_EQ(HostPath(s, "/var/task/bootstrap"), "/data/code/abc/bootstrap");
  EXPECT_EQ(HostPath(s, "/var/task"), "/data/code/abc");
  EXPECT_EQ(HostPath(s, "/opt/bin/tool"), "/data/opt/xyz/bin/tool");
  EXPECT_EQ(HostPath(s, "/var/runtime/bootstrap"), "");  // no runtime dir in this spec
  EXPECT_EQ(HostPath(s, "/var/taskforce/x"), "");
  EXPECT_EQ(HostPath(s, "/etc/passwd"), "");
  EXPECT_EQ(HostPath(s, "/var/task/../../etc/passwd"), "");
  s.runtime_dir = "/rt";
  EXPECT_EQ(HostPath(s, "/var/runtime/bootstrap"), "/rt/bootstrap");
}

}  // namespace
}  // namespace hearth::sandbox
