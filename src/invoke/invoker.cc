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

Result<const FunctionEntry*> Invoker::Resolve(const std::string& name,
                                              const std::string& qualifier) const {
  const FunctionEntry* e = registry_.Find(name);
  std::string arn = fmt::format("arn:aws:lambda:{}:{}:function:{}", region_, account_, name);
  if (!e) return std::unexpected(Status::NotFound("Function not found: " + arn));
  if (!qualifier.empty() && qualifier != config::kLatest) {
    return std::unexpected(Status::NotFound("Function not found: " + arn + ":" + qualifier));
  }
  return e;
}

Status Invoker::Check(const std::string& function_name, const std::string& qualifier) const {
  auto e = Resolve(function_name, qualifier);
  return e ? Status::Ok() : e.error();
}

asio::awaitable<Result<scheduler::InvokeOutcome>> Invoker::Invoke(InvokeRequest&& req) {
  auto entry = Resolve(req.function_name, req.qualifier);
  if (!entry) co_return std::unexpected(entry.error());
  // Copy: the registry may change while this invocation runs.
  config::FunctionConfig cfg = (*entry)->latest;
  std::filesystem::path code_dir = (*entry)->code_dir;

  auto lease = co_await manager_.Acquire(cfg, code_dir, req.request_id);
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
