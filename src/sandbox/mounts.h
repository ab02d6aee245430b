#pragma once
// The sandbox filesystem as data (bubblewrap's SetupOp list): BuildRootfsSpec() describes the root,
// ValidateMountSpec() checks it in the parent (unit-testable without root), PrepareMountPlan()
// turns it into C strings before clone(), and ExecuteMountPlan() runs it in the child, which then
// calls EnterNewRoot() (pivot_root, old root detached, "/" read-only).
//
// Targets are absolute paths inside the sandbox. The child mounts a tmpfs on `new_root` (a host
// directory, private to the child's mount namespace) and builds everything below it.

#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/unique_fd.h"

namespace hearth::sandbox {

enum class MountKind {
  kTmpfs,       // tmpfs at target; `data` holds the options ("size=1m,mode=0755")
  kBindRo,      // bind source (host path) read-only, nosuid, nodev
  kProc,        // a fresh proc for the sandbox's pid namespace
  kMkdir,       // directory at target (mode)
  kSymlink,     // target -> source (source is the link text)
  kCharDevice,  // character device node at target (dev)
  kBlockFs,     // mount the block device `source` with filesystem type `fstype`, nosuid, nodev
  kAttachMount, // attach the detached mount `fd` (fsmount(), made ahead by the parent) at target
  kChmod,       // chmod target to mode
  kRemountRo,   // make the mount at target read-only (after it has been filled)
};

const char* MountKindName(MountKind kind);

struct MountOp {
  MountKind kind;
  std::string source;  // host path (bind, block device) or link text (symlink)
  std::string target;  // absolute path inside the sandbox
  std::string data;    // mount options (tmpfs, block fs)
  std::string fstype;  // kBlockFs only
  mode_t mode = 0755;  // kMkdir, kChmod
  dev_t dev = 0;       // kCharDevice
  bool devices = false;  // kTmpfs: allow device nodes (no MS_NODEV); for /dev only
  int fd = -1;           // kAttachMount: the mount fd (inherited by the child, closed once attached)
};

using MountSpec = std::vector<MountOp>;

// What the standard Lambda-like root is made of.
struct RootfsInputs {
  std::filesystem::path host_root = "/";   // where /usr, /etc/ssl... are read from
  std::filesystem::path etc_dir;           // generated /etc (passwd, group, hosts...)
  std::filesystem::path code_dir;          // /var/task
  std::filesystem::path opt_dir;           // /opt (assembled layers); empty: an empty /opt
  std::filesystem::path runtime_dir;       // /var/runtime (a managed runtime); empty: none
  // Detached read-only clones of code_dir, runtime_dir, opt_dir (CloneReadOnlyMount), attached
  // instead of bound: a claimed blank sandbox has left the host's tree already. -1: bind the path.
  int code_mount_fd = -1;
  int runtime_mount_fd = -1;
  int opt_mount_fd = -1;
  int tmp_mount_fd = -1;                   // a ready /tmp as a detached mount (fsmount fd), or:
  std::string tmp_device;                  // block device holding /tmp (ext4), or empty:
  std::string tmp_tmpfs_options;           //   then a tmpfs with these options
};

// Read-only root: /usr (+ merged-/usr links), /etc (generated + host ssl, alternatives,
// ld.so.cache), /var/task, /opt (empty), /proc, minimal /dev, writable /tmp.
// = BuildBaseRootfsSpec(in) followed by BuildFunctionRootfsSpec(in).
MountSpec BuildRootfsSpec(const RootfsInputs& in);
// The part that is the same for every function (uses host_root and etc_dir only): done by a
// blank sandbox ahead of need. Ends with the mount points /var/task, /opt and /tmp created.
MountSpec BuildBaseRootfsSpec(const RootfsInputs& in);
// The part that depends on the function: the code at /var/task, /var/runtime, /opt, /tmp.
MountSpec BuildFunctionRootfsSpec(const RootfsInputs& in);

// Checks the spec before anything runs: "/" first and a tmpfs; absolute, normalized targets with
// no ".." and no duplicates; every target's parent created earlier; bind sources that exist.
// The error names the op's index, kind and path.
Status ValidateMountSpec(const MountSpec& spec, bool check_sources = true);

// C strings for the child (no allocation after clone()).
struct MountPlan {
  struct Op {
    MountKind kind;
    const char* source;
    const char* target;  // full path below new_root
    const char* display; // target as the sandbox sees it (for error messages)
    const char* data;
    const char* fstype;
    mode_t mode;
    dev_t dev;
    bool devices;
    int fd;
  };
  std::string new_root;
  std::vector<std::string> storage;
  std::vector<Op> ops;
};

// Parent side: a detached read-only (nosuid, nodev) clone of the mount of `dir` (open_tree with
// OPEN_TREE_CLONE, mount_setattr): in no mount table until a sandbox attaches it (kAttachMount).
Result<UniqueFd> CloneReadOnlyMount(const std::filesystem::path& dir);

// Precondition: ValidateMountSpec(spec) is ok.
std::unique_ptr<MountPlan> PrepareMountPlan(const MountSpec& spec, const std::string& new_root);

// Child side (async-signal-safe). On failure returns false and fills *err, *what, *path.
// Makes "/" recursively private first, then runs the ops.
bool ExecuteMountPlan(const MountPlan& plan, int* err, const char** what, const char** path);
// Runs `n` ops (no propagation change): the function part of a claimed blank sandbox.
bool ExecuteMountOps(const MountPlan::Op* ops, size_t n, int* err, const char** what, const char** path);
// chdir(new_root), pivot_root(".", "."), detach the old root, remount "/" read-only, chdir(workdir).
bool EnterNewRoot(const char* new_root, const char* workdir, int* err, const char** what);

}  // namespace hearth::sandbox
