#include "sandbox/mounts.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <set>

#include <fmt/format.h>

namespace hearth::sandbox {

namespace fs = std::filesystem;

const char* MountKindName(MountKind kind) {
  switch (kind) {
    case MountKind::kTmpfs: return "tmpfs";
    case MountKind::kBindRo: return "bind-ro";
    case MountKind::kProc: return "proc";
    case MountKind::kMkdir: return "mkdir";
    case MountKind::kSymlink: return "symlink";
    case MountKind::kCharDevice: return "chardev";
    case MountKind::kBlockFs: return "blockfs";
    case MountKind::kAttachMount: return "attach";
    case MountKind::kChmod: return "chmod";
    case MountKind::kRemountRo: return "remount-ro";
  }
  return "?";
}

MountSpec BuildRootfsSpec(const RootfsInputs& in) {
  MountSpec s = BuildBaseRootfsSpec(in);
  MountSpec f = BuildFunctionRootfsSpec(in);
  s.insert(s.end(), std::make_move_iterator(f.begin()), std::make_move_iterator(f.end()));
  return s;
}

MountSpec BuildBaseRootfsSpec(const RootfsInputs& in) {
  MountSpec s;
  auto mkdir = [&](std::string t, mode_t mode = 0755) {
    s.push_back({.kind = MountKind::kMkdir, .target = std::move(t), .mode = mode});
  };
  auto bind = [&](std::string src, std::string t) {
    s.push_back({.kind = MountKind::kBindRo, .source = std::move(src), .target = std::move(t)});
  };
  const fs::path& h = in.host_root;
  s.push_back({.kind = MountKind::kTmpfs, .target = "/", .data = "size=1m,nr_inodes=256,mode=0755"});
  mkdir("/usr");
  bind((h / "usr").string(), "/usr");
  // Merged-/usr: /bin -> usr/bin and friends, exactly as the host has them.
  for (const char* name : {"bin", "sbin", "lib", "lib32", "lib64", "libx32"}) {
    std::error_code ec;
    fs::path host = h / name;
    if (fs::is_symlink(host, ec)) {
      s.push_back({.kind = MountKind::kSymlink, .source = fs::read_symlink(host, ec).string(),
                   .target = std::string("/") + name});
    }
  }
  mkdir("/etc");
  bind(in.etc_dir.string(), "/etc");
  // Mount points for these exist in the generated /etc (see the launcher's etc generation).
  for (const char* name : {"ssl", "alternatives", "ca-certificates", "ld.so.cache"}) {
    std::error_code ec;
    if (fs::exists(h / "etc" / name, ec) && fs::exists(in.etc_dir / name, ec))
      bind((h / "etc" / name).string(), std::string("/etc/") + name);
  }
  mkdir("/var");
  mkdir("/var/task");
  mkdir("/var/runtime");  // always there (as in Lambda); empty unless a managed runtime is attached
  mkdir("/opt");
  mkdir("/proc");
  s.push_back({.kind = MountKind::kProc, .target = "/proc"});
  mkdir("/dev");
  s.push_back({.kind = MountKind::kTmpfs, .target = "/dev", .data = "size=64k,nr_inodes=64,mode=0755",
               .devices = true});
  const struct {
    const char* name;
    unsigned major, minor;
  } devices[] = {{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7},
                 {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}};
  for (const auto& d : devices) {
    s.push_back({.kind = MountKind::kCharDevice, .target = std::string("/dev/") + d.name, .mode = 0666,
                 .dev = makedev(d.major, d.minor)});
  }
  s.push_back({.kind = MountKind::kSymlink, .source = "/proc/self/fd", .target = "/dev/fd"});
  s.push_back({.kind = MountKind::kSymlink, .source = "/proc/self/fd/0", .target = "/dev/stdin"});
  s.push_back({.kind = MountKind::kSymlink, .source = "/proc/self/fd/1", .target = "/dev/stdout"});
  s.push_back({.kind = MountKind::kSymlink, .source = "/proc/self/fd/2", .target = "/dev/stderr"});
  s.push_back({.kind = MountKind::kRemountRo, .target = "/dev"});
  mkdir("/tmp");
  return s;
}

MountSpec BuildFunctionRootfsSpec(const RootfsInputs& in) {
  MountSpec s;
  auto bind = [&](std::string src, std::string t) {
    s.push_back({.kind = MountKind::kBindRo, .source = std::move(src), .target = std::move(t)});
  };
  // A detached read-only clone (CloneReadOnlyMount) is attached; a path is bound.
  auto place = [&](int fd, const std::filesystem::path& dir, const char* target) {
    if (fd >= 0) s.push_back({.kind = MountKind::kAttachMount, .target = target, .fd = fd});
    else if (!dir.empty()) bind(dir.string(), target);
  };
  place(in.code_mount_fd, in.code_dir, "/var/task");
  place(in.runtime_mount_fd, in.runtime_dir, "/var/runtime");
  place(in.opt_mount_fd, in.opt_dir, "/opt");
  if (in.tmp_mount_fd >= 0) {
    // Made ahead of need by the launcher's pool: mode 1777, nosuid, nodev already set.
    s.push_back({.kind = MountKind::kAttachMount, .target = "/tmp", .fd = in.tmp_mount_fd});
    return s;
  }
  if (!in.tmp_device.empty()) {
    s.push_back({.kind = MountKind::kBlockFs, .source = in.tmp_device, .target = "/tmp",
                 .data = "noinit_itable", .fstype = "ext4"});
  } else {
    s.push_back({.kind = MountKind::kTmpfs, .target = "/tmp", .data = in.tmp_tmpfs_options});
  }
  s.push_back({.kind = MountKind::kChmod, .target = "/tmp", .mode = 01777});
  return s;
}

namespace {

bool IsNormalAbsolute(const std::string& p) {
  if (p.empty() || p[0] != '/') return false;
  if (p == "/") return true;
  if (p.back() == '/') return false;
  size_t i = 1;
  while (i <= p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string::npos) j = p.size();
    std::string_view part(p.data() + i, j - i);
    if (part.empty() || part == "." || part == "..") return false;
    i = j + 1;
  }
  return true;
}

std::string Parent(const std::string& p) {
  auto slash = p.rfind('/');
  return slash == 0 ? "/" : p.substr(0, slash);
}

bool Below(const std::string& p, const std::string& dir) {
  if (dir == "/") return true;
  return p.size() > dir.size() && p.compare(0, dir.size(), dir) == 0 && p[dir.size()] == '/';
}

}  // namespace

Status ValidateMountSpec(const MountSpec& spec, bool check_sources) {
  auto bad = [&](size_t i, std::string_view why) {
    return Status::InvalidArgument(fmt::format("mount op #{} ({} '{}'): {}", i, MountKindName(spec[i].kind),
                                               spec[i].target, why));
  };
  if (spec.empty()) return Status::InvalidArgument("mount spec is empty");
  if (spec[0].kind != MountKind::kTmpfs || spec[0].target != "/")
    return bad(0, "the first op must be a tmpfs on /");
  std::set<std::string> dirs{"/"};       // directories that exist once the op ran
  std::vector<std::string> bound;        // bind targets: their content comes from the host
  std::set<std::string> mounted{"/"};    // mount targets (a target is mounted at most once)
  std::set<std::string> nodes;           // symlinks, devices
  for (size_t i = 1; i < spec.size(); ++i) {
    const MountOp& op = spec[i];
    if (!IsNormalAbsolute(op.target)) return bad(i, "target must be an absolute normalized path");
    if (op.target == "/") return bad(i, "only the first op may target /");
    const std::string parent = Parent(op.target);
    bool parent_ok = dirs.count(parent) > 0;
    for (const auto& b : bound) parent_ok = parent_ok || parent == b || Below(parent, b);
    if (!parent_ok) return bad(i, fmt::format("parent '{}' is not created by an earlier op", parent));
    switch (op.kind) {
      case MountKind::kMkdir:
        if (dirs.count(op.target) || nodes.count(op.target)) return bad(i, "created twice");
        dirs.insert(op.target);
        break;
      case MountKind::kSymlink:
      case MountKind::kCharDevice:
        if (dirs.count(op.target) || nodes.count(op.target)) return bad(i, "created twice");
        if (op.kind == MountKind::kSymlink && op.source.empty()) return bad(i, "empty link text");
        nodes.insert(op.target);
        break;
      case MountKind::kTmpfs:
      case MountKind::kProc:
      case MountKind::kBindRo:
      case MountKind::kBlockFs:
      case MountKind::kAttachMount: {
        if (mounted.count(op.target)) return bad(i, "mounted twice");
        bool target_exists = dirs.count(op.target) > 0;
        for (const auto& b : bound) target_exists = target_exists || Below(op.target, b);
        if (!target_exists) return bad(i, "mount point is not created by an earlier op");
        if (op.kind == MountKind::kBindRo || op.kind == MountKind::kBlockFs) {
          if (!IsNormalAbsolute(op.source)) return bad(i, "source must be an absolute normalized path");
          std::error_code ec;
          if (check_sources && !fs::exists(op.source, ec))
            return bad(i, fmt::format("source '{}' does not exist", op.source));
        }
        if (op.kind == MountKind::kBlockFs && op.fstype.empty()) return bad(i, "no filesystem type");
        if (op.kind == MountKind::kAttachMount && op.fd < 0) return bad(i, "no mount fd");
        if (op.kind == MountKind::kTmpfs && op.data.find("size=") == std::string::npos)
          return bad(i, "a tmpfs needs a size= option");
        mounted.insert(op.target);
        if (op.kind == MountKind::kBindRo) bound.push_back(op.target);
        // Whatever was below the mount point is hidden now.
        std::erase_if(dirs, [&](const std::string& d) { return Below(d, op.target); });
        std::erase_if(nodes, [&](const std::string& d) { return Below(d, op.target); });
        dirs.insert(op.target);
        break;
      }
      case MountKind::kChmod:
      case MountKind::kRemountRo:
        if (!dirs.count(op.target) && !nodes.count(op.target)) return bad(i, "target does not exist");
        if (op.kind == MountKind::kRemountRo && !mounted.count(op.target)) return bad(i, "not a mount point");
        break;
    }
  }
  return Status::Ok();
}

std::unique_ptr<MountPlan> PrepareMountPlan(const MountSpec& spec, const std::string& new_root) {
  auto plan = std::make_unique<MountPlan>();
  plan->new_root = new_root;
  // Reserve first: the pointers below must stay valid.
  plan->storage.reserve(spec.size() * 5);
  auto keep = [&](std::string s) { return plan->storage.emplace_back(std::move(s)).c_str(); };
  for (const MountOp& op : spec) {
    MountPlan::Op o{};
    o.kind = op.kind;
    o.source = op.source.empty() ? nullptr : keep(op.source);
    o.target = keep(op.target == "/" ? new_root : new_root + op.target);
    o.display = keep(op.target);
    o.data = op.data.empty() ? nullptr : keep(op.data);
    o.fstype = op.fstype.empty() ? nullptr : keep(op.fstype);
    o.mode = op.mode;
    o.dev = op.dev;
    o.devices = op.devices;
    o.fd = op.fd;
    plan->ops.push_back(o);
  }
  return plan;
}

// ---- child side: async-signal-safe from here on ----

bool ExecuteMountPlan(const MountPlan& plan, int* err, const char** what, const char** path) {
  // Nothing may propagate back to the host.
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    *err = errno, *what = "make / rprivate", *path = "/";
    return false;
  }
  return ExecuteMountOps(plan.ops.data(), plan.ops.size(), err, what, path);
}

bool ExecuteMountOps(const MountPlan::Op* ops, size_t n, int* err, const char** what, const char** path) {
  constexpr unsigned long kSafe = MS_NOSUID | MS_NODEV;
  for (size_t i = 0; i < n; ++i) {
    const MountPlan::Op& op = ops[i];
    int rc = 0;
    *path = op.display;
    switch (op.kind) {
      case MountKind::kTmpfs:
        *what = "mount tmpfs";
        // /dev holds device nodes: no MS_NODEV there (it is remounted read-only afterwards).
        rc = ::mount("tmpfs", op.target, "tmpfs",
                     MS_NOSUID | (op.devices ? 0 : MS_NODEV),
                     op.data);
        break;
      case MountKind::kBindRo:
        *what = "bind";
        rc = ::mount(op.source, op.target, nullptr, MS_BIND | MS_REC, nullptr);
        if (rc == 0) {
          *what = "remount read-only";
          rc = ::mount(nullptr, op.target, nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY | kSafe, nullptr);
        }
        break;
      case MountKind::kProc:
        *what = "mount proc";
        rc = ::mount("proc", op.target, "proc", kSafe | MS_NOEXEC, nullptr);
        break;
      case MountKind::kMkdir:
        *what = "mkdir";
        rc = ::mkdir(op.target, op.mode);
        break;
      case MountKind::kSymlink:
        *what = "symlink";
        rc = ::symlink(op.source, op.target);
        break;
      case MountKind::kCharDevice:
        *what = "mknod";
        rc = ::mknod(op.target, S_IFCHR | op.mode, op.dev);
        if (rc == 0) rc = ::chmod(op.target, op.mode);  // umask
        break;
      case MountKind::kBlockFs:
        *what = "mount block device";
        rc = ::mount(op.source, op.target, op.fstype, kSafe, op.data);
        break;
      case MountKind::kAttachMount:
        *what = "attach mount (move_mount)";
        rc = static_cast<int>(::syscall(SYS_move_mount, op.fd, "", AT_FDCWD, op.target, MOVE_MOUNT_F_EMPTY_PATH));
        if (rc == 0) ::close(op.fd);  // the mount is ours now; the fd no longer matters
        break;
      case MountKind::kChmod:
        *what = "chmod";
        rc = ::chmod(op.target, op.mode);
        break;
      case MountKind::kRemountRo:
        *what = "remount read-only";
        rc = ::mount(nullptr, op.target, nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC,
                     nullptr);
        break;
    }
    if (rc != 0) {
      *err = errno;
      return false;
    }
  }
  return true;
}

Result<UniqueFd> CloneReadOnlyMount(const std::filesystem::path& dir) {
  UniqueFd fd(static_cast<int>(::syscall(SYS_open_tree, AT_FDCWD, dir.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)));
  if (!fd.valid()) return std::unexpected(PosixError(fmt::format("open_tree(OPEN_TREE_CLONE) '{}'", dir.string()), errno));
  mount_attr attr{};
  attr.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
  if (::syscall(SYS_mount_setattr, fd.get(), "", AT_EMPTY_PATH, &attr, sizeof attr) != 0)
    return std::unexpected(PosixError(fmt::format("mount_setattr(read-only) '{}'", dir.string()), errno));
  return fd;
}

bool EnterNewRoot(const char* new_root, const char* workdir, int* err, const char** what) {
  auto fail = [&](const char* w) {
    *err = errno;
    *what = w;
    return false;
  };
  if (::chdir(new_root) != 0) return fail("chdir new root");
  // pivot_root(".", ".") stacks the old root on top of the new one; detaching it leaves only ours.
  if (::syscall(SYS_pivot_root, ".", ".") != 0) return fail("pivot_root");
  if (::umount2(".", MNT_DETACH) != 0) return fail("detach old root");
  if (::chdir("/") != 0) return fail("chdir /");
  if (::mount(nullptr, "/", nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, nullptr) != 0)
    return fail("remount / read-only");
  if (::chdir(workdir) != 0) return fail("chdir workdir");
  return true;
}

}  // namespace hearth::sandbox
