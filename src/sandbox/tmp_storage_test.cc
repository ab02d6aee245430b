// The /tmp volume pool: needs root and loop devices; skips with the reason otherwise.
#include "sandbox/tmp_storage.h"

#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace hearth::sandbox {
namespace {

namespace fs = std::filesystem;

// Loop devices whose backing file is below `dir`.
int LoopsBackedBy(const fs::path& dir) {
  int n = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/sys/block", ec)) {
    std::ifstream bf(e.path() / "loop" / "backing_file");
    std::string backing;
    std::getline(bf, backing);
    if (backing.starts_with(dir.string() + "/")) ++n;
  }
  return n;
}

class TmpStorageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "not root: loop devices need root";
    if (::access("/dev/loop-control", R_OK | W_OK) != 0) GTEST_SKIP() << "no /dev/loop-control";
    dir_ = fs::path(::testing::TempDir()) / ("hearth_tmpstorage_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (dir_.empty()) return;
    // Every volume is gone with its storage: no loop device is left behind.
    for (int i = 0; i < 100 && LoopsBackedBy(dir_) > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_EQ(LoopsBackedBy(dir_), 0);
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  fs::path dir_;
};

TEST_F(TmpStorageTest, UsableSpaceIsTheConfiguredSizeWithinAFifthOfAPercent) {
  TmpStorage tmp(dir_, 993, 993, {.per_size = 0});
  for (int mb : {64, 512, 2048}) {
    auto usable = tmp.UsableBytes(mb);
    ASSERT_TRUE(usable.has_value()) << usable.error().ToString();
    EXPECT_GE(*usable, int64_t{mb} << 20) << mb;
    EXPECT_LE(*usable, (int64_t{mb} << 20) + std::max<int64_t>(2 * TmpStorage::kSlackBytes, (int64_t{mb} << 20) / 500))
        << mb;
    // A volume reports the same (it is a copy of the template), mode 1777, owned by the sandbox user.
    auto v = tmp.Make(mb);
    ASSERT_TRUE(v.has_value()) << v.error().ToString();
    struct statvfs st {};
    ASSERT_EQ(::fstatvfs(v->mount_fd.get(), &st), 0);
    EXPECT_EQ(static_cast<int64_t>(st.f_bavail) * static_cast<int64_t>(st.f_frsize), *usable) << mb;
    struct stat root {};
    ASSERT_EQ(::fstat(v->mount_fd.get(), &root), 0);
    EXPECT_EQ(root.st_mode & 07777, 01777u);
    EXPECT_EQ(root.st_uid, 993u);
  }
}

TEST_F(TmpStorageTest, PoolHandsOutFreshVolumesAndRefills) {
  TmpStorage tmp(dir_, 993, 993, {.per_size = 2, .prefill_sizes = {64}});
  tmp.Start();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (tmp.ready(64) < 2 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(tmp.ready(64), 2u) << tmp.counters().last_error;
  std::set<std::string> devices;
  std::vector<TmpVolume> held;  // (a released volume's loop device number may be used again)
  for (int i = 0; i < 4; ++i) {
    auto v = tmp.Acquire(64);
    ASSERT_TRUE(v.has_value()) << v.error().ToString();
    EXPECT_TRUE(devices.insert(v->device).second) << "a volume was handed out twice: " << v->device;
    // Nothing written by an earlier user: only lost+found is there.
    struct statvfs st {};
    ASSERT_EQ(::fstatvfs(v->mount_fd.get(), &st), 0);
    EXPECT_EQ(static_cast<int64_t>(st.f_bavail) * static_cast<int64_t>(st.f_frsize), *tmp.UsableBytes(64));
    held.push_back(std::move(*v));
  }
  EXPECT_GE(tmp.counters().hits, 2u);
  // An unknown size is made on the spot, then kept ready too.
  auto v = tmp.Acquire(96);
  ASSERT_TRUE(v.has_value()) << v.error().ToString();
  EXPECT_GE(tmp.counters().misses, 1u);
  while (tmp.ready(96) < 2 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(tmp.ready(96), 2u);
  // A volume is in no mount table of the host.
  std::ifstream mi("/proc/self/mountinfo");
  std::string all((std::istreambuf_iterator<char>(mi)), std::istreambuf_iterator<char>());
  EXPECT_EQ(all.find(v->device), std::string::npos) << all;
}

TEST_F(TmpStorageTest, SweepRemovesStrayFilesAndKeepsTemplates) {
  {
    TmpStorage tmp(dir_, 993, 993, {.per_size = 0});
    ASSERT_TRUE(tmp.ImageBytes(64).has_value());
  }
  std::ofstream(dir_ / "env-1.img") << "old image";
  std::ofstream(dir_ / "template-64.img") << "old-version template";
  std::ofstream(dir_ / "template-v2-64.img.tmp-1") << "a crashed run's half template";
  TmpStorage tmp(dir_, 993, 993, {.per_size = 0});
  ASSERT_TRUE(tmp.Sweep().ok());
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(dir_)) names.insert(e.path().filename().string());
  EXPECT_EQ(names, std::set<std::string>{"template-v2-64.img"});
}

}  // namespace
}  // namespace hearth::sandbox
