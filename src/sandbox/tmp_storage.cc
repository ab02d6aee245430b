#include "sandbox/tmp_storage.h"

#include <fcntl.h>
#include <linux/loop.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

extern char** environ;

namespace hearth::sandbox {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

// Bump when the way templates are made changes: Sweep() removes templates of other versions.
constexpr const char* kTemplatePrefix = "template-v2-";

std::string TemplateName(int size_mb) { return fmt::format("{}{}.img", kTemplatePrefix, size_mb); }

// In-progress files of this process end in this suffix; Sweep() leaves them alone.
std::string OwnSuffix() { return fmt::format(".tmp-{}", ::getpid()); }

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

struct Loop {
  UniqueFd fd;
  std::string device;
};

// A free loop device configured on `backing` (AUTOCLEAR: it detaches when its last user goes).
Result<Loop> ConfigureLoop(int backing, uint32_t flags, const std::string& what) {
  UniqueFd control(::open("/dev/loop-control", O_RDWR | O_CLOEXEC));
  if (!control.valid()) return std::unexpected(PosixError("open '/dev/loop-control'", errno));
  for (int attempt = 0; attempt < 16; ++attempt) {
    int n = ::ioctl(control.get(), LOOP_CTL_GET_FREE);
    if (n < 0) return std::unexpected(PosixError("LOOP_CTL_GET_FREE", errno));
    std::string dev = fmt::format("/dev/loop{}", n);
    UniqueFd loop(::open(dev.c_str(), O_RDWR | O_CLOEXEC));
    if (!loop.valid()) return std::unexpected(PosixError(fmt::format("open '{}'", dev), errno));
    loop_config cfg{};
    cfg.fd = static_cast<uint32_t>(backing);
    cfg.block_size = 4096;
    cfg.info.lo_flags = flags | LO_FLAGS_AUTOCLEAR;
    if (::ioctl(loop.get(), LOOP_CONFIGURE, &cfg) == 0) return Loop{std::move(loop), dev};
    if (errno == EBUSY) continue;  // another process took it first
    return std::unexpected(PosixError(fmt::format("LOOP_CONFIGURE '{}' on {}", dev, what), errno));
  }
  return std::unexpected(Status::Unavailable("no free loop device after 16 attempts"));
}

// Mounts the ext4 on `dev` as a detached mount (in no mount table until move_mount attaches it).
Result<UniqueFd> MountDetached(const std::string& dev, bool read_only) {
  UniqueFd fsfd(static_cast<int>(::syscall(SYS_fsopen, "ext4", FSOPEN_CLOEXEC)));
  if (!fsfd.valid()) return std::unexpected(PosixError("fsopen ext4", errno));
  if (::syscall(SYS_fsconfig, fsfd.get(), FSCONFIG_SET_STRING, "source", dev.c_str(), 0) != 0)
    return std::unexpected(PosixError(fmt::format("fsconfig source '{}'", dev), errno));
  // The inode tables are not zeroed (lazy_itable_init): they never are (a volume lives once).
  if (::syscall(SYS_fsconfig, fsfd.get(), FSCONFIG_SET_FLAG, "noinit_itable", nullptr, 0) != 0)
    return std::unexpected(PosixError(fmt::format("fsconfig noinit_itable '{}'", dev), errno));
  if (read_only && ::syscall(SYS_fsconfig, fsfd.get(), FSCONFIG_SET_FLAG, "ro", nullptr, 0) != 0)
    return std::unexpected(PosixError(fmt::format("fsconfig ro '{}'", dev), errno));
  if (::syscall(SYS_fsconfig, fsfd.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0)
    return std::unexpected(PosixError(fmt::format("mount ext4 '{}' (fsconfig CMD_CREATE)", dev), errno));
  unsigned attrs = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | (read_only ? MOUNT_ATTR_RDONLY : 0);
  UniqueFd mnt(static_cast<int>(::syscall(SYS_fsmount, fsfd.get(), FSMOUNT_CLOEXEC, attrs)));
  if (!mnt.valid()) return std::unexpected(PosixError(fmt::format("fsmount '{}'", dev), errno));
  return mnt;
}

const char* FindMkfs() {
  for (const char* p : {"/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4", "/usr/sbin/mke2fs", "/sbin/mke2fs"})
    if (::access(p, X_OK) == 0) return p;
  return nullptr;
}

Status RunMkfs(const fs::path& image, int64_t bytes, uid_t uid, gid_t gid) {
  {
    UniqueFd fd(::open(image.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!fd.valid()) return PosixError(fmt::format("create '{}'", image.string()), errno);
    if (::ftruncate(fd.get(), 0) != 0 || ::ftruncate(fd.get(), bytes) != 0)
      return PosixError(fmt::format("truncate '{}'", image.string()), errno);
  }
  const char* mkfs = FindMkfs();
  if (!mkfs) return Status::FailedPrecondition("mkfs.ext4 not found (install e2fsprogs)");
  std::string ext = fmt::format("lazy_itable_init=1,nodiscard,root_owner={}:{}", uid, gid);
  std::string path = image.string();
  // -m 0: no blocks reserved for root; no journal (a volume lives once, a crash loses nothing);
  // no resize inode (it never grows).
  const char* argv[] = {mkfs, "-q", "-F", "-t", "ext4", "-b", "4096", "-m", "0", "-O", "^has_journal,^resize_inode",
                        "-E", ext.c_str(), path.c_str(), nullptr};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  pid_t pid;
  int rc = ::posix_spawn(&pid, mkfs, &fa, nullptr, const_cast<char**>(argv), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return PosixError(fmt::format("spawn {}", mkfs), rc);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return Status::IOError(fmt::format("{} '{}' failed (wait status {})", mkfs, path, status));
  return Status::Ok();
}

// Usable bytes (f_bavail) of the ext4 in `image`, mounted read-only for the measurement.
Result<int64_t> MeasureUsable(const fs::path& image) {
  UniqueFd file(::open(image.c_str(), O_RDONLY | O_CLOEXEC));
  if (!file.valid()) return std::unexpected(PosixError(fmt::format("open '{}'", image.string()), errno));
  auto loop = ConfigureLoop(file.get(), LO_FLAGS_READ_ONLY, fmt::format("'{}'", image.string()));
  if (!loop) return std::unexpected(loop.error());
  auto mnt = MountDetached(loop->device, /*read_only=*/true);
  if (!mnt) return std::unexpected(mnt.error());
  struct statvfs st {};
  if (::fstatvfs(mnt->get(), &st) != 0)
    return std::unexpected(PosixError(fmt::format("statvfs ext4 of '{}'", image.string()), errno));
  return static_cast<int64_t>(st.f_bavail) * static_cast<int64_t>(st.f_frsize);
}

std::string Unescape(std::string_view s) {  // mountinfo's octal escapes (\040 = space)
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      int v = (s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0');
      out.push_back(static_cast<char>(v));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

}  // namespace

TmpStorage::TmpStorage(fs::path dir, uid_t uid, gid_t gid, TmpPoolOptions pool)
    : dir_(std::move(dir)), uid_(uid), gid_(gid), opt_(std::move(pool)) {}

TmpStorage::~TmpStorage() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  // pools_ goes now: closing each ready volume's mount fd unmounts it, the loop device detaches,
  // the unnamed image is freed.
}

void TmpStorage::Start() {
  if (opt_.per_size <= 0) return;
  std::lock_guard lock(mu_);
  if (thread_.joinable() || stop_) return;
  for (int size : opt_.prefill_sizes) {
    SizePool& p = pools_[size];
    p.pinned = true;
    p.last_used = Clock::now();
  }
  thread_ = std::thread([this] { Run(); });
}

Result<TmpStorage::Template> TmpStorage::MakeTemplate(int size_mb) {
  // Caller holds tmpl_mu_.
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) return std::unexpected(Status::IOError(fmt::format("create '{}': {}", dir_.string(), ec.message())));
  const fs::path final_path = dir_ / TemplateName(size_mb);
  const int64_t want = int64_t{size_mb} << 20;
  const int64_t want_max = want + std::max<int64_t>(2 * kSlackBytes, want / 500);  // +0.2 %
  if (fs::exists(final_path, ec)) {
    // Made by an earlier run: trust it only if it still measures right (kernel reserves may change).
    auto usable = MeasureUsable(final_path);
    if (usable && *usable >= want && *usable <= want_max) {
      int64_t bytes = static_cast<int64_t>(fs::file_size(final_path, ec));
      if (!ec) return Template{final_path, bytes, *usable};
    }
    fs::remove(final_path, ec);
  }
  const fs::path tmp = dir_ / (TemplateName(size_mb) + OwnSuffix());
  struct Remove {
    const fs::path& p;
    ~Remove() {
      std::error_code e;
      fs::remove(p, e);
    }
  } remove_tmp{tmp};
  // First guess: ext4 metadata is ~1.6 % plus ext4's reserve of 2 % (at most 16 MiB); then
  // correct by what the filesystem reports.
  const int64_t target = want + kSlackBytes;
  int64_t bytes = want + std::min<int64_t>(want / 50, 16 << 20) + want / 50 + (4 << 20);
  bytes = (bytes + 4095) & ~int64_t{4095};
  int64_t usable = 0;
  for (int attempt = 0; attempt < 6; ++attempt) {
    HEARTH_RETURN_IF_ERROR(RunMkfs(tmp, bytes, uid_, gid_));
    auto u = MeasureUsable(tmp);
    if (!u) return std::unexpected(u.error());
    usable = *u;
    if (usable >= want && usable <= want_max) {
      fs::rename(tmp, final_path, ec);
      if (ec)
        return std::unexpected(
            Status::IOError(fmt::format("rename '{}' to '{}': {}", tmp.string(), final_path.string(), ec.message())));
      return Template{final_path, bytes, usable};
    }
    int64_t delta = target - usable;
    bytes += (delta > 0 ? delta + 4095 : delta) / 4096 * 4096;
  }
  return std::unexpected(Status::Internal(fmt::format(
      "cannot size the ext4 template for {} MiB: last image {} B gave {} B usable", size_mb, bytes, usable)));
}

Result<TmpStorage::Template> TmpStorage::GetTemplate(int size_mb) {
  std::lock_guard lock(tmpl_mu_);
  if (auto it = templates_.find(size_mb); it != templates_.end()) return it->second;
  auto t = MakeTemplate(size_mb);
  if (!t) return std::unexpected(t.error());
  templates_[size_mb] = *t;
  return t;
}

Result<int64_t> TmpStorage::ImageBytes(int size_mb) {
  auto t = GetTemplate(size_mb);
  if (!t) return std::unexpected(t.error());
  return t->bytes;
}

Result<int64_t> TmpStorage::UsableBytes(int size_mb) {
  auto t = GetTemplate(size_mb);
  if (!t) return std::unexpected(t.error());
  return t->usable;
}

Result<TmpVolume> TmpStorage::Make(int size_mb) {
  if (size_mb <= 0) return std::unexpected(Status::InvalidArgument(fmt::format("/tmp size {} MiB", size_mb)));
  auto tmpl = GetTemplate(size_mb);
  if (!tmpl) return std::unexpected(tmpl.error());
  UniqueFd in(::open(tmpl->path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in.valid()) return std::unexpected(PosixError(fmt::format("open '{}'", tmpl->path.string()), errno));
  // The image has no name: its space is freed when the loop device lets go of it, whatever happens
  // to the daemon. A named file unlinked at once is the fallback for filesystems without O_TMPFILE.
  UniqueFd image(::open(dir_.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
  if (!image.valid()) {
    static std::atomic<uint64_t> seq{0};
    fs::path named = dir_ / fmt::format("volume-{}{}", seq.fetch_add(1), OwnSuffix());
    image.Reset(::open(named.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!image.valid()) return std::unexpected(PosixError(fmt::format("create '{}'", named.string()), errno));
    ::unlink(named.c_str());
  }
  const std::string what = fmt::format("an image of '{}'", tmpl->path.string());
  HEARTH_RETURN_IF_ERROR(SparseCopy(in.get(), image.get(), tmpl->bytes));
  // Direct I/O on the backing file: the loop device then adds no second page cache.
  if (int fl = ::fcntl(image.get(), F_GETFL); fl >= 0) (void)::fcntl(image.get(), F_SETFL, fl | O_DIRECT);
  auto loop = ConfigureLoop(image.get(), LO_FLAGS_DIRECT_IO, what);
  if (!loop) return std::unexpected(loop.error());
  auto mnt = MountDetached(loop->device, /*read_only=*/false);
  if (!mnt) return std::unexpected(mnt.error());
  UniqueFd root(::openat(mnt->get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid() || ::fchmod(root.get(), 01777) != 0)
    return std::unexpected(PosixError(fmt::format("chmod 1777 the root of the ext4 on '{}'", loop->device), errno));
  // From here the mount holds the loop device, and the loop device holds the image.
  return TmpVolume{std::move(*mnt), size_mb, loop->device};
}

Result<TmpVolume> TmpStorage::Acquire(int size_mb) {
  if (opt_.per_size > 0) {
    std::unique_lock lock(mu_);
    SizePool& p = pools_[size_mb];
    p.last_used = Clock::now();
    if (!p.ready.empty()) {
      TmpVolume v = std::move(p.ready.front());
      p.ready.pop_front();
      ++counters_.hits;
      lock.unlock();
      cv_.notify_all();
      return v;
    }
    ++counters_.misses;
    lock.unlock();
    cv_.notify_all();  // start keeping this size ready
  }
  return Make(size_mb);
}

void TmpStorage::Run() {
  // Refills are off the cold path: behind launches for the CPU (nice 10).
  ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 10);
  std::unique_lock lock(mu_);
  while (!stop_) {
    // Which sizes are kept: pinned ones, and the max_sizes most recently used within idle_ttl.
    const auto now = Clock::now();
    std::vector<std::pair<Clock::time_point, int>> recent;
    for (auto& [size, p] : pools_)
      if (!p.pinned && now - p.last_used < opt_.idle_ttl) recent.emplace_back(p.last_used, size);
    std::sort(recent.begin(), recent.end(), std::greater<>());
    if (recent.size() > static_cast<size_t>(std::max(0, opt_.max_sizes))) recent.resize(opt_.max_sizes);
    std::vector<TmpVolume> drop;
    int fill = 0;
    size_t fewest = static_cast<size_t>(opt_.per_size);
    for (auto it = pools_.begin(); it != pools_.end();) {
      SizePool& p = it->second;
      bool keep = p.pinned || std::any_of(recent.begin(), recent.end(), [&](auto& r) { return r.second == it->first; });
      if (!keep) {
        for (auto& v : p.ready) drop.push_back(std::move(v));
        it = pools_.erase(it);
        continue;
      }
      if (p.ready.size() < fewest) {
        fewest = p.ready.size();
        fill = it->first;
      }
      ++it;
    }
    if (!drop.empty()) {
      lock.unlock();
      drop.clear();  // unmount, detach, free: outside the lock
      lock.lock();
      continue;
    }
    if (fill == 0) {
      cv_.wait_for(lock, std::chrono::seconds(30));
      continue;
    }
    // Not while the launch that just took one is still starting (2 vCPUs): unless this size has
    // none left, wait until 5 ms after its last use.
    if (auto until = pools_[fill].last_used + std::chrono::milliseconds(5); fewest > 0 && Clock::now() < until) {
      cv_.wait_until(lock, until, [&] { return stop_; });
      continue;
    }
    lock.unlock();
    auto v = Make(fill);
    lock.lock();
    if (!v) {
      ++counters_.failures;
      counters_.last_error = v.error().ToString();
      cv_.wait_for(lock, std::chrono::seconds(1), [&] { return stop_; });  // back off
      continue;
    }
    ++counters_.made;
    if (auto it = pools_.find(fill); it != pools_.end() && !stop_) {
      it->second.ready.push_back(std::move(*v));
    } else {
      lock.unlock();
      v->mount_fd.Reset();
      lock.lock();
    }
  }
}

TmpStorage::Counters TmpStorage::counters() const {
  std::lock_guard lock(mu_);
  return counters_;
}

size_t TmpStorage::ready(int size_mb) const {
  std::lock_guard lock(mu_);
  auto it = pools_.find(size_mb);
  return it == pools_.end() ? 0 : it->second.ready.size();
}

Status TmpStorage::Sweep() {
  std::lock_guard tlock(tmpl_mu_);
  const std::string prefix = dir_.string() + "/";
  Status first = Status::Ok();
  auto note = [&](Status st) {
    if (first.ok() && !st.ok()) first = std::move(st);
  };
  // 1. Anything mounted below our directory (none is, by design: volumes are detached mounts).
  {
    std::ifstream in("/proc/self/mountinfo");
    std::string line;
    std::vector<std::string> targets;
    while (std::getline(in, line)) {
      std::istringstream ls(line);
      std::string id, parent, devno, root, target;
      ls >> id >> parent >> devno >> root >> target;
      target = Unescape(target);
      if (target.starts_with(prefix)) targets.push_back(target);
    }
    std::sort(targets.rbegin(), targets.rend());  // deepest first
    for (const auto& t : targets)
      if (::umount2(t.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) != 0 && errno != EINVAL && errno != ENOENT)
        note(PosixError(fmt::format("umount '{}'", t), errno));
  }
  // 2. Loop devices backed by a file of ours. LOOP_CLR_FD only marks a device that is still in
  // use for autoclear (which ours already have), so live environments of this daemon are unharmed;
  // an idle one detaches now.
  {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator("/sys/block", ec)) {
      const std::string name = e.path().filename().string();
      if (!name.starts_with("loop")) continue;
      std::ifstream bf(e.path() / "loop" / "backing_file");
      std::string backing;
      std::getline(bf, backing);
      if (!backing.starts_with(prefix)) continue;
      UniqueFd loop(::open(("/dev/" + name).c_str(), O_RDWR | O_CLOEXEC));
      if (loop.valid() && ::ioctl(loop.get(), LOOP_CLR_FD, 0) != 0 && errno != ENXIO && errno != EBUSY)
        note(PosixError(fmt::format("LOOP_CLR_FD '/dev/{}' (backing '{}')", name, backing), errno));
    }
  }
  // 3. Files: keep this version's templates and what this process is making right now.
  {
    std::error_code ec;
    const std::string own = OwnSuffix();
    for (const auto& e : fs::directory_iterator(dir_, ec)) {
      const std::string name = e.path().filename().string();
      if (name.starts_with(kTemplatePrefix) && name.ends_with(".img")) continue;
      if (name.ends_with(own)) continue;
      std::error_code rec;
      fs::remove_all(e.path(), rec);
      if (rec) note(Status::IOError(fmt::format("remove '{}': {}", e.path().string(), rec.message())));
    }
  }
  return first;
}

}  // namespace hearth::sandbox
