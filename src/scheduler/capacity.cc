#include "scheduler/capacity.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include <fmt/format.h>

namespace hearth::scheduler {

namespace {

// Reads a small file whole (procfs files are read in one call).
std::string ReadSmall(const char* path) {
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  char buf[8192];
  std::string out;
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > 65536) break;
  }
  ::close(fd);
  return out;
}

int64_t ParseInt(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  int64_t v = 0;
  bool any = false;
  for (char c : s) {
    if (c < '0' || c > '9') break;
    v = v * 10 + (c - '0');
    any = true;
  }
  return any ? v : -1;
}

// "<Key>:   12345 kB" from /proc/meminfo, in bytes; -1 when absent.
int64_t MeminfoBytes(std::string_view text, std::string_view key) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? text.npos : nl - pos);
    if (line.size() > key.size() && line.starts_with(key) && line[key.size()] == ':') {
      int64_t kb = ParseInt(line.substr(key.size() + 1));
      return kb < 0 ? -1 : kb * 1024;
    }
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
  }
  return -1;
}

}  // namespace

int DeriveMaxEnvironments(const HostFacts& f, const EnvironmentCosts& c, std::string* why) {
  int64_t best = INT32_MAX;
  std::string reason = "no limit known";
  auto consider = [&](int64_t v, std::string what) {
    if (v < best) {
      best = v;
      reason = std::move(what);
    }
  };
  if (f.mem_total_bytes > 0 && c.min_memory_bytes > 0)
    consider(f.mem_total_bytes / c.min_memory_bytes,
             fmt::format("memory: {} MiB / {} MiB per environment", f.mem_total_bytes >> 20,
                         c.min_memory_bytes >> 20));
  if (f.open_files_limit > 0 && c.fds > 0)
    consider((f.open_files_limit - c.reserved_fds) / c.fds,
             fmt::format("open files: ({} - {}) / {} per environment", f.open_files_limit,
                         c.reserved_fds, c.fds));
  int64_t tasks = f.pid_max;
  if (f.threads_max > 0 && (tasks <= 0 || f.threads_max < tasks)) tasks = f.threads_max;
  if (tasks > 0 && c.tasks > 0)
    consider((tasks - c.reserved_tasks) / c.tasks,
             fmt::format("processes: ({} - {}) / {} per environment", tasks, c.reserved_tasks,
                         c.tasks));
  if (best == INT32_MAX) best = 256;
  if (why) *why = reason;
  return static_cast<int>(std::max<int64_t>(best, 1));
}

HostFacts ReadHostFacts() {
  HostFacts f;
  f.mem_total_bytes = MeminfoBytes(ReadSmall("/proc/meminfo"), "MemTotal");
  f.pid_max = ParseInt(ReadSmall("/proc/sys/kernel/pid_max"));
  f.threads_max = ParseInt(ReadSmall("/proc/sys/kernel/threads-max"));
  struct rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0)
    f.open_files_limit = rl.rlim_cur == RLIM_INFINITY ? INT32_MAX : static_cast<int64_t>(rl.rlim_cur);
  return f;
}

int64_t RaiseOpenFilesLimit() {
  struct rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return -1;
  if (rl.rlim_cur < rl.rlim_max) {
    struct rlimit raised = rl;
    raised.rlim_cur = rl.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) rl = raised;
  }
  return rl.rlim_cur == RLIM_INFINITY ? INT32_MAX : static_cast<int64_t>(rl.rlim_cur);
}

int64_t ReadMemAvailable() { return MeminfoBytes(ReadSmall("/proc/meminfo"), "MemAvailable"); }

}  // namespace hearth::scheduler
