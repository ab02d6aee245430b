// Concurrency (lambda-reference.md section 6, 4.3, 4.4): reserved concurrency
// (Put/Get/DeleteFunctionConcurrency), provisioned concurrency (Put/Get/Delete/
// ListProvisionedConcurrencyConfigs), asynchronous invocations retried while throttled, and
// Hearth's counters (GET /hearth/v1/stats). LambdaApi members; routing is in lambda_api.cc.
//
// Settings are applied to the manager first (on the loop, so two concurrent requests cannot both
// pass a check the other would fail) and then stored; a failed store write restores the previous
// setting.

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include "api/arn.h"
#include "api/constraint.h"
#include "api/lambda_api.h"
#include "api/paging.h"
#include "api/render.h"
#include "common/blocking.h"
#include "common/defer.h"
#include "common/encoding.h"
#include "scheduler/admission.h"

namespace hearth::api {

namespace asio = boost::asio;
namespace json = boost::json;
namespace bhttp = boost::beast::http;

namespace {

constexpr const char* kPcNotFound = "ProvisionedConcurrencyConfigNotFoundException";

Status PcNotFound() {
  return Status(StatusCode::kNotFound, "No Provisioned Concurrency Config found for this function",
                kPcNotFound);
}

// The integer member `key` of a JSON object body (field name for messages: `field`), >= `min`.
Result<int> IntMember(const json::value& body, std::string_view key, std::string_view field,
                      int min) {
  if (!body.is_object()) return std::unexpected(Status::InvalidContent("Request body must be a JSON object"));
  const json::value* v = body.as_object().if_contains(key);
  if (!v || v->is_null()) return std::unexpected(NullError(field));
  if (!v->is_int64() && !v->is_uint64()) {
    return std::unexpected(Status::InvalidContent(
        fmt::format("Could not parse request body into json: {} must be an integer", key)));
  }
  if (v->is_uint64() && v->as_uint64() > static_cast<uint64_t>(INT32_MAX))
    return std::unexpected(ConstraintError(json::serialize(*v), field, MaxValue(INT32_MAX)));
  const int64_t n = v->to_number<int64_t>();
  if (n < min) return std::unexpected(ConstraintError(std::to_string(n), field, MinValue(min)));
  if (n > INT32_MAX) return std::unexpected(ConstraintError(std::to_string(n), field, MaxValue(INT32_MAX)));
  return static_cast<int>(n);
}

Status NoQualifierAllowed() {
  return Status::InvalidArgument(
      "Concurrency is set on the function, not on a version or alias: remove the qualifier");
}

}  // namespace

Result<FunctionRef> LambdaApi::ConcurrencyTarget(const std::string& ref,
                                                 const std::string& query_qualifier,
                                                 QualifierRule rule) const {
  auto fr = ResolveRef(ref, query_qualifier);
  if (!fr) return fr;
  if (rule == QualifierRule::kRefused && !fr->qualifier.empty())
    return std::unexpected(NoQualifierAllowed());
  if (rule == QualifierRule::kRequired && fr->qualifier.empty())
    return std::unexpected(NullError("qualifier"));
  if (!ctx_.registry->Find(fr->name))
    return std::unexpected(Status::NotFound("Function not found: " + Arn(fr->name)));
  return fr;
}

http::Response LambdaApi::NoContent(const Request& req, const std::string& rid) const {
  Response res{bhttp::status::no_content, req.version()};
  res.keep_alive(req.keep_alive());
  res.set("x-amzn-RequestId", rid);
  res.prepare_payload();
  return res;
}

// --- Reserved concurrency ---

asio::awaitable<http::Response> LambdaApi::PutFunctionConcurrency(Request& req,
                                                                  const std::string& rid,
                                                                  const std::string& ref) {
  auto fr = ResolveRef(ref, "");
  if (!fr) co_return Error(req, rid, fr.error());
  if (!fr->qualifier.empty()) co_return Error(req, rid, NoQualifierAllowed());
  json::value body;
  boost::system::error_code ec;
  body = json::parse(req.body(), ec);
  if (ec) co_return Error(req, rid, Status::InvalidContent("Could not parse request body into json: " + ec.message()));
  auto n = IntMember(body, "ReservedConcurrentExecutions", "reservedConcurrentExecutions", 0);
  if (!n) co_return Error(req, rid, n.error());
  const std::string name = fr->name;
  if (!ctx_.registry->Find(name))
    co_return Error(req, rid, Status::NotFound("Function not found: " + Arn(name)));
  if (Status st = ctx_.manager->CheckReserved(name, *n); !st.ok()) co_return Error(req, rid, st);
  const std::optional<int> previous = ctx_.manager->limits().reserved(name);
  ctx_.manager->SetReserved(name, *n);
  store::MetadataStore* store = ctx_.store;
  const int reserved = *n;
  auto put = [store, name, reserved]() { return store->PutReservedConcurrency(name, reserved); };
  Status st = co_await RunBlocking(*ctx_.workers, std::move(put));
  if (!st.ok()) {
    if (ctx_.registry->Find(name)) ctx_.manager->SetReserved(name, previous);
    if (st.code() == StatusCode::kNotFound) st = Status::NotFound("Function not found: " + Arn(name));
    co_return Error(req, rid, st);
  }
  co_return Json(req, rid, 200, json::object{{"ReservedConcurrentExecutions", reserved}});
}

asio::awaitable<http::Response> LambdaApi::GetFunctionConcurrency(Request& req,
                                                                  const std::string& rid,
                                                                  const std::string& ref) {
  auto fr = ConcurrencyTarget(ref, "", QualifierRule::kRefused);
  if (!fr) co_return Error(req, rid, fr.error());
  json::object out;
  if (auto r = ctx_.manager->limits().reserved(fr->name)) out["ReservedConcurrentExecutions"] = *r;
  co_return Json(req, rid, 200, out);
}

asio::awaitable<http::Response> LambdaApi::DeleteFunctionConcurrency(Request& req,
                                                                     const std::string& rid,
                                                                     const std::string& ref) {
  auto fr = ConcurrencyTarget(ref, "", QualifierRule::kRefused);
  if (!fr) co_return Error(req, rid, fr.error());
  const std::string name = fr->name;
  const std::optional<int> previous = ctx_.manager->limits().reserved(name);
  ctx_.manager->SetReserved(name, std::nullopt);
  store::MetadataStore* store = ctx_.store;
  auto remove = [store, name]() { return store->DeleteReservedConcurrency(name); };
  Status st = co_await RunBlocking(*ctx_.workers, std::move(remove));
  if (!st.ok()) {
    if (ctx_.registry->Find(name)) ctx_.manager->SetReserved(name, previous);
    co_return Error(req, rid, st);
  }
  co_return NoContent(req, rid);
}

// --- Provisioned concurrency ---

json::object LambdaApi::RenderProvisioned(const std::string& name, const std::string& qualifier,
                                          int requested, const std::string& last_modified,
                                          bool with_arn) const {
  json::object o;
  if (with_arn) o["FunctionArn"] = Arn(name, qualifier);
  auto s = ctx_.manager->provisioned_status(name, qualifier);
  o["RequestedProvisionedConcurrentExecutions"] = requested;
  o["AvailableProvisionedConcurrentExecutions"] = s ? s->available : 0;
  o["AllocatedProvisionedConcurrentExecutions"] = s ? s->allocated : 0;
  o["Status"] = s ? s->status : "IN_PROGRESS";
  if (s && !s->reason.empty()) o["StatusReason"] = s->reason;
  o["LastModified"] = last_modified;
  return o;
}

Status LambdaApi::ProvisionTarget(const std::string& name, const std::string& qualifier,
                                  int requested) {
  const invoke::FunctionEntry* e = ctx_.registry->Find(name);
  if (!e) return Status::NotFound("Function not found: " + Arn(name));
  const invoke::VersionEntry* v = e->ResolvePublished(qualifier);
  if (!v) return Status::NotFound("Function not found: " + Arn(name, qualifier));
  ctx_.manager->SetProvisioned(qualifier, requested, v->config, v->code_dir, v->opt_dir);
  return Status::Ok();
}

asio::awaitable<http::Response> LambdaApi::PutProvisionedConcurrency(Request& req,
                                                                     const std::string& rid,
                                                                     const std::string& ref,
                                                                     const std::string& query_qualifier) {
  auto fr = ResolveRef(ref, query_qualifier);
  if (!fr) co_return Error(req, rid, fr.error());
  if (fr->qualifier.empty()) co_return Error(req, rid, NullError("qualifier"));
  json::value body;
  boost::system::error_code ec;
  body = json::parse(req.body(), ec);
  if (ec) co_return Error(req, rid, Status::InvalidContent("Could not parse request body into json: " + ec.message()));
  auto n = IntMember(body, "ProvisionedConcurrentExecutions", "provisionedConcurrentExecutions", 1);
  if (!n) co_return Error(req, rid, n.error());
  const std::string name = fr->name, qualifier = fr->qualifier;
  const invoke::FunctionEntry* e = ctx_.registry->Find(name);
  if (!e) co_return Error(req, rid, Status::NotFound("Function not found: " + Arn(name)));
  const config::AliasConfig* alias = e->FindAlias(qualifier);
  if (qualifier == config::kLatest || (alias && alias->function_version == config::kLatest)) {
    co_return Error(req, rid,
                    Status::InvalidArgument("Provisioned Concurrency Configs cannot be applied to "
                                            "unpublished function versions."));
  }
  if (!e->ResolvePublished(qualifier))
    co_return Error(req, rid, Status::NotFound("Function not found: " + Arn(name, qualifier)));
  if (Status st = ctx_.manager->CheckProvisioned(name, qualifier, *n); !st.ok())
    co_return Error(req, rid, st);
  if (Status st = BeginWrite(name); !st.ok()) co_return Error(req, rid, st);
  Defer end([&] { EndWrite(name); });
  store::ProvisionedConcurrency pc{.function_name = name,
                                   .qualifier = qualifier,
                                   .requested = *n,
                                   .last_modified = FormatLambdaTimestamp(ctx_.clock->Now())};
  const auto previous = ctx_.manager->provisioned_status(name, qualifier);
  if (Status st = ProvisionTarget(name, qualifier, pc.requested); !st.ok())
    co_return Error(req, rid, st);
  store::MetadataStore* store = ctx_.store;
  auto put = [store, pc]() { return store->PutProvisionedConcurrency(pc); };
  Status st = co_await RunBlocking(*ctx_.workers, std::move(put));
  if (!st.ok()) {
    if (previous) {
      (void)ProvisionTarget(name, qualifier, previous->requested);
    } else {
      ctx_.manager->DropProvisioned(name, qualifier);
    }
    co_return Error(req, rid, st);
  }
  co_return Json(req, rid, 202, RenderProvisioned(name, qualifier, pc.requested, pc.last_modified, false));
}

asio::awaitable<http::Response> LambdaApi::GetProvisionedConcurrency(Request& req,
                                                                     const std::string& rid,
                                                                     const std::string& ref,
                                                                     const std::string& query_qualifier) {
  auto fr = ConcurrencyTarget(ref, query_qualifier, QualifierRule::kRequired);
  if (!fr) co_return Error(req, rid, fr.error());
  const std::string name = fr->name, qualifier = fr->qualifier;
  store::MetadataStore* store = ctx_.store;
  auto list = [store, name]() { return store->ListProvisionedConcurrency(name); };
  auto all = co_await RunBlocking(*ctx_.workers, std::move(list));
  if (!all) co_return Error(req, rid, all.error());
  for (const auto& pc : *all) {
    if (pc.qualifier == qualifier)
      co_return Json(req, rid, 200, RenderProvisioned(name, qualifier, pc.requested, pc.last_modified, false));
  }
  co_return Error(req, rid, PcNotFound());
}

asio::awaitable<http::Response> LambdaApi::DeleteProvisionedConcurrency(Request& req,
                                                                        const std::string& rid,
                                                                        const std::string& ref,
                                                                        const std::string& query_qualifier) {
  auto fr = ConcurrencyTarget(ref, query_qualifier, QualifierRule::kRequired);
  if (!fr) co_return Error(req, rid, fr.error());
  const std::string name = fr->name, qualifier = fr->qualifier;
  store::MetadataStore* store = ctx_.store;
  auto remove = [store, name, qualifier]() { return store->DeleteProvisionedConcurrency(name, qualifier); };
  Status st = co_await RunBlocking(*ctx_.workers, std::move(remove));
  if (st.code() == StatusCode::kNotFound) co_return Error(req, rid, PcNotFound());
  if (!st.ok()) co_return Error(req, rid, st);
  ctx_.manager->DropProvisioned(name, qualifier);
  co_return NoContent(req, rid);
}

asio::awaitable<http::Response> LambdaApi::ListProvisionedConcurrency(Request& req,
                                                                      const std::string& rid,
                                                                      const std::string& ref,
                                                                      const std::string& marker,
                                                                      const std::string& max_items) {
  auto fr = ResolveRef(ref, "");
  if (!fr) co_return Error(req, rid, fr.error());
  if (!fr->qualifier.empty()) co_return Error(req, rid, NoQualifierAllowed());
  int max = 0;
  std::string after;
  if (Status st = ParsePaging(max_items, marker, &max, &after); !st.ok()) co_return Error(req, rid, st);
  const std::string name = fr->name;
  if (!ctx_.registry->Find(name))
    co_return Error(req, rid, Status::NotFound("Function not found: " + Arn(name)));
  store::MetadataStore* store = ctx_.store;
  auto list = [store, name]() { return store->ListProvisionedConcurrency(name); };
  auto all = co_await RunBlocking(*ctx_.workers, std::move(list));
  if (!all) co_return Error(req, rid, all.error());
  json::array configs;
  std::string last;
  bool more = false;
  for (const auto& pc : *all) {
    if (!after.empty() && pc.qualifier <= after) continue;
    if (static_cast<int>(configs.size()) == max) {
      more = true;
      break;
    }
    configs.push_back(RenderProvisioned(name, pc.qualifier, pc.requested, pc.last_modified, true));
    last = pc.qualifier;
  }
  json::object out{{"ProvisionedConcurrencyConfigs", std::move(configs)}};
  if (more) out["NextMarker"] = Base64Encode(last);
  co_return Json(req, rid, 200, out);
}

asio::awaitable<void> LambdaApi::ForgetProvisioned(const std::string& name,
                                                   const std::string& qualifier) {
  if (!ctx_.manager->provisioned_config(name, qualifier)) co_return;
  ctx_.manager->DropProvisioned(name, qualifier);
  store::MetadataStore* store = ctx_.store;
  auto remove = [store, name, qualifier]() { return store->DeleteProvisionedConcurrency(name, qualifier); };
  Status st = co_await RunBlocking(*ctx_.workers, std::move(remove));
  if (!st.ok() && st.code() != StatusCode::kNotFound)
    spdlog::error("cannot delete the provisioned concurrency config of {}:{}: {}", name, qualifier,
                  st.ToString());
}

void LambdaApi::ReprovisionQualifier(const std::string& name, const std::string& qualifier) {
  auto s = ctx_.manager->provisioned_status(name, qualifier);
  if (!s) return;
  if (Status st = ProvisionTarget(name, qualifier, s->requested); !st.ok())
    spdlog::warn("provisioned concurrency of {}:{}: {}", name, qualifier, st.ToString());
}

// --- Asynchronous invocations ---

void LambdaApi::EnqueueEvent(invoke::InvokeRequest&& ir) {
  auto ev = std::make_shared<invoke::InvokeRequest>(std::move(ir));
  // The lambda (kept by co_spawn until the coroutine ends) owns the event.
  asio::co_spawn(ctx_.loop, [this, ev]() { return RunEvent(ev.get()); }, asio::detached);
}

asio::awaitable<void> LambdaApi::RunEvent(invoke::InvokeRequest* ev) {
  // Throttles return the event to the queue: retried with exponential backoff from 1 s up to
  // 5 min, for at most the maximum event age (6 h), as Lambda (section 5.1).
  constexpr auto kMaxEventAge = std::chrono::hours(6);
  constexpr auto kMaxBackoff = std::chrono::minutes(5);
  const auto accepted = ctx_.clock->Monotonic();
  std::chrono::milliseconds backoff(1000);
  ++async_pending_;
  Defer done([this] { --async_pending_; });
  for (;;) {
    invoke::InvokeRequest attempt = *ev;  // Invoke consumes its request
    auto out = co_await ctx_.invoker->Invoke(std::move(attempt));
    if (out) co_return;
    const Status& st = out.error();
    if (st.code() != StatusCode::kResourceExhausted) {
      spdlog::warn("async invocation {} failed: {}", ev->request_id, st.ToString());
      co_return;
    }
    if (st.detail() == scheduler::kReasonReservedLimit &&
        ctx_.manager->limits().reserved(ev->function_name) == 0) {
      ++async_dropped_;
      spdlog::warn("async invocation {} of {} dropped: ZeroReservedConcurrency", ev->request_id,
                   ev->function_name);
      co_return;
    }
    if (ctx_.clock->Monotonic() + backoff - accepted > kMaxEventAge) {
      ++async_dropped_;
      spdlog::warn("async invocation {} of {} dropped: EventAgeExceeded", ev->request_id,
                   ev->function_name);
      co_return;
    }
    ++async_retries_;
    asio::steady_timer timer(ctx_.loop);
    timer.expires_after(backoff);
    auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
    backoff = std::min<std::chrono::milliseconds>(backoff * 2, kMaxBackoff);
  }
}

// --- Counters ---

namespace {
json::object LaunchCounters(const sandbox::Launcher* launcher) {
  if (!launcher) return {};
  const sandbox::LaunchStats l = launcher->stats();
  return json::object{{"launched", l.launched},
                      {"failed", l.failed},
                      {"from_blank_pool", l.from_blank_pool},
                      {"blanks_made_on_demand", l.blanks_made_on_demand},
                      {"prestarted", l.prestarted},
                      {"prestart_failed", l.prestart_failed},
                      {"dead_in_pool", l.dead_in_pool}};
}
}  // namespace

asio::awaitable<http::Response> LambdaApi::Stats(Request& req, const std::string& rid) {
  const scheduler::ManagerStats s = ctx_.manager->stats();
  json::object by_reason;
  for (const auto& [reason, n] : s.throttles_by_reason) by_reason[reason] = n;
  json::object out{
      {"environments",
       json::object{{"live", s.live},
                    {"starting", s.starting},
                    {"idle", s.idle},
                    {"busy", s.busy},
                    {"provisioned", json::object{{"starting", s.provisioned_starting},
                                                 {"idle", s.provisioned_idle},
                                                 {"busy", s.provisioned_busy}}},
                    {"max", s.max_environments}}},
      {"concurrency", json::object{{"executions", s.concurrent_executions},
                                   {"peak", s.concurrent_executions_peak},
                                   {"account_limit", s.account_limit},
                                   {"unreserved", s.unreserved}}},
      {"invocations", json::object{{"cold_starts", s.cold_starts},
                                   {"warm_starts", s.warm_starts},
                                   {"provisioned", s.provisioned_invocations},
                                   {"spillover", s.spillover_invocations}}},
      {"throttles", json::object{{"total", s.throttles}, {"by_reason", std::move(by_reason)}}},
      {"admission", json::object{{"waits", s.admission_waits},
                                 {"memory_available_bytes", s.memory_available_bytes},
                                 {"memory_pending_bytes", s.memory_pending_bytes},
                                 {"memory_reserve_bytes", s.memory_reserve_bytes}}},
      {"launches", LaunchCounters(ctx_.launcher)},
      {"async", json::object{{"pending", async_pending_},
                             {"throttle_retries", async_retries_},
                             {"dropped", async_dropped_}}},
  };
  co_return Json(req, rid, 200, out);
}

}  // namespace hearth::api
