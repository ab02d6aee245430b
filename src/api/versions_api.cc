// Versions and aliases (lambda-reference.md §7): PublishVersion, ListVersionsByFunction,
// DeleteFunction of one version, and the alias operations. LambdaApi members; routing is in
// lambda_api.cc.

#include <fmt/format.h>

#include <boost/json.hpp>
#include <charconv>

#include "api/aliases.h"
#include "api/arn.h"
#include "api/paging.h"
#include "api/lambda_api.h"
#include "api/render.h"
#include "common/blocking.h"
#include "common/defer.h"
#include "common/encoding.h"

namespace hearth::api {

namespace asio = boost::asio;
namespace json = boost::json;

namespace {


Status RevisionMismatch() {
  return Status::FailedPrecondition(
      "The Revision Id provided does not match the latest Revision Id. Call the "
      "GetFunction/GetAlias API to retrieve the latest Revision Id");
}

// MaxItems (1-10000; a page holds at most 50) and an opaque Marker (base64 of the last key).

// Whether publishing `latest` would snapshot anything new compared with `version`: code and
// configuration, ignoring what differs between any two snapshots (number, revision, timestamps,
// state, the version's own description).
bool SameContent(const config::FunctionConfig& version, const config::FunctionConfig& latest) {
  auto strip = [](config::FunctionConfig c) {
    c.version.clear();
    c.revision_id.clear();
    c.last_modified.clear();
    c.description.clear();
    c.state.clear();
    c.last_update_status.clear();
    return config::ToJson(c);
  };
  return strip(version) == strip(latest);
}

bool AllDigits(std::string_view s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos;
}

// A request body as JSON; an empty body is {} when `empty_ok`. InvalidContent as Lambda's when
// it does not parse.
Result<json::value> ParseBody(const std::string& body, bool empty_ok) {
  if (empty_ok && body.empty()) return json::object{};
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec) {
    return std::unexpected(
        Status::InvalidContent("Could not parse request body into json: " + ec.message()));
  }
  return v;
}

}  // namespace

Result<json::object> LambdaApi::RenderQualified(const std::string& name,
                                                const std::string& qualifier,
                                                std::string* code_sha256_hex) const {
  const invoke::FunctionEntry* e = ctx_.registry->Find(name);
  const std::string& region = ctx_.config->region;
  const std::string& account = ctx_.config->account_id;
  if (!e) return std::unexpected(Status::NotFound("Function not found: " + Arn(name, qualifier)));
  if (qualifier.empty() || qualifier == config::kLatest) {
    *code_sha256_hex = e->latest.code_sha256_hex;
    return RenderFunctionConfiguration(e->latest, region, account, !qualifier.empty());
  }
  std::string version = qualifier;
  const config::AliasConfig* alias = e->FindAlias(qualifier);
  if (alias) version = alias->function_version;
  const config::FunctionConfig* cfg = nullptr;
  if (version == config::kLatest) {
    cfg = &e->latest;
  } else if (const invoke::VersionEntry* v = e->FindVersion(version)) {
    cfg = &v->config;
  }
  if (!cfg) return std::unexpected(Status::NotFound("Function not found: " + Arn(name, qualifier)));
  *code_sha256_hex = cfg->code_sha256_hex;
  json::object o = RenderFunctionConfiguration(*cfg, region, account, true);
  if (alias) o["FunctionArn"] = Arn(name, qualifier);
  return o;
}

asio::awaitable<Result<config::FunctionConfig>> LambdaApi::PublishLatest(
    const std::string& name, const std::string& description) {
  const invoke::FunctionEntry* e = ctx_.registry->Find(name);
  if (!e) co_return std::unexpected(Status::NotFound("Function not found: " + Arn(name)));
  if (const invoke::VersionEntry* last = e->LastVersion();
      last && SameContent(last->config, e->latest)) {
    co_return last->config;
  }
  config::FunctionConfig snapshot = e->latest;
  std::filesystem::path code_dir = e->code_dir;
  std::filesystem::path opt_dir = e->opt_dir;  // the version keeps $LATEST's layers
  if (!description.empty()) snapshot.description = description;
  snapshot.revision_id = NewUuid();
  snapshot.last_modified = FormatLambdaTimestamp(ctx_.clock->Now());
  store::MetadataStore* store = ctx_.store;
  const int64_t limit = ctx_.config->code_storage_limit_bytes;
  // Each version's package counts against the account's code storage, as in Lambda.
  auto publish = [store, limit, snapshot]() -> Result<config::FunctionConfig> {
    auto usage = store->GetUsage();
    if (!usage) return std::unexpected(usage.error());
    if (usage->total_code_size + snapshot.code_size > limit) {
      return std::unexpected(Status(StatusCode::kCodeStorageExceeded,
                                    fmt::format("Code storage limit exceeded ({} bytes).", limit)));
    }
    return store->PublishVersion(snapshot);
  };
  auto published = co_await RunBlocking(*ctx_.workers, std::move(publish));
  if (!published) co_return std::unexpected(published.error());
  ctx_.registry->PutVersion(invoke::VersionEntry{*published, code_dir, opt_dir});
  co_return *published;
}

asio::awaitable<http::Response> LambdaApi::PublishVersion(Request& req, const std::string& rid,
                                                          const std::string& ref) {
  auto fr = ResolveRef(ref, "");
  if (!fr) co_return Error(req, rid, fr.error());
  if (!fr->qualifier.empty())
    co_return Error(req, rid, Status::InvalidArgument("PublishVersion takes an unqualified function name"));
  auto body = ParseBody(req.body(), /*empty_ok=*/true);
  if (!body) co_return Error(req, rid, body.error());
  if (!body->is_object())
    co_return Error(req, rid,
                    Status::InvalidContent("Could not parse request body into json: not an object"));
  std::string sha, description, revision;
  for (auto [key, out] : {std::pair{"CodeSha256", &sha}, std::pair{"Description", &description},
                          std::pair{"RevisionId", &revision}}) {
    const json::value* v = body->as_object().if_contains(key);
    if (v == nullptr || v->is_null()) continue;
    if (!v->is_string())
      co_return Error(req, rid,
                      Status::InvalidContent(fmt::format(
                          "Could not parse request body into json: member '{}' has the wrong type",
                          key)));
    *out = std::string(v->as_string());
  }
  if (description.size() > 256)
    co_return Error(req, rid,
                    Status::Validation(fmt::format(
                        "1 validation error detected: Value '{}' at 'description' failed to "
                        "satisfy constraint: Member must have length less than or equal to 256",
                        description)));
  const invoke::FunctionEntry* e = ctx_.registry->Find(fr->name);
  if (!e) co_return Error(req, rid, Status::NotFound("Function not found: " + Arn(fr->name)));
  const std::string current_sha = CodeSha256Base64FromHex(e->latest.code_sha256_hex);
  if (!sha.empty() && sha != current_sha) {
    co_return Error(req, rid,
                    Status::InvalidArgument(fmt::format(
                        "CodeSHA256 ({}) is different from current CodeSHA256 in $LATEST ({}). "
                        "Please try again with the CodeSHA256 in $LATEST.",
                        sha, current_sha)));
  }
  if (!revision.empty() && revision != e->latest.revision_id)
    co_return Error(req, rid, RevisionMismatch());
  if (Status st = BeginWrite(fr->name); !st.ok()) co_return Error(req, rid, st);
  const std::string name = fr->name;
  Defer end([&] { EndWrite(name); });
  auto published = co_await PublishLatest(name, description);
  if (!published) co_return Error(req, rid, published.error());
  co_return Json(req, rid, 201,
                 RenderFunctionConfiguration(*published, ctx_.config->region,
                                             ctx_.config->account_id, true));
}

asio::awaitable<http::Response> LambdaApi::ListVersions(Request& req, const std::string& rid,
                                                        const std::string& ref,
                                                        const std::string& marker,
                                                        const std::string& max_items) {
  auto fr = ResolveRef(ref, "");
  if (!fr) co_return Error(req, rid, fr.error());
  int max = 0;
  std::string after;
  if (Status st = ParsePaging(max_items, marker, &max, &after); !st.ok())
    co_return Error(req, rid, st);
  const invoke::FunctionEntry* e = ctx_.registry->Find(fr->name);
  if (!e) co_return Error(req, rid, Status::NotFound("Function not found: " + Arn(fr->name)));
  // $LATEST first, then the published versions in ascending order. The marker is the last
  // version of the previous page.
  std::vector<const config::FunctionConfig*> all;
  all.push_back(&e->latest);
  for (const auto& [n, v] : e->versions) all.push_back(&v.config);
  size_t start = 0;
  if (!after.empty()) {
    start = all.size();
    for (size_t i = 0; i < all.size(); ++i) {
      if (all[i]->version == after) {
        start = i + 1;
        break;
      }
      // A deleted version: continue with the next higher number.
      if (AllDigits(after) && AllDigits(all[i]->version) &&
          std::stoll(all[i]->version) > std::stoll(after)) {
        start = i;
        break;
      }
    }
  }
  json::array out_versions;
  size_t i = start;
  for (; i < all.size() && static_cast<int>(out_versions.size()) < max; ++i) {
    out_versions.push_back(RenderFunctionConfiguration(*all[i], ctx_.config->region,
                                                       ctx_.config->account_id, true));
  }
  json::object out{{"Versions", std::move(out_versions)}};
  if (i < all.size()) out["NextMarker"] = Base64Encode(all[i - 1]->version);
  co_return Json(req, rid, 200, out);
}

asio::awaitable<http::Response> LambdaApi::DeleteVersion(Request& req, const std::string& rid,
                                                         const std::string& name,
                                                         const std::string& version) {
  const invoke::FunctionEntry* e = ctx_.registry->Find(name);
  if (!e) co_return Error(req, rid, Status::NotFound("Function not found: " + Arn(name)));
  if (!IsVersionNumber(version)) {
    co_return Error(req, rid,
                    Status::InvalidArgument(
                        "Deletion of aliases is not supported by DeleteFunction; use DeleteAlias."));
  }
  if (!e->FindVersion(version))
    co_return Error(req, rid, Status::NotFound("Function not found: " + Arn(name, version)));
  std::vector<std::string> users;
  for (const auto& [alias_name, a] : e->aliases) {
    if (a.function_version == version || a.additional_version == version) users.push_back(alias_name);
  }
  if (!users.empty()) {
    co_return Error(req, rid,
                    Status::Conflict(fmt::format(
                        "Unable to delete version because the following aliases reference it: [{}]",
                        fmt::join(users, ", "))));
  }
  if (Status st = BeginWrite(name); !st.ok()) co_return Error(req, rid, st);
  Defer end([&] { EndWrite(name); });
  store::MetadataStore* store = ctx_.store;
  auto remove = [store, name, version]() { return store->DeleteVersion(name, version); };
  Status st = co_await RunBlocking(*ctx_.workers, std::move(remove));
  if (!st.ok()) co_return Error(req, rid, st);
  ctx_.registry->EraseVersion(name, version);
  ctx_.manager->Retire(name);
  co_await ForgetProvisioned(name, version);  // concurrency_api.cc
  co_return NoContent(req, rid);
}

// --- Aliases ---------------------------------------------------------------------------------

namespace {

// The versions an alias names must exist (published, or $LATEST for an unweighted alias).
Status CheckAliasTargets(const invoke::FunctionEntry& e, const config::AliasConfig& a,
                         const std::string& function_arn) {
  for (const std::string* v : {&a.function_version, &a.additional_version}) {
    if (v->empty() || *v == config::kLatest) continue;
    if (!e.FindVersion(*v)) {
      return Status::NotFound(fmt::format("Function not found: {}:{}", function_arn, *v));
    }
  }
  return Status::Ok();
}

// The path of GetAlias, UpdateAlias and DeleteAlias: the function reference (`fr`, resolved)
// and then the alias name must be valid.
Status CheckAliasPath(const Result<FunctionRef>& fr, const std::string& alias) {
  if (!fr) return fr.error();
  return ValidateAliasName(alias);
}

// What GetAlias, UpdateAlias and DeleteAlias act on.
struct AliasTarget {
  const invoke::FunctionEntry* function = nullptr;
  const config::AliasConfig* alias = nullptr;  // null when the function has no such alias
};

// Looks `function` and its `alias` up in the registry. NotFound as Lambda's when the function is
// unknown, or when the alias is and `need_alias`.
Result<AliasTarget> FindAliasTarget(const ApiContext& ctx, const std::string& function,
                                    const std::string& alias, bool need_alias) {
  const std::string& region = ctx.config->region;
  const std::string& account = ctx.config->account_id;
  AliasTarget t;
  t.function = ctx.registry->Find(function);
  if (!t.function) {
    return std::unexpected(
        Status::NotFound("Function not found: " + FunctionArn(region, account, function)));
  }
  t.alias = t.function->FindAlias(alias);
  if (!t.alias && need_alias) {
    return std::unexpected(Status::NotFound("Cannot find alias arn: " +
                                            FunctionArn(region, account, function, alias)));
  }
  return t;
}

}  // namespace

asio::awaitable<http::Response> LambdaApi::CreateAlias(Request& req, const std::string& rid,
                                                       const std::string& ref) {
  auto fr = ResolveRef(ref, "");
  if (!fr) co_return Error(req, rid, fr.error());
  auto body = ParseBody(req.body(), /*empty_ok=*/false);
  if (!body) co_return Error(req, rid, body.error());
  auto parsed = ParseAliasRequest(*body, /*create=*/true);
  if (!parsed) co_return Error(req, rid, parsed.error());
  config::AliasConfig a;
  a.function_name = fr->name;
  if (Status st = ApplyAliasRequest(*parsed, &a); !st.ok()) co_return Error(req, rid, st);
  const invoke::FunctionEntry* e = ctx_.registry->Find(fr->name);
  if (!e) co_return Error(req, rid, Status::NotFound("Function not found: " + Arn(fr->name)));
  if (Status st = CheckAliasTargets(*e, a, Arn(fr->name)); !st.ok()) co_return Error(req, rid, st);
  const std::string alias_arn = Arn(fr->name, a.name);
  if (e->FindAlias(a.name))
    co_return Error(req, rid, Status::AlreadyExists("Alias already exists: " + alias_arn));
  if (Status st = BeginWrite(fr->name); !st.ok()) co_return Error(req, rid, st);
  const std::string name = fr->name;
  Defer end([&] { EndWrite(name); });
  a.revision_id = NewUuid();
  store::MetadataStore* store = ctx_.store;
  auto create = [store, a]() { return store->CreateAlias(a); };
  Status st = co_await RunBlocking(*ctx_.workers, std::move(create));
  if (st.code() == StatusCode::kAlreadyExists) st = Status::AlreadyExists("Alias already exists: " + alias_arn);
  if (st.code() == StatusCode::kNotFound) st = Status::NotFound("Function not found: " + Arn(name));
  if (!st.ok()) co_return Error(req, rid, st);
  ctx_.registry->PutAlias(a);
  co_return Json(req, rid, 201, RenderAlias(a, ctx_.config->region, ctx_.config->account_id));
}

asio::awaitable<http::Response> LambdaApi::GetAlias(Request& req, const std::string& rid,
                                                    const std::string& ref,
                                                    const std::string& alias) {
  auto fr = ResolveRef(ref, "");
  if (Status st = CheckAliasPath(fr, alias); !st.ok()) co_return Error(req, rid, st);
  auto target = FindAliasTarget(ctx_, fr->name, alias, /*need_alias=*/true);
  if (!target) co_return Error(req, rid, target.error());
  co_return Json(req, rid, 200,
                 RenderAlias(*target->alias, ctx_.config->region, ctx_.config->account_id));
}

asio::awaitable<http::Response> LambdaApi::UpdateAlias(Request& req, const std::string& rid,
                                                       const std::string& ref,
                                                       const std::string& alias) {
  auto fr = ResolveRef(ref, "");
  if (Status st = CheckAliasPath(fr, alias); !st.ok()) co_return Error(req, rid, st);
  auto body = ParseBody(req.body(), /*empty_ok=*/true);
  if (!body) co_return Error(req, rid, body.error());
  auto parsed = ParseAliasRequest(*body, /*create=*/false);
  if (!parsed) co_return Error(req, rid, parsed.error());
  auto target = FindAliasTarget(ctx_, fr->name, alias, /*need_alias=*/true);
  if (!target) co_return Error(req, rid, target.error());
  const invoke::FunctionEntry* e = target->function;
  const config::AliasConfig* current = target->alias;
  if (!parsed->revision_id.empty() && parsed->revision_id != current->revision_id)
    co_return Error(req, rid, RevisionMismatch());
  config::AliasConfig a = *current;
  // Moving the alias to another version without a RoutingConfig keeps the routing, as Lambda;
  // AdditionalVersionWeights={} clears it.
  if (Status st = ApplyAliasRequest(*parsed, &a); !st.ok()) co_return Error(req, rid, st);
  if (Status st = CheckAliasTargets(*e, a, Arn(fr->name)); !st.ok()) co_return Error(req, rid, st);
  if (Status st = BeginWrite(fr->name); !st.ok()) co_return Error(req, rid, st);
  const std::string name = fr->name;
  Defer end([&] { EndWrite(name); });
  const std::string expected = a.revision_id;
  a.revision_id = NewUuid();
  store::MetadataStore* store = ctx_.store;
  auto update = [store, a, expected]() { return store->UpdateAlias(a, expected); };
  Status st = co_await RunBlocking(*ctx_.workers, std::move(update));
  if (st.code() == StatusCode::kFailedPrecondition) st = RevisionMismatch();
  if (!st.ok()) co_return Error(req, rid, st);
  ctx_.registry->PutAlias(a);
  ReprovisionQualifier(name, a.name);  // concurrency_api.cc: follow the alias to its version
  co_return Json(req, rid, 200, RenderAlias(a, ctx_.config->region, ctx_.config->account_id));
}

asio::awaitable<http::Response> LambdaApi::DeleteAlias(Request& req, const std::string& rid,
                                                       const std::string& ref,
                                                       const std::string& alias) {
  auto fr = ResolveRef(ref, "");
  if (Status st = CheckAliasPath(fr, alias); !st.ok()) co_return Error(req, rid, st);
  auto target = FindAliasTarget(ctx_, fr->name, alias, /*need_alias=*/false);
  if (!target) co_return Error(req, rid, target.error());
  if (target->alias) {
    if (Status st = BeginWrite(fr->name); !st.ok()) co_return Error(req, rid, st);
    const std::string name = fr->name;
    Defer end([&] { EndWrite(name); });
    store::MetadataStore* store = ctx_.store;
    auto remove = [store, name, alias]() { return store->DeleteAlias(name, alias); };
    Status st = co_await RunBlocking(*ctx_.workers, std::move(remove));
    if (!st.ok() && st.code() != StatusCode::kNotFound) co_return Error(req, rid, st);
    ctx_.registry->EraseAlias(name, alias);
    co_await ForgetProvisioned(name, alias);  // concurrency_api.cc
  }
  // Deleting an absent alias succeeds, as in Lambda.
  co_return NoContent(req, rid);
}

asio::awaitable<http::Response> LambdaApi::ListAliases(Request& req, const std::string& rid,
                                                       const std::string& ref,
                                                       const std::string& function_version,
                                                       const std::string& marker,
                                                       const std::string& max_items) {
  auto fr = ResolveRef(ref, "");
  if (!fr) co_return Error(req, rid, fr.error());
  int max = 0;
  std::string after;
  if (Status st = ParsePaging(max_items, marker, &max, &after); !st.ok())
    co_return Error(req, rid, st);
  if (!function_version.empty() && function_version != config::kLatest &&
      !AllDigits(function_version)) {
    co_return Error(req, rid,
                    Status::Validation(fmt::format(
                        "1 validation error detected: Value '{}' at 'functionVersion' failed to "
                        "satisfy constraint: Member must satisfy regular expression pattern: "
                        "(\\$LATEST|[0-9]+)",
                        function_version)));
  }
  const invoke::FunctionEntry* e = ctx_.registry->Find(fr->name);
  if (!e) co_return Error(req, rid, Status::NotFound("Function not found: " + Arn(fr->name)));
  json::array items;
  std::string last;
  bool more = false;
  for (auto it = after.empty() ? e->aliases.begin() : e->aliases.upper_bound(after);
       it != e->aliases.end(); ++it) {
    const config::AliasConfig& a = it->second;
    if (!function_version.empty() && a.function_version != function_version &&
        a.additional_version != function_version)
      continue;
    if (static_cast<int>(items.size()) == max) {
      more = true;
      break;
    }
    items.push_back(RenderAlias(a, ctx_.config->region, ctx_.config->account_id));
    last = a.name;
  }
  json::object out{{"Aliases", std::move(items)}};
  if (more) out["NextMarker"] = Base64Encode(last);
  co_return Json(req, rid, 200, out);
}

}  // namespace hearth::api
