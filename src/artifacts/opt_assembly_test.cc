#include "artifacts/opt_assembly.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace hearth::artifacts {
namespace {

namespace fs = std::filesystem;

class OptAssemblyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::path(::testing::TempDir()) / "hearth_opt_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    (void)GarbageCollectOpt(dir_ / "opt", {});  // makes the read-only trees removable
    fs::remove_all(dir_, ec);
  }
  // A layer tree under dir_/layers/<name> with `files` (path -> content).
  fs::path Layer(const std::string& name,
                 const std::vector<std::pair<std::string, std::string>>& files) {
    fs::path root = dir_ / "layers" / name;
    for (const auto& [p, content] : files) {
      fs::create_directories((root / p).parent_path());
      std::ofstream(root / p) << content;
      ::chmod((root / p).c_str(), 0444);
    }
    fs::create_directories(root);
    return root;
  }
  static std::string Read(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  fs::path dir_;
};

TEST_F(OptAssemblyTest, KeyIsOrderSensitiveAndEmptyForNoLayers) {
  EXPECT_EQ(OptKey({}), "");
  EXPECT_EQ(OptKey({"a", "b"}).size(), 64u);
  EXPECT_NE(OptKey({"a", "b"}), OptKey({"b", "a"}));
  EXPECT_EQ(OptKey({"a", "b"}), OptKey({"a", "b"}));
}

TEST_F(OptAssemblyTest, NoLayersIsAnEmptyPath) {
  auto got = AssembleOpt(dir_ / "opt", {}, {});
  ASSERT_TRUE(got.has_value());
  EXPECT_TRUE(got->empty());
}

TEST_F(OptAssemblyTest, LaterLayersWinAndTreesMerge) {
  fs::path a = Layer("a", {{"x.txt", "from a"}, {"bin/tool", "a tool"}, {"only_a", "A"}});
  fs::path b = Layer("b", {{"x.txt", "from b"}, {"lib/libb.so", "B"}});
  fs::create_directories(b / "python");
  fs::create_symlink("../x.txt", b / "python" / "link");
  // A file in one layer replaced by a directory in a later one.
  fs::path c = Layer("c", {{"only_a/inner", "C"}});
  auto got = AssembleOpt(dir_ / "opt", {a, b, c}, {"da", "db", "dc"});
  ASSERT_TRUE(got.has_value()) << got.error().ToString();
  EXPECT_EQ(*got, dir_ / "opt" / OptKey({"da", "db", "dc"}));
  EXPECT_EQ(Read(*got / "x.txt"), "from b");
  EXPECT_EQ(Read(*got / "bin/tool"), "a tool");
  EXPECT_EQ(Read(*got / "lib/libb.so"), "B");
  EXPECT_EQ(Read(*got / "only_a/inner"), "C");
  EXPECT_TRUE(fs::is_symlink(*got / "python/link"));
  EXPECT_EQ(fs::read_symlink(*got / "python/link"), "../x.txt");
  // Read-only directories; the layer trees themselves are untouched.
  struct stat st {};
  ASSERT_EQ(::stat(got->c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0555u);
  EXPECT_EQ(Read(a / "x.txt"), "from a");

  // The other order gives another tree where a wins.
  auto rev = AssembleOpt(dir_ / "opt", {b, a}, {"db", "da"});
  ASSERT_TRUE(rev.has_value());
  EXPECT_NE(*rev, *got);
  EXPECT_EQ(Read(*rev / "x.txt"), "from a");
}

TEST_F(OptAssemblyTest, BuiltOnceThenCachedAndNoTmpLeft) {
  fs::path a = Layer("a", {{"x.txt", "v1"}});
  auto first = AssembleOpt(dir_ / "opt", {a}, {"da"});
  ASSERT_TRUE(first.has_value());
  // Changing the source under the same digest does not rebuild: the digest is the identity.
  fs::path a2 = Layer("a2", {{"x.txt", "v2"}});
  auto second = AssembleOpt(dir_ / "opt", {a2}, {"da"});
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(*second, *first);
  EXPECT_EQ(Read(*second / "x.txt"), "v1");
  // Nothing half-built is left in tmp.
  std::error_code ec;
  EXPECT_TRUE(fs::is_empty(dir_ / "opt" / "tmp", ec));
}

TEST_F(OptAssemblyTest, ConcurrentBuildersAgree) {
  fs::path a = Layer("a", {{"x.txt", "A"}});
  fs::path b = Layer("b", {{"y.txt", "B"}});
  std::vector<std::thread> threads;
  std::vector<Result<fs::path>> out(6, fs::path());
  for (size_t i = 0; i < out.size(); ++i) {
    threads.emplace_back([&, i] { out[i] = AssembleOpt(dir_ / "opt", {a, b}, {"da", "db"}); });
  }
  for (auto& t : threads) t.join();
  for (const auto& r : out) {
    ASSERT_TRUE(r.has_value()) << r.error().ToString();
    EXPECT_EQ(*r, *out[0]);
  }
  EXPECT_EQ(Read(*out[0] / "y.txt"), "B");
  std::error_code ec;
  EXPECT_TRUE(fs::is_empty(dir_ / "opt" / "tmp", ec));
}

TEST_F(OptAssemblyTest, GarbageCollectKeepsOnlyUsedCombinationsAndClearsTmp) {
  fs::path a = Layer("a", {{"x.txt", "A"}});
  auto keep = AssembleOpt(dir_ / "opt", {a}, {"da"});
  auto drop = AssembleOpt(dir_ / "opt", {a}, {"other"});
  ASSERT_TRUE(keep.has_value());
  ASSERT_TRUE(drop.has_value());
  fs::create_directories(dir_ / "opt" / "tmp" / "half-built");  // a crash mid-build
  ASSERT_TRUE(GarbageCollectOpt(dir_ / "opt", {OptKey({"da"})}).ok());
  EXPECT_TRUE(fs::exists(*keep));
  EXPECT_FALSE(fs::exists(*drop));
  EXPECT_FALSE(fs::exists(dir_ / "opt" / "tmp" / "half-built"));
}

TEST_F(OptAssemblyTest, MismatchedListsAreInvalid) {
  auto got = AssembleOpt(dir_ / "opt", {dir_}, {});
  ASSERT_FALSE(got.has_value());
  EXPECT_EQ(got.error().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace hearth::artifacts
