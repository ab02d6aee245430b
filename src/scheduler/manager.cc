#include "scheduler/manager.h"

#include <algorithm>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/encoding.h"
#include "scheduler/capacity.h"

namespace hearth::scheduler {

namespace asio = boost::asio;

namespace {

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
// How often a waiting invoke re-checks memory and slots.
constexpr std::chrono::milliseconds kAdmissionPoll{20};

// MemAvailable, read at most every 10 ms (an invoke burst must not read procfs per request).
std::function<int64_t()> CachedMemAvailable(const Clock* clock) {
  struct Cache {
    std::chrono::steady_clock::time_point at{};
    int64_t value = 0;
    bool valid = false;
  };
  auto cache = std::make_shared<Cache>();
  return [clock, cache]() {
    auto now = clock->Monotonic();
    if (!cache->valid || now - cache->at >= std::chrono::milliseconds(10)) {
      int64_t v = ReadMemAvailable();
      cache->value = v < 0 ? INT64_MAX / 4 : v;  // unreadable: do not gate on memory
      cache->at = now;
      cache->valid = true;
    }
    return cache->value;
  };
}

}  // namespace

EnvironmentManager::EnvironmentManager(EnvironmentContext ctx, ManagerOptions opts)
    : ctx_(std::move(ctx)),
      opts_(std::move(opts)),
      limits_(std::min(opts_.account_concurrency, opts_.max_environments)),
      memory_(opts_.memory_available ? opts_.memory_available : CachedMemAvailable(ctx_.clock),
              opts_.memory) {}

std::string EnvironmentManager::Key(const config::FunctionConfig& cfg) {
  return cfg.name + '\0' + cfg.version + '\0' + cfg.revision_id;
}

std::string EnvironmentManager::PoolKey(const std::string& function, const std::string& qualifier) {
  return function + '\0' + qualifier;
}

Status EnvironmentManager::Throttle(Status st) {
  ++throttles_;
  ++throttles_by_reason_[st.detail()];
  return st;
}

asio::awaitable<Result<EnvironmentManager::Lease>> EnvironmentManager::Acquire(
    const config::FunctionConfig& cfg, const std::filesystem::path& code_dir,
    const std::filesystem::path& opt_dir, const std::string& request_id) {
  const std::string no_qualifier;
  co_return co_await Acquire(cfg, code_dir, opt_dir, request_id, no_qualifier);
}

asio::awaitable<bool> EnvironmentManager::TakeIdle(const EnvironmentPtr& env,
                                                  const config::FunctionConfig& cfg) {
  env->set_state(Environment::State::kBusy);
  if (!env->parked()) {
    // As Lambda counts it, the previous invocation ends when the runtime asks for the next one.
    // Usually that is microseconds away; a runtime that answered and then exits (e.g. Node after
    // an unhandled rejection) must not be handed this invocation. The invoke phase, and so the
    // function's timeout, bounds the wait.
    const auto deadline = ctx_.clock->Monotonic() + std::chrono::seconds(cfg.timeout_s);
    co_await env->WaitParked(deadline);
    if (!env->parked() || env->dead()) {
      if (!env->dead()) env->Shutdown();
      Forget(env);
      co_return false;
    }
  }
  co_return true;
}

asio::awaitable<Result<EnvironmentManager::Lease>> EnvironmentManager::Acquire(
    const config::FunctionConfig& cfg, const std::filesystem::path& code_dir,
    const std::filesystem::path& opt_dir, const std::string& request_id,
    const std::string& qualifier) {
  // 1. Concurrency: immediate answer.
  if (Status st = limits_.TryAcquire(cfg.name); !st.ok()) co_return std::unexpected(Throttle(st));
  concurrent_peak_ = std::max(concurrent_peak_, limits_.in_flight());
  const std::string key = Key(cfg);

  // 2. A provisioned environment of the caller's qualifier.
  bool spill = false;
  if (!qualifier.empty() && qualifier != config::kLatest) {
    auto p = pools_.find(PoolKey(cfg.name, qualifier));
    if (p != pools_.end() && Key(p->second->cfg) == key) {
      spill = true;
      std::string pool_key = p->first;
      for (;;) {
        auto pit = pools_.find(pool_key);
        if (pit == pools_.end() || pit->second->idle.empty()) break;
        EnvironmentPtr env = std::move(pit->second->idle.back());
        pit->second->idle.pop_back();
        if (env->dead()) {
          Forget(env);
          continue;
        }
        const bool taken = co_await TakeIdle(env, cfg);
        if (!taken) continue;
        ++warm_starts_;
        ++provisioned_invocations_;
        leases_[env->id()] = cfg.name;
        co_return Lease{std::move(env), false, std::nullopt};
      }
    }
  }

  // 3. A warm on-demand environment.
  auto it = idle_.find(key);
  while (it != idle_.end() && !it->second.empty()) {
    EnvironmentPtr env = std::move(it->second.back());
    it->second.pop_back();
    if (it->second.empty()) idle_.erase(it);
    if (env->dead()) {
      Forget(env);
      it = idle_.find(key);
      continue;
    }
    const bool taken = co_await TakeIdle(env, cfg);
    if (!taken) {
      it = idle_.find(key);
      continue;
    }
    ++warm_starts_;
    if (spill) ++spillovers_;
    leases_[env->id()] = cfg.name;
    co_return Lease{std::move(env), false, std::nullopt};
  }

  // 4. A new environment: scaling rate, then a slot and memory (waiting briefly for them).
  auto now = ctx_.clock->Monotonic();
  auto bucket = buckets_.find(cfg.name);
  if (bucket == buckets_.end()) {
    bucket = buckets_
                 .emplace(cfg.name, TokenBucket(opts_.scaling_rate, opts_.scaling_period, now))
                 .first;
  }
  if (bucket->second.tokens(now) < 1.0) {
    limits_.Release(cfg.name);
    co_return std::unexpected(
        Throttle(Status::ResourceExhausted("Rate Exceeded.", kReasonScalingRate)));
  }
  const auto deadline = now + opts_.admission_wait;
  int64_t reserved_bytes = 0;
  bool waited = false;
  for (;;) {
    bool slot = static_cast<int>(live_.size()) < opts_.max_environments || EvictOneIdle();
    if (slot) {
      reserved_bytes = memory_.TryReserve(cfg.name, cfg.memory_mb);
      // Short of memory: an idle environment of another configuration gives its memory back.
      if (reserved_bytes == 0) EvictOneIdle();
    }
    if (slot && reserved_bytes > 0) break;
    if (stopping_ || ctx_.clock->Monotonic() >= deadline) {
      limits_.Release(cfg.name);
      if (!slot) {
        co_return std::unexpected(Throttle(Status::ResourceExhausted(
            "Rate Exceeded. This host holds no more execution environments.",
            kReasonAccountLimit)));
      }
      co_return std::unexpected(Throttle(Status::ResourceExhausted(
          "Rate Exceeded. Not enough host memory to start another execution environment.",
          kReasonHostMemory)));
    }
    if (!waited) {
      waited = true;
      ++admission_waits_;
    }
    asio::steady_timer timer(ctx_.loop);
    timer.expires_after(kAdmissionPoll);
    co_await timer.async_wait(kNoThrow);
  }
  bucket = buckets_.find(cfg.name);
  if (bucket != buckets_.end()) bucket->second.TryTake(ctx_.clock->Monotonic());

  auto env = std::make_shared<Environment>(ctx_, cfg, code_dir, opt_dir);
  live_[env->id()] = env;
  pending_memory_[env->id()] = reserved_bytes;
  leases_[env->id()] = cfg.name;
  ++cold_starts_;
  if (spill) ++spillovers_;
  Lease lease{env, true, std::nullopt};
  lease.start_error = co_await env->Start(request_id);
  if (lease.start_error) {
    Forget(env);
    if (leases_.erase(env->id()) > 0) limits_.Release(cfg.name);
  }
  co_return lease;
}

void EnvironmentManager::Release(const EnvironmentPtr& env) {
  const std::string& id = env->id();
  if (auto l = leases_.find(id); l != leases_.end()) {
    limits_.Release(l->second);
    leases_.erase(l);
  }
  if (auto m = pending_memory_.find(id); m != pending_memory_.end()) {
    memory_.Unreserve(m->second);
    pending_memory_.erase(m);
  }
  memory_.Learn(env->config().name, env->last_peak_bytes());
  if (auto pm = provisioned_member_.find(id); pm != provisioned_member_.end()) {
    auto p = pools_.find(pm->second);
    if (env->dead() || stopping_ || p == pools_.end()) {
      if (!env->dead()) env->Shutdown();
      Forget(env);
      if (!stopping_ && p != pools_.end()) Fill(*p->second);
      return;
    }
    ProvisionedPool& pool = *p->second;
    if (static_cast<int>(pool.members.size()) > pool.requested) {  // the config shrank
      env->Shutdown();
      Forget(env);
      return;
    }
    env->set_state(Environment::State::kIdle);
    pool.idle.push_back(env);
    return;
  }
  if (env->dead() || stopping_) {
    Forget(env);
    return;
  }
  if (auto r = retired_.find(id); r != retired_.end()) {
    retired_.erase(r);
    env->Shutdown();
    Forget(env);
    return;
  }
  env->set_state(Environment::State::kIdle);
  idle_[Key(env->config())].push_back(env);
}

void EnvironmentManager::Forget(const EnvironmentPtr& env) {
  const std::string id = env->id();  // a copy: `env` may be the last owner held by live_
  if (auto m = pending_memory_.find(id); m != pending_memory_.end()) {
    memory_.Unreserve(m->second);
    pending_memory_.erase(m);
  }
  if (auto pm = provisioned_member_.find(id); pm != provisioned_member_.end()) {
    if (auto p = pools_.find(pm->second); p != pools_.end()) {
      p->second->members.erase(id);
      std::erase_if(p->second->idle, [&](const EnvironmentPtr& e) { return e->id() == id; });
    }
    provisioned_member_.erase(pm);
  }
  retired_.erase(id);
  live_.erase(id);
}

bool EnvironmentManager::EvictOneIdle() {
  std::map<std::string, std::vector<EnvironmentPtr>>::iterator oldest_list = idle_.end();
  for (auto it = idle_.begin(); it != idle_.end(); ++it) {
    if (it->second.empty()) continue;
    if (oldest_list == idle_.end() ||
        it->second.front()->last_used() < oldest_list->second.front()->last_used()) {
      oldest_list = it;
    }
  }
  if (oldest_list == idle_.end()) return false;
  EnvironmentPtr victim = oldest_list->second.front();
  oldest_list->second.erase(oldest_list->second.begin());
  if (oldest_list->second.empty()) idle_.erase(oldest_list);
  victim->Shutdown();
  Forget(victim);
  return true;
}

void EnvironmentManager::Retire(const std::string& function) {
  for (auto it = idle_.begin(); it != idle_.end();) {
    if (!it->second.empty() && it->second.front()->config().name == function) {
      for (auto& env : it->second) {
        env->Shutdown();
        Forget(env);
      }
      it = idle_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& [id, env] : live_) {
    if (env->config().name == function && !provisioned_member_.contains(id)) retired_[id] = function;
  }
}

void EnvironmentManager::DropFunction(const std::string& function) {
  std::vector<std::string> qualifiers;
  for (const auto& [k, pool] : pools_) {
    if (pool->function == function) qualifiers.push_back(pool->qualifier);
  }
  for (const auto& q : qualifiers) DropProvisioned(function, q);
  Retire(function);
  limits_.Forget(function);
  memory_.Forget(function);
  if (auto b = buckets_.find(function); b != buckets_.end()) buckets_.erase(b);
}

// --- Provisioned concurrency ---

Status EnvironmentManager::CheckProvisioned(const std::string& function,
                                            const std::string& qualifier, int requested) const {
  int total = requested;
  for (const auto& [k, pool] : pools_) {
    if (pool->function == function && pool->qualifier != qualifier) total += pool->requested;
  }
  return limits_.CheckProvisioned(function, total);
}

void EnvironmentManager::UpdateProvisionedTotal(const std::string& function) {
  int total = 0;
  for (const auto& [k, pool] : pools_) {
    if (pool->function == function) total += pool->requested;
  }
  limits_.SetProvisioned(function, total);
}

void EnvironmentManager::SetProvisioned(const std::string& qualifier, int requested,
                                        const config::FunctionConfig& cfg,
                                        const std::filesystem::path& code_dir,
                                        const std::filesystem::path& opt_dir) {
  const std::string pkey = PoolKey(cfg.name, qualifier);
  auto& slot = pools_[pkey];
  if (!slot) {
    slot = std::make_unique<ProvisionedPool>();
    slot->function = cfg.name;
    slot->qualifier = qualifier;
  } else if (Key(slot->cfg) != Key(cfg)) {
    Drain(*slot);  // another version: new environments
  }
  ProvisionedPool& pool = *slot;
  pool.requested = requested;
  pool.cfg = cfg;
  pool.code_dir = code_dir;
  pool.opt_dir = opt_dir;
  pool.failed = false;
  pool.reason.clear();
  // Shrink: idle extras go now, busy extras when released.
  while (static_cast<int>(pool.members.size()) > pool.requested && !pool.idle.empty()) {
    EnvironmentPtr env = pool.idle.front();
    env->Shutdown();
    Forget(env);
  }
  UpdateProvisionedTotal(cfg.name);
  Fill(pool);
}

void EnvironmentManager::Drain(ProvisionedPool& pool) {
  std::vector<std::string> members(pool.members.begin(), pool.members.end());
  std::vector<EnvironmentPtr> idle = std::move(pool.idle);
  pool.idle.clear();
  for (const auto& id : members) {
    provisioned_member_.erase(id);
    auto l = live_.find(id);
    if (l == live_.end()) continue;
    // Busy ones end with their invocation; starting ones when RunProvisioned sees them orphaned.
    if (leases_.contains(id)) retired_[id] = pool.function;
  }
  pool.members.clear();
  for (auto& env : idle) {
    env->Shutdown();
    Forget(env);
  }
}

void EnvironmentManager::DropProvisioned(const std::string& function, const std::string& qualifier) {
  auto p = pools_.find(PoolKey(function, qualifier));
  if (p == pools_.end()) return;
  Drain(*p->second);
  pools_.erase(p);
  UpdateProvisionedTotal(function);
}

void EnvironmentManager::Fill(ProvisionedPool& pool) {
  if (stopping_ || pool.failed) return;
  const std::string pkey = PoolKey(pool.function, pool.qualifier);
  while (static_cast<int>(pool.members.size()) < pool.requested) {
    if (static_cast<int>(live_.size()) >= opts_.max_environments && !EvictOneIdle()) {
      pool.failed = true;
      pool.reason = "INSUFFICIENT_CAPACITY: this host holds no more execution environments";
      return;
    }
    int64_t bytes = memory_.TryReserve(pool.cfg.name, pool.cfg.memory_mb);
    if (bytes == 0 && EvictOneIdle()) bytes = memory_.TryReserve(pool.cfg.name, pool.cfg.memory_mb);
    if (bytes == 0) {
      pool.failed = true;
      pool.reason = "INSUFFICIENT_CAPACITY: not enough host memory for another execution environment";
      return;
    }
    auto env = std::make_shared<Environment>(ctx_, pool.cfg, pool.code_dir, pool.opt_dir);
    env->set_initialization_type("provisioned-concurrency");
    live_[env->id()] = env;
    pending_memory_[env->id()] = bytes;
    provisioned_member_[env->id()] = pkey;
    pool.members.insert(env->id());
    Environment* raw = env.get();
    // The lambda (kept by co_spawn until the coroutine ends) owns the environment.
    asio::co_spawn(
        ctx_.loop, [this, env, raw]() { return RunProvisioned(raw); }, asio::detached);
  }
}

asio::awaitable<void> EnvironmentManager::RunProvisioned(Environment* raw) {
  EnvironmentPtr env = raw->shared_from_this();
  const std::string id = env->id();
  const std::string start_id = "provisioned-" + id;
  auto start_error = co_await env->Start(start_id);
  bool ok = !start_error;
  std::string why;
  if (ok) {
    auto limit = std::max<std::chrono::milliseconds>(
        opts_.provisioned_init_timeout, std::chrono::seconds(env->config().timeout_s));
    const auto deadline = ctx_.clock->Monotonic() + limit;
    ok = co_await env->WaitInitialized(deadline, &why);
  } else {
    why = start_error->body;
  }
  // Initialized (or failed): its footprint now shows in MemAvailable.
  if (auto m = pending_memory_.find(id); m != pending_memory_.end()) {
    memory_.Unreserve(m->second);
    pending_memory_.erase(m);
  }
  auto pm = provisioned_member_.find(id);
  ProvisionedPool* pool = nullptr;
  if (pm != provisioned_member_.end()) {
    if (auto p = pools_.find(pm->second); p != pools_.end()) pool = p->second.get();
  }
  if (!ok) {
    spdlog::warn("provisioned environment {} of {} failed to initialize: {}", id,
                 env->config().name, why);
    if (!env->dead()) env->Shutdown();
    Forget(env);
    if (pool) {
      pool->failed = true;
      pool->reason = "FUNCTION_ERROR_INIT_FAILURE: " + why;
    }
    co_return;
  }
  if (!pool || stopping_ || static_cast<int>(pool->members.size()) > pool->requested) {
    env->Shutdown();
    Forget(env);
    co_return;
  }
  env->set_state(Environment::State::kIdle);
  pool->idle.push_back(env);
}

std::optional<ProvisionedStatus> EnvironmentManager::provisioned_status(
    const std::string& function, const std::string& qualifier) const {
  auto p = pools_.find(PoolKey(function, qualifier));
  if (p == pools_.end()) return std::nullopt;
  const ProvisionedPool& pool = *p->second;
  ProvisionedStatus s;
  s.requested = pool.requested;
  for (const auto& id : pool.members) {
    auto l = live_.find(id);
    if (l != live_.end() && !l->second->dead() && l->second->initialized()) ++s.allocated;
  }
  s.allocated = std::min(s.allocated, s.requested);
  s.available = s.allocated;
  if (pool.failed) {
    s.status = "FAILED";
    s.reason = pool.reason;
  } else {
    s.status = s.allocated >= s.requested ? "READY" : "IN_PROGRESS";
  }
  return s;
}

const config::FunctionConfig* EnvironmentManager::provisioned_config(
    const std::string& function, const std::string& qualifier) const {
  auto p = pools_.find(PoolKey(function, qualifier));
  return p == pools_.end() ? nullptr : &p->second->cfg;
}

// --- Lifecycle ---

void EnvironmentManager::Start() {
  reap_timer_ = std::make_unique<asio::steady_timer>(ctx_.loop);
  asio::co_spawn(ctx_.loop, ReapLoop(), asio::detached);
}

asio::awaitable<void> EnvironmentManager::ReapLoop() {
  auto period = std::clamp(opts_.idle_timeout / 4, std::chrono::milliseconds(50),
                           std::chrono::milliseconds(5000));
  while (!stopping_) {
    reap_timer_->expires_after(period);
    auto [ec] = co_await reap_timer_->async_wait(kNoThrow);
    if (ec || stopping_) co_return;
    for (auto& [id, env] : live_) env->FlushHeldLog();
    auto now = ctx_.clock->Monotonic();
    for (auto it = idle_.begin(); it != idle_.end();) {
      auto& list = it->second;
      std::vector<EnvironmentPtr> gone;
      std::erase_if(list, [&](const EnvironmentPtr& env) {
        if (env->dead() || now - env->last_used() >= opts_.idle_timeout) {
          gone.push_back(env);
          return true;
        }
        return false;
      });
      for (auto& env : gone) {
        spdlog::debug("reaping idle environment {} of {}", env->id(), env->config().name);
        env->Shutdown();
        Forget(env);
      }
      it = list.empty() ? idle_.erase(it) : std::next(it);
    }
    // Provisioned environments are never reaped; one that died while idle is replaced.
    for (auto& [k, pool] : pools_) {
      std::vector<EnvironmentPtr> dead;
      for (auto& env : pool->idle)
        if (env->dead()) dead.push_back(env);
      for (auto& env : dead) Forget(env);
      if (!dead.empty()) Fill(*pool);
    }
    // Buckets that refilled completely hold no information.
    std::erase_if(buckets_, [&](auto& b) { return b.second.Full(now); });
  }
}

void EnvironmentManager::ShutdownAll() {
  stopping_ = true;
  if (reap_timer_) reap_timer_->cancel();
  for (auto& [id, env] : live_) env->Shutdown();
  idle_.clear();
  for (auto& [k, pool] : pools_) pool->idle.clear();
}

ManagerStats EnvironmentManager::stats() const {
  ManagerStats s;
  s.live = static_cast<int>(live_.size());
  for (const auto& [id, env] : live_) {
    const bool provisioned = provisioned_member_.contains(id);
    int* starting = provisioned ? &s.provisioned_starting : &s.starting;
    int* idle = provisioned ? &s.provisioned_idle : &s.idle;
    int* busy = provisioned ? &s.provisioned_busy : &s.busy;
    if (!env->dead() && !env->initialized()) {
      ++*starting;
    } else if (leases_.contains(id)) {
      ++*busy;
    } else {
      ++*idle;
    }
  }
  s.max_environments = opts_.max_environments;
  s.concurrent_executions = limits_.in_flight();
  s.concurrent_executions_peak = concurrent_peak_;
  s.account_limit = limits_.account_limit();
  s.unreserved = limits_.unreserved();
  s.cold_starts = cold_starts_;
  s.warm_starts = warm_starts_;
  s.provisioned_invocations = provisioned_invocations_;
  s.spillover_invocations = spillovers_;
  s.throttles = throttles_;
  s.throttles_by_reason = throttles_by_reason_;
  s.admission_waits = admission_waits_;
  s.memory_available_bytes = memory_.available();
  s.memory_pending_bytes = memory_.pending();
  s.memory_reserve_bytes = memory_.policy().reserve_bytes;
  return s;
}

}  // namespace hearth::scheduler
