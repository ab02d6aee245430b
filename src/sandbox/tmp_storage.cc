#include "sandbox/tmp_storage.h"

#include <fcntl.h>
#include <linux/loop.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

extern char** environ;

namespace hearth::sandbox {

namespace fs = std::filesystem;

TmpStorage::TmpStorage(fs::path dir, uid_t uid, gid_t gid) : dir_(std::move(dir)), uid_(uid), gid_(gid) {}

int64_t TmpStorage::ImageBytes(int size_mb) {
  // Inode tables, bitmaps, group descriptors and the extent blocks of large files; round to 1 MiB.
  int64_t bytes = (int64_t{size_mb} << 20) + (int64_t{size_mb} << 20) / 16 + (8 << 20);
  return (bytes + (1 << 20) - 1) & ~int64_t{(1 << 20) - 1};
}

Result<fs::path> TmpStorage::Template(int size_mb) {
  std::lock_guard lock(mu_);
  if (auto it = templates_.find(size_mb); it != templates_.end()) return it->second;
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) return std::unexpected(Status::IOError(fmt::format("create '{}': {}", dir_.string(), ec.message())));
  fs::path final_path = dir_ / fmt::format("template-{}.img", size_mb);
  if (!fs::exists(final_path, ec)) {
    fs::path tmp = dir_ / fmt::format("template-{}.img.{}", size_mb, ::getpid());
    {
      UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
      if (!fd.valid()) return std::unexpected(PosixError(fmt::format("create '{}'", tmp.string()), errno));
      if (::ftruncate(fd.get(), ImageBytes(size_mb)) != 0)
        return std::unexpected(PosixError(fmt::format("truncate '{}'", tmp.string()), errno));
    }
    const char* mkfs = nullptr;
    for (const char* p : {"/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4", "/usr/sbin/mke2fs"})
      if (::access(p, X_OK) == 0) {
        mkfs = p;
        break;
      }
    if (!mkfs) return std::unexpected(Status::FailedPrecondition("mkfs.ext4 not found (install e2fsprogs)"));
    std::string ext = fmt::format("lazy_itable_init=1,nodiscard,root_owner={}:{}", uid_, gid_);
    std::string path = tmp.string();
    const char* argv[] = {mkfs, "-q", "-F", "-t", "ext4", "-b", "4096", "-m", "0", "-O", "^has_journal,^resize_inode", "-E",
                          ext.c_str(), path.c_str(), nullptr};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    int rc = ::posix_spawn(&pid, mkfs, &fa, nullptr, const_cast<char**>(argv), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) return std::unexpected(PosixError(fmt::format("spawn {}", mkfs), rc));
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      fs::remove(tmp, ec);
      return std::unexpected(Status::IOError(fmt::format("{} '{}' failed (status {})", mkfs, path, status)));
    }
    fs::rename(tmp, final_path, ec);
    if (ec) return std::unexpected(Status::IOError(fmt::format("rename '{}': {}", path, ec.message())));
  }
  templates_[size_mb] = final_path;
  return final_path;
}

namespace {

// Copies only the allocated extents of a sparse file.
Status SparseCopy(int in, int out, off_t size) {
  if (::ftruncate(out, size) != 0) return PosixError("truncate image", errno);
  off_t pos = 0;
  while (pos < size) {
    off_t data = ::lseek(in, pos, SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) break;
      return PosixError("SEEK_DATA template", errno);
    }
    off_t hole = ::lseek(in, data, SEEK_HOLE);
    if (hole < 0) return PosixError("SEEK_HOLE template", errno);
    loff_t src = data, dst = data;
    size_t left = static_cast<size_t>(hole - data);
    while (left > 0) {
      ssize_t n = ::copy_file_range(in, &src, out, &dst, left, 0);
      if (n < 0) return PosixError("copy_file_range template", errno);
      if (n == 0) break;
      left -= static_cast<size_t>(n);
    }
    pos = hole;
  }
  return Status::Ok();
}

}  // namespace

Result<TmpVolume> TmpStorage::Acquire(const std::string& environment_id, int size_mb) {
  auto tmpl = Template(size_mb);
  if (!tmpl) return std::unexpected(tmpl.error());
  fs::path image = dir_ / fmt::format("{}.img", environment_id);
  UniqueFd in(::open(tmpl->c_str(), O_RDONLY | O_CLOEXEC));
  if (!in.valid()) return std::unexpected(PosixError(fmt::format("open '{}'", tmpl->string()), errno));
  UniqueFd out(::open(image.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!out.valid()) return std::unexpected(PosixError(fmt::format("create '{}'", image.string()), errno));
  struct Unlink {
    const fs::path& p;
    ~Unlink() { ::unlink(p.c_str()); }
  } unlink_image{image};
  HEARTH_RETURN_IF_ERROR(SparseCopy(in.get(), out.get(), ImageBytes(size_mb)));
  // Reopen for direct I/O (the loop device then bypasses the host page cache).
  UniqueFd backing(::open(image.c_str(), O_RDWR | O_CLOEXEC | O_DIRECT));
  if (!backing.valid()) backing = std::move(out);

  UniqueFd control(::open("/dev/loop-control", O_RDWR | O_CLOEXEC));
  if (!control.valid()) return std::unexpected(PosixError("open '/dev/loop-control'", errno));
  for (int attempt = 0; attempt < 16; ++attempt) {
    int n = ::ioctl(control.get(), LOOP_CTL_GET_FREE);
    if (n < 0) return std::unexpected(PosixError("LOOP_CTL_GET_FREE", errno));
    std::string dev = fmt::format("/dev/loop{}", n);
    UniqueFd loop(::open(dev.c_str(), O_RDWR | O_CLOEXEC));
    if (!loop.valid()) return std::unexpected(PosixError(fmt::format("open '{}'", dev), errno));
    loop_config cfg{};
    cfg.fd = static_cast<uint32_t>(backing.get());
    cfg.block_size = 4096;
    cfg.info.lo_flags = LO_FLAGS_AUTOCLEAR | LO_FLAGS_DIRECT_IO;
    if (::ioctl(loop.get(), LOOP_CONFIGURE, &cfg) == 0) return TmpVolume{std::move(loop), dev};
    if (errno == EBUSY) continue;  // another launch took it first
    return std::unexpected(PosixError(fmt::format("LOOP_CONFIGURE '{}' on '{}'", dev, image.string()), errno));
  }
  return std::unexpected(Status::Unavailable("no free loop device after 16 attempts"));
}

Status TmpStorage::Sweep() {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir_, ec)) {
    const std::string name = e.path().filename().string();
    if (name.starts_with("template-") && name.ends_with(".img")) continue;
    fs::remove(e.path(), ec);
  }
  return Status::Ok();
}

}  // namespace hearth::sandbox
