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
  int memory_mb = 128;
  int pids_max = 1024;
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
  // SIGKILLs every process still listed, then removes the directories (retrying while busy).
  virtual Status Destroy() = 0;
};

class CgroupManager {
 public:
  virtual ~CgroupManager() = default;
  // "v1" or "v2".
  virtual const char* version() const = 0;
  virtual std::string Describe() const = 0;
  virtual Result<std::unique_ptr<EnvironmentCgroup>> Create(const std::string& environment_id,
                                                             const CgroupLimits& limits) = 0;
  // Kills and removes every "hearth-<tag>-*" cgroup (what a SIGKILLed daemon left).
  virtual Status Sweep() = 0;
};

// Detects the layout. FailedPrecondition with a clear reason when memory and pids cannot be
// controlled (no controller, not writable).
Result<std::unique_ptr<CgroupManager>> NewCgroupManager(std::string tag);

}  // namespace hearth::sandbox
