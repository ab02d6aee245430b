#pragma once
// Internal to api/: the wording of Lambda's ValidationException messages, shared by the ARN
// parser and the request validators so every field reports a broken constraint the same way.
//   1 validation error detected: Value '<v>' at '<field>' failed to satisfy constraint: <c>

#include <string>
#include <string_view>

#include "common/status.h"

namespace hearth::api {

// "Value '<value>' at '<field>' ..." -> Status::Validation.
inline Status ConstraintError(std::string_view value, std::string_view field,
                              std::string_view constraint) {
  std::string m = "1 validation error detected: Value '";
  m.append(value).append("' at '").append(field).append("' failed to satisfy constraint: ");
  m.append(constraint);
  return Status::Validation(std::move(m));
}

// AWS omits the value of sensitive members (environment variables): "Value at '<field>' ...".
inline Status SensitiveConstraintError(std::string_view field, std::string_view constraint) {
  std::string m = "1 validation error detected: Value at '";
  m.append(field).append("' failed to satisfy constraint: ").append(constraint);
  return Status::Validation(std::move(m));
}

// A required member that is absent: "Value null at '<field>' ... Member must not be null".
inline Status NullError(std::string_view field) {
  std::string m = "1 validation error detected: Value null at '";
  m.append(field).append("' failed to satisfy constraint: Member must not be null");
  return Status::Validation(std::move(m));
}

inline std::string MaxLength(size_t n) {
  return "Member must have length less than or equal to " + std::to_string(n);
}
inline std::string MinLength(size_t n) {
  return "Member must have length greater than or equal to " + std::to_string(n);
}
inline std::string MaxValue(long long n) {
  return "Member must have value less than or equal to " + std::to_string(n);
}
inline std::string MinValue(long long n) {
  return "Member must have value greater than or equal to " + std::to_string(n);
}
inline std::string Pattern(std::string_view re) {
  return "Member must satisfy regular expression pattern: " + std::string(re);
}

}  // namespace hearth::api
