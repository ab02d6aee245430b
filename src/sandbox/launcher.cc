#include "sandbox/launcher.h"

#include <unistd.h>

#include <cerrno>

#include <fmt/format.h>

namespace hearth::sandbox {

std::filesystem::path HostPath(const LaunchSpec& spec, std::string_view sandbox_path) {
  if (sandbox_path.find("..") != std::string_view::npos) return {};
  const struct {
    std::string_view prefix;
    const std::filesystem::path* root;
  } roots[] = {{"/var/task", &spec.code_dir}, {"/opt", &spec.opt_dir}, {"/var/runtime", &spec.runtime_dir}};
  for (const auto& r : roots) {
    if (!sandbox_path.starts_with(r.prefix)) continue;
    std::string_view rest = sandbox_path.substr(r.prefix.size());
    if (!rest.empty() && rest.front() != '/') continue;
    if (r.root->empty()) return {};
    while (!rest.empty() && rest.front() == '/') rest.remove_prefix(1);
    return rest.empty() ? *r.root : *r.root / rest;
  }
  return {};
}

Result<ProcessPtr> Launcher::Launch(const LaunchSpec& spec) {
  auto started = [&]() -> Result<ProcessPtr> {
    const std::filesystem::path entry = HostPath(spec, spec.entrypoint);
    if (entry.empty())
      return std::unexpected(Status::InvalidArgument(fmt::format("bad entrypoint '{}'", spec.entrypoint)));
    if (::access(entry.c_str(), X_OK) != 0) return std::unexpected(PosixError(entry.string(), errno));
    return Start(spec, entry);
  }();
  (started ? launched_ : failed_).fetch_add(1, std::memory_order_relaxed);
  return started;
}

LaunchStats Launcher::stats() const {
  LaunchStats st;
  st.launched = launched_.load(std::memory_order_relaxed);
  st.failed = failed_.load(std::memory_order_relaxed);
  AddStats(st);
  return st;
}

}  // namespace hearth::sandbox
