#include "sandbox/launcher.h"

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

}  // namespace hearth::sandbox
