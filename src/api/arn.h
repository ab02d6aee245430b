#pragma once
// Function names, function ARNs and qualifiers (lambda-reference.md §4.5). Pure: no I/O.
//
// Accepted spellings of a function reference (the {FunctionName} path segment, already
// percent-decoded by the caller, or the FunctionName member of a request body):
//   my-function
//   my-function:qualifier
//   123456789012:function:my-function[:qualifier]                       (partial ARN)
//   arn:<partition>:lambda:<region>:<account>:function:my-function[:qualifier]
// A qualifier is "$LATEST", a version number (1-10 digits) or an alias name (1-128 chars of
// [a-zA-Z0-9-_], not purely numeric).

#include <string>
#include <string_view>

#include "common/status.h"

namespace hearth::api {

inline constexpr size_t kMaxFunctionNameLength = 64;
inline constexpr size_t kMaxAliasNameLength = 128;
inline constexpr size_t kMaxVersionDigits = 10;
// Longest accepted reference text: an ARN with a 64-char name and a 128-char alias fits.
inline constexpr size_t kMaxFunctionRefLength = 256;

struct FunctionRef {
  std::string name;
  std::string qualifier;  // empty when none was given
};

// Parses any accepted spelling. Errors: kValidation, with AWS's message naming 'functionName'
// (pattern, or "length less than or equal to 64" for an over-long name).
Result<FunctionRef> ParseFunctionRef(std::string_view text);

// When `text` is a full or partial ARN, checks that it names this daemon's region and account.
// Plain names (with or without qualifier) always pass. Errors: kValidation for text that
// ParseFunctionRef rejects; kInvalidArgument for a foreign region or account.
Status CheckArnScope(std::string_view text, std::string_view region, std::string_view account);

// Combines the qualifier derived from the function name with the ?Qualifier= query parameter
// (empty when absent). Errors: kValidation for a malformed query qualifier (field 'qualifier');
// kInvalidArgument when both are present and differ.
Result<FunctionRef> MergeQualifier(FunctionRef ref, std::string_view query_qualifier);

// arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>]
std::string FunctionArn(std::string_view region, std::string_view account, std::string_view name,
                        std::string_view qualifier = "");

// Building blocks, also used by validation.cc and available to the handlers.
bool IsValidFunctionName(std::string_view name);  // 1-64 chars of [a-zA-Z0-9-_]
bool IsVersionNumber(std::string_view q);         // 1-10 digits
bool IsValidAliasName(std::string_view q);        // 1-128 chars [a-zA-Z0-9-_], not all digits
bool IsValidQualifier(std::string_view q);        // $LATEST | version | alias

}  // namespace hearth::api
