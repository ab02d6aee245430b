#include "invoke/invoker.h"

#include <fmt/format.h>

#include "common/encoding.h"

namespace hearth::invoke {

namespace asio = boost::asio;

std::string NewTraceId(int64_t epoch_seconds) {
  unsigned char r[20];
  FillRandom(r, sizeof r);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(80);
  out += "Root=1-";
  for (int shift = 28; shift >= 0; shift -= 4) out += kHex[(static_cast<uint64_t>(epoch_seconds) >> shift) & 0xF];
  out += '-';
  for (int i = 0; i < 12; ++i) {
    out += kHex[r[i] >> 4];
    out += kHex[r[i] & 0xF];
  }
  out += ";Parent=";
  for (int i = 12; i < 20; ++i) {
    out += kHex[r[i] >> 4];
    out += kHex[r[i] & 0xF];
  }
  out += ";Sampled=0";
  return out;
}

Result<Invoker::TargetRef> Invoker::Find(const std::string& name, const std::string& qualifier) {
  const FunctionEntry* e = registry_.Find(name);
  auto not_found = [&](std::string_view suffix) {
    return Status::NotFound(fmt::format("Function not found: arn:aws:lambda:{}:{}:function:{}{}", region_,
                                        account_, name, suffix));
  };
  if (!e) return std::unexpected(not_found(""));
  if (qualifier.empty() || qualifier == config::kLatest)
    return TargetRef{&e->latest, &e->code_dir, &e->opt_dir, e, nullptr};
  std::string_view version = qualifier;
  if (const config::AliasConfig* a = e->FindAlias(qualifier)) {
    version = PickVersion(*a, uniform_());
    if (version == config::kLatest) return TargetRef{&e->latest, &e->code_dir, &e->opt_dir, e, nullptr};
  }
  if (const VersionEntry* v = e->FindVersion(version))
    return TargetRef{&v->config, &v->code_dir, &v->opt_dir, e, v};
  return std::unexpected(not_found(":" + qualifier));
}

Result<Invoker::Target> Invoker::Resolve(const std::string& name, const std::string& qualifier) {
  auto ref = Find(name, qualifier);
  if (!ref) return std::unexpected(ref.error());
  return Target{ref->version ? ref->version->Shared() : ref->function->LatestShared(), *ref->code_dir,
                *ref->opt_dir};
}

Result<std::string> Invoker::Check(const std::string& function_name, const std::string& qualifier) {
  auto ref = Find(function_name, qualifier);
  if (!ref) return std::unexpected(ref.error());
  return ref->config->version;
}

asio::awaitable<Result<scheduler::InvokeOutcome>> Invoker::Invoke(InvokeRequest&& req) {
  // A snapshot (shared, immutable): the registry may change while this invocation runs.
  auto target = Resolve(req.function_name, req.qualifier);
  if (!target) co_return std::unexpected(target.error());
  const std::shared_ptr<const config::FunctionConfig> shared = std::move(target->config);
  const config::FunctionConfig& cfg = *shared;
  std::filesystem::path code_dir = std::move(target->code_dir);
  std::filesystem::path opt_dir = std::move(target->opt_dir);

  // The caller's qualifier (an alias or version) selects its provisioned environments.
  auto lease = co_await manager_.Acquire(cfg, code_dir, opt_dir, req.request_id, req.qualifier);
  if (!lease) co_return std::unexpected(lease.error());
  if (lease->start_error) {
    scheduler::InvokeOutcome out;
    out.result = std::move(*lease->start_error);
    out.executed_version = cfg.version;
    co_return out;
  }
  runtimeapi::Invocation inv;
  inv.request_id = req.request_id;
  inv.payload = std::move(req.payload);
  inv.timeout = std::chrono::seconds(cfg.timeout_s);
  inv.invoked_function_arn = std::move(req.invoked_arn);
  inv.client_context = std::move(req.client_context);
  inv.stream = std::move(req.stream);
  inv.trace_id = req.trace_id.empty()
                     ? NewTraceId(std::chrono::duration_cast<std::chrono::seconds>(
                                      std::chrono::system_clock::now().time_since_epoch())
                                      .count())
                     : std::move(req.trace_id);
  scheduler::InvokeOutcome out = co_await lease->env->Invoke(std::move(inv));
  manager_.Release(lease->env);
  co_return out;
}

}  // namespace hearth::invoke
