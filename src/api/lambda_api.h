#pragma once
// The Lambda REST API (2015-03-31 and the other dated paths of section 4) plus Hearth's own
// small /hearth/v1 API used by the CLI (logs, code download, health).
//
// Every request is answered; failures use Lambda's error shape through ToApiError(), the one
// Status -> HTTP mapping. Blocking work (store, code store, log reads, JSON parsing of large
// bodies) runs on the worker pool; registry and environment state stay on the event loop.
//
// Threading: Handle() runs on the event loop.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/json/object.hpp>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "artifacts/code_store.h"
#include "common/clock.h"
#include "config/daemon_config.h"
#include "http/server.h"
#include "invoke/invoker.h"
#include "invoke/registry.h"
#include "sandbox/launcher.h"
#include "scheduler/manager.h"
#include "store/metadata_store.h"
#include "telemetry/log_sink.h"

namespace hearth::api {

struct ApiContext {
  const config::DaemonConfig* config = nullptr;
  boost::asio::any_io_executor loop;
  boost::asio::thread_pool* workers = nullptr;
  store::MetadataStore* store = nullptr;
  artifacts::CodeStore* code = nullptr;
  invoke::FunctionRegistry* registry = nullptr;
  scheduler::EnvironmentManager* manager = nullptr;
  const sandbox::Launcher* launcher = nullptr;  // for its counters (GET /hearth/v1/stats)
  invoke::Invoker* invoker = nullptr;
  telemetry::LogSink* logs = nullptr;
  const Clock* clock = nullptr;
  // Runtimes this host can run (scheduler::InstalledRuntimes); empty: not checked.
  std::vector<std::string> installed_runtimes;
};

class LambdaApi {
 public:
  explicit LambdaApi(ApiContext ctx) : ctx_(ctx) {}

  boost::asio::awaitable<http::Response> Handle(http::Request& req);

  // Body limits per operation and the 413 answers, for the HTTP server.
  std::shared_ptr<http::ConnectionOptions> ConnectionOptions() const;

 private:
  using Response = http::Response;
  using Request = http::Request;
  using Awaitable = boost::asio::awaitable<Response>;

  Awaitable CreateFunction(Request& req, const std::string& rid);
  Awaitable GetFunction(Request& req, const std::string& rid, const std::string& ref,
                        const std::string& qualifier, bool config_only);
  Awaitable ListFunctions(Request& req, const std::string& rid, const std::string& marker,
                          const std::string& max_items);
  Awaitable UpdateCode(Request& req, const std::string& rid, const std::string& ref);
  Awaitable UpdateConfiguration(Request& req, const std::string& rid, const std::string& ref);
  Awaitable DeleteFunction(Request& req, const std::string& rid, const std::string& ref,
                           const std::string& qualifier);
  Awaitable Invoke(Request& req, const std::string& rid, const std::string& ref,
                   const std::string& qualifier);
  // InvokeWithResponseStream (streaming_api.cc): served through http::Exchange, its answer an
  // event stream written while the function runs (nullopt), or a plain error before it starts.
  boost::asio::awaitable<std::optional<http::Response>> InvokeWithResponseStream(http::Exchange& ex) const;
  Awaitable AccountSettings(Request& req, const std::string& rid);
  Awaitable ReadLogs(Request& req, const std::string& rid, const std::string& ref,
                     const std::string& offset, const std::string& limit);
  Awaitable DownloadCode(Request& req, const std::string& rid, const std::string& digest);

  // Versions and aliases (versions_api.cc).
  Awaitable PublishVersion(Request& req, const std::string& rid, const std::string& ref);
  Awaitable ListVersions(Request& req, const std::string& rid, const std::string& ref,
                         const std::string& marker, const std::string& max_items);
  Awaitable DeleteVersion(Request& req, const std::string& rid, const std::string& name,
                          const std::string& version);
  Awaitable CreateAlias(Request& req, const std::string& rid, const std::string& ref);
  Awaitable GetAlias(Request& req, const std::string& rid, const std::string& ref,
                     const std::string& alias);
  Awaitable UpdateAlias(Request& req, const std::string& rid, const std::string& ref,
                        const std::string& alias);
  Awaitable DeleteAlias(Request& req, const std::string& rid, const std::string& ref,
                        const std::string& alias);
  Awaitable ListAliases(Request& req, const std::string& rid, const std::string& ref,
                        const std::string& function_version, const std::string& marker,
                        const std::string& max_items);
  // Publishes `name`'s $LATEST as the next version, or returns the last published version when
  // nothing changed since. `description` ("" = $LATEST's) becomes the version's. The caller holds
  // the function's write slot.
  boost::asio::awaitable<Result<config::FunctionConfig>> PublishLatest(
      const std::string& name, const std::string& description);
  // The configuration GetFunction shows for a qualifier ("" / $LATEST / version / alias), with
  // its FunctionArn already rendered. NotFound when absent.
  Result<boost::json::object> RenderQualified(const std::string& name,
                                              const std::string& qualifier,
                                              std::string* code_sha256_hex) const;

  // Concurrency (concurrency_api.cc).
  Awaitable PutFunctionConcurrency(Request& req, const std::string& rid, const std::string& ref);
  Awaitable GetFunctionConcurrency(Request& req, const std::string& rid, const std::string& ref);
  Awaitable DeleteFunctionConcurrency(Request& req, const std::string& rid, const std::string& ref);
  Awaitable PutProvisionedConcurrency(Request& req, const std::string& rid, const std::string& ref,
                                      const std::string& qualifier);
  Awaitable GetProvisionedConcurrency(Request& req, const std::string& rid, const std::string& ref,
                                      const std::string& qualifier);
  Awaitable DeleteProvisionedConcurrency(Request& req, const std::string& rid,
                                         const std::string& ref, const std::string& qualifier);
  Awaitable ListProvisionedConcurrency(Request& req, const std::string& rid, const std::string& ref,
                                       const std::string& marker, const std::string& max_items);
  // GET /hearth/v1/stats: the manager's counters and the async queue's.
  Awaitable Stats(Request& req, const std::string& rid);
  // {Requested,Available,Allocated}ProvisionedConcurrentExecutions, Status, StatusReason,
  // LastModified (and FunctionArn for List).
  boost::json::object RenderProvisioned(const std::string& name, const std::string& qualifier,
                                        int requested, const std::string& last_modified,
                                        bool with_arn) const;
  // Points the manager's provisioned pool for `qualifier` at the published version it names now.
  Status ProvisionTarget(const std::string& name, const std::string& qualifier, int requested);
  // The version or alias is gone: release its provisioned environments and config.
  boost::asio::awaitable<void> ForgetProvisioned(const std::string& name,
                                                 const std::string& qualifier);
  // The alias moved: replace its provisioned environments (no-op without a config).
  void ReprovisionQualifier(const std::string& name, const std::string& qualifier);
  // Async (Event) invocations: run in the background, retried while throttled.
  void EnqueueEvent(invoke::InvokeRequest&& ir);
  boost::asio::awaitable<void> RunEvent(invoke::InvokeRequest* ev);
  Response NoContent(const Request& req, const std::string& rid) const;

  // Layers (layers_api.cc).
  Awaitable PublishLayerVersion(Request& req, const std::string& rid, const std::string& layer);
  Awaitable GetLayerVersion(Request& req, const std::string& rid, const std::string& layer,
                            const std::string& version);
  Awaitable GetLayerVersionByArn(Request& req, const std::string& rid, const std::string& arn);
  Awaitable GetLayerVersionNumber(Request& req, const std::string& rid,
                                  const std::string& layer_name, int64_t version);
  Awaitable ListLayers(Request& req, const std::string& rid, const std::string& runtime,
                       const std::string& arch, const std::string& marker,
                       const std::string& max_items);
  Awaitable ListLayerVersions(Request& req, const std::string& rid, const std::string& layer,
                              const std::string& runtime, const std::string& arch,
                              const std::string& marker, const std::string& max_items);
  Awaitable DeleteLayerVersion(Request& req, const std::string& rid, const std::string& layer,
                               const std::string& version);
  // Checks `cfg.layers` (each an existing, not deleted layer version of this region and account;
  // one version per layer; function + layers within 262,144,000 bytes unzipped, using
  // cfg.code_size_unzipped), fills cfg.layer_code_sizes and cfg.layer_digests, and returns the
  // assembled /opt tree (empty path when there are no layers). Errors are
  // InvalidParameterValueException as in Lambda. `allow_deleted`: deleted versions are accepted
  // (a function that already uses them, e.g. on UpdateFunctionCode).
  boost::asio::awaitable<Result<std::filesystem::path>> ResolveLayers(config::FunctionConfig& cfg,
                                                                      bool allow_deleted = false);
  // arn:aws:lambda:<region>:<account>:layer:<name>[:<version>] (no version when 0).
  std::string LayerArn(const std::string& name, int64_t version = 0) const;
  boost::json::object RenderLayerVersion(const Request& req, const store::LayerVersion& lv,
                                         bool with_content) const;

  // The 204 answer to an Invoke / InvokeWithResponseStream with X-Amz-Invocation-Type DryRun.
  Response DryRun(const Request& req, const std::string& rid,
                  const std::string& executed_version) const;
  // What an Invoke / InvokeWithResponseStream request hands its function: the decoded
  // X-Amz-Client-Context and the body ("{}" when empty, moved out of `req`), checked to be JSON
  // (on the worker pool when large).
  struct InvokeInput {
    std::string client_context;
    std::string payload;
  };
  boost::asio::awaitable<Result<InvokeInput>> ReadInvokeInput(Request& req) const;
  // Resolves a path's function reference (name, partial or full ARN) and query qualifier.
  Result<struct FunctionRef> ResolveRef(const std::string& ref, const std::string& qualifier) const;
  // The function a concurrency call names (concurrency_api.cc): `ref` resolved with the query
  // qualifier, which provisioned-concurrency calls require and reserved-concurrency calls refuse,
  // and the function known to the registry.
  enum class QualifierRule { kRequired, kRefused };
  Result<struct FunctionRef> ConcurrencyTarget(const std::string& ref,
                                               const std::string& query_qualifier,
                                               QualifierRule rule) const;
  Response Error(const Request& req, const std::string& rid, const Status& st) const;
  Response Json(const Request& req, const std::string& rid, int status,
                const boost::json::value& v) const;
  std::string Arn(const std::string& name, const std::string& qualifier = "") const;
  // Claims the per-function write slot (one control-plane write at a time per function, as
  // Lambda's "update in progress"); Conflict when taken.
  Status BeginWrite(const std::string& name);
  void EndWrite(const std::string& name) { writing_.erase(name); }

  ApiContext ctx_;
  std::set<std::string> writing_;
  int64_t async_pending_ = 0, async_retries_ = 0, async_dropped_ = 0;
};

}  // namespace hearth::api
