#include "api/arn.h"

#include <algorithm>
#include <vector>

#include "api/constraint.h"

namespace hearth::api {
namespace {

// The pattern AWS quotes in its ValidationException for a bad 'functionName'.
constexpr std::string_view kFunctionNamePattern =
    R"((arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\d{1}:)?(\d{12}:)?(function:)?([a-zA-Z0-9-_\.]+)(:(\$LATEST|[a-zA-Z0-9-_]+))?)";
// The model's pattern for the ?Qualifier= parameter.
constexpr std::string_view kQualifierPattern = "(|[a-zA-Z0-9$_-]+)";

bool IsLower(char c) { return c >= 'a' && c <= 'z'; }
bool IsAlpha(char c) { return IsLower(c) || (c >= 'A' && c <= 'Z'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsNameChar(char c) { return IsAlpha(c) || IsDigit(c) || c == '-' || c == '_'; }

bool AllOf(std::string_view s, bool (*pred)(char)) { return std::all_of(s.begin(), s.end(), pred); }

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t pos = s.find(sep, start);
    if (pos == std::string_view::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, pos - start));
    start = pos + 1;
  }
}

// (aws[a-zA-Z-]*)? -- the model also allows an empty partition.
bool IsPartition(std::string_view p) {
  if (p.empty()) return true;
  if (!p.starts_with("aws")) return false;
  return AllOf(p.substr(3), [](char c) { return IsAlpha(c) || c == '-'; });
}

// [a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}, e.g. us-east-1, us-gov-west-1, us-isob-east-1.
bool IsRegion(std::string_view r) {
  std::vector<std::string_view> parts = Split(r, '-');
  if (parts.size() != 3 && parts.size() != 4) return false;
  if (parts[0].size() != 2 || !AllOf(parts[0], IsLower)) return false;
  if (parts.size() == 4) {
    std::string_view mid = parts[1];
    bool gov = mid == "gov";
    bool iso = mid.starts_with("iso") && mid.size() <= 4 && AllOf(mid, IsLower);
    if (!gov && !iso) return false;
  }
  std::string_view word = parts[parts.size() - 2];
  std::string_view digit = parts.back();
  return !word.empty() && AllOf(word, IsLower) && digit.size() == 1 && IsDigit(digit[0]);
}

bool IsAccount(std::string_view a) { return a.size() == 12 && AllOf(a, IsDigit); }

struct ParsedRef {
  FunctionRef ref;
  bool has_account = false;  // partial or full ARN
  bool has_region = false;   // full ARN
  std::string region;
  std::string account;
};

Status PatternError(std::string_view text) {
  return ConstraintError(text, "functionName", Pattern(kFunctionNamePattern));
}

Result<ParsedRef> Parse(std::string_view text) {
  if (text.empty()) return std::unexpected(ConstraintError(text, "functionName", MinLength(1)));
  if (text.size() > kMaxFunctionRefLength) {
    return std::unexpected(ConstraintError(text, "functionName", MaxLength(kMaxFunctionRefLength)));
  }
  std::vector<std::string_view> parts = Split(text, ':');
  ParsedRef out;
  std::string_view name;
  std::string_view qualifier;
  bool has_qualifier = false;
  if (parts[0] == "arn") {
    // arn:<partition>:lambda:<region>:<account>:function:<name>[:<qualifier>]
    if (parts.size() != 7 && parts.size() != 8) return std::unexpected(PatternError(text));
    if (!IsPartition(parts[1]) || parts[2] != "lambda" || !IsRegion(parts[3]) ||
        !IsAccount(parts[4]) || parts[5] != "function") {
      return std::unexpected(PatternError(text));
    }
    out.has_region = out.has_account = true;
    out.region = parts[3];
    out.account = parts[4];
    name = parts[6];
    has_qualifier = parts.size() == 8;
    if (has_qualifier) qualifier = parts[7];
  } else if (parts.size() == 3 || parts.size() == 4) {
    // <account>:function:<name>[:<qualifier>]
    if (!IsAccount(parts[0]) || parts[1] != "function") return std::unexpected(PatternError(text));
    out.has_account = true;
    out.account = parts[0];
    name = parts[2];
    has_qualifier = parts.size() == 4;
    if (has_qualifier) qualifier = parts[3];
  } else if (parts.size() <= 2) {
    name = parts[0];
    has_qualifier = parts.size() == 2;
    if (has_qualifier) qualifier = parts[1];
  } else {
    return std::unexpected(PatternError(text));
  }
  if (name.empty() || !AllOf(name, IsNameChar)) return std::unexpected(PatternError(text));
  if (has_qualifier && !IsValidQualifier(qualifier)) return std::unexpected(PatternError(text));
  if (name.size() > kMaxFunctionNameLength) {
    return std::unexpected(
        ConstraintError(text, "functionName", MaxLength(kMaxFunctionNameLength)));
  }
  out.ref.name = std::string(name);
  out.ref.qualifier = std::string(qualifier);
  return out;
}

}  // namespace

bool IsValidFunctionName(std::string_view name) {
  return !name.empty() && name.size() <= kMaxFunctionNameLength && AllOf(name, IsNameChar);
}

bool IsVersionNumber(std::string_view q) {
  return !q.empty() && q.size() <= kMaxVersionDigits && AllOf(q, IsDigit);
}

bool IsValidAliasName(std::string_view q) {
  return !q.empty() && q.size() <= kMaxAliasNameLength && AllOf(q, IsNameChar) &&
         !AllOf(q, IsDigit);
}

bool IsValidQualifier(std::string_view q) {
  return q == "$LATEST" || IsVersionNumber(q) || IsValidAliasName(q);
}

Result<FunctionRef> ParseFunctionRef(std::string_view text) {
  Result<ParsedRef> parsed = Parse(text);
  if (!parsed) return std::unexpected(parsed.error());
  return std::move(parsed->ref);
}

Status CheckArnScope(std::string_view text, std::string_view region, std::string_view account) {
  Result<ParsedRef> parsed = Parse(text);
  if (!parsed) return parsed.error();
  if (parsed->has_region && parsed->region != region) {
    return Status::InvalidArgument("Functions from '" + parsed->region +
                                   "' are not reachable in this region ('" + std::string(region) +
                                   "')");
  }
  if (parsed->has_account && parsed->account != account) {
    return Status::InvalidArgument("The function ARN names account '" + parsed->account +
                                   "', but this server serves account '" + std::string(account) +
                                   "'");
  }
  return Status::Ok();
}

Result<FunctionRef> MergeQualifier(FunctionRef ref, std::string_view query_qualifier) {
  if (query_qualifier.empty()) return ref;
  if (query_qualifier.size() > kMaxAliasNameLength) {
    return std::unexpected(
        ConstraintError(query_qualifier, "qualifier", MaxLength(kMaxAliasNameLength)));
  }
  if (!IsValidQualifier(query_qualifier)) {
    return std::unexpected(
        ConstraintError(query_qualifier, "qualifier", Pattern(kQualifierPattern)));
  }
  if (ref.qualifier.empty()) {
    ref.qualifier = std::string(query_qualifier);
  } else if (ref.qualifier != query_qualifier) {
    return std::unexpected(Status::InvalidArgument(
        "The derived qualifier from the function name does not match the specified qualifier."));
  }
  return ref;
}

std::string FunctionArn(std::string_view region, std::string_view account, std::string_view name,
                        std::string_view qualifier) {
  std::string arn = "arn:aws:lambda:";
  arn.append(region).append(":").append(account).append(":function:").append(name);
  if (!qualifier.empty()) arn.append(":").append(qualifier);
  return arn;
}

}  // namespace hearth::api
