#include "api/lambda_api.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/json.hpp>
#include <boost/url.hpp>
#include <charconv>
#include <fstream>
#include <sstream>

#include "api/arn.h"
#include "api/invoke_headers.h"
#include "api/paging.h"
#include "api/render.h"
#include "api/validation.h"
#include "common/blocking.h"
#include "common/defer.h"
#include "common/encoding.h"

namespace hearth::api {

namespace asio = boost::asio;
namespace json = boost::json;
namespace bhttp = boost::beast::http;

namespace {

constexpr std::uint64_t kInvokePayloadLimit = 6291456;  // 6 MB, synchronous
constexpr std::uint64_t kAsyncPayloadLimit = 1048576;   // 1 MB, Event
constexpr std::uint64_t kControlBodyLimit = 70167211;   // CreateFunction, as Lambda

bool IsInvokePath(std::string_view target) {
  auto q = target.find('?');
  return target.substr(0, q).ends_with("/invocations");
}

// POST /2021-11-15/functions/{name}/response-streaming-invocations (streaming_api.cc).
bool IsStreamingInvokePath(std::string_view target) {
  auto q = target.find('?');
  return target.starts_with("/2021-11-15/functions/") &&
         target.substr(0, q).ends_with("/response-streaming-invocations");
}

Status ParseJsonBody(std::string_view body, json::value* out) {
  boost::system::error_code ec;
  *out = json::parse(body, ec);
  if (ec) return Status::InvalidContent("Could not parse request body into json: " + ec.message());
  return Status::Ok();
}

// Stores a package unless the account's code storage would exceed `limit` (the function's
// current package of `replaced_bytes` is replaced, so it does not count). Blocking.
Result<artifacts::StoredCode> PutCodeWithinLimit(store::MetadataStore& store,
                                                 artifacts::CodeStore& code, int64_t limit,
                                                 int64_t replaced_bytes, std::string_view zip) {
  auto usage = store.GetUsage();
  if (!usage) return std::unexpected(usage.error());
  if (usage->total_code_size - replaced_bytes + static_cast<int64_t>(zip.size()) > limit) {
    return std::unexpected(Status(StatusCode::kCodeStorageExceeded,
                                  fmt::format("Code storage limit exceeded ({} bytes).", limit)));
  }
  return code.Put(zip);
}

Status RevisionMismatch() {
  return Status::FailedPrecondition(
      "The Revision Id provided does not match the latest Revision Id. Call the "
      "GetFunction/GetAlias "
      "API to retrieve the latest Revision Id");
}

}  // namespace

std::shared_ptr<http::ConnectionOptions> LambdaApi::ConnectionOptions() const {
  auto opts = std::make_shared<http::ConnectionOptions>();
  opts->idle_timeout = std::chrono::minutes(5);
  opts->body_limit = [](const http::RequestHeader& h) -> std::uint64_t {
    if (IsInvokePath(h.target())) {
      return h["X-Amz-Invocation-Type"] == "Event" ? kAsyncPayloadLimit : kInvokePayloadLimit;
    }
    if (IsStreamingInvokePath(h.target())) return kInvokePayloadLimit;
    return kControlBodyLimit;
  };
  // InvokeWithResponseStream writes its answer while the function runs.
  opts->wants_streaming = [](const http::RequestHeader& h) {
    return h.method() == bhttp::verb::post && IsStreamingInvokePath(h.target());
  };
  const LambdaApi* self = this;  // outlives the server it configures
  opts->streaming = [self](http::Exchange& ex) { return self->InvokeWithResponseStream(ex); };
  std::string rid_seed;
  opts->on_too_large = [](const http::RequestHeader& h) {
    Status st;
    if (IsInvokePath(h.target())) {
      bool event = h["X-Amz-Invocation-Type"] == "Event";
      st = Status::TooLarge(
          fmt::format("Request must be smaller than {} bytes for the InvokeFunction operation",
                      event ? kAsyncPayloadLimit : kInvokePayloadLimit));
    } else {
      st = Status::TooLarge(
          fmt::format("Request must be smaller than {} bytes for the CreateFunction operation",
                      kControlBodyLimit));
    }
    ApiError e = ToApiError(st);
    if (!IsInvokePath(h.target())) e.type = "RequestEntityTooLargeException";
    http::Response res{static_cast<bhttp::status>(e.http_status), 11};
    res.set(bhttp::field::content_type, "application/json");
    res.set("x-amzn-ErrorType", e.type);
    res.set("x-amzn-RequestId", NewUuid());
    res.body() = json::serialize(e.body);
    res.prepare_payload();
    return res;
  };
  opts->on_bad_request = []() {
    http::Response res{bhttp::status::bad_request, 11};
    res.set(bhttp::field::content_type, "application/json");
    res.set("x-amzn-ErrorType", "InvalidRequestContentException");
    res.set("x-amzn-RequestId", NewUuid());
    res.body() = R"({"Type":"User","message":"Malformed HTTP request"})";
    res.prepare_payload();
    return res;
  };
  return opts;
}

std::string LambdaApi::Arn(const std::string& name, const std::string& qualifier) const {
  return FunctionArn(ctx_.config->region, ctx_.config->account_id, name, qualifier);
}

http::Response LambdaApi::Error(const Request& req, const std::string& rid,
                                const Status& st) const {
  ApiError e = ToApiError(st);
  Response res =
      http::MakeResponse(req, static_cast<bhttp::status>(e.http_status), json::serialize(e.body));
  res.set("x-amzn-ErrorType", e.type);
  res.set("x-amzn-RequestId", rid);
  if (!e.retry_after.empty()) res.set("Retry-After", e.retry_after);
  return res;
}

http::Response LambdaApi::Json(const Request& req, const std::string& rid, int status,
                               const json::value& v) const {
  Response res = http::MakeResponse(req, static_cast<bhttp::status>(status), json::serialize(v));
  res.set("x-amzn-RequestId", rid);
  return res;
}

Result<FunctionRef> LambdaApi::ResolveRef(const std::string& ref,
                                          const std::string& qualifier) const {
  auto parsed = ParseFunctionRef(ref);
  if (!parsed) return parsed;
  HEARTH_RETURN_IF_ERROR(CheckArnScope(ref, ctx_.config->region, ctx_.config->account_id));
  return MergeQualifier(std::move(*parsed), qualifier);
}

Status LambdaApi::BeginWrite(const std::string& name) {
  if (!writing_.insert(name).second) {
    return Status::Conflict(fmt::format(
        "The operation cannot be performed at this time. An update is in progress for resource: {}",
        Arn(name)));
  }
  return Status::Ok();
}

asio::awaitable<http::Response> LambdaApi::Handle(Request& req) {
  const std::string rid = NewUuid();
  auto url = boost::urls::parse_origin_form(req.target());
  if (!url) co_return Error(req, rid, Status::InvalidContent("Malformed request target"));
  std::vector<std::string> seg;
  seg.reserve(6);
  for (auto s : url->segments()) seg.push_back(s);
  if (!seg.empty() && seg.back().empty()) seg.pop_back();  // trailing slash
  const bool has_query = url->has_query();
  auto param = [&](std::string_view key) -> std::string {
    if (!has_query) return std::string();
    auto it = url->params().find(key);
    return it == url->params().end() ? std::string() : std::string((*it).value);
  };
  // Named locals: g++ 12 double-destroys temporaries inside co_await expressions.
  const std::string qualifier = param("Qualifier"), marker = param("Marker"),
                    max_items = param("MaxItems"), offset = param("offset"), limit = param("limit");
  const std::string function_version = param("FunctionVersion");
  const auto method = req.method();
  const size_t n = seg.size();

  try {
    if (n >= 2 && seg[0] == "2015-03-31" && seg[1] == "functions") {
      if (n == 2 && method == bhttp::verb::post) co_return co_await CreateFunction(req, rid);
      if (n == 2 && method == bhttp::verb::get)
        co_return co_await ListFunctions(req, rid, marker, max_items);
      if (n == 3 && method == bhttp::verb::get)
        co_return co_await GetFunction(req, rid, seg[2], qualifier, false);
      if (n == 3 && method == bhttp::verb::delete_)
        co_return co_await DeleteFunction(req, rid, seg[2], qualifier);
      if (n == 4 && seg[3] == "configuration" && method == bhttp::verb::get)
        co_return co_await GetFunction(req, rid, seg[2], qualifier, true);
      if (n == 4 && seg[3] == "configuration" && method == bhttp::verb::put)
        co_return co_await UpdateConfiguration(req, rid, seg[2]);
      if (n == 4 && seg[3] == "code" && method == bhttp::verb::put)
        co_return co_await UpdateCode(req, rid, seg[2]);
      if (n == 4 && seg[3] == "invocations" && method == bhttp::verb::post)
        co_return co_await Invoke(req, rid, seg[2], qualifier);
      // Versions and aliases (versions_api.cc).
      if (n == 4 && seg[3] == "versions" && method == bhttp::verb::post)
        co_return co_await PublishVersion(req, rid, seg[2]);
      if (n == 4 && seg[3] == "versions" && method == bhttp::verb::get)
        co_return co_await ListVersions(req, rid, seg[2], marker, max_items);
      if (n == 4 && seg[3] == "aliases" && method == bhttp::verb::post)
        co_return co_await CreateAlias(req, rid, seg[2]);
      if (n == 4 && seg[3] == "aliases" && method == bhttp::verb::get)
        co_return co_await ListAliases(req, rid, seg[2], function_version, marker, max_items);
      if (n == 5 && seg[3] == "aliases" && method == bhttp::verb::get)
        co_return co_await GetAlias(req, rid, seg[2], seg[4]);
      if (n == 5 && seg[3] == "aliases" && method == bhttp::verb::put)
        co_return co_await UpdateAlias(req, rid, seg[2], seg[4]);
      if (n == 5 && seg[3] == "aliases" && method == bhttp::verb::delete_)
        co_return co_await DeleteAlias(req, rid, seg[2], seg[4]);
    }
    // Concurrency (concurrency_api.cc).
    if (n == 4 && seg[0] == "2017-10-31" && seg[1] == "functions" && seg[3] == "concurrency") {
      if (method == bhttp::verb::put) co_return co_await PutFunctionConcurrency(req, rid, seg[2]);
      if (method == bhttp::verb::delete_)
        co_return co_await DeleteFunctionConcurrency(req, rid, seg[2]);
    }
    if (n == 4 && seg[0] == "2019-09-30" && seg[1] == "functions") {
      if (seg[3] == "concurrency" && method == bhttp::verb::get)
        co_return co_await GetFunctionConcurrency(req, rid, seg[2]);
      if (seg[3] == "provisioned-concurrency") {
        if (method == bhttp::verb::put)
          co_return co_await PutProvisionedConcurrency(req, rid, seg[2], qualifier);
        if (method == bhttp::verb::delete_)
          co_return co_await DeleteProvisionedConcurrency(req, rid, seg[2], qualifier);
        if (method == bhttp::verb::get && param("List") == "ALL")
          co_return co_await ListProvisionedConcurrency(req, rid, seg[2], marker, max_items);
        if (method == bhttp::verb::get)
          co_return co_await GetProvisionedConcurrency(req, rid, seg[2], qualifier);
      }
    }
    // Layers (layers_api.cc).
    if (n >= 2 && seg[0] == "2018-10-31" && seg[1] == "layers") {
      const std::string compatible_runtime = param("CompatibleRuntime"),
                        compatible_arch = param("CompatibleArchitecture");
      if (n == 2 && method == bhttp::verb::get && param("find") == "LayerVersion") {
        const std::string arn = param("Arn");
        co_return co_await GetLayerVersionByArn(req, rid, arn);
      }
      if (n == 2 && method == bhttp::verb::get)
        co_return co_await ListLayers(req, rid, compatible_runtime, compatible_arch, marker,
                                      max_items);
      if (n == 4 && seg[3] == "versions" && method == bhttp::verb::post)
        co_return co_await PublishLayerVersion(req, rid, seg[2]);
      if (n == 4 && seg[3] == "versions" && method == bhttp::verb::get)
        co_return co_await ListLayerVersions(req, rid, seg[2], compatible_runtime,
                                             compatible_arch, marker, max_items);
      if (n == 5 && seg[3] == "versions" && method == bhttp::verb::get)
        co_return co_await GetLayerVersion(req, rid, seg[2], seg[4]);
      if (n == 5 && seg[3] == "versions" && method == bhttp::verb::delete_)
        co_return co_await DeleteLayerVersion(req, rid, seg[2], seg[4]);
    }
    if (n == 2 && seg[0] == "2016-08-19" && seg[1] == "account-settings" &&
        method == bhttp::verb::get)
      co_return co_await AccountSettings(req, rid);
    if (n >= 2 && seg[0] == "hearth" && seg[1] == "v1") {
      if (n == 3 && seg[2] == "health" && method == bhttp::verb::get) {
        auto st = ctx_.manager->stats();
        co_return Json(
            req, rid, 200,
            json::object{{"status", "ok"},
                         {"functions", ctx_.registry->size()},
                         {"environments",
                          json::object{{"live", st.live}, {"idle", st.idle}, {"busy", st.busy}}},
                         {"cold_starts", st.cold_starts},
                         {"warm_starts", st.warm_starts},
                         {"throttles", st.throttles}});
      }
      if (n == 3 && seg[2] == "stats" && method == bhttp::verb::get)
        co_return co_await Stats(req, rid);
      if (n == 5 && seg[2] == "functions" && seg[4] == "logs" && method == bhttp::verb::get)
        co_return co_await ReadLogs(req, rid, seg[3], offset, limit);
      if (n == 4 && seg[2] == "code" && method == bhttp::verb::get)
        co_return co_await DownloadCode(req, rid, seg[3]);
    }
  } catch (const std::exception& e) {
    // Policy: no exception crosses the API edge; an unexpected one is a ServiceException.
    spdlog::error("request {} {} failed: {}", std::string(req.method_string()),
                  std::string(req.target()), e.what());
    co_return Error(req, rid, Status::Internal("An internal error occurred"));
  }
  Response res = Error(req, rid, Status::NotFound("Unknown operation"));
  res.set("x-amzn-ErrorType", "UnknownOperationException");
  co_return res;
}

asio::awaitable<http::Response> LambdaApi::CreateFunction(Request& req, const std::string& rid) {
  // Parsing (base64 of up to 50 MB) and unpacking happen on the worker pool.
  std::string body = std::move(req.body());
  auto parse = [body = std::move(body)]() -> Result<CreateFunctionRequest> {
    json::value v;
    HEARTH_RETURN_IF_ERROR(ParseJsonBody(body, &v));
    return ParseCreateFunction(v);
  };
  auto parsed = co_await RunBlocking(*ctx_.workers, std::move(parse));
  if (!parsed) co_return Error(req, rid, parsed.error());
  config::FunctionConfig cfg = std::move(parsed->config);
  if (Status st = CheckRuntimeInstalled(cfg.runtime, ctx_.installed_runtimes); !st.ok())
    co_return Error(req, rid, st);
  if (ctx_.registry->Find(cfg.name))
    co_return Error(req, rid, Status::AlreadyExists("Function already exist: " + cfg.name));
  if (Status st = BeginWrite(cfg.name); !st.ok()) co_return Error(req, rid, st);
  const std::string name = cfg.name;
  Defer end([&] { EndWrite(name); });

  store::MetadataStore* store = ctx_.store;
  artifacts::CodeStore* code = ctx_.code;
  const int64_t limit = ctx_.config->code_storage_limit_bytes;
  std::string zip = std::move(parsed->zip_bytes);
  auto put_code = [store, code, limit, zip = std::move(zip)]() {
    return PutCodeWithinLimit(*store, *code, limit, /*replaced_bytes=*/0, zip);
  };
  auto stored = co_await RunBlocking(*ctx_.workers, std::move(put_code));
  if (!stored) co_return Error(req, rid, stored.error());
  cfg.code_sha256_hex = stored->sha256_hex;
  cfg.code_size = stored->zip_size;
  cfg.code_size_unzipped = stored->unzipped_size;
  auto opt_dir = co_await ResolveLayers(cfg);  // layers_api.cc
  if (!opt_dir) co_return Error(req, rid, opt_dir.error());
  cfg.last_modified = FormatLambdaTimestamp(ctx_.clock->Now());
  cfg.revision_id = NewUuid();
  cfg.state = "Active";
  cfg.last_update_status = "Successful";
  auto create = [store, cfg]() { return store->CreateFunction(cfg); };
  Status st = co_await RunBlocking(*ctx_.workers, std::move(create));
  if (st.code() == StatusCode::kAlreadyExists)
    st = Status::AlreadyExists("Function already exist: " + cfg.name);
  if (!st.ok()) co_return Error(req, rid, st);
  ctx_.registry->Put(invoke::FunctionEntry{cfg, stored->dir, *opt_dir});
  if (parsed->publish) {  // Publish=true: version 1 in the same call; the answer shows it
    const std::string no_description;
    auto published = co_await PublishLatest(name, no_description);
    if (!published) co_return Error(req, rid, published.error());
    co_return Json(req, rid, 201,
                   RenderFunctionConfiguration(*published, ctx_.config->region,
                                               ctx_.config->account_id, true));
  }
  co_return Json(
      req, rid, 201,
      RenderFunctionConfiguration(cfg, ctx_.config->region, ctx_.config->account_id, false));
}

asio::awaitable<http::Response> LambdaApi::GetFunction(Request& req, const std::string& rid,
                                                       const std::string& ref,
                                                       const std::string& qualifier,
                                                       bool config_only) {
  auto fr = ResolveRef(ref, qualifier);
  if (!fr) co_return Error(req, rid, fr.error());
  std::string code_sha256_hex;  // of the version the qualifier names (versions_api.cc)
  auto rendered = RenderQualified(fr->name, fr->qualifier, &code_sha256_hex);
  if (!rendered) co_return Error(req, rid, rendered.error());
  json::object conf = std::move(*rendered);
  if (config_only) co_return Json(req, rid, 200, conf);
  std::string host(req[bhttp::field::host]);
  if (host.empty()) host = fmt::format("{}:{}", ctx_.config->listen_host, ctx_.config->listen_port);
  json::object out{
      {"Configuration", std::move(conf)},
      {"Code", json::object{{"RepositoryType", "S3"},
                            {"Location", fmt::format("http://{}/hearth/v1/code/{}", host,
                                                     code_sha256_hex)}}},
      {"Tags", json::object{}},
  };
  if (auto reserved = ctx_.manager->limits().reserved(fr->name))
    out["Concurrency"] = json::object{{"ReservedConcurrentExecutions", *reserved}};
  co_return Json(req, rid, 200, out);
}

asio::awaitable<http::Response> LambdaApi::ListFunctions(Request& req, const std::string& rid,
                                                         const std::string& marker,
                                                         const std::string& max_items) {
  int max = 0;
  std::string after;
  if (Status st = ParsePaging(max_items, marker, &max, &after); !st.ok())
    co_return Error(req, rid, st);
  store::MetadataStore* store = ctx_.store;
  auto list = [store, after, max]() { return store->ListFunctions(after, max + 1); };
  auto page = co_await RunBlocking(*ctx_.workers, std::move(list));
  if (!page) co_return Error(req, rid, page.error());
  json::array fns;
  bool more = static_cast<int>(page->size()) > max;
  if (more) page->resize(static_cast<size_t>(max));
  for (const auto& c : *page)
    fns.push_back(
        RenderFunctionConfiguration(c, ctx_.config->region, ctx_.config->account_id, false));
  json::object out{{"Functions", std::move(fns)}};
  if (more && !page->empty()) out["NextMarker"] = Base64Encode(page->back().name);
  co_return Json(req, rid, 200, out);
}

asio::awaitable<http::Response> LambdaApi::UpdateCode(Request& req, const std::string& rid,
                                                      const std::string& ref) {
  auto fr = ResolveRef(ref, "");
  if (!fr) co_return Error(req, rid, fr.error());
  if (!fr->qualifier.empty())
    co_return Error(req, rid,
                    Status::InvalidArgument("Only $LATEST can be updated; remove the qualifier"));
  std::string body = std::move(req.body());
  auto parse = [body = std::move(body)]() -> Result<UpdateCodeRequest> {
    json::value v;
    HEARTH_RETURN_IF_ERROR(ParseJsonBody(body, &v));
    return ParseUpdateFunctionCode(v);
  };
  auto parsed = co_await RunBlocking(*ctx_.workers, std::move(parse));
  if (!parsed) co_return Error(req, rid, parsed.error());
  const invoke::FunctionEntry* e = ctx_.registry->Find(fr->name);
  if (!e) co_return Error(req, rid, Status::NotFound("Function not found: " + Arn(fr->name)));
  if (!parsed->revision_id.empty() && parsed->revision_id != e->latest.revision_id) {
    co_return Error(req, rid, RevisionMismatch());
  }
  if (Status st = BeginWrite(fr->name); !st.ok()) co_return Error(req, rid, st);
  const std::string name = fr->name;
  Defer end([&] { EndWrite(name); });
  config::FunctionConfig cfg = e->latest;
  const std::filesystem::path opt_dir = e->opt_dir;
  store::MetadataStore* store = ctx_.store;
  artifacts::CodeStore* code = ctx_.code;
  const int64_t limit = ctx_.config->code_storage_limit_bytes;
  const int64_t old_size = cfg.code_size;
  std::string zip = std::move(parsed->zip_bytes);
  auto put_code = [store, code, limit, old_size, zip = std::move(zip)]() {
    return PutCodeWithinLimit(*store, *code, limit, old_size, zip);
  };
  auto stored = co_await RunBlocking(*ctx_.workers, std::move(put_code));
  if (!stored) co_return Error(req, rid, stored.error());
  if (!cfg.layers.empty()) {  // the new code plus the layers it keeps (layers_api.cc)
    config::FunctionConfig sized = cfg;
    sized.code_size_unzipped = stored->unzipped_size;
    auto resolved = co_await ResolveLayers(sized, true);
    if (!resolved) co_return Error(req, rid, resolved.error());
  }
  if (parsed->dry_run) {
    config::FunctionConfig preview = cfg;
    preview.code_sha256_hex = stored->sha256_hex;
    preview.code_size = stored->zip_size;
    co_return Json(
        req, rid, 200,
        RenderFunctionConfiguration(preview, ctx_.config->region, ctx_.config->account_id, false));
  }
  const std::string expected = cfg.revision_id;
  cfg.code_sha256_hex = stored->sha256_hex;
  cfg.code_size = stored->zip_size;
  cfg.code_size_unzipped = stored->unzipped_size;
  if (!parsed->architecture.empty()) cfg.architecture = parsed->architecture;
  cfg.last_modified = FormatLambdaTimestamp(ctx_.clock->Now());
  cfg.revision_id = NewUuid();
  cfg.last_update_status = "Successful";
  auto update = [store, cfg, expected]() { return store->UpdateFunction(cfg, expected); };
  Status st = co_await RunBlocking(*ctx_.workers, std::move(update));
  if (!st.ok()) co_return Error(req, rid, st);
  ctx_.registry->Put(invoke::FunctionEntry{cfg, stored->dir, opt_dir});
  ctx_.manager->Retire(cfg.name);
  if (parsed->publish) {  // Publish=true: the answer shows the published version
    const std::string no_description;
    auto published = co_await PublishLatest(name, no_description);
    if (!published) co_return Error(req, rid, published.error());
    co_return Json(req, rid, 200,
                   RenderFunctionConfiguration(*published, ctx_.config->region,
                                               ctx_.config->account_id, true));
  }
  co_return Json(
      req, rid, 200,
      RenderFunctionConfiguration(cfg, ctx_.config->region, ctx_.config->account_id, false));
}

asio::awaitable<http::Response> LambdaApi::UpdateConfiguration(Request& req, const std::string& rid,
                                                               const std::string& ref) {
  auto fr = ResolveRef(ref, "");
  if (!fr) co_return Error(req, rid, fr.error());
  if (!fr->qualifier.empty())
    co_return Error(req, rid,
                    Status::InvalidArgument("Only $LATEST can be updated; remove the qualifier"));
  json::value body;
  if (Status st = ParseJsonBody(req.body(), &body); !st.ok()) co_return Error(req, rid, st);
  const invoke::FunctionEntry* e = ctx_.registry->Find(fr->name);
  if (!e) co_return Error(req, rid, Status::NotFound("Function not found: " + Arn(fr->name)));
  config::FunctionConfig cfg = e->latest;
  std::filesystem::path code_dir = e->code_dir;
  std::filesystem::path opt_dir = e->opt_dir;
  const std::vector<std::string> old_layers = e->latest.layers;
  std::string revision;
  if (Status st = ApplyConfigurationUpdate(body, &cfg, &revision); !st.ok())
    co_return Error(req, rid, st);
  if (cfg.runtime != e->latest.runtime) {
    if (Status st = CheckRuntimeInstalled(cfg.runtime, ctx_.installed_runtimes); !st.ok())
      co_return Error(req, rid, st);
  }
  if (!revision.empty() && revision != e->latest.revision_id) {
    co_return Error(req, rid, RevisionMismatch());
  }
  if (Status st = BeginWrite(fr->name); !st.ok()) co_return Error(req, rid, st);
  const std::string name = fr->name;
  Defer end([&] { EndWrite(name); });
  if (cfg.layers != old_layers) {  // a new list: check it and assemble its /opt (layers_api.cc)
    auto resolved = co_await ResolveLayers(cfg);
    if (!resolved) co_return Error(req, rid, resolved.error());
    opt_dir = std::move(*resolved);
  }
  const std::string expected = cfg.revision_id;
  cfg.last_modified = FormatLambdaTimestamp(ctx_.clock->Now());
  cfg.revision_id = NewUuid();
  cfg.last_update_status = "Successful";
  store::MetadataStore* store = ctx_.store;
  auto update = [store, cfg, expected]() { return store->UpdateFunction(cfg, expected); };
  Status st = co_await RunBlocking(*ctx_.workers, std::move(update));
  if (!st.ok()) co_return Error(req, rid, st);
  ctx_.registry->Put(invoke::FunctionEntry{cfg, code_dir, opt_dir});
  ctx_.manager->Retire(cfg.name);
  co_return Json(
      req, rid, 200,
      RenderFunctionConfiguration(cfg, ctx_.config->region, ctx_.config->account_id, false));
}

asio::awaitable<http::Response> LambdaApi::DeleteFunction(Request& req, const std::string& rid,
                                                          const std::string& ref,
                                                          const std::string& qualifier) {
  auto fr = ResolveRef(ref, qualifier);
  if (!fr) co_return Error(req, rid, fr.error());
  if (!ctx_.registry->Find(fr->name))
    co_return Error(req, rid, Status::NotFound("Function not found: " + Arn(fr->name)));
  if (fr->qualifier == config::kLatest) {
    co_return Error(req, rid,
                    Status::InvalidArgument(
                        "$LATEST version cannot be deleted without deleting the function."));
  }
  if (!fr->qualifier.empty())  // one published version (versions_api.cc)
    co_return co_await DeleteVersion(req, rid, fr->name, fr->qualifier);
  if (Status st = BeginWrite(fr->name); !st.ok()) co_return Error(req, rid, st);
  const std::string name = fr->name;
  Defer end([&] { EndWrite(name); });
  store::MetadataStore* store = ctx_.store;
  auto remove = [store, name]() { return store->DeleteFunction(name); };
  Status st = co_await RunBlocking(*ctx_.workers, std::move(remove));
  if (!st.ok()) co_return Error(req, rid, st);
  ctx_.registry->Erase(name);
  ctx_.manager->DropFunction(name);  // environments, provisioned pools, reserved concurrency
  ctx_.logs->Forget(name);
  Response res{bhttp::status::no_content, req.version()};
  res.keep_alive(req.keep_alive());
  res.set("x-amzn-RequestId", rid);
  res.prepare_payload();
  co_return res;
}

http::Response LambdaApi::DryRun(const Request& req, const std::string& rid,
                                 const std::string& executed_version) const {
  Response res{bhttp::status::no_content, req.version()};
  res.keep_alive(req.keep_alive());
  res.set("x-amzn-RequestId", rid);
  res.set("X-Amz-Executed-Version", executed_version);
  res.prepare_payload();
  return res;
}

asio::awaitable<Result<LambdaApi::InvokeInput>> LambdaApi::ReadInvokeInput(Request& req) const {
  auto client_context = DecodeClientContext(req["X-Amz-Client-Context"]);
  if (!client_context) co_return std::unexpected(client_context.error());
  InvokeInput in{std::move(*client_context), std::move(req.body())};
  if (in.payload.empty()) in.payload = "{}";
  const std::string& payload = in.payload;
  Status valid;
  if (payload.size() <= kParseOnLoopLimit) {
    valid = ValidateJsonPayload(payload);
  } else {
    auto validate = [&payload]() { return ValidateJsonPayload(payload); };
    valid = co_await RunBlocking(*ctx_.workers, std::move(validate));
  }
  if (!valid.ok()) co_return std::unexpected(valid);
  co_return in;
}

asio::awaitable<http::Response> LambdaApi::Invoke(Request& req, const std::string& rid,
                                                  const std::string& ref,
                                                  const std::string& qualifier) {
  auto fr = ResolveRef(ref, qualifier);
  if (!fr) co_return Error(req, rid, fr.error());
  std::string_view type = req["X-Amz-Invocation-Type"];
  if (type.empty()) type = "RequestResponse";
  if (Status st = CheckInvocationType(type, /*event_allowed=*/true); !st.ok())
    co_return Error(req, rid, st);
  const std::string_view log_type = req["X-Amz-Log-Type"];
  if (Status st = CheckLogType(log_type); !st.ok()) co_return Error(req, rid, st);
  auto checked = ctx_.invoker->Check(fr->name, fr->qualifier);
  if (!checked) co_return Error(req, rid, checked.error());
  const std::string executed = *checked;
  if (type == "DryRun") co_return DryRun(req, rid, executed);
  auto input = co_await ReadInvokeInput(req);
  if (!input) co_return Error(req, rid, input.error());

  invoke::InvokeRequest ir;
  ir.request_id = rid;
  ir.function_name = fr->name;
  ir.qualifier = fr->qualifier;
  ir.invoked_arn = Arn(fr->name, fr->qualifier);
  ir.payload = std::move(input->payload);
  ir.client_context = std::move(input->client_context);
  if (std::string_view trace = req["X-Amzn-Trace-Id"]; !trace.empty())
    ir.trace_id = std::string(trace);

  if (type == "Event") {
    // Accepted now, run in the background; retried while throttled (concurrency_api.cc).
    // (Function-error retries and destinations come with the async issue.)
    EnqueueEvent(std::move(ir));
    Response res{bhttp::status::accepted, req.version()};
    res.keep_alive(req.keep_alive());
    res.set("x-amzn-RequestId", rid);
    res.prepare_payload();
    co_return res;
  }

  auto out = co_await ctx_.invoker->Invoke(std::move(ir));
  if (!out) co_return Error(req, rid, out.error());
  Response res{bhttp::status::ok, req.version()};
  res.keep_alive(req.keep_alive());
  res.set(bhttp::field::content_type,
          out->result.content_type.empty() ? "application/json" : out->result.content_type);
  res.set("x-amzn-RequestId", rid);
  res.set("X-Amz-Executed-Version", out->executed_version);
  if (out->result.kind == runtimeapi::InvocationResult::Kind::kFunctionError) {
    res.set("X-Amz-Function-Error", "Unhandled");
    res.set(bhttp::field::content_type, "application/json");
  }
  if (log_type == "Tail") res.set("X-Amz-Log-Result", Base64Encode(out->log_tail));
  res.body() = std::move(out->result.body);
  res.prepare_payload();
  co_return res;
}

asio::awaitable<http::Response> LambdaApi::AccountSettings(Request& req, const std::string& rid) {
  store::MetadataStore* store = ctx_.store;
  auto usage_of = [store]() { return store->GetUsage(); };
  auto usage = co_await RunBlocking(*ctx_.workers, std::move(usage_of));
  if (!usage) co_return Error(req, rid, usage.error());
  json::object out{
      {"AccountLimit",
       json::object{{"TotalCodeSize", ctx_.config->code_storage_limit_bytes},
                    {"CodeSizeUnzipped", 262144000},
                    {"CodeSizeZipped", 52428800},
                    {"ConcurrentExecutions", ctx_.manager->limits().account_limit()},
                    {"UnreservedConcurrentExecutions", ctx_.manager->limits().unreserved()}}},
      {"AccountUsage", json::object{{"TotalCodeSize", usage->total_code_size},
                                    {"FunctionCount", usage->function_count}}},
  };
  co_return Json(req, rid, 200, out);
}

asio::awaitable<http::Response> LambdaApi::ReadLogs(Request& req, const std::string& rid,
                                                    const std::string& ref,
                                                    const std::string& offset,
                                                    const std::string& limit) {
  auto fr = ParseFunctionRef(ref);
  if (!fr) co_return Error(req, rid, fr.error());
  if (!ctx_.registry->Find(fr->name))
    co_return Error(req, rid, Status::NotFound("Function not found: " + Arn(fr->name)));
  int64_t off = 0, lim = 1 << 20;
  if (!offset.empty()) std::from_chars(offset.data(), offset.data() + offset.size(), off);
  if (!limit.empty()) std::from_chars(limit.data(), limit.data() + limit.size(), lim);
  lim = std::clamp<int64_t>(lim, 1, 8 << 20);
  ctx_.logs->Flush();  // what this loop turn appended is on disk before it is read
  auto path = ctx_.logs->PathFor(fr->name);
  int64_t next = 0;
  auto read = [path, off, lim, &next]() { return telemetry::ReadLog(path, off, lim, &next); };
  auto text = co_await RunBlocking(*ctx_.workers, std::move(read));
  if (!text) co_return Error(req, rid, text.error());
  Response res =
      http::MakeResponse(req, bhttp::status::ok, std::move(*text), "text/plain; charset=utf-8");
  res.set("x-amzn-RequestId", rid);
  res.set("X-Hearth-Log-Offset", std::to_string(next));
  co_return res;
}

asio::awaitable<http::Response> LambdaApi::DownloadCode(Request& req, const std::string& rid,
                                                        const std::string& digest) {
  if (digest.size() != 64 || digest.find_first_not_of("0123456789abcdef") != std::string::npos)
    co_return Error(req, rid, Status::NotFound("Code not found"));
  auto path = std::filesystem::path(ctx_.config->data_dir) / "code" / "zips" / (digest + ".zip");
  auto read = [path]() -> Result<std::string> {
    std::ifstream in(path, std::ios::binary);
    if (!in) return std::unexpected(Status::NotFound("Code not found"));
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
  };
  auto data = co_await RunBlocking(*ctx_.workers, std::move(read));
  if (!data) co_return Error(req, rid, data.error());
  Response res = http::MakeResponse(req, bhttp::status::ok, std::move(*data), "application/zip");
  res.set("x-amzn-RequestId", rid);
  co_return res;
}

}  // namespace hearth::api
