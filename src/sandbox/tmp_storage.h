#pragma once
// /tmp of a sandbox: an ext4 filesystem of the function's EphemeralStorage size on a loop device.
//
// Why not a tmpfs: tmpfs pages are charged to the writer's memory cgroup (machine.md C), so a
// 512 MB /tmp in a 128 MB function would be cut short by an OOM kill. An ext4 on disk fills up with
// ENOSPC at its size, and its page cache is reclaimable (written back), not a charge that kills.
// The loop device uses direct I/O, so the backing file adds no second page cache.
//
// Cost: mkfs once per size into a template (about 40 ms for 512 MB), then per environment a sparse
// copy of the template (a few MB of metadata), LOOP_CONFIGURE, and the mount in the child.
// The image file is unlinked right after the loop device is configured with AUTOCLEAR: once the
// sandbox's mount namespace is gone, the loop device detaches and the space is freed, even when
// the daemon was SIGKILLed. Nothing is left on disk but the templates.

#include <filesystem>
#include <map>
#include <mutex>
#include <string>

#include "common/status.h"
#include "common/unique_fd.h"

namespace hearth::sandbox {

struct TmpVolume {
  UniqueFd loop_fd;     // keeps the loop device until the child has mounted it
  std::string device;   // "/dev/loopN"
};

class TmpStorage {
 public:
  // `dir` holds the templates and, briefly, the images. The root of each filesystem is owned by
  // uid:gid.
  TmpStorage(std::filesystem::path dir, uid_t uid, gid_t gid);

  // Thread-safe.
  Result<TmpVolume> Acquire(const std::string& environment_id, int size_mb);
  // Removes images a killed daemon left (templates stay).
  Status Sweep();
  // Image size for `size_mb` of usable space (ext4 metadata on top).
  static int64_t ImageBytes(int size_mb);

 private:
  Result<std::filesystem::path> Template(int size_mb);

  std::filesystem::path dir_;
  uid_t uid_;
  gid_t gid_;
  std::mutex mu_;
  std::map<int, std::filesystem::path> templates_;  // GUARDED_BY(mu_)
};

}  // namespace hearth::sandbox
