#pragma once
// The plain launcher: the runtime runs as an ordinary child process in its own session (so the
// whole tree can be signalled), with the code directory as its working directory. Functions are
// NOT isolated from each other or from the host.

#include <filesystem>

#include "sandbox/launcher.h"

namespace hearth::sandbox {

// `state_dir` holds a pid file per live environment, so that the next start can kill what a
// SIGKILLed daemon left running.
LauncherPtr NewProcessLauncher(std::filesystem::path state_dir);

}  // namespace hearth::sandbox
