#include "daemon/serve.h"

#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/thread_pool.hpp>
#include <spdlog/spdlog.h>

#include "api/lambda_api.h"
#include "artifacts/code_store.h"
#include "artifacts/opt_assembly.h"
#include "http/server.h"
#include "invoke/invoker.h"
#include "invoke/registry.h"
#include "sandbox/process_launcher.h"
#include "sandbox/sandbox_launcher.h"
#include "scheduler/capacity.h"
#include "scheduler/runtimes.h"
#include "scheduler/manager.h"
#include "store/sqlite_store.h"
#include "telemetry/log_sink.h"

namespace hearth::daemon {

namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace {

// The assembled /opt of a function version (layers_api.cc builds the same one on create and
// update; here it is found in the cache or rebuilt). Empty when it has no layers or they cannot
// be assembled (logged; invokes then see an empty /opt). Records its key in `used`.
fs::path LoadOpt(artifacts::CodeStore& code, const fs::path& opt_root,
                 const config::FunctionConfig& cfg, std::vector<std::string>& used) {
  if (cfg.layer_digests.empty()) return {};
  std::vector<fs::path> dirs;
  for (const auto& d : cfg.layer_digests) {
    auto stored = code.Get(d);
    if (!stored) {
      spdlog::error("function {}:{}: layer code {} is missing from the code store ({})", cfg.name,
                    cfg.version, d, stored.error().ToString());
      return {};
    }
    dirs.push_back(stored->dir);
  }
  auto opt = artifacts::AssembleOpt(opt_root, dirs, cfg.layer_digests);
  if (!opt) {
    spdlog::error("function {}:{}: cannot assemble its layers: {}", cfg.name, cfg.version,
                  opt.error().ToString());
    return {};
  }
  used.push_back(artifacts::OptKey(cfg.layer_digests));
  return *opt;
}

// Loads every function ($LATEST, published versions, aliases) into the registry with its
// assembled layers, and drops code and /opt trees nobody references.
Status LoadRegistry(store::MetadataStore& store, artifacts::CodeStore& code, const fs::path& opt_root,
                    invoke::FunctionRegistry& registry) {
  std::string after;
  std::vector<std::string> used_opt;
  for (;;) {
    auto page = store.ListFunctions(after, 500);
    if (!page) return page.error();
    if (page->empty()) break;
    for (auto& cfg : *page) {
      auto stored = code.Get(cfg.code_sha256_hex);
      fs::path opt = LoadOpt(code, opt_root, cfg, used_opt);
      if (!stored) {
        spdlog::error("function {}: its code {} is missing from the code store ({}); invokes will fail",
                      cfg.name, cfg.code_sha256_hex, stored.error().ToString());
        registry.Put(invoke::FunctionEntry{cfg, fs::path(), opt});
      } else {
        registry.Put(invoke::FunctionEntry{cfg, stored->dir, opt});
      }
      // Published versions and aliases, so invokes of `name:N` / `name:alias` never read the store.
      auto versions = store.ListVersions(cfg.name);
      if (!versions) return versions.error();
      for (auto& v : *versions) {
        auto vcode = code.Get(v.code_sha256_hex);
        if (!vcode) {
          spdlog::error("function {}:{}: its code {} is missing from the code store ({})", v.name,
                        v.version, v.code_sha256_hex, vcode.error().ToString());
        }
        fs::path vopt = LoadOpt(code, opt_root, v, used_opt);
        registry.PutVersion(invoke::VersionEntry{v, vcode ? vcode->dir : fs::path(), vopt});
      }
      auto aliases = store.ListAliases(cfg.name);
      if (!aliases) return aliases.error();
      for (auto& a : *aliases) registry.PutAlias(std::move(a));
      after = cfg.name;
    }
  }
  HEARTH_RETURN_IF_ERROR(artifacts::GarbageCollectOpt(opt_root, used_opt));
  auto keep = store.ReferencedCode();
  if (!keep) return keep.error();
  return code.GarbageCollect(*keep);
}

// Runs the loop; after each burst of work it polls for `spin` before blocking, so a reply that is
// microseconds away (a runtime answering, a keep-alive client's next request) does not pay for
// waking a halted vCPU.
void RunLoop(asio::io_context& loop, std::chrono::microseconds spin) {
  if (spin.count() <= 0) {
    loop.run();
    return;
  }
  while (!loop.stopped()) {
    if (loop.poll() > 0) continue;
    const auto until = std::chrono::steady_clock::now() + spin;
    bool worked = false;
    while (!loop.stopped() && std::chrono::steady_clock::now() < until) {
      if (loop.poll() > 0) {
        worked = true;
        break;
      }
      __builtin_ia32_pause();
    }
    if (!worked && !loop.stopped()) loop.run_one();
  }
}

// Reserved and provisioned concurrency from the store; provisioned environments start now
// (ahead of traffic, as after PutProvisionedConcurrencyConfig).
Status LoadConcurrency(store::MetadataStore& store, const invoke::FunctionRegistry& registry,
                       scheduler::EnvironmentManager& manager) {
  auto reserved = store.ListReservedConcurrency();
  if (!reserved) return reserved.error();
  for (const auto& [name, n] : *reserved) manager.SetReserved(name, n);
  auto provisioned = store.ListProvisionedConcurrency("");
  if (!provisioned) return provisioned.error();
  for (const auto& pc : *provisioned) {
    const invoke::FunctionEntry* e = registry.Find(pc.function_name);
    const invoke::VersionEntry* v = e ? e->ResolvePublished(pc.qualifier) : nullptr;
    if (!v) {
      spdlog::error("provisioned concurrency of {}:{}: no such published version or alias",
                    pc.function_name, pc.qualifier);
      continue;
    }
    manager.SetProvisioned(pc.qualifier, pc.requested, v->config, v->code_dir, v->opt_dir);
  }
  return Status::Ok();
}

}  // namespace

int Serve(const config::DaemonConfig& cfg_in) {
  config::DaemonConfig cfg = cfg_in;
  spdlog::set_level(spdlog::level::from_str(cfg.log_level));
  ::signal(SIGPIPE, SIG_IGN);
  // Every environment holds a few descriptors in the daemon: use all the host allows.
  const int64_t open_files = scheduler::RaiseOpenFilesLimit();
  if (cfg.max_environments == 0) {
    std::string why;
    cfg.max_environments = scheduler::DeriveMaxEnvironments(scheduler::ReadHostFacts(), {}, &why);
    spdlog::info("max_environments {} (derived: {}; open files limit {})", cfg.max_environments,
                 why, open_files);
  }
  std::error_code fec;
  const fs::path data = fs::absolute(cfg.data_dir);
  fs::create_directories(data, fec);
  if (fec) {
    spdlog::critical("cannot create data dir '{}': {}", data.string(), fec.message());
    return 1;
  }
  auto store = store::OpenSqliteStore(data / "hearth.db");
  if (!store) {
    spdlog::critical("cannot open the metadata store: {}", store.error().ToString());
    return 1;
  }
  auto code = artifacts::OpenCodeStore(data / "code");
  if (!code) {
    spdlog::critical("cannot open the code store: {}", code.error().ToString());
    return 1;
  }
  const fs::path runtimes_dir =
      cfg.runtimes_dir.empty() ? scheduler::DefaultRuntimesDir() : fs::absolute(cfg.runtimes_dir);
  sandbox::LauncherPtr launcher;
  if (cfg.isolation == "sandbox") {
    // Pre-started runtimes, with the platform's start-up defaults for /var/task.
    std::vector<sandbox::PrestartRuntime> prestart;
    for (const auto& [runtime, count] : cfg.preinit_runtimes) {
      if (count <= 0) continue;
      const fs::path dir = runtimes_dir / runtime;
      if (scheduler::IsProvidedRuntime(runtime) || runtime.find('/') != std::string::npos ||
          ::access((dir / "bootstrap").c_str(), X_OK) != 0) {
        spdlog::warn("preinit_runtimes: {} is not an installed managed runtime in {}; ignored", runtime,
                     runtimes_dir.string());
        continue;
      }
      sandbox::PrestartRuntime rt{.name = runtime, .runtime_dir = dir, .count = count};
      for (const auto& [k, v] : scheduler::DefaultStartEnvironment("/var/task")) rt.env.push_back(k + "=" + v);
      prestart.push_back(std::move(rt));
    }
    auto sbx = sandbox::NewSandboxLauncher(
        {.state_dir = data / "sandbox",
         .blank_pool = cfg.blank_sandboxes,
         .prestart = std::move(prestart),
         .network = cfg.network == "egress" ? sandbox::NetworkMode::kEgress : sandbox::NetworkMode::kNone});
    if (!sbx) {
      spdlog::critical("{}", sbx.error().message());
      return 1;
    }
    launcher = std::move(*sbx);
  } else {
    launcher = sandbox::NewProcessLauncher(data / "run");
  }
  if (Status st = launcher->SweepLeftovers(); !st.ok()) {
    spdlog::critical("cannot sweep leftovers of a previous run: {}", st.ToString());
    return 1;
  }
  invoke::FunctionRegistry registry;
  if (Status st = LoadRegistry(**store, **code, data / "opt", registry); !st.ok()) {
    spdlog::critical("cannot load functions: {}", st.ToString());
    return 1;
  }
  SystemClock clock;

  asio::io_context loop(1);
  telemetry::LogSink logs(data / "logs", loop.get_executor());
  asio::thread_pool workers(static_cast<std::size_t>(cfg.worker_threads));
  // Launching environments has a pool of its own: a burst of cold starts must not queue the
  // control plane's store calls behind it.
  asio::thread_pool launch_workers(static_cast<std::size_t>(cfg.worker_threads));

  scheduler::EnvironmentContext ectx;
  ectx.loop = loop.get_executor();
  ectx.workers = &launch_workers;
  ectx.launcher = launcher.get();
  ectx.logs = &logs;
  ectx.clock = &clock;
  ectx.region = cfg.region;
  ectx.init_timeout = cfg.init_timeout;
  ectx.shutdown_grace = cfg.shutdown_grace;
  ectx.freeze_idle = cfg.freeze_idle;
  ectx.runtimes_dir = runtimes_dir;
  scheduler::ManagerOptions mopts;
  mopts.max_environments = cfg.max_environments;
  mopts.idle_timeout = cfg.idle_timeout;
  mopts.account_concurrency = cfg.account_concurrency;
  mopts.scaling_rate = cfg.scaling_rate;
  mopts.scaling_period = cfg.scaling_period;
  mopts.memory.reserve_bytes = int64_t{cfg.memory_reserve_mb} << 20;
  mopts.memory.default_estimate_bytes = int64_t{cfg.environment_memory_estimate_mb} << 20;
  mopts.admission_wait = cfg.admission_wait;
  scheduler::EnvironmentManager manager(ectx, std::move(mopts));
  if (Status st = LoadConcurrency(**store, registry, manager); !st.ok()) {
    spdlog::critical("cannot load concurrency settings: {}", st.ToString());
    return 1;
  }
  invoke::Invoker invoker(registry, manager, cfg.region, cfg.account_id);

  api::ApiContext actx;
  actx.config = &cfg;
  actx.loop = loop.get_executor();
  actx.workers = &workers;
  actx.store = store->get();
  actx.code = code->get();
  actx.registry = &registry;
  actx.manager = &manager;
  actx.launcher = launcher.get();
  actx.invoker = &invoker;
  actx.logs = &logs;
  actx.clock = &clock;
  actx.installed_runtimes = scheduler::InstalledRuntimes(ectx.runtimes_dir);
  spdlog::info("runtimes in {}: {}", ectx.runtimes_dir.string(), fmt::join(actx.installed_runtimes, ", "));
  api::LambdaApi lambda_api(actx);

  asio::ip::tcp::acceptor acceptor(loop);
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(cfg.listen_host, ec);
  if (ec) {
    spdlog::critical("bad listen host '{}': {}", cfg.listen_host, ec.message());
    return 1;
  }
  asio::ip::tcp::endpoint ep(addr, static_cast<unsigned short>(cfg.listen_port));
  acceptor.open(ep.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(ep, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    spdlog::critical("cannot listen on {}:{}: {}", cfg.listen_host, cfg.listen_port, ec.message());
    return 1;
  }
  auto handler = std::make_shared<http::Handler>([&lambda_api](http::Request& req) { return lambda_api.Handle(req); });
  auto opts = lambda_api.ConnectionOptions();
  // io_threads > 1: the Lambda API's connections (reading, parsing and writing HTTP) live on
  // io_threads - 1 loops of their own; each request's handler hops to the main loop, which owns
  // every piece of state (docs/architecture.md, "Threads").
  std::vector<std::unique_ptr<asio::io_context>> io_loops;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> io_guards;
  std::vector<std::thread> io_threads;
  for (int i = 1; i < cfg.io_threads; ++i) {
    io_loops.push_back(std::make_unique<asio::io_context>(1));
    io_guards.push_back(asio::make_work_guard(*io_loops.back()));
    opts->connection_executors.push_back(io_loops.back()->get_executor());
  }
  if (!io_loops.empty()) opts->handler_executor = loop.get_executor();
  for (auto& l : io_loops) {
    asio::io_context* io = l.get();
    const auto spin = std::chrono::microseconds(cfg.loop_spin_us);
    io_threads.emplace_back([io, spin] { RunLoop(*io, spin); });
  }
  asio::co_spawn(loop, http::AcceptLoop(acceptor, handler, opts), asio::detached);
  manager.Start();

  const auto bound = acceptor.local_endpoint(ec);
  if (std::string_view(launcher->name()) == "process") {
    spdlog::warn("isolation: process — functions run as plain child processes and are NOT isolated "
                 "from each other or from this host; they use the host's network as it is, so the "
                 "`network` setting ({}) has no effect", cfg.network);
  } else {
    spdlog::info("isolation: sandbox (namespaces, cgroups, seccomp; see docs/security.md), network: {}",
                 cfg.network == "egress" ? "egress (outbound TCP and DNS through slirp4netns, nothing inbound)"
                                         : "none (loopback only)");
  }
  spdlog::info("hearth {} listening on http://{}:{} (data: {}, {} functions)", "0.1.0",
               bound.address().to_string(), bound.port(), data.string(), registry.size());

  asio::signal_set signals(loop, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& e, int sig) {
    if (e) return;
    spdlog::info("signal {}: shutting down", sig);
    boost::system::error_code ignored;
    acceptor.close(ignored);
    manager.ShutdownAll();
    // Give runtimes their SIGTERM grace, then stop.
    auto timer = std::make_shared<asio::steady_timer>(loop, cfg.shutdown_grace + std::chrono::milliseconds(100));
    timer->async_wait([&loop, timer](const boost::system::error_code&) { loop.stop(); });
  });
  RunLoop(loop, std::chrono::microseconds(cfg.loop_spin_us));
  for (auto& l : io_loops) l->stop();
  for (auto& t : io_threads) t.join();
  launch_workers.join();
  workers.join();
  spdlog::info("stopped");
  return 0;
}

}  // namespace hearth::daemon
