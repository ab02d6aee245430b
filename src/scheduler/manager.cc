#include "scheduler/manager.h"

#include <algorithm>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

namespace hearth::scheduler {

namespace asio = boost::asio;



EnvironmentManager::EnvironmentManager(EnvironmentContext ctx, ManagerOptions opts)
    : ctx_(std::move(ctx)), opts_(opts) {}

std::string EnvironmentManager::Key(const config::FunctionConfig& cfg) {
  return cfg.name + '\0' + cfg.version + '\0' + cfg.revision_id;
}

asio::awaitable<Result<EnvironmentManager::Lease>> EnvironmentManager::Acquire(
    const config::FunctionConfig& cfg, const std::filesystem::path& code_dir,
    const std::filesystem::path& opt_dir, const std::string& request_id) {
  auto it = idle_.find(Key(cfg));
  while (it != idle_.end() && !it->second.empty()) {
    EnvironmentPtr env = std::move(it->second.back());
    it->second.pop_back();
    if (it->second.empty()) idle_.erase(it);
    if (env->dead()) {
      Forget(env);
      it = idle_.find(Key(cfg));
      continue;
    }
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
        it = idle_.find(Key(cfg));
        continue;
      }
    }
    ++warm_starts_;
    co_return Lease{std::move(env), false, std::nullopt};
  }
  if (static_cast<int>(live_.size()) >= opts_.max_environments && !EvictOneIdle()) {
    ++throttles_;
    co_return std::unexpected(
        Status::ResourceExhausted("Rate Exceeded.", "ConcurrentInvocationLimitExceeded"));
  }
  auto env = std::make_shared<Environment>(ctx_, cfg, code_dir, opt_dir);
  live_[env->id()] = env;
  ++cold_starts_;
  Lease lease{env, true, std::nullopt};
  lease.start_error = co_await env->Start(request_id);
  if (lease.start_error) Forget(env);
  co_return lease;
}

void EnvironmentManager::Release(const EnvironmentPtr& env) {
  if (env->dead() || stopping_) {
    Forget(env);
    return;
  }
  if (auto r = retired_.find(env->id()); r != retired_.end()) {
    retired_.erase(r);
    env->Shutdown();
    Forget(env);
    return;
  }
  env->set_state(Environment::State::kIdle);
  idle_[Key(env->config())].push_back(env);
}

void EnvironmentManager::Forget(const EnvironmentPtr& env) {
  live_.erase(env->id());
  retired_.erase(env->id());
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
    if (env->config().name == function) retired_[id] = function;
  }
}

void EnvironmentManager::Start() {
  reap_timer_ = std::make_unique<asio::steady_timer>(ctx_.loop);
  asio::co_spawn(ctx_.loop, ReapLoop(), asio::detached);
}

asio::awaitable<void> EnvironmentManager::ReapLoop() {
  auto period = std::clamp(opts_.idle_timeout / 4, std::chrono::milliseconds(50),
                           std::chrono::milliseconds(5000));
  while (!stopping_) {
    reap_timer_->expires_after(period);
    auto [ec] = co_await reap_timer_->async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec || stopping_) co_return;
    auto now = ctx_.clock->Monotonic();
    for (auto it = idle_.begin(); it != idle_.end();) {
      auto& list = it->second;
      std::erase_if(list, [&](const EnvironmentPtr& env) {
        if (env->dead() || now - env->last_used() >= opts_.idle_timeout) {
          spdlog::debug("reaping idle environment {} of {}", env->id(), env->config().name);
          env->Shutdown();
          Forget(env);
          return true;
        }
        return false;
      });
      it = list.empty() ? idle_.erase(it) : std::next(it);
    }
  }
}

void EnvironmentManager::ShutdownAll() {
  stopping_ = true;
  if (reap_timer_) reap_timer_->cancel();
  for (auto& [id, env] : live_) env->Shutdown();
  idle_.clear();
}

ManagerStats EnvironmentManager::stats() const {
  ManagerStats s;
  s.live = static_cast<int>(live_.size());
  for (const auto& [k, list] : idle_) s.idle += static_cast<int>(list.size());
  s.busy = s.live - s.idle;
  s.cold_starts = cold_starts_;
  s.warm_starts = warm_starts_;
  s.throttles = throttles_;
  return s;
}

}  // namespace hearth::scheduler
