#include "cli/package.h"

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <sstream>

#include "artifacts/safe_unzip.h"
#include "artifacts/test_zip_builder.h"
#include "common/encoding.h"

namespace hearth::cli {
namespace {

namespace fs = std::filesystem;
using artifacts::ziptest::ScopedTempDir;

struct ZipItem {
  mode_t type = 0;
  mode_t perm = 0;
  std::string content;
  std::string symlink;
  int64_t mtime = 0;
};

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const fs::path& p, std::string_view content, mode_t mode = 0644) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << content;
  ASSERT_EQ(::chmod(p.c_str(), mode), 0);
}

// name -> item, in the zip's order (central directory, as the daemon reads it).
std::vector<std::pair<std::string, ZipItem>> ReadZip(const std::string& zip) {
  std::vector<std::pair<std::string, ZipItem>> out;
  archive* a = archive_read_new();
  archive_read_support_format_zip_seekable(a);
  EXPECT_EQ(archive_read_open_memory(a, zip.data(), zip.size()), ARCHIVE_OK)
      << archive_error_string(a);
  archive_entry* e = nullptr;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    ZipItem item;
    item.type = archive_entry_filetype(e);
    item.perm = archive_entry_perm(e);
    item.mtime = archive_entry_mtime(e);
    if (const char* t = archive_entry_symlink(e)) item.symlink = t;
    char buf[4096];
    la_ssize_t n;
    while ((n = archive_read_data(a, buf, sizeof buf)) > 0)
      item.content.append(buf, static_cast<size_t>(n));
    out.emplace_back(archive_entry_pathname(e), item);
  }
  archive_read_free(a);
  return out;
}

class PackageTest : public ::testing::Test {
 protected:
  fs::path Src() const { return tmp_.path() / "src"; }
  fs::path Out(const std::string& name = "out.zip") const { return tmp_.path() / name; }
  ScopedTempDir tmp_;
};

TEST_F(PackageTest, KeepsRelativePathsModesAndInTreeSymlinks) {
  WriteFile(Src() / "bootstrap", "#!/bin/sh\necho hi\n", 0755);
  WriteFile(Src() / "lib/handler.py", "def handler(e, c):\n    return e\n", 0644);
  WriteFile(Src() / "lib/deep/data.bin", std::string(200000, 'x'), 0600);
  fs::create_directories(Src() / "empty");
  fs::create_symlink("lib/handler.py", Src() / "link.py");
  fs::create_symlink("../handler.py", Src() / "lib/deep/up.py");
  fs::create_symlink("deep", Src() / "lib/alias");  // a symlink to a directory: kept, not followed

  auto r = PackageDirectory(Src(), Out());
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(r->files, 3);
  EXPECT_EQ(r->directories, 3);  // empty, lib, lib/deep
  EXPECT_EQ(r->symlinks, 3);
  EXPECT_TRUE(r->warnings.empty());
  const std::string zip = ReadFile(Out());
  EXPECT_EQ(r->zip_bytes, static_cast<int64_t>(zip.size()));
  EXPECT_EQ(r->code_sha256, Base64Encode(Sha256(zip)));

  auto items = ReadZip(zip);
  std::vector<std::string> names;
  for (auto& [n, _] : items) names.push_back(n);
  EXPECT_EQ(names, (std::vector<std::string>{"bootstrap", "empty/", "lib/", "lib/alias",
                                             "lib/deep/", "lib/deep/data.bin", "lib/deep/up.py",
                                             "lib/handler.py", "link.py"}));
  std::map<std::string, ZipItem> by(items.begin(), items.end());
  EXPECT_EQ(by["bootstrap"].type, AE_IFREG);
  EXPECT_EQ(by["bootstrap"].perm, 0755u);
  EXPECT_EQ(by["bootstrap"].content, "#!/bin/sh\necho hi\n");
  EXPECT_EQ(by["lib/handler.py"].perm, 0644u);
  EXPECT_EQ(by["lib/deep/data.bin"].perm, 0600u);
  EXPECT_EQ(by["lib/deep/data.bin"].content, std::string(200000, 'x'));
  EXPECT_EQ(by["empty/"].type, AE_IFDIR);
  EXPECT_EQ(by["link.py"].type, AE_IFLNK);
  EXPECT_EQ(by["link.py"].symlink, "lib/handler.py");
  EXPECT_EQ(by["lib/deep/up.py"].symlink, "../handler.py");
  EXPECT_EQ(by["lib/alias"].type, AE_IFLNK);
  EXPECT_EQ(by["lib/alias"].symlink, "deep");
  EXPECT_EQ(by["lib/handler.py"].mtime, kPackageMtime);

  // The daemon's own unzipper accepts it and recreates the tree: bootstrap executable, links live.
  const fs::path dest = tmp_.path() / "unpacked";
  fs::create_directories(dest);
  auto st = artifacts::SafeUnzip(zip, dest, artifacts::UnzipLimits{});
  ASSERT_TRUE(st.has_value()) << st.error().ToString();
  EXPECT_EQ(::access((dest / "bootstrap").c_str(), X_OK), 0);
  EXPECT_EQ(ReadFile(dest / "link.py"), "def handler(e, c):\n    return e\n");
  EXPECT_EQ(ReadFile(dest / "lib/deep/up.py"), "def handler(e, c):\n    return e\n");
  EXPECT_TRUE(fs::is_directory(dest / "empty"));
}

TEST_F(PackageTest, SameTreeSameBytesWhateverTheTimestamps) {
  WriteFile(Src() / "bootstrap", "#!/bin/sh\n", 0755);
  WriteFile(Src() / "b.txt", "b");
  WriteFile(Src() / "a/c.txt", "c");
  auto first = PackageDirectory(Src(), Out("1.zip"));
  ASSERT_TRUE(first.has_value()) << first.error().ToString();

  // A copy of the tree made later, files created in another order, other mtimes.
  const fs::path copy = tmp_.path() / "copy";
  WriteFile(copy / "a/c.txt", "c");
  WriteFile(copy / "b.txt", "b");
  WriteFile(copy / "bootstrap", "#!/bin/sh\n", 0755);
  const fs::file_time_type t = fs::file_time_type::clock::now() - std::chrono::hours(1000);
  fs::last_write_time(copy / "b.txt", t);
  auto second = PackageDirectory(copy, Out("2.zip"));
  ASSERT_TRUE(second.has_value()) << second.error().ToString();
  EXPECT_EQ(first->code_sha256, second->code_sha256);
  EXPECT_EQ(ReadFile(Out("1.zip")), ReadFile(Out("2.zip")));

  // A change in content or in mode changes the digest.
  ASSERT_EQ(::chmod((copy / "b.txt").c_str(), 0755), 0);
  auto third = PackageDirectory(copy, Out("3.zip"));
  ASSERT_TRUE(third.has_value());
  EXPECT_NE(first->code_sha256, third->code_sha256);
}

TEST_F(PackageTest, RefusesSymlinksThatEscapeNamingThePath) {
  WriteFile(Src() / "bootstrap", "#!/bin/sh\n", 0755);
  fs::create_directories(Src() / "sub");
  struct Case {
    std::string name, target;
  };
  const std::vector<Case> cases = {
      {"sub/abs", "/etc/passwd"},
      {"sub/up", "../../outside"},
      {"sub/updir", "../.."},
      // Lexically inside ("d/x"), but "self" is the package root, so self/self/.. is its parent.
      {"sneaky", "self/self/../x"},
  };
  fs::create_symlink(".", Src() / "self");
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    fs::create_symlink(c.target, Src() / c.name);
    auto r = PackageDirectory(Src(), Out());
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.error().message().find("'" + c.name + "'"), std::string::npos)
        << r.error().message();
    EXPECT_NE(r.error().message().find("outside"), std::string::npos) << r.error().message();
    EXPECT_FALSE(fs::exists(Out()));
    fs::remove(Src() / c.name);
  }
  // A loop is refused too; a dangling link that stays inside is fine.
  fs::create_symlink("loop2", Src() / "loop1");
  fs::create_symlink("loop1", Src() / "loop2");
  auto r = PackageDirectory(Src(), Out());
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("loops"), std::string::npos) << r.error().message();
  fs::remove(Src() / "loop1");
  fs::remove(Src() / "loop2");
  fs::create_symlink("sub/not-yet", Src() / "dangling");
  r = PackageDirectory(Src(), Out());
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(r->symlinks, 2);  // self, dangling
}

TEST_F(PackageTest, LeavesOutTheOutputWhenItIsInsideTheDirectory) {
  WriteFile(Src() / "bootstrap", "#!/bin/sh\n", 0755);
  auto first = PackageDirectory(Src(), Src() / "function.zip");
  ASSERT_TRUE(first.has_value()) << first.error().ToString();
  EXPECT_TRUE(first->skipped.empty());  // did not exist yet
  // Again, now that function.zip exists inside: left out, same package.
  auto second = PackageDirectory(Src(), Src() / "function.zip");
  ASSERT_TRUE(second.has_value()) << second.error().ToString();
  EXPECT_EQ(second->skipped, std::vector<std::string>{"function.zip"});
  EXPECT_EQ(first->code_sha256, second->code_sha256);
  auto items = ReadZip(ReadFile(Src() / "function.zip"));
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].first, "bootstrap");
  // No temporary file left behind.
  int n = 0;
  for ([[maybe_unused]] auto& e : fs::directory_iterator(Src())) ++n;
  EXPECT_EQ(n, 2);
}

TEST_F(PackageTest, ClearErrors) {
  auto r = PackageDirectory(tmp_.path() / "nope", Out());
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), StatusCode::kNotFound);
  EXPECT_NE(r.error().message().find("nope"), std::string::npos);

  WriteFile(tmp_.path() / "file", "x");
  r = PackageDirectory(tmp_.path() / "file", Out());
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("not a directory"), std::string::npos);

  fs::create_directories(Src() / "only/dirs");
  r = PackageDirectory(Src(), Out());
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("nothing to package"), std::string::npos);

  WriteFile(Src() / "bootstrap", "#!/bin/sh\n", 0644);
  r = PackageDirectory(Src(), tmp_.path());
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("is a directory"), std::string::npos);

  r = PackageDirectory(Src(), tmp_.path() / "no/such/dir/out.zip");
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("out.zip"), std::string::npos) << r.error().message();

  // A bootstrap that is not executable: packaged, with a warning.
  r = PackageDirectory(Src(), Out());
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  ASSERT_EQ(r->warnings.size(), 1u);
  EXPECT_NE(r->warnings[0].find("bootstrap"), std::string::npos);

  // A socket cannot go into a zip: refused, naming it.
  const fs::path sock = Src() / "only/s.sock";
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  ASSERT_LT(sock.string().size(), sizeof addr.sun_path);
  std::strcpy(addr.sun_path, sock.c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ::close(fd);
  r = PackageDirectory(Src(), Out());
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("'only/s.sock'"), std::string::npos) << r.error().message();
}

}  // namespace
}  // namespace hearth::cli
