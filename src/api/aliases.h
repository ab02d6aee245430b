#pragma once
// Alias request bodies and responses (lambda-reference.md §4.4 "Aliases", §7). Pure: no I/O.
//
// Error kinds (mapped by ToApiError):
//   kInvalidContent  a member has the wrong JSON type / the body is not an object
//   kValidation      Name, FunctionVersion, Description, a routing key or a weight outside [0, 1]
//                    breaks the model ("1 validation error detected: ...")
//   kInvalidArgument more than one AdditionalVersionWeights entry, the extra version equal to the
//                    primary, $LATEST in a weighted alias (Lambda's messages)

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "config/alias_config.h"

namespace hearth::api {

struct AliasRequest {
  std::optional<std::string> name;              // CreateAlias only (required there)
  std::optional<std::string> function_version;  // required on create
  std::optional<std::string> description;
  // Present when the body has RoutingConfig: the extra version ("" clears routing) and weight.
  std::optional<std::pair<std::string, double>> routing;
  std::string revision_id;  // UpdateAlias precondition; "" when absent
};

// CreateAlias (`create`) or UpdateAlias body. Empty text counts as {} for UpdateAlias.
Result<AliasRequest> ParseAliasRequest(const boost::json::value& body, bool create);

// "1-128 chars [a-zA-Z0-9-_], not purely numeric" with Lambda's ValidationException messages,
// for names in paths and bodies.
Status ValidateAliasName(std::string_view name);

// Applies a parsed request to `*a` (create: a fresh alias) and checks the rules that span
// fields: the extra version differs from the primary; no routing with $LATEST.
Status ApplyAliasRequest(const AliasRequest& req, config::AliasConfig* a);

// AliasConfiguration: {"AliasArn","Name","FunctionVersion","Description","RevisionId"} plus
// "RoutingConfig" when the alias routes to an extra version.
boost::json::object RenderAlias(const config::AliasConfig& a, std::string_view region,
                                std::string_view account);

}  // namespace hearth::api
