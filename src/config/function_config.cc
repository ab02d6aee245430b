#include "config/function_config.h"

#include <boost/json.hpp>

namespace hearth::config {

namespace json = boost::json;

json::value ToJson(const FunctionConfig& c) {
  json::object env;
  for (const auto& [k, v] : c.environment) env[k] = v;
  json::array layers;
  for (const auto& l : c.layers) layers.emplace_back(l);
  json::array layer_sizes, layer_digests;
  for (int64_t n : c.layer_code_sizes) layer_sizes.emplace_back(n);
  for (const auto& d : c.layer_digests) layer_digests.emplace_back(d);
  return json::object{
      {"name", c.name},
      {"version", c.version},
      {"runtime", c.runtime},
      {"handler", c.handler},
      {"role", c.role},
      {"description", c.description},
      {"memory_mb", c.memory_mb},
      {"timeout_s", c.timeout_s},
      {"ephemeral_storage_mb", c.ephemeral_storage_mb},
      {"environment", std::move(env)},
      {"architecture", c.architecture},
      {"package_type", c.package_type},
      {"tracing_mode", c.tracing_mode},
      {"code_sha256_hex", c.code_sha256_hex},
      {"code_size", c.code_size},
      {"code_size_unzipped", c.code_size_unzipped},
      {"last_modified", c.last_modified},
      {"revision_id", c.revision_id},
      {"state", c.state},
      {"last_update_status", c.last_update_status},
      {"layers", std::move(layers)},
      {"layer_code_sizes", std::move(layer_sizes)},
      {"layer_digests", std::move(layer_digests)},
  };
}

Result<FunctionConfig> FromJson(const json::value& v) {
  const json::object* o = v.if_object();
  if (!o) return std::unexpected(Status::Internal("stored function config is not an object"));
  FunctionConfig c;
  auto str = [&](const char* key, std::string& out) {
    if (auto* p = o->if_contains(key); p && p->is_string()) out = std::string(p->as_string());
  };
  auto integer = [&](const char* key, auto& out) {
    if (auto* p = o->if_contains(key); p && p->is_number()) {
      out = static_cast<std::remove_reference_t<decltype(out)>>(p->to_number<int64_t>());
    }
  };
  str("name", c.name);
  if (c.name.empty()) return std::unexpected(Status::Internal("stored function config has no name"));
  str("version", c.version);
  str("runtime", c.runtime);
  str("handler", c.handler);
  str("role", c.role);
  str("description", c.description);
  integer("memory_mb", c.memory_mb);
  integer("timeout_s", c.timeout_s);
  integer("ephemeral_storage_mb", c.ephemeral_storage_mb);
  if (auto* p = o->if_contains("environment"); p && p->is_object()) {
    for (const auto& [k, val] : p->as_object()) {
      if (val.is_string()) c.environment[std::string(k)] = std::string(val.as_string());
    }
  }
  str("architecture", c.architecture);
  str("package_type", c.package_type);
  str("tracing_mode", c.tracing_mode);
  str("code_sha256_hex", c.code_sha256_hex);
  integer("code_size", c.code_size);
  integer("code_size_unzipped", c.code_size_unzipped);
  str("last_modified", c.last_modified);
  str("revision_id", c.revision_id);
  str("state", c.state);
  str("last_update_status", c.last_update_status);
  if (auto* p = o->if_contains("layers"); p && p->is_array()) {
    for (const auto& l : p->as_array()) {
      if (l.is_string()) c.layers.emplace_back(l.as_string());
    }
  }
  if (auto* p = o->if_contains("layer_code_sizes"); p && p->is_array()) {
    for (const auto& l : p->as_array()) {
      if (l.is_number()) c.layer_code_sizes.push_back(l.to_number<int64_t>());
    }
  }
  if (auto* p = o->if_contains("layer_digests"); p && p->is_array()) {
    for (const auto& l : p->as_array()) {
      if (l.is_string()) c.layer_digests.emplace_back(l.as_string());
    }
  }
  return c;
}

}  // namespace hearth::config
