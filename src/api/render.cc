#include "api/render.h"

#include <boost/json.hpp>

#include "api/arn.h"
#include "common/encoding.h"

namespace hearth::api {
namespace {

namespace json = boost::json;

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Lambda publishes opaque per-runtime-version hashes; ours is stable per runtime name.
std::string RuntimeVersionArn(std::string_view region, std::string_view runtime) {
  return "arn:aws:lambda:" + std::string(region) + "::runtime:" + HexEncode(Sha256(runtime));
}

ApiError MakeError(int http_status, std::string type, const Status& st,
                   std::string_view fault = "User") {
  return ApiError{.http_status = http_status,
                  .type = std::move(type),
                  .body = json::object{{"Type", fault}, {"message", st.message()}}};
}

}  // namespace

std::string CodeSha256Base64FromHex(std::string_view hex) {
  if (hex.size() % 2 != 0) return "";
  std::string raw;
  raw.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = HexValue(hex[i]);
    int lo = HexValue(hex[i + 1]);
    if (hi < 0 || lo < 0) return "";
    raw.push_back(static_cast<char>((hi << 4) | lo));
  }
  return Base64Encode(raw);
}

json::object RenderFunctionConfiguration(const config::FunctionConfig& c, std::string_view region,
                                         std::string_view account, bool qualified_arn) {
  bool latest = c.version == config::kLatest;
  std::string_view qualifier = (latest && !qualified_arn) ? std::string_view() : c.version;
  json::object o;
  o["FunctionName"] = c.name;
  o["FunctionArn"] = FunctionArn(region, account, c.name, qualifier);
  if (!c.runtime.empty()) o["Runtime"] = c.runtime;
  o["Role"] = c.role;
  if (!c.runtime.empty()) o["Handler"] = c.handler;
  o["CodeSize"] = c.code_size;
  o["Description"] = c.description;
  o["Timeout"] = c.timeout_s;
  o["MemorySize"] = c.memory_mb;
  o["LastModified"] = c.last_modified;
  o["CodeSha256"] = CodeSha256Base64FromHex(c.code_sha256_hex);
  o["Version"] = c.version;
  if (!c.environment.empty()) {
    json::object vars;
    for (const auto& [k, v] : c.environment) vars[k] = v;
    o["Environment"] = json::object{{"Variables", std::move(vars)}};
  }
  o["TracingConfig"] = json::object{{"Mode", c.tracing_mode}};
  o["RevisionId"] = c.revision_id;
  if (!c.layers.empty()) {
    json::array layers;
    for (size_t i = 0; i < c.layers.size(); ++i) {
      const int64_t size = i < c.layer_code_sizes.size() ? c.layer_code_sizes[i] : 0;
      layers.push_back(json::object{{"Arn", c.layers[i]}, {"CodeSize", size}});
    }
    o["Layers"] = std::move(layers);
  }
  o["State"] = c.state;
  o["LastUpdateStatus"] = c.last_update_status;
  o["PackageType"] = c.package_type;
  o["Architectures"] = json::array{json::value(c.architecture)};
  o["EphemeralStorage"] = json::object{{"Size", c.ephemeral_storage_mb}};
  o["SnapStart"] = json::object{{"ApplyOn", "None"}, {"OptimizationStatus", "Off"}};
  o["LoggingConfig"] = json::object{{"LogFormat", "Text"}, {"LogGroup", "/aws/lambda/" + c.name}};
  if (!c.runtime.empty()) {
    o["RuntimeVersionConfig"] =
        json::object{{"RuntimeVersionArn", RuntimeVersionArn(region, c.runtime)}};
  }
  return o;
}

ApiError ToApiError(const Status& st) {
  switch (st.code()) {
    case StatusCode::kInvalidArgument:
      return MakeError(400, "InvalidParameterValueException", st);
    case StatusCode::kValidation:
      return MakeError(400, "ValidationException", st);
    case StatusCode::kInvalidContent:
      return MakeError(400, "InvalidRequestContentException", st);
    case StatusCode::kNotFound:
      if (!st.detail().empty()) return MakeError(404, st.detail(), st);  // a named NotFound
      return ApiError{.http_status = 404,
                      .type = "ResourceNotFoundException",
                      .body = json::object{{"Type", "User"}, {"Message", st.message()}}};
    case StatusCode::kAlreadyExists:
    case StatusCode::kConflict:
      return MakeError(409, "ResourceConflictException", st);
    case StatusCode::kFailedPrecondition:
      return MakeError(412, "PreconditionFailedException", st);
    case StatusCode::kTooLarge:
      return MakeError(413, "RequestTooLargeException", st);
    case StatusCode::kResourceExhausted:
      return ApiError{
          .http_status = 429,
          .type = "TooManyRequestsException",
          .body =
              json::object{{"Reason", st.detail()}, {"Type", "User"}, {"message", st.message()}},
          .retry_after = "1"};
    case StatusCode::kCodeStorageExceeded:
      return MakeError(400, "CodeStorageExceededException", st);
    case StatusCode::kOk:
      return MakeError(500, "ServiceException",
                       Status::Internal("internal error: an OK status was reported as an error"),
                       "Service");
    case StatusCode::kDeadlineExceeded:
    case StatusCode::kUnavailable:
    case StatusCode::kPermissionDenied:
    case StatusCode::kIOError:
    case StatusCode::kInternal:
      break;
  }
  return MakeError(500, "ServiceException", st, "Service");
}

}  // namespace hearth::api
