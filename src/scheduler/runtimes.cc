#include "scheduler/runtimes.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <system_error>

namespace hearth::scheduler {

std::filesystem::path DefaultRuntimesDir() {
  std::error_code ec;
  std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return std::filesystem::path("runtimes");
  return exe.parent_path() / "runtimes";
}

std::map<std::string, std::string> DefaultStartEnvironment(const std::string& task_root) {
  return {
      {"LANG", "en_US.UTF-8"},
      {"TZ", ":UTC"},
      {"PATH", "/usr/local/bin:/usr/bin/:/bin:/opt/bin"},
      {"LD_LIBRARY_PATH", "/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:" + task_root + ":" + task_root +
                              "/lib:/opt/lib"},
  };
}

std::vector<std::string> InstalledRuntimes(const std::filesystem::path& runtimes_dir) {
  std::vector<std::string> managed;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(runtimes_dir, ec)) {
    const std::string name = e.path().filename().string();
    if (IsProvidedRuntime(name)) continue;
    struct stat st{};
    const std::string bootstrap = (e.path() / "bootstrap").string();
    if (::stat(bootstrap.c_str(), &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111) != 0)
      managed.push_back(name);
  }
  // python*, then nodejs*, then the rest; alphabetical within each family.
  auto rank = [](const std::string& n) { return n.starts_with("python") ? 0 : n.starts_with("nodejs") ? 1 : 2; };
  std::sort(managed.begin(), managed.end(), [&](const std::string& a, const std::string& b) {
    return rank(a) != rank(b) ? rank(a) < rank(b) : a < b;
  });
  managed.push_back("provided.al2023");
  managed.push_back("provided.al2");
  return managed;
}

}  // namespace hearth::scheduler
