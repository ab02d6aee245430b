#include "artifacts/safe_unzip.h"

#include <archive_entry.h>
#include <fmt/core.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "artifacts/test_zip_builder.h"

namespace hearth::artifacts {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ziptest::RawZip;
using ziptest::ScopedTempDir;
using ziptest::ZipWriter;

constexpr int64_t kMiB = int64_t{1} << 20;

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

mode_t ModeOf(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
  return st.st_mode;
}

class SafeUnzipTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dest_ = tmp_.path() / "pkg";
    outside_ = tmp_.path() / "outside";
    fs::create_directory(dest_);
    fs::create_directory(outside_);
  }

  Result<UnzipStats> Unzip(const std::string& zip, UnzipLimits limits = {}) {
    return SafeUnzip(zip, dest_, limits);
  }

  // Asserts a refusal (InvalidArgument with `reason` in the message) and that nothing appeared
  // next to the package.
  void ExpectRefused(const std::string& zip, const std::string& reason, UnzipLimits limits = {}) {
    Result<UnzipStats> r = Unzip(zip, limits);
    ASSERT_FALSE(r.has_value()) << "unexpectedly accepted";
    EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument) << r.error().ToString();
    EXPECT_THAT(r.error().message(), HasSubstr(reason));
    EXPECT_TRUE(fs::is_empty(outside_)) << "something was written outside the package";
    EXPECT_EQ(std::vector<fs::path>(fs::directory_iterator(tmp_.path()), {}).size(), 2u);
  }

  ScopedTempDir tmp_;
  fs::path dest_;
  fs::path outside_;
};

// ---- Refusals -----------------------------------------------------------------------------

TEST_F(SafeUnzipTest, RefusesPathTraversal) {
  ExpectRefused(ZipWriter().File("../evil", "x").Finish(),
                "Zip entry '../evil' escapes the package (path traversal)");
}

TEST_F(SafeUnzipTest, RefusesTraversalHiddenInTheMiddle) {
  ExpectRefused(ZipWriter().File("a/b/../../../outside/evil", "x").Finish(),
                "Zip entry 'a/b/../../../outside/evil' escapes the package (path traversal)");
}

TEST_F(SafeUnzipTest, RefusesDotDotEvenWhenItStaysInside) {
  ExpectRefused(ZipWriter().File("a/../b", "x").Finish(),
                "Zip entry 'a/../b' escapes the package (path traversal)");
}

TEST_F(SafeUnzipTest, RefusesAbsolutePath) {
  ExpectRefused(ZipWriter().File((outside_ / "evil").string(), "x").Finish(),
                "' has an absolute path (path traversal)");
}

TEST_F(SafeUnzipTest, RefusesBackslashTricks) {
  // libarchive reads '\\' in zip names as the DOS separator it is, so these are plain traversal.
  ExpectRefused(ZipWriter().File("..\\evil", "x").Finish(),
                "Zip entry '../evil' escapes the package (path traversal)");
  ExpectRefused(RawZip().Add("a\\..\\..\\evil", "x", S_IFREG | 0644).Finish(),
                "Zip entry 'a/../../evil' escapes the package (path traversal)");
}

TEST_F(SafeUnzipTest, BackslashIsADirectorySeparator) {
  Result<UnzipStats> r = Unzip(RawZip().Add("dir\\file.txt", "x", S_IFREG | 0644).Finish());
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(ReadFile(dest_ / "dir/file.txt"), "x");
}

TEST_F(SafeUnzipTest, RefusesSymlinkToAbsolutePath) {
  ExpectRefused(ZipWriter().Symlink("passwd", "/etc/passwd").Finish(),
                "Zip entry 'passwd' is a symlink to an absolute path");
}

TEST_F(SafeUnzipTest, RefusesSymlinkEscapingWithDotDot) {
  ExpectRefused(ZipWriter().Dir("a/").Symlink("a/up", "../../outside").Finish(),
                "Zip entry 'a/up' is a symlink that escapes the package");
}

TEST_F(SafeUnzipTest, RefusesSymlinkEscapingThroughAnotherSymlink) {
  // "a/up" -> ".." is the package root (fine); "b" -> "a/up/.." looks inside lexically but the
  // kernel resolves a/up first, so b is the package's parent.
  ExpectRefused(ZipWriter().Dir("a/").Symlink("a/up", "..").Symlink("b", "a/up/..").Finish(),
                "Zip entry 'b' is a symlink that escapes the package");
}

TEST_F(SafeUnzipTest, RefusesSymlinkMadeEscapingByALaterSymlink) {
  // Same trick with the order reversed: when "b" is unpacked, a/up does not exist yet.
  ExpectRefused(ZipWriter().Dir("a/").Symlink("b", "a/up/..").Symlink("a/up", "..").Finish(),
                "Zip entry 'b' is a symlink that escapes the package");
}

TEST_F(SafeUnzipTest, RefusesSymlinkLoops) {
  ExpectRefused(ZipWriter().Symlink("x", "y").Symlink("y", "x/z").Finish(),
                "is a symlink chain that loops or is too long");
}

TEST_F(SafeUnzipTest, RefusesFileWrittenThroughSymlink) {
  // The link points inside the package and is allowed; writing through it is not.
  ExpectRefused(ZipWriter().Dir("sub/").Symlink("link", "sub").File("link/x", "data").Finish(),
                "Zip entry 'link/x' is written through a symlink");
  EXPECT_TRUE(fs::is_empty(dest_ / "sub"));
}

TEST_F(SafeUnzipTest, RefusesFileWrittenThroughEscapingSymlinkEvenIfLinkComesFirst) {
  // Even the (refused) escaping link never gets to be followed: the link is refused first.
  ExpectRefused(ZipWriter().Symlink("link", "../outside").File("link/x", "data").Finish(),
                "Zip entry 'link' is a symlink that escapes the package");
}

TEST_F(SafeUnzipTest, RefusesFileReplacingSymlink) {
  ExpectRefused(ZipWriter().File("a.txt", "x").Symlink("l", "a.txt").File("l", "y").Finish(),
                "Zip entry 'l' conflicts with an earlier entry");
  EXPECT_EQ(ReadFile(dest_ / "a.txt"), "x");
}

TEST_F(SafeUnzipTest, RefusesDuplicateEntries) {
  ExpectRefused(ZipWriter().File("a.txt", "x").File("a.txt", "y").Finish(),
                "Zip entry 'a.txt' conflicts with an earlier entry");
}

TEST_F(SafeUnzipTest, RefusesHardLinkEntry) {
  std::unique_ptr<archive_entry, decltype(&archive_entry_free)> e(archive_entry_new(),
                                                                  &archive_entry_free);
  archive_entry_copy_pathname(e.get(), "h");
  archive_entry_set_filetype(e.get(), AE_IFREG);
  archive_entry_copy_hardlink(e.get(), "a.txt");
  Result<std::vector<std::string>> r = internal::CheckEntry(e.get(), "h");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(r.error().message(), HasSubstr("Zip entry 'h' is a hard link"));
}

TEST_F(SafeUnzipTest, HardLinkWrittenByZipToolsBecomesAPlainFile) {
  // Zip cannot express hard links: libarchive writes them as empty files, which must not end up
  // sharing an inode with anything.
  Result<UnzipStats> r = Unzip(ZipWriter().File("a.txt", "hello").Hardlink("h", "a.txt").Finish());
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  struct stat st {};
  ASSERT_EQ(::lstat((dest_ / "h").c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_nlink, 1u);
  EXPECT_EQ(ReadFile(dest_ / "a.txt"), "hello");
}

TEST_F(SafeUnzipTest, CheckEntryRefusesSpecialKinds) {
  // The central-directory pre-pass catches these first; CheckEntry is the second line.
  for (auto [type, reason] :
       {std::pair{AE_IFCHR, "is a character device"}, std::pair{AE_IFBLK, "is a block device"},
        std::pair{AE_IFIFO, "is a fifo"}, std::pair{AE_IFSOCK, "is a socket"}}) {
    std::unique_ptr<archive_entry, decltype(&archive_entry_free)> e(archive_entry_new(),
                                                                    &archive_entry_free);
    archive_entry_copy_pathname(e.get(), "dev/x");
    archive_entry_set_filetype(e.get(), type);
    Result<std::vector<std::string>> r = internal::CheckEntry(e.get(), "dev/x");
    ASSERT_FALSE(r.has_value()) << reason;
    EXPECT_EQ(r.error().message(), std::string("Zip entry 'dev/x' ") + reason);
  }
}

struct SpecialCase {
  const char* test_name;
  uint32_t mode;
  const char* reason;
};

class SpecialFileTest : public SafeUnzipTest, public ::testing::WithParamInterface<SpecialCase> {};

TEST_P(SpecialFileTest, Refused) {
  const SpecialCase& c = GetParam();
  ExpectRefused(RawZip().Add("ok.txt", "fine", S_IFREG | 0644).Add("dev", "", c.mode).Finish(),
                std::string("Zip entry 'dev' ") + c.reason);
}

INSTANTIATE_TEST_SUITE_P(
    Kinds, SpecialFileTest,
    ::testing::Values(SpecialCase{"CharDevice", S_IFCHR | 0666, "is a character device"},
                      SpecialCase{"BlockDevice", S_IFBLK | 0660, "is a block device"},
                      SpecialCase{"Fifo", S_IFIFO | 0644, "is a fifo"},
                      SpecialCase{"Socket", S_IFSOCK | 0755, "is a socket"}),
    [](const ::testing::TestParamInfo<SpecialCase>& info) { return info.param.test_name; });

TEST_F(SafeUnzipTest, RawZipBuilderProducesReadableZips) {
  // Guards the helper the special-file tests rely on.
  Result<UnzipStats> r = Unzip(RawZip()
                                   .Add("a.txt", "hello", S_IFREG | 0644)
                                   .Add("run", "#!/bin/sh", S_IFREG | 0755)
                                   .Finish());
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(ReadFile(dest_ / "a.txt"), "hello");
  EXPECT_EQ(ModeOf(dest_ / "run") & 07777, 0555u);
}

TEST_F(SafeUnzipTest, RefusesBombOverUnzippedSizeLimit) {
  UnzipLimits limits{
      .max_unzipped_bytes = 10 * kMiB, .max_entries = 100, .max_compression_ratio = 1e9};
  ExpectRefused(
      ZipWriter().Zeros("bomb.bin", 20 * kMiB).Finish(),
      "Zip entry 'bomb.bin' takes the package over its unzipped size limit: unzipped size "
      "must be smaller than 10485760 bytes",
      limits);
}

TEST_F(SafeUnzipTest, RefusesBombWhoseHeaderLiesAboutItsSize) {
  std::string zip = ZipWriter().Zeros("liar.bin", 20 * kMiB).Finish();
  ASSERT_GE(ziptest::PatchUncompressedSize(zip, "liar.bin", 1000), 1);
  UnzipLimits limits{
      .max_unzipped_bytes = 10 * kMiB, .max_entries = 100, .max_compression_ratio = 1e9};
  ExpectRefused(zip, "Zip entry 'liar.bin' takes the package over its unzipped size limit", limits);
  // Bytes are counted as written: never more than the limit reaches the disk.
  EXPECT_LE(fs::file_size(dest_ / "liar.bin"), static_cast<uintmax_t>(10 * kMiB));
}

TEST_F(SafeUnzipTest, RefusesManyFilesAddingUpOverTheLimit) {
  UnzipLimits limits{
      .max_unzipped_bytes = 10 * kMiB, .max_entries = 100, .max_compression_ratio = 1e9};
  ExpectRefused(ZipWriter().Zeros("1", 4 * kMiB).Zeros("2", 4 * kMiB).Zeros("3", 4 * kMiB).Finish(),
                "Zip entry '3' takes the package over its unzipped size limit", limits);
}

TEST_F(SafeUnzipTest, RefusesDefaultSizedBombWithDefaultLimitsWithoutWritingIt) {
  // 300 MB of zeros deflate to ~300 KB; the honest header is refused before anything is written.
  ExpectRefused(ZipWriter().Zeros("big.bin", 300'000'000).Finish(),
                "Zip entry 'big.bin' takes the package over its unzipped size limit: unzipped size "
                "must be smaller than 262144000 bytes");
  EXPECT_FALSE(fs::exists(dest_ / "big.bin"));
}

TEST_F(SafeUnzipTest, RefusesCompressionRatioOverLimit) {
  UnzipLimits limits{
      .max_unzipped_bytes = 100 * kMiB, .max_entries = 100, .max_compression_ratio = 100};
  ExpectRefused(ZipWriter().Zeros("zeros.bin", 2 * kMiB).Finish(),
                "Zip entry 'zeros.bin' exceeds the compression ratio limit of 100:1", limits);
}

TEST_F(SafeUnzipTest, RefusesOneEntryOverTheRatioEvenWhenTheZipAsAWholeIsNot) {
  // 1 MiB of incompressible bytes keeps the overall ratio near 3:1; the zeros entry is ~1000:1.
  std::mt19937 rng(42);
  std::string noise(kMiB, '\0');
  for (char& c : noise) c = static_cast<char>(rng());
  UnzipLimits limits{
      .max_unzipped_bytes = 100 * kMiB, .max_entries = 100, .max_compression_ratio = 100};
  ExpectRefused(ZipWriter().File("noise.bin", noise).Zeros("zeros.bin", 2 * kMiB).Finish(),
                "Zip entry 'zeros.bin' exceeds the compression ratio limit of 100:1", limits);
  // The same entries pass a limit above zlib's best ratio (~1030:1).
  ASSERT_TRUE(RemoveTree(dest_).ok());
  fs::create_directory(dest_);
  limits.max_compression_ratio = 2000;
  Result<UnzipStats> r =
      Unzip(ZipWriter().File("noise.bin", noise).Zeros("zeros.bin", 2 * kMiB).Finish(), limits);
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(r->unzipped_bytes, 3 * kMiB);
}

TEST_F(SafeUnzipTest, RefusesOverallCompressionRatioOverLimit) {
  // Each entry is under the 1 MiB threshold, together they are not.
  UnzipLimits limits{
      .max_unzipped_bytes = 100 * kMiB, .max_entries = 100, .max_compression_ratio = 100};
  ZipWriter w;
  for (int i = 0; i < 4; ++i) w.Zeros(fmt::format("z{}", i), kMiB / 2);
  ExpectRefused(w.Finish(), "exceeds the compression ratio limit of 100:1", limits);
}

TEST_F(SafeUnzipTest, AcceptsSmallHighlyCompressibleFiles) {
  UnzipLimits limits{
      .max_unzipped_bytes = 100 * kMiB, .max_entries = 100, .max_compression_ratio = 100};
  Result<UnzipStats> r = Unzip(ZipWriter().Zeros("zeros.bin", kMiB / 2).Finish(), limits);
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(fs::file_size(dest_ / "zeros.bin"), static_cast<uintmax_t>(kMiB / 2));
}

TEST_F(SafeUnzipTest, DefaultRatioAcceptsOrdinaryCompressibleData) {
  std::string text;
  for (int i = 0; text.size() < 3 * kMiB; ++i) text += fmt::format("line {} of a log\n", i);
  Result<UnzipStats> r = Unzip(ZipWriter().File("log.txt", text).Finish());
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(ReadFile(dest_ / "log.txt"), text);
}

TEST_F(SafeUnzipTest, RefusesTooManyEntries) {
  UnzipLimits limits{
      .max_unzipped_bytes = 10 * kMiB, .max_entries = 10, .max_compression_ratio = 1000};
  ZipWriter w;
  for (int i = 0; i < 11; ++i) w.File(fmt::format("f{}", i), "x");
  ExpectRefused(w.Finish(), "Zip entry 'f10' exceeds the limit of 10 entries per zip", limits);
}

TEST_F(SafeUnzipTest, RefusesGarbage) {
  ExpectRefused("this is certainly not a zip file, just some text bytes",
                std::string(kNotAZipMessage));
}

TEST_F(SafeUnzipTest, RefusesEmptyInput) { ExpectRefused("", std::string(kNotAZipMessage)); }

TEST_F(SafeUnzipTest, RefusesTarball) {
  std::string tar;
  {
    std::unique_ptr<archive, decltype(&archive_write_free)> a(archive_write_new(),
                                                              &archive_write_free);
    archive_write_set_format_pax_restricted(a.get());
    archive_write_open(
        a.get(), &tar, nullptr,
        [](archive*, void* c, const void* b, size_t n) -> la_ssize_t {
          static_cast<std::string*>(c)->append(static_cast<const char*>(b), n);
          return static_cast<la_ssize_t>(n);
        },
        nullptr);
    std::unique_ptr<archive_entry, decltype(&archive_entry_free)> e(archive_entry_new(),
                                                                    &archive_entry_free);
    archive_entry_copy_pathname(e.get(), "a.txt");
    archive_entry_set_filetype(e.get(), AE_IFREG);
    archive_entry_set_size(e.get(), 1);
    archive_write_header(a.get(), e.get());
    archive_write_data(a.get(), "x", 1);
    archive_write_close(a.get());
  }
  ExpectRefused(tar, std::string(kNotAZipMessage));
}

TEST_F(SafeUnzipTest, RefusesTruncatedZip) {
  std::string zip = ZipWriter().File("a.txt", std::string(5000, 'a')).File("b.txt", "b").Finish();
  ExpectRefused(zip.substr(0, zip.size() / 2), std::string(kNotAZipMessage));
}

TEST_F(SafeUnzipTest, RefusesCorruptData) {
  std::string data;
  for (int i = 0; i < 2000; ++i) data += std::to_string(i * 7919 % 1000);
  std::string zip = ZipWriter("store").File("a.txt", data).Finish();
  const size_t at = zip.find(data.substr(0, 40));
  ASSERT_NE(at, std::string::npos);
  zip[at + 100] ^= 0x55;  // CRC mismatch
  ExpectRefused(zip, std::string(kNotAZipMessage));
}

TEST_F(SafeUnzipTest, RefusesZipWithoutEntries) {
  ExpectRefused(ZipWriter().Finish(), std::string(kEmptyZipMessage));
}

// ---- Good zips ----------------------------------------------------------------------------

TEST_F(SafeUnzipTest, UnpacksNestedDirectories) {
  Result<UnzipStats> r = Unzip(ZipWriter()
                                   .File("a/b/c/deep.txt", "deep")  // parents implied
                                   .Dir("d/")
                                   .Dir("d/e/")
                                   .File("d/e/f.txt", "f")
                                   .File("./top.txt", "top")
                                   .Dir("./")
                                   .Finish());
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(r->entries, 6);
  EXPECT_EQ(r->files, 3);
  EXPECT_EQ(r->unzipped_bytes, 8);
  EXPECT_EQ(ReadFile(dest_ / "a/b/c/deep.txt"), "deep");
  EXPECT_EQ(ReadFile(dest_ / "d/e/f.txt"), "f");
  EXPECT_EQ(ReadFile(dest_ / "top.txt"), "top");
  for (const char* dir : {"", "a", "a/b", "a/b/c", "d", "d/e"}) {
    mode_t m = ModeOf(dest_ / dir);
    EXPECT_TRUE(S_ISDIR(m)) << dir;
    EXPECT_EQ(m & 07777, 0555u) << dir;
  }
  for (const char* file : {"a/b/c/deep.txt", "d/e/f.txt", "top.txt"}) {
    EXPECT_EQ(ModeOf(dest_ / file) & 07777, 0444u) << file;
  }
}

TEST_F(SafeUnzipTest, KeepsExecBits) {
  Result<UnzipStats> r = Unzip(ZipWriter()
                                   .File("bootstrap", "#!/bin/sh\n", 0755)
                                   .File("handler.py", "def h(e, c): pass\n", 0644)
                                   .File("owner_only_x", "x", 0700)
                                   .File("other_only_x", "x", 0601)
                                   .File("setuid", "x", 04755)
                                   .File("writable", "x", 0666)
                                   .Finish());
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(ModeOf(dest_ / "bootstrap") & 07777, 0555u);
  EXPECT_EQ(ModeOf(dest_ / "handler.py") & 07777, 0444u);
  EXPECT_EQ(ModeOf(dest_ / "owner_only_x") & 07777, 0555u);
  EXPECT_EQ(ModeOf(dest_ / "other_only_x") & 07777, 0555u);
  EXPECT_EQ(ModeOf(dest_ / "setuid") & 07777, 0555u);  // no setuid bit, ever
  EXPECT_EQ(ModeOf(dest_ / "writable") & 07777, 0444u);
}

TEST_F(SafeUnzipTest, KeepsInternalSymlinks) {
  Result<UnzipStats> r = Unzip(ZipWriter()
                                   .Dir("v1/")
                                   .File("v1/lib.so", "elf")
                                   .Symlink("lib/current", "../v1")  // parent "lib" implied
                                   .Symlink("lib.so", "v1/lib.so")
                                   .Symlink("self", ".")
                                   .Symlink("dangling", "not/there")
                                   .Finish());
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_TRUE(S_ISLNK(ModeOf(dest_ / "lib/current")));
  EXPECT_EQ(fs::read_symlink(dest_ / "lib/current"), "../v1");
  EXPECT_EQ(fs::read_symlink(dest_ / "lib.so"), "v1/lib.so");
  EXPECT_EQ(ReadFile(dest_ / "lib/current/lib.so"), "elf");
  EXPECT_EQ(ReadFile(dest_ / "lib.so"), "elf");
  EXPECT_EQ(r->files, 1);
}

TEST_F(SafeUnzipTest, SymlinkIntoSymlinkedDirectoryStaysInside) {
  Result<UnzipStats> r = Unzip(ZipWriter()
                                   .File("a/b/file", "x")
                                   .Symlink("a/up", "..")          // -> package root
                                   .Symlink("c", "a/up/a/b/file")  // -> a/b/file
                                   .Finish());
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(ReadFile(dest_ / "c"), "x");
}

TEST_F(SafeUnzipTest, AcceptsNonAsciiNames) {
  Result<UnzipStats> r = Unzip(ZipWriter().File("h\xc3\xa9llo/\xe2\x9c\x93.txt", "ok").Finish());
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(ReadFile(dest_ / "h\xc3\xa9llo/\xe2\x9c\x93.txt"), "ok");
}

TEST_F(SafeUnzipTest, AcceptsStoredEntriesAndEmptyFiles) {
  Result<UnzipStats> r = Unzip(ZipWriter("store").File("empty", "").File("a.txt", "abc").Finish());
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(fs::file_size(dest_ / "empty"), 0u);
  EXPECT_EQ(ReadFile(dest_ / "a.txt"), "abc");
  EXPECT_EQ(r->unzipped_bytes, 3);
}

TEST_F(SafeUnzipTest, TreeFileBytesAndRemoveTree) {
  ASSERT_TRUE(Unzip(ZipWriter().File("a/x", "12345").File("b", "678").Symlink("l", "b").Finish())
                  .has_value());
  Result<int64_t> bytes = TreeFileBytes(dest_);
  ASSERT_TRUE(bytes.has_value());
  EXPECT_EQ(*bytes, 8);
  ASSERT_TRUE(RemoveTree(dest_).ok());
  EXPECT_FALSE(fs::exists(dest_));
  EXPECT_TRUE(RemoveTree(dest_).ok());  // missing is fine
}

}  // namespace
}  // namespace hearth::artifacts
