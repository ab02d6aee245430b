#include "invoke/invoker.h"

#include <openssl/rand.h>

#include <fmt/format.h>

#include "common/encoding.h"

namespace hearth::invoke {

namespace asio = boost::asio;

std::string NewTraceId(int64_t epoch_seconds) {
  unsigned char r[20];
  RAND_bytes(r, sizeof r);
  std::string hex = HexEncode(std::string_view(reinterpret_cast<char*>(r), sizeof r));
  return fmt::format("Root=1-{:08x}-{};Parent={};Sampled=0", epoch_seconds, hex.substr(0, 24),
                     hex.substr(24, 16));
}

Result<Invoker::Target> Invoker::Resolve(const std::string& name, const std::string& qualifier) {
  const FunctionEntry* e = registry_.Find(name);
  std::string arn = fmt::format("arn:aws:lambda:{}:{}:function:{}", region_, account_, name);
  if (!e) return std::unexpected(Status::NotFound("Function not found: " + arn));
  if (qualifier.empty() || qualifier == config::kLatest) return Target{e->latest, e->code_dir, e->opt_dir};
  std::string version = qualifier;
  if (const config::AliasConfig* a = e->FindAlias(qualifier)) {
    version = PickVersion(*a, uniform_());
    if (version == config::kLatest) return Target{e->latest, e->code_dir, e->opt_dir};
  }
  if (const VersionEntry* v = e->FindVersion(version)) return Target{v->config, v->code_dir, v->opt_dir};
  return std::unexpected(Status::NotFound("Function not found: " + arn + ":" + qualifier));
}

Result<std::string> Invoker::Check(const std::string& function_name, const std::string& qualifier) {
  auto t = Resolve(function_name, qualifier);
  if (!t) return std::unexpected(t.error());
  return t->config.version;
}

asio::awaitable<Result<scheduler::InvokeOutcome>> Invoker::Invoke(InvokeRequest&& req) {
  // A copy: the registry may change while this invocation runs.
  auto target = Resolve(req.function_name, req.qualifier);
  if (!target) co_return std::unexpected(target.error());
  config::FunctionConfig cfg = std::move(target->config);
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
