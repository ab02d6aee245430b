#include "api/aliases.h"

#include <fmt/format.h>

#include <boost/json.hpp>

#include "api/arn.h"
#include "api/validation.h"

namespace hearth::api {
namespace {

namespace json = boost::json;

Status BadType(std::string_view member) {
  return Status::InvalidContent(
      fmt::format("Could not parse request body into json: member '{}' has the wrong type", member));
}

Status Constraint(std::string_view value, std::string_view field, std::string_view constraint) {
  return Status::Validation(fmt::format(
      "1 validation error detected: Value '{}' at '{}' failed to satisfy constraint: {}", value,
      field, constraint));
}

bool AllDigits(std::string_view s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos;
}

Status ValidateFunctionVersion(std::string_view v) {
  if (v.empty() || v.size() > 1024)
    return Constraint(v, "functionVersion",
                      "Member must have length between 1 and 1024");
  if (v != "$LATEST" && !AllDigits(v))
    return Constraint(v, "functionVersion",
                      "Member must satisfy regular expression pattern: (\\$LATEST|[0-9]+)");
  return Status::Ok();
}

// JSON null is "absent", as in validation.cc.
const json::value* Member(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return (v == nullptr || v->is_null()) ? nullptr : v;
}

std::string FormatWeight(double w) {
  return fmt::format("{}", w);
}

}  // namespace

Status ValidateAliasName(std::string_view name) {
  if (name.empty())
    return Constraint(name, "name", "Member must have length greater than or equal to 1");
  if (name.size() > kMaxAliasNameLength)
    return Constraint(name, "name", "Member must have length less than or equal to 128");
  if (!IsValidAliasName(name))
    return Constraint(name, "name",
                      "Member must satisfy regular expression pattern: "
                      "(?!^[0-9]+$)([a-zA-Z0-9-_]+)");
  return Status::Ok();
}

Result<AliasRequest> ParseAliasRequest(const json::value& body, bool create) {
  const json::object* o = body.if_object();
  if (o == nullptr) {
    return std::unexpected(
        Status::InvalidContent("Could not parse request body into json: expected an object"));
  }
  AliasRequest r;
  auto str = [&](std::string_view key, std::optional<std::string>& out) -> Status {
    const json::value* v = Member(*o, key);
    if (v == nullptr) return Status::Ok();
    if (!v->is_string()) return BadType(key);
    out = std::string(v->as_string());
    return Status::Ok();
  };
  HEARTH_RETURN_IF_ERROR(str("Name", r.name));
  HEARTH_RETURN_IF_ERROR(str("FunctionVersion", r.function_version));
  HEARTH_RETURN_IF_ERROR(str("Description", r.description));
  std::optional<std::string> revision;
  HEARTH_RETURN_IF_ERROR(str("RevisionId", revision));
  if (revision) r.revision_id = *revision;
  if (!create) r.name.reset();  // the path names the alias

  if (create && !r.name) {
    return std::unexpected(Status::Validation(
        "1 validation error detected: Value null at 'name' failed to satisfy constraint: Member "
        "must not be null"));
  }
  if (create && !r.function_version) {
    return std::unexpected(Status::Validation(
        "1 validation error detected: Value null at 'functionVersion' failed to satisfy "
        "constraint: Member must not be null"));
  }
  if (r.name) HEARTH_RETURN_IF_ERROR(ValidateAliasName(*r.name));
  if (r.function_version) HEARTH_RETURN_IF_ERROR(ValidateFunctionVersion(*r.function_version));
  if (r.description && r.description->size() > kMaxDescriptionLength) {
    return std::unexpected(Constraint(*r.description, "description",
                                      "Member must have length less than or equal to 256"));
  }

  if (const json::value* rc = Member(*o, "RoutingConfig")) {
    if (!rc->is_object()) return std::unexpected(BadType("RoutingConfig"));
    std::pair<std::string, double> routing{"", 0.0};
    if (const json::value* w = Member(rc->as_object(), "AdditionalVersionWeights")) {
      if (!w->is_object()) return std::unexpected(BadType("AdditionalVersionWeights"));
      const json::object& weights = w->as_object();
      // Model constraints first (keys and values), then Lambda's one-entry rule.
      std::string shown = "{";
      bool first = true;
      bool bad_value = false;
      for (const auto& [k, v] : weights) {
        if (!v.is_number()) return std::unexpected(BadType("AdditionalVersionWeights"));
        double d = v.to_number<double>();
        shown += fmt::format("{}{}={}", first ? "" : ", ", std::string_view(k), FormatWeight(d));
        first = false;
        if (k.empty() || k.size() > 1024 || !AllDigits(k)) {
          return std::unexpected(Constraint(
              k, "routingConfig.additionalVersionWeights",
              "Map keys must satisfy constraint: [Member must have length less than or equal to "
              "1024, Member must have length greater than or equal to 1, Member must satisfy "
              "regular expression pattern: [0-9]+]"));
        }
        if (!(d >= 0.0 && d <= 1.0)) bad_value = true;
      }
      shown += "}";
      if (bad_value) {
        return std::unexpected(Constraint(
            shown, "routingConfig.additionalVersionWeights",
            "Map value must satisfy constraint: [Member must have value less than or equal to "
            "1.0, Member must have value greater than or equal to 0.0, Member must not be null]"));
      }
      if (weights.size() > 1) {
        return std::unexpected(Status::InvalidArgument(
            "Number of items in AdditionalVersionWeights cannot be greater than 1"));
      }
      if (weights.size() == 1) {
        const auto& [k, v] = *weights.begin();
        routing = {std::string(k), v.to_number<double>()};
      }
    }
    r.routing = std::move(routing);
  }
  return r;
}

Status ApplyAliasRequest(const AliasRequest& req, config::AliasConfig* a) {
  config::AliasConfig next = *a;
  if (req.name) next.name = *req.name;
  if (req.function_version) next.function_version = *req.function_version;
  if (req.description) next.description = *req.description;
  if (req.routing) {
    next.additional_version = req.routing->first;
    next.additional_weight = req.routing->second;
  }
  if (!next.additional_version.empty()) {
    if (next.additional_version == next.function_version) {
      return Status::InvalidArgument(fmt::format(
          "Function version {} is already included in routing configuration.",
          next.function_version));
    }
    if (next.function_version == "$LATEST") {
      return Status::InvalidArgument(
          "$LATEST is not supported for an alias pointing to more than 1 version");
    }
  }
  *a = std::move(next);
  return Status::Ok();
}

json::object RenderAlias(const config::AliasConfig& a, std::string_view region,
                         std::string_view account) {
  json::object o{
      {"AliasArn", FunctionArn(region, account, a.function_name, a.name)},
      {"Name", a.name},
      {"FunctionVersion", a.function_version},
      {"Description", a.description},
      {"RevisionId", a.revision_id},
  };
  if (!a.additional_version.empty()) {
    o["RoutingConfig"] = json::object{
        {"AdditionalVersionWeights", json::object{{a.additional_version, a.additional_weight}}}};
  }
  return o;
}

}  // namespace hearth::api
