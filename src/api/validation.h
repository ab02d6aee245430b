#pragma once
// Lambda request bodies -> the function schema (config::FunctionConfig), validated once, here,
// with Lambda's exception kinds and messages (lambda-reference.md §4.4). Pure: no I/O; nothing
// throws. CreateFunction and UpdateFunctionConfiguration share one set of field validators.
//
// Error kinds returned (see render.h ToApiError for the HTTP mapping):
//   kInvalidContent  a member has the wrong JSON type, the body is not an object, or ZipFile is
//                    not base64 ("Could not parse request body into json: ...").
//   kValidation      a member breaks a model constraint ("1 validation error detected: ...").
//   kInvalidArgument Lambda's service-side checks (reserved env keys, 4 KB env limit, > 5 layers,
//                    deprecated runtime, unsupported code source / package type).
// JSON null is treated as "member absent". Unknown members are ignored (SDKs send newer ones),
// as are known members Hearth does not model (VpcConfig, DeadLetterConfig, KMSKeyArn, Tags...).

#include <boost/json/value.hpp>
#include <string>
#include <vector>

#include "common/status.h"
#include "config/function_config.h"

namespace hearth::api {

inline constexpr int kMinMemoryMb = 128;
inline constexpr int kMaxMemoryMb = 10240;
inline constexpr int kMinTimeoutS = 1;
inline constexpr int kMaxTimeoutS = 900;
inline constexpr int kMinEphemeralStorageMb = 512;
inline constexpr int kMaxEphemeralStorageMb = 10240;
inline constexpr size_t kMaxDescriptionLength = 256;
inline constexpr size_t kMaxHandlerLength = 128;
inline constexpr size_t kMaxEnvironmentBytes = 4096;
inline constexpr size_t kMaxLayers = 5;

struct CreateFunctionRequest {
  config::FunctionConfig config;  // name, runtime, handler, role, ... with defaults applied;
                                  // code/revision/timestamp fields are left for the caller.
  std::string zip_bytes;          // decoded Code.ZipFile
  bool publish = false;
};

// CreateFunction body. FunctionName may be a plain name or an (unqualified) ARN; config.name
// receives the bare name. The caller should still run CheckArnScope (arn.h) on the raw
// FunctionName to reject foreign regions/accounts.
Result<CreateFunctionRequest> ParseCreateFunction(const boost::json::value& body);

// UpdateFunctionConfiguration body: applies any subset of Role, Handler, Description, Timeout,
// MemorySize, Environment (replaces the whole map; {} or {"Variables":{}} clears it), Runtime,
// EphemeralStorage, TracingConfig, Layers (replaces the list) to *cfg. On error *cfg is left
// unchanged. *revision_id receives the body's RevisionId ("" when absent). cfg must not be null;
// revision_id may be null.
Status ApplyConfigurationUpdate(const boost::json::value& body, config::FunctionConfig* cfg,
                                std::string* revision_id);

struct UpdateCodeRequest {
  std::string zip_bytes;  // decoded ZipFile (required: Hearth takes only zip uploads)
  bool publish = false;
  bool dry_run = false;
  std::string revision_id;   // "" when absent
  std::string architecture;  // from Architectures; "" when absent (keep the current one)
};

// UpdateFunctionCode body.
Result<UpdateCodeRequest> ParseUpdateFunctionCode(const boost::json::value& body);

// True when `runtime` is in the Lambda model's Runtime enum (whether or not it can still be used).
bool IsKnownRuntime(std::string_view runtime);

// Whether this host can run `runtime`: `provided*` always; any other runtime only when it is in
// `installed` (scheduler::InstalledRuntimes). Otherwise kInvalidArgument
// (InvalidParameterValueException) "Runtime python3.12 is not available on this Hearth host;
// installed: python3.11, nodejs20.x, provided.al2023, provided.al2". An empty `installed` list
// means "not checked" (Ok).
Status CheckRuntimeInstalled(std::string_view runtime, const std::vector<std::string>& installed);

}  // namespace hearth::api
