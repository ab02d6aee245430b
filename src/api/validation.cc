#include "api/validation.h"

#include <algorithm>
#include <boost/json.hpp>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "api/arn.h"
#include "api/constraint.h"
#include "common/encoding.h"

namespace hearth::api {
namespace {

namespace json = boost::json;

// The Lambda model's Runtime enum, in the model's order (AWS lists it this way in messages).
constexpr std::string_view kRuntimes[] = {
    "nodejs",     "nodejs4.3",       "nodejs6.10",     "nodejs8.10",    "nodejs10.x",
    "nodejs12.x", "nodejs14.x",      "nodejs16.x",     "java8",         "java8.al2",
    "java11",     "python2.7",       "python3.6",      "python3.7",     "python3.8",
    "python3.9",  "dotnetcore1.0",   "dotnetcore2.0",  "dotnetcore2.1", "dotnetcore3.1",
    "dotnet6",    "dotnet8",         "nodejs4.3-edge", "go1.x",         "ruby2.5",
    "ruby2.7",    "provided",        "provided.al2",   "nodejs18.x",    "python3.10",
    "java17",     "ruby3.2",         "ruby3.3",        "ruby3.4",       "python3.11",
    "nodejs20.x", "provided.al2023", "python3.12",     "java21",        "python3.13",
    "nodejs22.x", "nodejs24.x",      "python3.14",     "java25",        "dotnet10",
    "ruby4.0",
};

// Runtimes Lambda refuses for create and update ("block function create/update" long passed).
// Those still merely deprecated are accepted; whether Hearth can run one is decided later.
constexpr std::string_view kBlockedRuntimes[] = {
    "nodejs",        "nodejs4.3",     "nodejs4.3-edge", "nodejs6.10", "nodejs8.10", "nodejs10.x",
    "nodejs12.x",    "nodejs14.x",    "python2.7",      "python3.6",  "python3.7",  "dotnetcore1.0",
    "dotnetcore2.0", "dotnetcore2.1", "dotnetcore3.1",  "ruby2.5",    "provided",
};

// lambda-reference.md §3.2 "Reserved".
constexpr std::string_view kReservedEnvKeys[] = {
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
};

constexpr std::string_view kRolePattern =
    R"(arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+)";
constexpr std::string_view kHandlerPattern = R"([^\s]+)";
constexpr std::string_view kEnvNamePattern = "[a-zA-Z]([a-zA-Z0-9_])+";
constexpr std::string_view kLayerArnPattern =
    R"(arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\d{12}:layer:[a-zA-Z0-9-_]+:[0-9]+)";
constexpr size_t kMaxLayerArnLength = 140;
constexpr std::string_view kRolePathChars = "+=,.@-_/";  // beside letters and digits

constexpr std::string_view kBadJsonPrefix = "Could not parse request body into json: ";

bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool AllOf(std::string_view s, bool (*pred)(char)) { return std::all_of(s.begin(), s.end(), pred); }

template <size_t N>
bool Contains(const std::string_view (&set)[N], std::string_view s) {
  return std::find(std::begin(set), std::end(set), s) != std::end(set);
}

template <class Range>
std::string Join(const Range& items, std::string_view sep) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out.append(sep);
    out.append(item);
  }
  return out;
}

std::string EnumConstraint(std::string_view values) {
  return "Member must satisfy enum value set: [" + std::string(values) + "]";
}

// ---- JSON typing: wrong types are InvalidRequestContentException ----

std::string_view KindName(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      return "null";
    case json::kind::bool_:
      return "a boolean";
    case json::kind::int64:
    case json::kind::uint64:
    case json::kind::double_:
      return "a number";
    case json::kind::string:
      return "a string";
    case json::kind::array:
      return "an array";
    case json::kind::object:
      return "an object";
  }
  return "a value";
}

Status TypeError(std::string_view member, std::string_view want, const json::value& got) {
  std::string m(kBadJsonPrefix);
  m.append("member '").append(member).append("' must be ").append(want).append(", got ");
  m.append(KindName(got));
  return Status::InvalidContent(std::move(m));
}

// nullptr when the member is absent or JSON null (both mean "not given").
const json::value* Member(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return (v == nullptr || v->is_null()) ? nullptr : v;
}

Result<std::string_view> AsString(const json::value& v, std::string_view member) {
  if (const json::string* s = v.if_string()) return std::string_view(*s);
  return std::unexpected(TypeError(member, "a string", v));
}

Result<bool> AsBool(const json::value& v, std::string_view member) {
  if (const bool* b = v.if_bool()) return *b;
  return std::unexpected(TypeError(member, "a boolean", v));
}

Result<const json::object*> AsObject(const json::value& v, std::string_view member) {
  if (const json::object* o = v.if_object()) return o;
  return std::unexpected(TypeError(member, "an object", v));
}

Result<const json::array*> AsArray(const json::value& v, std::string_view member) {
  if (const json::array* a = v.if_array()) return a;
  return std::unexpected(TypeError(member, "an array", v));
}

// Integral JSON numbers (1, 1.0); huge values saturate so the range check reports them.
Result<int64_t> AsInteger(const json::value& v, std::string_view member) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  if (const int64_t* i = v.if_int64()) return *i;
  if (const uint64_t* u = v.if_uint64()) return *u > static_cast<uint64_t>(kMax) ? kMax : *u;
  if (const double* d = v.if_double()) {
    if (std::isfinite(*d) && std::trunc(*d) == *d) {
      if (*d >= 9.2e18) return kMax;
      if (*d <= -9.2e18) return std::numeric_limits<int64_t>::min();
      return static_cast<int64_t>(*d);
    }
  }
  return std::unexpected(TypeError(member, "an integer", v));
}

Result<int> BoundedInt(const json::value& v, std::string_view member, std::string_view field,
                       int min, int max) {
  Result<int64_t> n = AsInteger(v, member);
  if (!n) return std::unexpected(n.error());
  if (*n < min) return std::unexpected(ConstraintError(std::to_string(*n), field, MinValue(min)));
  if (*n > max) return std::unexpected(ConstraintError(std::to_string(*n), field, MaxValue(max)));
  return static_cast<int>(*n);
}

// ---- Shared field validators: one per request member, used by create and update ----

// arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+
bool IsRoleArn(std::string_view s) {
  if (!s.starts_with("arn:")) return false;
  s.remove_prefix(4);
  size_t colon = s.find(':');
  if (colon == std::string_view::npos) return false;
  std::string_view partition = s.substr(0, colon);
  if (!partition.empty() &&
      (!partition.starts_with("aws") ||
       !AllOf(partition.substr(3), [](char c) { return IsAlpha(c) || c == '-'; }))) {
    return false;
  }
  s.remove_prefix(colon + 1);
  if (!s.starts_with("iam::")) return false;
  s.remove_prefix(5);
  if (s.size() < 12 || !AllOf(s.substr(0, 12), IsDigit)) return false;
  s.remove_prefix(12);
  if (!s.starts_with(":role")) return false;
  s.remove_prefix(5);
  return !s.empty() && AllOf(s, [](char c) {
    return IsAlpha(c) || IsDigit(c) || kRolePathChars.find(c) != std::string_view::npos;
  });
}

// arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\d{12}:layer:[a-zA-Z0-9-_]+:[0-9]+
bool IsLayerVersionArn(std::string_view s) {
  if (s.empty() || s.size() > kMaxLayerArnLength) return false;
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (size_t pos; (pos = s.find(':', start)) != std::string_view::npos; start = pos + 1) {
    parts.push_back(s.substr(start, pos - start));
  }
  parts.push_back(s.substr(start));
  if (parts.size() != 8) return false;
  auto word = [](std::string_view w, bool underscore) {
    return !w.empty() && std::all_of(w.begin(), w.end(), [&](char c) {
      return IsAlpha(c) || IsDigit(c) || c == '-' || (underscore && c == '_');
    });
  };
  return parts[0] == "arn" && word(parts[1], false) && parts[2] == "lambda" &&
         word(parts[3], false) && parts[4].size() == 12 && AllOf(parts[4], IsDigit) &&
         parts[5] == "layer" && word(parts[6], true) && !parts[7].empty() &&
         AllOf(parts[7], IsDigit);
}

Status ApplyRole(const json::value& v, config::FunctionConfig* cfg) {
  Result<std::string_view> s = AsString(v, "Role");
  if (!s) return s.error();
  if (!IsRoleArn(*s)) return ConstraintError(*s, "role", Pattern(kRolePattern));
  cfg->role = std::string(*s);
  return Status::Ok();
}

Status ApplyHandler(const json::value& v, config::FunctionConfig* cfg) {
  Result<std::string_view> s = AsString(v, "Handler");
  if (!s) return s.error();
  if (s->size() > kMaxHandlerLength) {
    return ConstraintError(*s, "handler", MaxLength(kMaxHandlerLength));
  }
  bool has_space = std::any_of(s->begin(), s->end(), [](char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
  });
  if (s->empty() || has_space) return ConstraintError(*s, "handler", Pattern(kHandlerPattern));
  cfg->handler = std::string(*s);
  return Status::Ok();
}

Status ApplyDescription(const json::value& v, config::FunctionConfig* cfg) {
  Result<std::string_view> s = AsString(v, "Description");
  if (!s) return s.error();
  if (s->size() > kMaxDescriptionLength) {
    return ConstraintError(*s, "description", MaxLength(kMaxDescriptionLength));
  }
  cfg->description = std::string(*s);
  return Status::Ok();
}

Status ApplyTimeout(const json::value& v, config::FunctionConfig* cfg) {
  Result<int> n = BoundedInt(v, "Timeout", "timeout", kMinTimeoutS, kMaxTimeoutS);
  if (!n) return n.error();
  cfg->timeout_s = *n;
  return Status::Ok();
}

Status ApplyMemorySize(const json::value& v, config::FunctionConfig* cfg) {
  Result<int> n = BoundedInt(v, "MemorySize", "memorySize", kMinMemoryMb, kMaxMemoryMb);
  if (!n) return n.error();
  cfg->memory_mb = *n;
  return Status::Ok();
}

Status ApplyEphemeralStorage(const json::value& v, config::FunctionConfig* cfg) {
  Result<const json::object*> o = AsObject(v, "EphemeralStorage");
  if (!o) return o.error();
  const json::value* size = Member(**o, "Size");
  if (size == nullptr) return NullError("ephemeralStorage.size");
  Result<int> n = BoundedInt(*size, "EphemeralStorage.Size", "ephemeralStorage.size",
                             kMinEphemeralStorageMb, kMaxEphemeralStorageMb);
  if (!n) return n.error();
  cfg->ephemeral_storage_mb = *n;
  return Status::Ok();
}

Status ApplyRuntime(const json::value& v, config::FunctionConfig* cfg) {
  Result<std::string_view> s = AsString(v, "Runtime");
  if (!s) return s.error();
  if (!IsKnownRuntime(*s)) {
    return ConstraintError(*s, "runtime", EnumConstraint(Join(kRuntimes, ", ")));
  }
  if (Contains(kBlockedRuntimes, *s)) {
    return Status::InvalidArgument(
        "The runtime parameter of " + std::string(*s) +
        " is no longer supported for creating or updating AWS Lambda functions. We recommend you "
        "use a supported runtime while creating or updating functions.");
  }
  cfg->runtime = std::string(*s);
  return Status::Ok();
}

Status ApplyEnvironment(const json::value& v, config::FunctionConfig* cfg) {
  Result<const json::object*> env = AsObject(v, "Environment");
  if (!env) return env.error();
  std::map<std::string, std::string> vars;
  json::object measured;  // the map as the request gave it, for the 4 KB measurement
  if (const json::value* vv = Member(**env, "Variables")) {
    Result<const json::object*> o = AsObject(*vv, "Environment.Variables");
    if (!o) return o.error();
    for (const auto& [key, value] : **o) {
      Result<std::string_view> s = AsString(value, "Environment.Variables." + std::string(key));
      if (!s) return s.error();
      vars[std::string(key)] = std::string(*s);
      measured[key] = *s;
    }
  }
  for (const auto& [key, value] : vars) {
    bool ok = key.size() >= 2 && IsAlpha(key[0]) &&
              AllOf(std::string_view(key).substr(1),
                    [](char c) { return IsAlpha(c) || IsDigit(c) || c == '_'; });
    if (!ok) {
      return SensitiveConstraintError(
          "environment.variables",
          "Map keys must satisfy constraint: [" + Pattern(kEnvNamePattern) + "]");
    }
  }
  std::vector<std::string> reserved;
  for (const auto& [key, value] : measured) {
    if (Contains(kReservedEnvKeys, key)) reserved.emplace_back(key);
  }
  if (!reserved.empty()) {
    return Status::InvalidArgument(
        "Lambda was unable to configure your environment variables because the environment "
        "variables you have provided contains reserved keys that are currently not supported "
        "for modification. Reserved keys used in this request: " +
        Join(reserved, ", "));
  }
  std::string serialized = json::serialize(measured);
  if (serialized.size() > kMaxEnvironmentBytes) {
    return Status::InvalidArgument(
        "Lambda was unable to configure your environment variables because the environment "
        "variables you have provided exceeded the 4KB limit. String measured: " +
        serialized);
  }
  cfg->environment = std::move(vars);
  return Status::Ok();
}

Status ApplyTracingConfig(const json::value& v, config::FunctionConfig* cfg) {
  Result<const json::object*> o = AsObject(v, "TracingConfig");
  if (!o) return o.error();
  const json::value* mode = Member(**o, "Mode");
  if (mode == nullptr) return Status::Ok();
  Result<std::string_view> s = AsString(*mode, "TracingConfig.Mode");
  if (!s) return s.error();
  if (*s != "Active" && *s != "PassThrough") {
    return ConstraintError(*s, "tracingConfig.mode", EnumConstraint("Active, PassThrough"));
  }
  cfg->tracing_mode = std::string(*s);
  return Status::Ok();
}

Status ApplyLayers(const json::value& v, config::FunctionConfig* cfg) {
  Result<const json::array*> a = AsArray(v, "Layers");
  if (!a) return a.error();
  std::vector<std::string> layers;
  for (const json::value& item : **a) {
    Result<std::string_view> s = AsString(item, "Layers[]");
    if (!s) return s.error();
    layers.emplace_back(*s);
  }
  for (const std::string& arn : layers) {
    if (!IsLayerVersionArn(arn)) {
      return ConstraintError("[" + Join(layers, ", ") + "]", "layers",
                             "Member must satisfy constraint: [" + MaxLength(kMaxLayerArnLength) +
                                 ", " + MinLength(1) + ", " + Pattern(kLayerArnPattern) + "]");
    }
  }
  if (layers.size() > kMaxLayers) {
    return Status::InvalidArgument("Cannot reference more than 5 layers.");
  }
  cfg->layers = std::move(layers);
  return Status::Ok();
}

// Architectures: exactly one of x86_64 | arm64. Used by CreateFunction and UpdateFunctionCode.
Result<std::string> ParseArchitectures(const json::value& v) {
  Result<const json::array*> a = AsArray(v, "Architectures");
  if (!a) return std::unexpected(a.error());
  std::vector<std::string> items;
  for (const json::value& item : **a) {
    Result<std::string_view> s = AsString(item, "Architectures[]");
    if (!s) return std::unexpected(s.error());
    items.emplace_back(*s);
  }
  std::string shown = "[" + Join(items, ", ") + "]";
  if (items.empty()) return std::unexpected(ConstraintError(shown, "architectures", MinLength(1)));
  if (items.size() > 1) {
    return std::unexpected(ConstraintError(shown, "architectures", MaxLength(1)));
  }
  if (items[0] != "x86_64" && items[0] != "arm64") {
    return std::unexpected(ConstraintError(
        shown, "architectures",
        "Member must satisfy constraint: [" + EnumConstraint("x86_64, arm64") + "]"));
  }
  return items[0];
}

Status ApplyArchitectures(const json::value& v, config::FunctionConfig* cfg) {
  Result<std::string> arch = ParseArchitectures(v);
  if (!arch) return arch.error();
  cfg->architecture = std::move(*arch);
  return Status::Ok();
}

Status ApplyPackageType(const json::value& v, config::FunctionConfig* cfg) {
  Result<std::string_view> s = AsString(v, "PackageType");
  if (!s) return s.error();
  if (*s == "Image") {
    return Status::InvalidArgument(
        "Hearth supports only the Zip package type; container images (PackageType Image) are "
        "not supported.");
  }
  if (*s != "Zip") return ConstraintError(*s, "packageType", EnumConstraint("Zip, Image"));
  cfg->package_type = "Zip";
  return Status::Ok();
}

using FieldApplier = Status (*)(const json::value&, config::FunctionConfig*);
struct ConfigField {
  std::string_view key;
  FieldApplier apply;
};

// Members UpdateFunctionConfiguration may change; CreateFunction accepts them too.
constexpr ConfigField kConfigFields[] = {
    {"Role", ApplyRole},
    {"Runtime", ApplyRuntime},
    {"Handler", ApplyHandler},
    {"Description", ApplyDescription},
    {"Timeout", ApplyTimeout},
    {"MemorySize", ApplyMemorySize},
    {"Environment", ApplyEnvironment},
    {"EphemeralStorage", ApplyEphemeralStorage},
    {"TracingConfig", ApplyTracingConfig},
    {"Layers", ApplyLayers},
};

// Members only CreateFunction takes.
constexpr ConfigField kCreateOnlyFields[] = {
    {"Architectures", ApplyArchitectures},
    {"PackageType", ApplyPackageType},
};

// Lambda checks the whole body against the model (JSON types, then constraints) before its own
// service-side rules, so a ValidationException wins over an InvalidParameterValueException
// whatever the member order. Keeps the first error of each kind.
class FirstError {
 public:
  void Add(Status st) {
    if (st.ok()) return;
    Status* slot = st.code() == StatusCode::kInvalidContent ? &content_
                   : st.code() == StatusCode::kValidation   ? &validation_
                                                            : &other_;
    if (slot->ok()) *slot = std::move(st);
  }
  Status Get() const {
    if (!content_.ok()) return content_;
    if (!validation_.ok()) return validation_;
    return other_;
  }

 private:
  Status content_;
  Status validation_;
  Status other_;
};

void ApplyFields(const json::object& body, std::span<const ConfigField> fields,
                 config::FunctionConfig* cfg, FirstError* errors) {
  for (const ConfigField& f : fields) {
    if (const json::value* v = Member(body, f.key)) errors->Add(f.apply(*v, cfg));
  }
}

// The code source of CreateFunction's Code object, or of UpdateFunctionCode's body.
Result<std::string> DecodeZipSource(const json::object& o, std::string_view prefix) {
  for (std::string_view key : {"S3Bucket", "S3Key", "S3ObjectVersion", "ImageUri"}) {
    if (Member(o, key) != nullptr) {
      return std::unexpected(
          Status::InvalidArgument("Hearth supports only ZipFile code uploads; " + std::string(key) +
                                  " (S3 or container image code sources) is not supported."));
    }
  }
  const json::value* zip = Member(o, "ZipFile");
  if (zip == nullptr) {
    return std::unexpected(Status::InvalidArgument("Please provide a source for function code."));
  }
  Result<std::string_view> text = AsString(*zip, std::string(prefix) + "ZipFile");
  if (!text) return std::unexpected(text.error());
  std::optional<std::string> bytes = Base64Decode(*text);
  if (!bytes) {
    return std::unexpected(Status::InvalidContent("Could not decode ZipFile: invalid base64"));
  }
  return std::move(*bytes);
}

Result<const json::object*> BodyObject(const json::value& body) {
  if (const json::object* o = body.if_object()) return o;
  return std::unexpected(Status::InvalidContent(std::string(kBadJsonPrefix) +
                                                "the request body must be a JSON object"));
}

Status ParseFunctionName(const json::value& v, config::FunctionConfig* cfg) {
  Result<std::string_view> s = AsString(v, "FunctionName");
  if (!s) return s.error();
  Result<FunctionRef> ref = ParseFunctionRef(*s);
  if (!ref) return ref.error();
  if (!ref->qualifier.empty()) {
    return Status::InvalidArgument("FunctionName '" + std::string(*s) +
                                   "' must not include a qualifier when creating a function.");
  }
  cfg->name = std::move(ref->name);
  return Status::Ok();
}

}  // namespace

bool IsKnownRuntime(std::string_view runtime) { return Contains(kRuntimes, runtime); }

Status CheckRuntimeInstalled(std::string_view runtime, const std::vector<std::string>& installed) {
  if (installed.empty() || runtime.starts_with("provided")) return Status::Ok();
  std::string list;
  for (const auto& r : installed) {
    if (r == runtime) return Status::Ok();
    list += (list.empty() ? "" : ", ") + r;
  }
  return Status::InvalidArgument("Runtime " + std::string(runtime) +
                                 " is not available on this Hearth host; installed: " + list);
}

Result<CreateFunctionRequest> ParseCreateFunction(const json::value& body) {
  Result<const json::object*> o = BodyObject(body);
  if (!o) return std::unexpected(o.error());
  const json::object& b = **o;
  CreateFunctionRequest req;
  FirstError errors;

  if (const json::value* v = Member(b, "FunctionName")) {
    errors.Add(ParseFunctionName(*v, &req.config));
  } else {
    errors.Add(NullError("functionName"));
  }
  if (Member(b, "Role") == nullptr) errors.Add(NullError("role"));
  ApplyFields(b, kConfigFields, &req.config, &errors);
  ApplyFields(b, kCreateOnlyFields, &req.config, &errors);
  if (const json::value* v = Member(b, "Publish")) {
    Result<bool> p = AsBool(*v, "Publish");
    if (p) req.publish = *p;
    errors.Add(p ? Status::Ok() : p.error());
  }
  if (const json::value* v = Member(b, "Code")) {
    Result<const json::object*> code = AsObject(*v, "Code");
    if (!code) {
      errors.Add(code.error());
    } else {
      Result<std::string> zip = DecodeZipSource(**code, "Code.");
      if (zip) req.zip_bytes = std::move(*zip);
      errors.Add(zip ? Status::Ok() : zip.error());
    }
  } else {
    errors.Add(NullError("code"));
  }
  if (Member(b, "Runtime") == nullptr || Member(b, "Handler") == nullptr) {
    errors.Add(Status::InvalidArgument(
        "Runtime and Handler are mandatory parameters for functions created with deployment "
        "packages."));
  }
  if (Status st = errors.Get(); !st.ok()) return std::unexpected(std::move(st));
  return req;
}

Status ApplyConfigurationUpdate(const json::value& body, config::FunctionConfig* cfg,
                                std::string* revision_id) {
  Result<const json::object*> o = BodyObject(body);
  if (!o) return o.error();
  const json::object& b = **o;
  config::FunctionConfig updated = *cfg;
  FirstError errors;
  ApplyFields(b, kConfigFields, &updated, &errors);
  std::string rev;
  if (const json::value* v = Member(b, "RevisionId")) {
    Result<std::string_view> s = AsString(*v, "RevisionId");
    if (s) rev = std::string(*s);
    errors.Add(s ? Status::Ok() : s.error());
  }
  HEARTH_RETURN_IF_ERROR(errors.Get());
  *cfg = std::move(updated);
  if (revision_id != nullptr) *revision_id = std::move(rev);
  return Status::Ok();
}

Result<UpdateCodeRequest> ParseUpdateFunctionCode(const json::value& body) {
  Result<const json::object*> o = BodyObject(body);
  if (!o) return std::unexpected(o.error());
  const json::object& b = **o;
  UpdateCodeRequest req;
  FirstError errors;
  auto flag = [&](std::string_view key, bool* out) {
    if (const json::value* v = Member(b, key)) {
      Result<bool> p = AsBool(*v, key);
      if (p) *out = *p;
      errors.Add(p ? Status::Ok() : p.error());
    }
  };
  flag("Publish", &req.publish);
  flag("DryRun", &req.dry_run);
  if (const json::value* v = Member(b, "RevisionId")) {
    Result<std::string_view> s = AsString(*v, "RevisionId");
    if (s) req.revision_id = std::string(*s);
    errors.Add(s ? Status::Ok() : s.error());
  }
  if (const json::value* v = Member(b, "Architectures")) {
    Result<std::string> arch = ParseArchitectures(*v);
    if (arch) req.architecture = std::move(*arch);
    errors.Add(arch ? Status::Ok() : arch.error());
  }
  Result<std::string> zip = DecodeZipSource(b, "");
  if (zip) req.zip_bytes = std::move(*zip);
  errors.Add(zip ? Status::Ok() : zip.error());
  if (Status st = errors.Get(); !st.ok()) return std::unexpected(std::move(st));
  return req;
}

}  // namespace hearth::api
