#pragma once
// An alias of a function (lambda-reference.md §7): a named pointer to one published version,
// optionally routing a fraction of requests to one additional version. Shared by the API, the
// store and the invoke path. Header only: plain data.

#include <string>

namespace hearth::config {

struct AliasConfig {
  std::string function_name;
  std::string name;              // 1-128 chars [a-zA-Z0-9-_], not purely numeric
  std::string function_version;  // the primary version ("1", ...; "$LATEST" only unweighted)
  std::string description;       // <= 256 chars. Default: ""
  std::string additional_version;  // RoutingConfig.AdditionalVersionWeights key; "" when none
  double additional_weight = 0;    // its weight in [0, 1]
  std::string revision_id;         // UUID, new on every change
};

}  // namespace hearth::config
