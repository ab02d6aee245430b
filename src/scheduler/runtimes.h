#pragma once
// Managed runtimes (python3.11, nodejs20.x, ...): directories under the daemon's runtimes
// directory (config key `runtimes_dir`), each holding an executable `bootstrap` that the
// sandbox runs as /var/runtime/bootstrap. `provided*` runtimes need none: their bootstrap is the
// function's own.

#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::scheduler {

// The `runtimes` directory next to the running executable (/proc/self/exe).
std::filesystem::path DefaultRuntimesDir();

// The runtime names this host can run: every subdirectory of `runtimes_dir` with an executable
// `bootstrap` (python* first, then nodejs*, alphabetical within each),
// followed by "provided.al2023" and "provided.al2".
std::vector<std::string> InstalledRuntimes(const std::filesystem::path& runtimes_dir);

// The platform's defaults for the variables a runtime reads while it starts, for a task root of
// `task_root` (LANG, TZ, PATH, LD_LIBRARY_PATH; a function's own variables may override them).
// Every environment starts from these; a pre-started runtime (sandbox_launcher.h) is started with
// exactly these, so that it serves the functions that do not override them.
std::map<std::string, std::string> DefaultStartEnvironment(const std::string& task_root);

// True for the custom runtimes (provided, provided.al2, provided.al2023).
inline bool IsProvidedRuntime(std::string_view runtime) { return runtime.starts_with("provided"); }

}  // namespace hearth::scheduler
