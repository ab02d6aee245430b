#include "artifacts/code_store.h"

#include <fmt/core.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "artifacts/fs_code_store.h"
#include "artifacts/safe_unzip.h"
#include "artifacts/test_zip_builder.h"
#include "common/encoding.h"

namespace hearth::artifacts {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ziptest::ScopedTempDir;
using ziptest::ZipWriter;

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> List(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

ino_t InodeOf(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::lstat(p.c_str(), &st), 0);
  return st.st_ino;
}

std::string SampleZip(const std::string& tag = "v1") {
  return ZipWriter()
      .File("bootstrap", fmt::format("#!/bin/sh\necho {}\n", tag), 0755)
      .File("lib/util.py", fmt::format("X = '{}'\n", tag))
      .Symlink("util.py", "lib/util.py")
      .Finish();
}

class CodeStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }

  void Reopen(UnzipLimits limits = {}) {
    store_.reset();
    Result<CodeStorePtr> store = OpenCodeStore(root(), limits);
    ASSERT_TRUE(store.has_value()) << store.error().ToString();
    store_ = std::move(*store);
  }

  fs::path root() const { return tmp_.path() / "store"; }

  ScopedTempDir tmp_;
  CodeStorePtr store_;
};

TEST_F(CodeStoreTest, OpenCreatesLayout) {
  EXPECT_TRUE(fs::is_directory(root() / "zips"));
  EXPECT_TRUE(fs::is_directory(root() / "unpacked"));
  EXPECT_TRUE(fs::is_directory(root() / "tmp"));
}

TEST_F(CodeStoreTest, PutStoresZipAndReadOnlyTree) {
  const std::string zip = SampleZip();
  Result<StoredCode> code = store_->Put(zip);
  ASSERT_TRUE(code.has_value()) << code.error().ToString();
  const std::string hex = HexEncode(Sha256(zip));
  EXPECT_EQ(code->sha256_hex, hex);
  EXPECT_EQ(code->sha256_base64, Base64Encode(Sha256(zip)));
  EXPECT_EQ(code->zip_size, static_cast<int64_t>(zip.size()));
  EXPECT_EQ(code->unzipped_size, static_cast<int64_t>(std::string("#!/bin/sh\necho v1\n").size() +
                                                      std::string("X = 'v1'\n").size()));
  EXPECT_EQ(code->dir, root() / "unpacked" / hex);
  EXPECT_EQ(ReadFile(root() / "zips" / (hex + ".zip")), zip);
  EXPECT_EQ(ReadFile(code->dir / "util.py"), "X = 'v1'\n");
  EXPECT_EQ(fs::read_symlink(code->dir / "util.py"), "lib/util.py");

  struct stat st {};
  ASSERT_EQ(::stat(code->dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0555u);
  ASSERT_EQ(::stat((code->dir / "lib").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0555u);
  ASSERT_EQ(::stat((code->dir / "bootstrap").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0555u);
  ASSERT_EQ(::stat((code->dir / "lib/util.py").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0444u);
  EXPECT_TRUE(List(root() / "tmp").empty());
}

TEST_F(CodeStoreTest, SecondPutReturnsExistingEntryWithoutUnpackingAgain) {
  const std::string zip = SampleZip();
  Result<StoredCode> first = store_->Put(zip);
  ASSERT_TRUE(first.has_value()) << first.error().ToString();
  const ino_t tree = InodeOf(first->dir);
  const ino_t file = InodeOf(first->dir / "bootstrap");

  Result<StoredCode> second = store_->Put(zip);
  ASSERT_TRUE(second.has_value()) << second.error().ToString();
  EXPECT_EQ(second->sha256_hex, first->sha256_hex);
  EXPECT_EQ(second->sha256_base64, first->sha256_base64);
  EXPECT_EQ(second->zip_size, first->zip_size);
  EXPECT_EQ(second->unzipped_size, first->unzipped_size);
  EXPECT_EQ(second->dir, first->dir);
  EXPECT_EQ(InodeOf(second->dir), tree);
  EXPECT_EQ(InodeOf(second->dir / "bootstrap"), file);

  // Survives a restart, and a lost .meta is recomputed from the tree.
  Reopen();
  fs::remove(root() / "unpacked" / (first->sha256_hex + ".meta"));
  Result<StoredCode> third = store_->Put(zip);
  ASSERT_TRUE(third.has_value()) << third.error().ToString();
  EXPECT_EQ(third->unzipped_size, first->unzipped_size);
  EXPECT_EQ(third->zip_size, first->zip_size);
  EXPECT_EQ(InodeOf(third->dir), tree);
}

TEST_F(CodeStoreTest, GetReturnsStoredEntry) {
  Result<StoredCode> put = store_->Put(SampleZip());
  ASSERT_TRUE(put.has_value()) << put.error().ToString();
  Reopen();
  Result<StoredCode> got = store_->Get(put->sha256_hex);
  ASSERT_TRUE(got.has_value()) << got.error().ToString();
  EXPECT_EQ(got->sha256_hex, put->sha256_hex);
  EXPECT_EQ(got->sha256_base64, put->sha256_base64);
  EXPECT_EQ(got->zip_size, put->zip_size);
  EXPECT_EQ(got->unzipped_size, put->unzipped_size);
  EXPECT_EQ(got->dir, put->dir);
}

TEST_F(CodeStoreTest, GetUnknownOrMalformedDigestIsNotFound) {
  Result<StoredCode> missing = store_->Get(HexEncode(Sha256("nothing stored")));
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code(), StatusCode::kNotFound);
  for (const char* bad : {"", "../../etc", "ABCDEF", "zz"}) {
    Result<StoredCode> r = store_->Get(bad);
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_EQ(r.error().code(), StatusCode::kNotFound) << bad;
  }
}

TEST_F(CodeStoreTest, HostileZipIsRefusedAndLeavesNothingBehind) {
  Result<StoredCode> r = store_->Put(ZipWriter().File("ok.txt", "x").File("../evil", "x").Finish());
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(r.error().message(),
              HasSubstr("Zip entry '../evil' escapes the package (path traversal)"));
  EXPECT_TRUE(List(root() / "zips").empty());
  EXPECT_TRUE(List(root() / "unpacked").empty());
  EXPECT_TRUE(List(root() / "tmp").empty());
  EXPECT_FALSE(fs::exists(tmp_.path() / "evil"));
}

TEST_F(CodeStoreTest, NotAZipIsRefusedWithLambdasMessage) {
  Result<StoredCode> r = store_->Put("PK\x03\x04 but not really");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.error().message(), kNotAZipMessage);
}

TEST_F(CodeStoreTest, LimitsAreApplied) {
  Reopen(UnzipLimits{
      .max_unzipped_bytes = 1 << 20, .max_entries = 100, .max_compression_ratio = 1000});
  Result<StoredCode> r = store_->Put(ZipWriter().Zeros("big", 2 << 20).Finish());
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error().message(), HasSubstr("unzipped size must be smaller than 1048576 bytes"));
  EXPECT_TRUE(List(root() / "tmp").empty());
}

TEST_F(CodeStoreTest, ConcurrentPutsOfTheSameBytesUnpackOnce) {
  const std::string zip = SampleZip();
  constexpr int kThreads = 8;
  std::vector<Result<StoredCode>> results(kThreads, std::unexpected(Status::Internal("not run")));
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] { results[i] = store_->Put(zip); });
  }
  for (std::thread& t : threads) t.join();
  for (const Result<StoredCode>& r : results) {
    ASSERT_TRUE(r.has_value()) << r.error().ToString();
    EXPECT_EQ(r->dir, results[0]->dir);
    EXPECT_EQ(r->unzipped_size, results[0]->unzipped_size);
  }
  const std::string hex = results[0]->sha256_hex;
  EXPECT_EQ(List(root() / "unpacked"), (std::vector<std::string>{hex, hex + ".meta"}));
  EXPECT_EQ(List(root() / "zips"), (std::vector<std::string>{hex + ".zip"}));
  EXPECT_TRUE(List(root() / "tmp").empty());
}

TEST_F(CodeStoreTest, ConcurrentPutsOfDifferentBytes) {
  constexpr int kThreads = 6;
  std::vector<std::string> zips;
  for (int i = 0; i < kThreads; ++i) zips.push_back(SampleZip(fmt::format("v{}", i)));
  std::vector<Result<StoredCode>> results(kThreads, std::unexpected(Status::Internal("not run")));
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] { results[i] = store_->Put(zips[i]); });
  }
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < kThreads; ++i) {
    ASSERT_TRUE(results[i].has_value()) << results[i].error().ToString();
    EXPECT_EQ(ReadFile(results[i]->dir / "lib/util.py"), fmt::format("X = 'v{}'\n", i));
  }
  EXPECT_EQ(List(root() / "zips").size(), static_cast<size_t>(kThreads));
}

TEST_F(CodeStoreTest, GarbageCollectDeletesWhatIsNotKept) {
  Result<StoredCode> a = store_->Put(SampleZip("a"));
  Result<StoredCode> b = store_->Put(SampleZip("b"));
  ASSERT_TRUE(a.has_value() && b.has_value());
  // Unrelated files are not ours to delete.
  std::ofstream(root() / "zips" / "README") << "keep me";

  ASSERT_TRUE(store_->GarbageCollect({a->sha256_hex}).ok());
  EXPECT_TRUE(store_->Get(a->sha256_hex).has_value());
  EXPECT_TRUE(fs::exists(a->dir / "bootstrap"));
  Result<StoredCode> gone = store_->Get(b->sha256_hex);
  ASSERT_FALSE(gone.has_value());
  EXPECT_EQ(gone.error().code(), StatusCode::kNotFound);
  EXPECT_FALSE(fs::exists(b->dir));
  EXPECT_EQ(List(root() / "zips"), (std::vector<std::string>{a->sha256_hex + ".zip", "README"}));
  EXPECT_EQ(List(root() / "unpacked"),
            (std::vector<std::string>{a->sha256_hex, a->sha256_hex + ".meta"}));
  EXPECT_TRUE(List(root() / "tmp").empty());

  ASSERT_TRUE(store_->GarbageCollect({}).ok());
  EXPECT_TRUE(List(root() / "unpacked").empty());
  EXPECT_EQ(List(root() / "zips"), (std::vector<std::string>{"README"}));

  // A collected digest can be stored again.
  Result<StoredCode> again = store_->Put(SampleZip("b"));
  ASSERT_TRUE(again.has_value()) << again.error().ToString();
  EXPECT_EQ(ReadFile(again->dir / "util.py"), "X = 'b'\n");
}

TEST_F(CodeStoreTest, GarbageCollectRemovesHalfStoredLeftovers) {
  // A zip whose tree never got committed (crash between the two) is collected too.
  const std::string hex = HexEncode(Sha256("orphan"));
  std::ofstream(root() / "zips" / (hex + ".zip")) << "orphan";
  std::ofstream(root() / "unpacked" / (hex + ".meta")) << "zip_size 6\nunzipped_size 0\n";
  ASSERT_TRUE(store_->GarbageCollect({}).ok());
  EXPECT_TRUE(List(root() / "zips").empty());
  EXPECT_TRUE(List(root() / "unpacked").empty());
}

TEST_F(CodeStoreTest, OpenSweepsTmp) {
  // What a crash mid-unpack leaves: a read-only tree and a half-written file.
  const fs::path leftover = root() / "tmp" / "deadbeef.1234";
  fs::create_directories(leftover / "sub");
  std::ofstream(leftover / "sub" / "f") << "x";
  fs::permissions(leftover / "sub", static_cast<fs::perms>(0555));
  fs::permissions(leftover, static_cast<fs::perms>(0555));
  std::ofstream(root() / "tmp" / "abc.zip.5678") << "partial";
  Reopen();
  EXPECT_TRUE(List(root() / "tmp").empty());
}

TEST_F(CodeStoreTest, FsCodeStoreHelpers) {
  EXPECT_TRUE(IsSha256Hex(HexEncode(Sha256("x"))));
  EXPECT_FALSE(IsSha256Hex(std::string(64, 'A')));
  EXPECT_FALSE(IsSha256Hex(std::string(63, 'a')));
}

}  // namespace
}  // namespace hearth::artifacts
