#pragma once
// The one schema of a function version's configuration, shared by the API, the store and the
// invoke path. The API parses requests into it and validates once (api/validation.h); the store
// persists it (ToJson/FromJson); the invoke path reads it.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <boost/json/value.hpp>

#include "common/status.h"

namespace hearth::config {

inline constexpr const char* kLatest = "$LATEST";

struct FunctionConfig {
  std::string name;                    // 1-64 chars [a-zA-Z0-9-_]
  std::string version = kLatest;       // "$LATEST" or "1", "2", ...
  std::string runtime;                 // e.g. "provided.al2023"
  std::string handler;                 // e.g. "bootstrap" or "index.handler"
  std::string role;                    // IAM role ARN (stored, not enforced)
  std::string description;             // <= 256 chars. Default: ""
  int memory_mb = 128;                 // 128-10240. Default: 128
  int timeout_s = 3;                   // 1-900. Default: 3
  int ephemeral_storage_mb = 512;      // 512-10240. Default: 512
  std::map<std::string, std::string> environment;
  std::string architecture = "x86_64"; // "x86_64" | "arm64"
  std::string package_type = "Zip";
  std::string tracing_mode = "PassThrough";
  std::string code_sha256_hex;         // key of the code in the code store (hex SHA-256 of the zip)
  int64_t code_size = 0;               // bytes of the zip
  int64_t code_size_unzipped = 0;      // bytes once unpacked
  std::string last_modified;           // "2020-04-10T19:06:32.563+0000"
  std::string revision_id;             // UUID, new on every change
  std::string state = "Active";        // Pending | Active | Inactive | Failed
  std::string last_update_status = "Successful";  // InProgress | Successful | Failed
  std::vector<std::string> layers;     // layer version ARNs, in order (layers issue)
  // Parallel to `layers`, filled by the API when it resolves them: each layer version's zip
  // bytes (FunctionConfiguration.Layers[].CodeSize) and code-store key (hex SHA-256).
  std::vector<int64_t> layer_code_sizes;
  std::vector<std::string> layer_digests;
};

// Storage form (a JSON object holding every field). FromJson rejects missing required fields.
boost::json::value ToJson(const FunctionConfig& c);
Result<FunctionConfig> FromJson(const boost::json::value& v);

}  // namespace hearth::config
