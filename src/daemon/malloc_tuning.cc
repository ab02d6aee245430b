#include "daemon/malloc_tuning.h"

#include <unistd.h>

#include <cstdlib>
#include <string_view>

namespace hearth::daemon {

std::optional<std::string> TunablesWithTcache(const char* current) {
  const std::string_view cur = current ? current : "";
  if (cur.find("glibc.malloc.tcache_count=") != std::string_view::npos) return std::nullopt;
  std::string out(cur);
  if (!out.empty()) out += ':';
  out += "glibc.malloc.tcache_count=" + std::to_string(kTcacheCount);
  return out;
}

void ReexecWithMallocTunables(char** argv) {
  if (std::getenv("HEARTH_NO_MALLOC_TUNING") != nullptr) return;
  const auto tunables = TunablesWithTcache(std::getenv("GLIBC_TUNABLES"));
  if (!tunables) return;
  if (::setenv("GLIBC_TUNABLES", tunables->c_str(), 1) != 0) return;
  ::execv("/proc/self/exe", argv);
  // Still here: no /proc, or the binary is gone. Run as we are, and do not leave the variable
  // for the children to trip over.
  ::unsetenv("GLIBC_TUNABLES");
}

}  // namespace hearth::daemon
