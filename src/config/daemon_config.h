#pragma once
// The daemon's configuration: flags (`hearth serve --...`) and the config file (JSON) parse into
// this one struct, validated once by Validate(). Every field documents its default.

#include <chrono>
#include <map>
#include <string>

#include "common/status.h"

namespace hearth::config {

struct DaemonConfig {
  // Address of the Lambda API. Default: 127.0.0.1:9000
  std::string listen_host = "127.0.0.1";
  int listen_port = 9000;
  // Where metadata (SQLite), code and logs live. Default: ./.hearth
  std::string data_dir = ".hearth";
  // Region and account used in ARNs. Default: us-east-1 / 000000000000
  std::string region = "us-east-1";
  std::string account_id = "000000000000";
  // Event-loop threads. The main loop owns all state (loop-confined; see architecture.md,
  // "Threads"); with N > 1 the Lambda API's connections (reading, parsing, writing HTTP) run on
  // N - 1 more loops and each request's handler hops to the main loop. The hop costs more than
  // it spreads on 2 vCPUs (64 connections: 21.0k invokes/s with 1, 19.0k with 2; docs/
  // benchmarks.md, "Scale"); it is for hosts with cores to spare. Default: 1
  int io_threads = 1;
  // Threads for blocking work (SQLite, unzip, process launch). Default: 4
  int worker_threads = 4;
  // Cap on execution environments alive on this host (idle, busy, provisioned); when full, the
  // longest-idle environment of another function is evicted, else the invoke waits up to
  // admission_wait and then gets 429. 0 = derived from the host at start (memory, open files,
  // processes: scheduler/capacity.h). Default: 0
  int max_environments = 0;
  // The account concurrency limit (concurrent executions; reserved and provisioned concurrency
  // are carved out of it). The effective limit is min(this, the host's max_environments).
  // Default: 1000 (Lambda's)
  int account_concurrency = 1000;
  // Scaling rate: new environments per function per scaling_period, refilled continuously,
  // never banked beyond one bucket; beyond it invokes get 429. Default: 1000 per 10 s (Lambda's)
  int scaling_rate = 1000;
  std::chrono::milliseconds scaling_period{std::chrono::seconds(10)};
  // Memory-aware admission: host memory kept free (MemAvailable never admitted below it), the
  // footprint assumed for an environment until one of its function has been measured, and how
  // long an invoke waits for memory or an environment slot before 429. Defaults: 1024 MiB, 16 MiB,
  // 1000 ms
  int memory_reserve_mb = 1024;
  int environment_memory_estimate_mb = 16;
  std::chrono::milliseconds admission_wait{std::chrono::milliseconds(1000)};
  // An idle environment is shut down after this long. Default: 300 s
  std::chrono::milliseconds idle_timeout{std::chrono::seconds(300)};
  // Init phase limit. Default: 10 s (Lambda's on-demand limit)
  std::chrono::milliseconds init_timeout{std::chrono::seconds(10)};
  // Between SIGTERM and SIGKILL at shutdown. Default: 500 ms
  std::chrono::milliseconds shutdown_grace{std::chrono::milliseconds(500)};
  // Total stored code (zips) across functions; CodeStorageExceededException beyond. Default: 75 GB
  int64_t code_storage_limit_bytes = 80530636800;
  // Isolation: "sandbox" (namespaces, cgroups, seccomp; needs root, see docs/security.md) or
  // "process" (plain child processes; functions are NOT isolated). Default: sandbox
  std::string isolation = "sandbox";
  // Network of each sandbox: "none" (loopback only; the Runtime API at 127.0.0.1:9001) or
  // "egress" (also outbound TCP and DNS through a slirp4netns per environment; needs the
  // slirp4netns package). Never inbound. No effect with isolation "process". Default: none
  // (least privilege: functions that need the network get it where the host opts in).
  std::string network = "none";
  // Sandbox: blank sandboxes kept ready (namespaces, cgroup, network and the common part of the
  // root made ahead of need, so a cold start only mounts the code and executes the bootstrap;
  // docs/security.md). 0 makes each one on the cold path. Default: 3
  int blank_sandboxes = 3;
  // Sandbox: per managed runtime, how many sandboxes are kept with that runtime's interpreter
  // already started (as the sandbox user, under seccomp, waiting for a function; refilled at low
  // priority). A cold start of that runtime then skips the interpreter's start-up, unless the
  // function sets variables the interpreter reads at start (PYTHON*, LANG, LC_*, TZ, PATH, LD_*,
  // NODE_*, ...): those take the normal path. 0 or absent: none.
  // Default: {"python3.11": 1, "nodejs20.x": 1}
  std::map<std::string, int> preinit_runtimes = {{"nodejs20.x", 1}, {"python3.11", 1}};
  // An idle environment (runtime parked in `next`) is frozen after this long: background work a
  // function left running after its response gets no CPU (as in Lambda) until the next invoke
  // thaws it, which costs that invoke ~60-90 us; invokes closer together than this never pay it.
  // 0: never. Default: 1000 ms (docs/architecture.md, "Freezing idle environments")
  std::chrono::milliseconds freeze_idle{std::chrono::milliseconds(1000)};
  // Log level: trace, debug, info, warn, error. Default: info
  std::string log_level = "info";
  // After each burst of work the event loop polls this long before blocking, so replies that are
  // microseconds away do not pay for waking a halted vCPU (on an idle 2-vCPU VM: warm invoke p50
  // 340 -> 190 us at 100) at the cost of CPU and of throughput under concurrency (8 connections:
  // 8.4k -> 6.6k invokes/s). 0 disables. Default: 0
  int loop_spin_us = 0;
  // Directory of the managed runtimes (one subdirectory per runtime name, e.g. "python3.11",
  // each with an executable `bootstrap`; mounted at /var/runtime). Default (empty): the
  // `runtimes` directory next to the hearth binary.
  std::string runtimes_dir;

  Status Validate() const;
};

// Reads a JSON config file whose keys are the field names above (durations in milliseconds with
// a "_ms" suffix, e.g. "idle_timeout_ms"). Unknown keys are an error so typos are not silent.
Status LoadDaemonConfigFile(const std::string& path, DaemonConfig* cfg);

// Parses "HOST:PORT" into cfg->listen_host/listen_port.
Status ParseListenAddress(const std::string& hostport, DaemonConfig* cfg);

}  // namespace hearth::config
