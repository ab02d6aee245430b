#pragma once
// Cgroups for sandboxes, v1 or v2, detected at start (these machines are a hybrid: memory, pids
// and cpu on v1 while cgroup2 has only hugetlb; most current distributions are pure v2).
//
// Every environment gets a fresh cgroup per controller hierarchy, a child of the daemon's own
// cgroup (read from /proc/self/cgroup), named "hearth-<tag>-<environment id>"; `tag` comes from the
// daemon's state directory, so that Sweep() only touches what this daemon's data directory left.
//
// Life-cycle: Create() -> the child joins through ProcsFds() (writing "0") -> Peak/OomKills while it
// runs -> Destroy() once every process is gone (the destructor does it too).

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/unique_fd.h"

namespace hearth::sandbox {

struct CgroupLimits {
  // 0: no memory limit yet and the lowest CPU weight (a blank sandbox, made ahead of need at low
  // priority; SetLimits() gives it the function's limits when it is claimed).
  int memory_mb = 128;
  int pids_max = 1024;
  // A blank sandbox (memory_mb 0) made by a pool refill: a low CPU weight (about nice 10's) until
  // claimed; false (made for a launch that found the pool empty): a plain process's weight.
  bool background = true;
  // CPU proportional to memory: 1769 MB = one vCPU (quota per 100 ms period).
  double vcpus() const { return memory_mb / 1769.0; }
};

class EnvironmentCgroup {
 public:
  virtual ~EnvironmentCgroup() = default;
  // Open "cgroup.procs" files, one per hierarchy: the child writes "0" to each to join.
  virtual const std::vector<int>& ProcsFds() const = 0;
  virtual void CloseProcsFds() = 0;
  virtual int64_t PeakMemoryBytes() const = 0;
  virtual int64_t OomKills() const = 0;
  // The CPU quota starts at no less than one full vCPU for the Init phase (as Lambda's Init
  // effectively gets); EndInit() lowers it to the memory-proportional share (vcpus()).
  virtual void EndInit() {}
  // Sets the memory limit (and swap), the CPU weight and the Init CPU quota for `limits` (a blank
  // sandbox's cgroup being claimed; its usage is far below any limit).
  virtual Status SetLimits(const CgroupLimits& limits) = 0;
  // Freezes (true) or thaws (false) every process of the environment; asynchronous: the kernel
  // stops them shortly after. v2's cgroup.freeze (also on a hybrid host: a cgroup2 directory is
  // made beside the v1 ones for it), else the v1 freezer. NotSupported when neither exists.
  virtual Status SetFrozen(bool frozen) = 0;
  // SIGKILLs every process still listed, then removes the directories (retrying while busy).
  virtual Status Destroy() = 0;
};

class CgroupManager {
 public:
  virtual ~CgroupManager() = default;
  // "v1" or "v2".
  virtual const char* version() const = 0;
  virtual std::string Describe() const = 0;
  // "cgroup2" (cgroup.freeze), "v1" (freezer.state) or "" (environments cannot be frozen).
  virtual const char* freezer() const = 0;
  virtual Result<std::unique_ptr<EnvironmentCgroup>> Create(const std::string& environment_id,
                                                             const CgroupLimits& limits) = 0;
  // Kills and removes every "hearth-<tag>-*" cgroup (what a SIGKILLed daemon left), except those
  // whose id (the part after "hearth-<tag>-") starts with `keep` (this daemon's own) if not empty.
  virtual Status Sweep(std::string_view keep = {}) = 0;
};

// Detects the layout. FailedPrecondition with a clear reason when memory and pids cannot be
// controlled (no controller, not writable).
Result<std::unique_ptr<CgroupManager>> NewCgroupManager(std::string tag);

}  // namespace hearth::sandbox
