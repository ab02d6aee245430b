#pragma once
// /tmp of a sandbox: an ext4 filesystem of the function's EphemeralStorage size on a loop device,
// made ahead of need by a small pool so that a cold start only attaches it.
//
// Why not a tmpfs: tmpfs pages are charged to the writer's memory cgroup (machine.md C), so a
// 512 MB /tmp in a 128 MB function would be cut short by an OOM kill. An ext4 on disk fills up with
// ENOSPC at its size, and its page cache is reclaimable (written back), not a charge that kills.
// The loop device uses direct I/O, so the backing file adds no second page cache.
//
// A volume: an unnamed (O_TMPFILE) sparse copy of a per-size template image under `dir`, a loop
// device configured on it with AUTOCLEAR|DIRECT_IO, and the ext4 on it mounted with the new mount
// API (fsopen/fsconfig/fsmount) as a *detached* mount, nosuid and nodev, its root chmod 1777. The
// volume is nothing but that mount fd: it is in no mount table of the host, and the sandbox's child
// attaches it at /tmp with move_mount() (tens of µs). Every volume is used once: the first
// environment that takes it owns it, and when the environment's mount namespace goes, the kernel
// unmounts the filesystem, AUTOCLEAR detaches the loop device and the unnamed image's space is
// freed. If the daemon is SIGKILLed, its fds close and the same happens to the pool's ready
// volumes: nothing is left on disk but the templates. Sweep() still detaches any loop device whose
// backing file is in `dir` and unmounts anything mounted below it (left by a crashed older
// version, or by hand).
//
// Sizing: the template is made with no reserved blocks, no journal and no resize inode, and its
// image size is corrected by measuring (mount it read-only, statvfs): the usable space (f_bavail,
// which also excludes ext4's own reserve of min(2 %, 4096) clusters) is the configured size plus
// at most 0.2 % (at least kSlackBytes), so writing past the configured size ends in ENOSPC.
//
// Pool: Acquire(size) takes a ready volume of that size or, when there is none, makes one now
// (the slow path, a few ms). A background thread (Start()) keeps `per_size` volumes ready for every
// size acquired recently (at most `max_sizes` sizes, least recently used first out; a size unused
// for `idle_ttl` is dropped), plus the `prefill_sizes` from the start.

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "common/unique_fd.h"

namespace hearth::sandbox {

struct TmpVolume {
  UniqueFd mount_fd;   // detached mount (fsmount); attach with move_mount(MOVE_MOUNT_F_EMPTY_PATH)
  int size_mb = 0;
  std::string device;  // "/dev/loopN", for messages
};

struct TmpPoolOptions {
  int per_size = 4;                    // ready volumes kept per size in use; 0 = no pool
  std::vector<int> prefill_sizes = {512};
  int max_sizes = 8;                   // sizes kept ready at once
  std::chrono::seconds idle_ttl{600};  // a size not acquired for this long is not kept ready
};

class TmpStorage {
 public:
  // `dir` holds the templates (and the unnamed images). The root of each filesystem is owned by
  // uid:gid.
  TmpStorage(std::filesystem::path dir, uid_t uid, gid_t gid, TmpPoolOptions pool = {});
  ~TmpStorage();  // stops the thread; ready volumes are released
  TmpStorage(const TmpStorage&) = delete;
  TmpStorage& operator=(const TmpStorage&) = delete;

  // Starts the refill thread (idempotent).
  void Start();

  // Thread-safe. A ready volume, or a new one made by the calling thread.
  Result<TmpVolume> Acquire(int size_mb);
  // Makes a new volume now (what the pool thread does).
  Result<TmpVolume> Make(int size_mb);
  // Removes stray files (templates of this version stay), detaches loop devices backed by files in
  // `dir`, unmounts what is mounted below it.
  Status Sweep();

  // Image size of `size_mb` (after the template was made).
  Result<int64_t> ImageBytes(int size_mb);
  // Usable bytes of a filesystem made for `size_mb` (measured when its template was made).
  Result<int64_t> UsableBytes(int size_mb);

  static constexpr int64_t kSlackBytes = 256 << 10;

  struct Counters {
    uint64_t hits = 0, misses = 0, made = 0, failures = 0;
    std::string last_error;
  };
  Counters counters() const;
  // Number of ready volumes of `size_mb`.
  size_t ready(int size_mb) const;

 private:
  struct Template {
    std::filesystem::path path;
    int64_t bytes = 0;
    int64_t usable = 0;
  };
  Result<Template> GetTemplate(int size_mb);
  Result<Template> MakeTemplate(int size_mb);
  void Run();

  const std::filesystem::path dir_;
  const uid_t uid_;
  const gid_t gid_;
  const TmpPoolOptions opt_;

  std::mutex tmpl_mu_;                   // held while a template is made (and by Sweep)
  std::map<int, Template> templates_;    // GUARDED_BY(tmpl_mu_)

  struct SizePool {
    std::deque<TmpVolume> ready;
    std::chrono::steady_clock::time_point last_used;
    bool pinned = false;  // a prefill size: never dropped
  };
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<int, SizePool> pools_;  // GUARDED_BY(mu_)
  Counters counters_;              // GUARDED_BY(mu_)
  bool stop_ = false;              // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace hearth::sandbox
