// Layers (lambda-reference.md §3.5, §4.3-4.5): PublishLayerVersion, GetLayerVersion,
// GetLayerVersionByArn, ListLayers, ListLayerVersions, DeleteLayerVersion, and the resolution of
// a function's Layers (existence, one version per layer, the 250 MB unzipped limit, /opt
// assembly). LambdaApi members; routing is in lambda_api.cc.

#include <fmt/format.h>

#include <boost/json.hpp>
#include <charconv>
#include <filesystem>
#include <map>

#include "api/constraint.h"
#include "api/lambda_api.h"
#include "api/paging.h"
#include "api/render.h"
#include "api/validation.h"
#include "artifacts/opt_assembly.h"
#include "common/blocking.h"
#include "common/encoding.h"

namespace hearth::api {

namespace asio = boost::asio;
namespace json = boost::json;
namespace bhttp = boost::beast::http;
namespace fs = std::filesystem;

namespace {

constexpr int kLayerPageMax = 50;
constexpr int64_t kMaxUnzippedBytes = 262144000;
constexpr size_t kMaxLayerNameLength = 64;
constexpr size_t kMaxCompatibleRuntimes = 15;
constexpr size_t kMaxCompatibleArchitectures = 2;
constexpr size_t kMaxLicenseLength = 512;
constexpr std::string_view kLayerNamePattern =
    R"((arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\d{12}:layer:[a-zA-Z0-9-_]+)|[a-zA-Z0-9-_]+)";
constexpr std::string_view kLayerVersionArnPattern =
    R"(arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\d{12}:layer:[a-zA-Z0-9-_]+:[0-9]+)";

bool IsWord(std::string_view s) {
  return !s.empty() && s.find_first_not_of(
                           "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                           "0123456789-_") == std::string_view::npos;
}
bool IsDigits(std::string_view s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos;
}
std::vector<std::string_view> SplitColons(std::string_view s) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t p = s.find(':', start);
    out.push_back(s.substr(start, p == std::string_view::npos ? p : p - start));
    if (p == std::string_view::npos) break;
    start = p + 1;
  }
  return out;
}

struct LayerArnParts {
  std::string region, account, name;
  int64_t version = 0;  // 0 when the ARN has none
};

// arn:<partition>:lambda:<region>:<account>:layer:<name>[:<version>]
std::optional<LayerArnParts> ParseLayerArn(std::string_view s, bool with_version) {
  auto p = SplitColons(s);
  if (p.size() != (with_version ? 8u : 7u)) return std::nullopt;
  if (p[0] != "arn" || !IsWord(p[1]) || p[2] != "lambda" || !IsWord(p[3]) || p[4].size() != 12 ||
      !IsDigits(p[4]) || p[5] != "layer" || !IsWord(p[6]) || p[6].size() > kMaxLayerNameLength) {
    return std::nullopt;
  }
  LayerArnParts out{std::string(p[3]), std::string(p[4]), std::string(p[6])};
  if (with_version) {
    if (!IsDigits(p[7]) || p[7].size() > 15) return std::nullopt;
    std::from_chars(p[7].data(), p[7].data() + p[7].size(), out.version);
  }
  return out;
}

// The {LayerName} of a path: a name or an unversioned layer ARN of this region and account.
Result<std::string> ParseLayerName(std::string_view text, std::string_view region,
                                   std::string_view account) {
  if (text.size() > 140 ||
      (!text.starts_with("arn:") && (!IsWord(text) || text.size() > kMaxLayerNameLength))) {
    return std::unexpected(ConstraintError(
        text, "layerName", text.size() > 140 ? MaxLength(140) : Pattern(kLayerNamePattern)));
  }
  if (!text.starts_with("arn:")) return std::string(text);
  auto parts = ParseLayerArn(text, false);
  if (!parts)
    return std::unexpected(ConstraintError(text, "layerName", Pattern(kLayerNamePattern)));
  if (parts->region != region || parts->account != account) {
    return std::unexpected(Status::InvalidArgument(
        fmt::format("Layer ARN {} is not in region {} of account {}.", text, region, account)));
  }
  return parts->name;
}

Result<int64_t> ParseVersionNumber(std::string_view text) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p != text.data() + text.size() || v < 1) {
    return std::unexpected(Status::InvalidContent(
        fmt::format("Could not parse request: versionNumber '{}' is not a number", text)));
  }
  return v;
}

// The {LayerName} and {VersionNumber} of a path (GetLayerVersion, DeleteLayerVersion).
struct LayerVersionPath {
  std::string name;
  int64_t version = 0;
};

Result<LayerVersionPath> ParseLayerVersionPath(std::string_view layer, std::string_view version,
                                               std::string_view region, std::string_view account) {
  auto name = ParseLayerName(layer, region, account);
  if (!name) return std::unexpected(name.error());
  auto number = ParseVersionNumber(version);
  if (!number) return std::unexpected(number.error());
  return LayerVersionPath{std::move(*name), *number};
}

Result<int> ParseMaxItems(const std::string& max_items) {
  if (max_items.empty()) return kLayerPageMax;
  int v = 0;
  auto [p, ec] = std::from_chars(max_items.data(), max_items.data() + max_items.size(), v);
  if (ec != std::errc() || p != max_items.data() + max_items.size() || v < 1 || v > kLayerPageMax) {
    return std::unexpected(
        ConstraintError(max_items, "maxItems", v < 1 ? MinValue(1) : MaxValue(kLayerPageMax)));
  }
  return v;
}

// The enums of CompatibleRuntimes and CompatibleArchitectures, with Lambda's constraint text.
constexpr std::string_view kRuntimeEnum = "Member must satisfy enum value set of the Runtime type";
constexpr std::string_view kArchitectureEnum = "Member must satisfy enum value set: [x86_64, arm64]";
bool IsKnownArchitecture(std::string_view arch) { return arch == "x86_64" || arch == "arm64"; }

Status CheckRuntimeFilter(const std::string& runtime, const std::string& arch) {
  if (!runtime.empty() && !IsKnownRuntime(runtime)) {
    return ConstraintError(runtime, "compatibleRuntime", kRuntimeEnum);
  }
  if (!arch.empty() && !IsKnownArchitecture(arch)) {
    return ConstraintError(arch, "compatibleArchitecture", kArchitectureEnum);
  }
  return Status::Ok();
}

bool Matches(const store::LayerVersion& lv, const std::string& runtime, const std::string& arch) {
  auto has = [](const std::vector<std::string>& v, const std::string& x) {
    return std::find(v.begin(), v.end(), x) != v.end();
  };
  if (!runtime.empty() && !has(lv.compatible_runtimes, runtime)) return false;
  if (!arch.empty() && !has(lv.compatible_architectures, arch)) return false;
  return true;
}

// A function's Layers names a version that does not exist (InvalidParameterValueException).
Status LayerVersionMissing(std::string_view arn) {
  return Status::InvalidArgument(fmt::format("Layer version {} does not exist.", arn));
}

// GetLayerVersion(ByArn) of a version that does not exist (ResourceNotFoundException).
Status LayerVersionNotFound(std::string_view arn) {
  return Status::NotFound(fmt::format("Layer version {} does not exist.", arn));
}

// Publish body members (strings and string lists), checked as Lambda's model does.
struct PublishRequest {
  std::string description, license;
  std::vector<std::string> runtimes, architectures;
  std::string zip;
};

Result<std::vector<std::string>> StringList(const json::object& o, std::string_view key) {
  std::vector<std::string> out;
  const json::value* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) return out;
  if (!v->is_array()) {
    return std::unexpected(Status::InvalidContent(
        fmt::format("Could not parse request body into json: member '{}' must be a list", key)));
  }
  for (const auto& item : v->as_array()) {
    if (!item.is_string()) {
      return std::unexpected(Status::InvalidContent(fmt::format(
          "Could not parse request body into json: member '{}' must be a list of strings", key)));
    }
    out.emplace_back(item.as_string());
  }
  return out;
}

// A list of enum values (CompatibleRuntimes, CompatibleArchitectures; `field` names it in errors):
// at most `max` items, each `known` (`enum_rule` is the constraint it breaks otherwise).
Result<std::vector<std::string>> EnumList(const json::object& o, std::string_view key,
                                          std::string_view field, size_t max,
                                          bool (*known)(std::string_view),
                                          std::string_view enum_rule) {
  auto items = StringList(o, key);
  if (!items) return std::unexpected(items.error());
  if (items->size() > max) {
    return std::unexpected(
        ConstraintError(fmt::format("[{}]", fmt::join(*items, ", ")), field,
                        fmt::format("Member must have length less than or equal to {}", max)));
  }
  for (const auto& item : *items) {
    if (!known(item)) {
      return std::unexpected(ConstraintError(fmt::format("[{}]", fmt::join(*items, ", ")), field,
                                             fmt::format("Member must satisfy constraint: [{}]",
                                                         enum_rule)));
    }
  }
  return items;
}

Result<PublishRequest> ParsePublish(std::string_view body) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec || !v.is_object()) {
    return std::unexpected(Status::InvalidContent(
        "Could not parse request body into json: " +
        (ec ? ec.message() : std::string("the request body must be a JSON object"))));
  }
  const json::object& o = v.as_object();
  PublishRequest r;
  for (auto [key, out] :
       {std::pair{"Description", &r.description}, std::pair{"LicenseInfo", &r.license}}) {
    const json::value* m = o.if_contains(key);
    if (m == nullptr || m->is_null()) continue;
    if (!m->is_string()) {
      return std::unexpected(Status::InvalidContent(fmt::format(
          "Could not parse request body into json: member '{}' has the wrong type", key)));
    }
    *out = std::string(m->as_string());
  }
  if (r.description.size() > kMaxDescriptionLength)
    return std::unexpected(
        ConstraintError(r.description, "description", MaxLength(kMaxDescriptionLength)));
  if (r.license.size() > kMaxLicenseLength)
    return std::unexpected(ConstraintError(r.license, "licenseInfo", MaxLength(kMaxLicenseLength)));
  auto runtimes = EnumList(o, "CompatibleRuntimes", "compatibleRuntimes",
                           kMaxCompatibleRuntimes, IsKnownRuntime, kRuntimeEnum);
  if (!runtimes) return std::unexpected(runtimes.error());
  r.runtimes = std::move(*runtimes);
  auto archs = EnumList(o, "CompatibleArchitectures", "compatibleArchitectures",
                        kMaxCompatibleArchitectures, IsKnownArchitecture, kArchitectureEnum);
  if (!archs) return std::unexpected(archs.error());
  r.architectures = std::move(*archs);
  const json::value* content = o.if_contains("Content");
  if (content == nullptr || content->is_null()) return std::unexpected(NullError("content"));
  if (!content->is_object()) {
    return std::unexpected(Status::InvalidContent(
        "Could not parse request body into json: member 'Content' must be an object"));
  }
  const json::object& c = content->as_object();
  for (std::string_view key : {"S3Bucket", "S3Key", "S3ObjectVersion"}) {
    if (c.if_contains(key) != nullptr) {
      return std::unexpected(
          Status::InvalidArgument("Hearth supports only ZipFile layer uploads; " +
                                  std::string(key) + " (S3 code sources) is not supported."));
    }
  }
  const json::value* zip = c.if_contains("ZipFile");
  if (zip == nullptr || zip->is_null()) {
    return std::unexpected(Status::InvalidArgument("Please provide a source for layer code."));
  }
  if (!zip->is_string()) {
    return std::unexpected(Status::InvalidContent(
        "Could not parse request body into json: member 'ZipFile' has the wrong type"));
  }
  auto bytes = Base64Decode(zip->as_string());
  if (!bytes)
    return std::unexpected(Status::InvalidContent("Could not decode ZipFile: invalid base64"));
  r.zip = std::move(*bytes);
  return r;
}

}  // namespace

std::string LambdaApi::LayerArn(const std::string& name, int64_t version) const {
  std::string arn = fmt::format("arn:aws:lambda:{}:{}:layer:{}", ctx_.config->region,
                                ctx_.config->account_id, name);
  if (version > 0) arn += fmt::format(":{}", version);
  return arn;
}

json::object LambdaApi::RenderLayerVersion(const Request& req, const store::LayerVersion& lv,
                                           bool with_content) const {
  json::object o;
  if (with_content) {
    std::string host(req[bhttp::field::host]);
    if (host.empty())
      host = fmt::format("{}:{}", ctx_.config->listen_host, ctx_.config->listen_port);
    o["Content"] = json::object{
        {"Location", fmt::format("http://{}/hearth/v1/code/{}", host, lv.code_sha256_hex)},
        {"CodeSha256", CodeSha256Base64FromHex(lv.code_sha256_hex)},
        {"CodeSize", lv.code_size}};
    o["LayerArn"] = LayerArn(lv.layer_name);
  }
  o["LayerVersionArn"] = LayerArn(lv.layer_name, lv.version);
  o["Description"] = lv.description;
  o["CreatedDate"] = lv.created_date;
  o["Version"] = lv.version;
  if (!lv.compatible_runtimes.empty()) {
    json::array a;
    for (const auto& r : lv.compatible_runtimes) a.emplace_back(r);
    o["CompatibleRuntimes"] = std::move(a);
  }
  if (!lv.compatible_architectures.empty()) {
    json::array a;
    for (const auto& r : lv.compatible_architectures) a.emplace_back(r);
    o["CompatibleArchitectures"] = std::move(a);
  }
  if (!lv.license_info.empty()) o["LicenseInfo"] = lv.license_info;
  return o;
}

asio::awaitable<Result<fs::path>> LambdaApi::ResolveLayers(config::FunctionConfig& cfg,
                                                           bool allow_deleted) {
  cfg.layer_code_sizes.clear();
  cfg.layer_digests.clear();
  if (cfg.layers.empty()) co_return fs::path();
  // Pure checks first: the ARNs' scope and one version per layer.
  std::vector<LayerArnParts> parts;
  std::map<std::string, std::string> seen;  // layer ARN -> the first version ARN naming it
  for (const std::string& arn : cfg.layers) {
    auto p = ParseLayerArn(arn, true);
    if (!p || p->region != ctx_.config->region || p->account != ctx_.config->account_id)
      co_return std::unexpected(LayerVersionMissing(arn));
    auto [it, fresh] = seen.emplace(LayerArn(p->name), arn);
    if (!fresh) {
      co_return std::unexpected(Status::InvalidArgument(fmt::format(
          "Two different versions of the same layer are not allowed to be referenced in the same "
          "function. {} and {} are versions of the same layer.",
          it->second, arn)));
    }
    parts.push_back(*p);
  }
  store::MetadataStore* store = ctx_.store;
  artifacts::CodeStore* code = ctx_.code;
  const fs::path opt_root = fs::absolute(ctx_.config->data_dir) / "opt";
  const std::vector<std::string> arns = cfg.layers;
  const int64_t function_unzipped = cfg.code_size_unzipped;
  struct Resolved {
    std::vector<int64_t> sizes;
    std::vector<std::string> digests;
    fs::path opt_dir;
  };
  auto resolve = [store, code, opt_root, arns, parts, function_unzipped,
                  allow_deleted]() -> Result<Resolved> {
    Resolved out;
    std::vector<fs::path> dirs;
    int64_t total = function_unzipped;
    for (size_t i = 0; i < parts.size(); ++i) {
      auto lv = store->GetLayerVersion(parts[i].name, parts[i].version, allow_deleted);
      if (!lv) {
        if (lv.error().code() == StatusCode::kNotFound)
          return std::unexpected(LayerVersionMissing(arns[i]));
        return std::unexpected(lv.error());
      }
      auto stored = code->Get(lv->code_sha256_hex);
      if (!stored) return std::unexpected(stored.error());
      total += lv->unzipped_size;
      out.sizes.push_back(lv->code_size);
      out.digests.push_back(lv->code_sha256_hex);
      dirs.push_back(stored->dir);
    }
    if (total > kMaxUnzippedBytes) {
      return std::unexpected(Status::InvalidArgument(fmt::format(
          "Function code combined with layers exceeds the maximum allowed size of {} bytes. The "
          "actual size is {} bytes.",
          kMaxUnzippedBytes, total)));
    }
    auto opt = artifacts::AssembleOpt(opt_root, dirs, out.digests);
    if (!opt) return std::unexpected(opt.error());
    out.opt_dir = std::move(*opt);
    return out;
  };
  auto resolved = co_await RunBlocking(*ctx_.workers, std::move(resolve));
  if (!resolved) co_return std::unexpected(resolved.error());
  cfg.layer_code_sizes = std::move(resolved->sizes);
  cfg.layer_digests = std::move(resolved->digests);
  co_return std::move(resolved->opt_dir);
}

asio::awaitable<http::Response> LambdaApi::PublishLayerVersion(Request& req, const std::string& rid,
                                                               const std::string& layer) {
  auto name = ParseLayerName(layer, ctx_.config->region, ctx_.config->account_id);
  if (!name) co_return Error(req, rid, name.error());
  std::string body = std::move(req.body());
  store::MetadataStore* store = ctx_.store;
  artifacts::CodeStore* code = ctx_.code;
  const int64_t limit = ctx_.config->code_storage_limit_bytes;
  const std::string layer_name = *name;
  const std::string created = FormatLambdaTimestamp(ctx_.clock->Now());
  auto publish = [store, code, limit, layer_name, created,
                  body = std::move(body)]() -> Result<store::LayerVersion> {
    auto parsed = ParsePublish(body);
    if (!parsed) return std::unexpected(parsed.error());
    auto usage = store->GetUsage();
    if (!usage) return std::unexpected(usage.error());
    if (usage->total_code_size + static_cast<int64_t>(parsed->zip.size()) > limit) {
      return std::unexpected(Status(StatusCode::kCodeStorageExceeded,
                                    fmt::format("Code storage limit exceeded ({} bytes).", limit)));
    }
    auto stored = code->Put(parsed->zip);
    if (!stored) return std::unexpected(stored.error());
    store::LayerVersion lv;
    lv.layer_name = layer_name;
    lv.description = std::move(parsed->description);
    lv.compatible_runtimes = std::move(parsed->runtimes);
    lv.compatible_architectures = std::move(parsed->architectures);
    lv.license_info = std::move(parsed->license);
    lv.code_sha256_hex = stored->sha256_hex;
    lv.code_size = stored->zip_size;
    lv.unzipped_size = stored->unzipped_size;
    lv.created_date = created;
    return store->PublishLayerVersion(lv);
  };
  auto published = co_await RunBlocking(*ctx_.workers, std::move(publish));
  if (!published) co_return Error(req, rid, published.error());
  co_return Json(req, rid, 201, RenderLayerVersion(req, *published, true));
}

asio::awaitable<http::Response> LambdaApi::GetLayerVersion(Request& req, const std::string& rid,
                                                           const std::string& layer,
                                                           const std::string& version) {
  auto path = ParseLayerVersionPath(layer, version, ctx_.config->region, ctx_.config->account_id);
  if (!path) co_return Error(req, rid, path.error());
  const std::string layer_name = path->name;
  const int64_t n = path->version;
  co_return co_await GetLayerVersionNumber(req, rid, layer_name, n);
}

asio::awaitable<http::Response> LambdaApi::GetLayerVersionByArn(Request& req,
                                                                const std::string& rid,
                                                                const std::string& arn) {
  auto parts = ParseLayerArn(arn, true);
  if (!parts || arn.size() > 140) {
    co_return Error(
        req, rid,
        ConstraintError(arn, "arn",
                        arn.size() > 140 ? MaxLength(140) : Pattern(kLayerVersionArnPattern)));
  }
  if (parts->region != ctx_.config->region || parts->account != ctx_.config->account_id)
    co_return Error(req, rid, LayerVersionNotFound(arn));
  const std::string layer_name = parts->name;
  const int64_t version = parts->version;
  co_return co_await GetLayerVersionNumber(req, rid, layer_name, version);
}

asio::awaitable<http::Response> LambdaApi::GetLayerVersionNumber(Request& req,
                                                                 const std::string& rid,
                                                                 const std::string& layer_name,
                                                                 int64_t version) {
  store::MetadataStore* store = ctx_.store;
  auto get = [store, layer_name, version]() {
    return store->GetLayerVersion(layer_name, version, false);
  };
  auto lv = co_await RunBlocking(*ctx_.workers, std::move(get));
  if (!lv && lv.error().code() == StatusCode::kNotFound)
    co_return Error(req, rid, LayerVersionNotFound(LayerArn(layer_name, version)));
  if (!lv) co_return Error(req, rid, lv.error());
  co_return Json(req, rid, 200, RenderLayerVersion(req, *lv, true));
}

asio::awaitable<http::Response> LambdaApi::ListLayers(Request& req, const std::string& rid,
                                                      const std::string& runtime,
                                                      const std::string& arch,
                                                      const std::string& marker,
                                                      const std::string& max_items) {
  if (Status st = CheckRuntimeFilter(runtime, arch); !st.ok()) co_return Error(req, rid, st);
  auto max = ParseMaxItems(max_items);
  if (!max) co_return Error(req, rid, max.error());
  std::string after;
  if (!marker.empty()) {
    auto key = DecodeMarker(marker);
    if (!key) co_return Error(req, rid, key.error());
    after = std::move(*key);
  }
  store::MetadataStore* store = ctx_.store;
  auto list = [store]() { return store->ListAllLayerVersions(); };
  auto all = co_await RunBlocking(*ctx_.workers, std::move(list));
  if (!all) co_return Error(req, rid, all.error());
  // Newest matching version of each layer, in name order.
  json::array layers;
  std::string last_name, last_emitted;
  bool more = false;
  for (const auto& lv : *all) {
    if (lv.layer_name <= after || lv.layer_name == last_name) continue;
    if (!Matches(lv, runtime, arch)) continue;
    last_name = lv.layer_name;
    if (static_cast<int>(layers.size()) == *max) {
      more = true;
      break;
    }
    layers.push_back(json::object{{"LayerName", lv.layer_name},
                                  {"LayerArn", LayerArn(lv.layer_name)},
                                  {"LatestMatchingVersion", RenderLayerVersion(req, lv, false)}});
    last_emitted = lv.layer_name;
  }
  json::object out{{"Layers", std::move(layers)}};
  if (more) out["NextMarker"] = Base64Encode(last_emitted);
  co_return Json(req, rid, 200, out);
}

asio::awaitable<http::Response> LambdaApi::ListLayerVersions(
    Request& req, const std::string& rid, const std::string& layer, const std::string& runtime,
    const std::string& arch, const std::string& marker, const std::string& max_items) {
  auto name = ParseLayerName(layer, ctx_.config->region, ctx_.config->account_id);
  if (!name) co_return Error(req, rid, name.error());
  if (Status st = CheckRuntimeFilter(runtime, arch); !st.ok()) co_return Error(req, rid, st);
  auto max = ParseMaxItems(max_items);
  if (!max) co_return Error(req, rid, max.error());
  int64_t before = 0;  // versions strictly below this number (0: from the newest)
  if (!marker.empty()) {
    auto decoded = Base64Decode(marker);
    int64_t v = 0;
    if (decoded) std::from_chars(decoded->data(), decoded->data() + decoded->size(), v);
    if (v < 1) co_return Error(req, rid, Status::InvalidArgument("Invalid Marker: " + marker));
    before = v;
  }
  store::MetadataStore* store = ctx_.store;
  const std::string layer_name = *name;
  auto list = [store, layer_name]() { return store->ListLayerVersions(layer_name); };
  auto versions = co_await RunBlocking(*ctx_.workers, std::move(list));
  if (!versions) co_return Error(req, rid, versions.error());
  json::array items;
  int64_t last = 0;
  bool more = false;
  for (const auto& lv : *versions) {
    if (before != 0 && lv.version >= before) continue;
    if (!Matches(lv, runtime, arch)) continue;
    if (static_cast<int>(items.size()) == *max) {
      more = true;
      break;
    }
    items.push_back(RenderLayerVersion(req, lv, false));
    last = lv.version;
  }
  json::object out{{"LayerVersions", std::move(items)}};
  if (more) out["NextMarker"] = Base64Encode(std::to_string(last));
  co_return Json(req, rid, 200, out);
}

asio::awaitable<http::Response> LambdaApi::DeleteLayerVersion(Request& req, const std::string& rid,
                                                              const std::string& layer,
                                                              const std::string& version) {
  auto path = ParseLayerVersionPath(layer, version, ctx_.config->region, ctx_.config->account_id);
  if (!path) co_return Error(req, rid, path.error());
  store::MetadataStore* store = ctx_.store;
  const std::string layer_name = path->name;
  const int64_t n = path->version;
  // Functions using it keep working: their /opt trees and the code they link stay.
  auto remove = [store, layer_name, n]() { return store->DeleteLayerVersion(layer_name, n); };
  Status st = co_await RunBlocking(*ctx_.workers, std::move(remove));
  if (!st.ok()) co_return Error(req, rid, st);
  co_return NoContent(req, rid);
}

}  // namespace hearth::api
