// hearth: the daemon (`hearth serve`) and the everyday CLI in one binary.

#include <cstdlib>
#include <iostream>
#include <string_view>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "config/daemon_config.h"
#include "daemon/malloc_tuning.h"
#include "daemon/serve.h"

int main(int argc, char** argv) {
  using namespace hearth;
  // Before anything else (no threads, nothing open): the daemon runs with a larger malloc cache.
  if (argc > 1 && std::string_view(argv[1]) == "serve") daemon::ReexecWithMallocTunables(argv);
  CLI::App app{"Hearth: AWS Lambda functions on your own machines.\n"
               "`hearth serve` runs the daemon (the Lambda API on 127.0.0.1:9000 by default); the other\n"
               "commands talk to a running daemon over that API, as the AWS CLI and SDKs do."};
  app.require_subcommand(1);
  std::string endpoint = std::getenv("HEARTH_ENDPOINT") ? std::getenv("HEARTH_ENDPOINT") : "http://127.0.0.1:9000";
  app.add_option("--endpoint", endpoint, "Daemon address for client commands (env HEARTH_ENDPOINT)")
      ->capture_default_str();

  config::DaemonConfig cfg;
  std::string listen, config_file;
  int64_t idle_ms = -1;
  auto* serve = app.add_subcommand("serve", "Run the Hearth daemon");
  serve->add_option("--config", config_file, "JSON config file (keys as in docs/architecture.md); flags win");
  serve->add_option("--listen", listen, "HOST:PORT of the Lambda API (default 127.0.0.1:9000)");
  serve->add_option("--data-dir", cfg.data_dir, "Where metadata, code and logs live (default ./.hearth)");
  serve->add_option("--region", cfg.region, "Region in ARNs (default us-east-1)");
  serve->add_option("--account-id", cfg.account_id, "12-digit account in ARNs (default 000000000000)");
  serve->add_option("--max-environments", cfg.max_environments,
                    "Execution environments this host may hold; beyond, invokes get 429 (default 0: "
                    "derived from the host's memory, open files and processes)");
  serve->add_option("--account-concurrency", cfg.account_concurrency,
                    "Account concurrency limit (concurrent executions; default 1000, never more "
                    "than --max-environments)");
  serve->add_option("--scaling-rate", cfg.scaling_rate,
                    "New environments per function per 10 s (default 1000)");
  serve->add_option("--idle-timeout-ms", idle_ms, "Idle environments are shut down after this (default 300000)");
  serve->add_option("--workers", cfg.worker_threads, "Threads for blocking work (default 4)");
  serve->add_option("--isolation", cfg.isolation,
                    "sandbox: namespaces, cgroups, seccomp; needs root (default). "
                    "process: plain child processes, NOT isolated");
  serve->add_option("--network", cfg.network,
                    "Sandbox network: none (loopback only, default) or egress (also outbound TCP and DNS "
                    "through slirp4netns; never inbound)");
  serve->add_option("--log-level", cfg.log_level, "trace|debug|info|warn|error (default info)");
  serve->add_option("--loop-spin-us", cfg.loop_spin_us,
                    "Poll this long before the event loop sleeps: lower latency on idle VMs, less "
                    "throughput under load (default 0 = off)");
  serve->add_option("--io-threads", cfg.io_threads,
                    "Event-loop threads: 1 serves everything on one loop; N > 1 moves the Lambda API's "
                    "connections (HTTP reading, parsing, writing) to N - 1 loops of their own");
  serve->add_option("--runtimes-dir", cfg.runtimes_dir,
                    "Managed runtimes (python3.11, nodejs20.x, ...) (default: runtimes/ next to the binary)");

  cli::InvokeOptions inv;
  auto* invoke = app.add_subcommand("invoke", "Invoke a function and print its answer");
  invoke->add_option("name", inv.name, "Function name or ARN")->required();
  invoke->add_option("--payload,-p", inv.payload, "JSON payload, or @file (default {})");
  invoke->add_option("--qualifier,-q", inv.qualifier, "Version or alias");
  invoke->add_flag("--logs,-l", inv.tail, "Also print the invocation's log tail to stderr");

  bool json_out = false;
  auto* functions = app.add_subcommand("functions", "List functions");
  functions->add_flag("--json", json_out, "Print the raw ListFunctions JSON");

  std::string log_name;
  bool follow = false;
  auto* logs = app.add_subcommand("logs", "Print a function's logs");
  logs->add_option("name", log_name, "Function name")->required();
  logs->add_flag("--follow,-f", follow, "Keep printing new lines");

  std::string package_dir, package_out;
  auto* package = app.add_subcommand(
      "package",
      "Zip a directory into a deployment package (relative paths, modes kept so `bootstrap` stays "
      "executable, in-tree symlinks kept, deterministic: the same tree gives the same CodeSha256)");
  package->add_option("dir", package_dir, "Directory to package")->required();
  package->add_option("--output,-o", package_out, "Zip file to write")->required();

  CLI11_PARSE(app, argc, argv);
  if (package->parsed()) return cli::RunPackage(package_dir, package_out);

  if (serve->parsed()) {
    // Order: defaults < config file < flags.
    config::DaemonConfig flags = cfg;
    if (!config_file.empty()) {
      config::DaemonConfig from_file;
      if (Status st = config::LoadDaemonConfigFile(config_file, &from_file); !st.ok()) {
        std::cerr << "hearth: " << st.message() << "\n";
        return 2;
      }
      config::DaemonConfig defaults;
      // Flags that were given override the file.
      if (serve->count("--data-dir")) from_file.data_dir = flags.data_dir;
      if (serve->count("--region")) from_file.region = flags.region;
      if (serve->count("--account-id")) from_file.account_id = flags.account_id;
      if (serve->count("--max-environments")) from_file.max_environments = flags.max_environments;
      if (serve->count("--account-concurrency"))
        from_file.account_concurrency = flags.account_concurrency;
      if (serve->count("--scaling-rate")) from_file.scaling_rate = flags.scaling_rate;
      if (serve->count("--workers")) from_file.worker_threads = flags.worker_threads;
      if (serve->count("--isolation")) from_file.isolation = flags.isolation;
      if (serve->count("--network")) from_file.network = flags.network;
      if (serve->count("--log-level")) from_file.log_level = flags.log_level;
      if (serve->count("--loop-spin-us")) from_file.loop_spin_us = flags.loop_spin_us;
      if (serve->count("--runtimes-dir")) from_file.runtimes_dir = flags.runtimes_dir;
      if (serve->count("--io-threads")) from_file.io_threads = flags.io_threads;
      cfg = from_file;
    }
    if (!listen.empty()) {
      if (Status st = config::ParseListenAddress(listen, &cfg); !st.ok()) {
        std::cerr << "hearth: " << st.message() << "\n";
        return 2;
      }
    }
    if (idle_ms >= 0) cfg.idle_timeout = std::chrono::milliseconds(idle_ms);
    if (Status st = cfg.Validate(); !st.ok()) {
      std::cerr << "hearth: " << st.message() << "\n";
      return 2;
    }
    return daemon::Serve(cfg);
  }
  cli::Client client(endpoint);
  if (invoke->parsed()) return cli::RunInvoke(client, inv);
  if (functions->parsed()) return cli::RunFunctions(client, json_out);
  if (logs->parsed()) return cli::RunLogs(client, log_name, follow);
  return 2;
}
