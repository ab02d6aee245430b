#pragma once
// The daemon's entry point: wires every subsystem and runs until SIGINT/SIGTERM.

#include "config/daemon_config.h"

namespace hearth::daemon {

// Runs `hearth serve` with a validated config. Returns the process exit code.
int Serve(const config::DaemonConfig& cfg);

}  // namespace hearth::daemon
