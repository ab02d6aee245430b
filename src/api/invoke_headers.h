#pragma once
// What Invoke and InvokeWithResponseStream both check in a request (lambda-reference.md 4.1,
// 4.2): the invocation and log types, the client context and the JSON payload, with Lambda's
// messages. Pure; the handlers are lambda_api.cc and streaming_api.cc.

#include <cstddef>
#include <string>
#include <string_view>

#include "common/status.h"

namespace hearth::api {

// X-Amz-Client-Context: at most this many base64 characters.
inline constexpr std::size_t kClientContextLimit = 3583;
// Payloads larger than this are parsed on the worker pool rather than on the event loop.
inline constexpr std::size_t kParseOnLoopLimit = 64 * 1024;

// X-Amz-Invocation-Type (empty = RequestResponse): RequestResponse, DryRun, and Event when
// `event_allowed` (not for InvokeWithResponseStream). ValidationException otherwise.
Status CheckInvocationType(std::string_view type, bool event_allowed);
// X-Amz-Log-Type: empty, None or Tail.
Status CheckLogType(std::string_view log_type);
// X-Amz-Client-Context: base64 of a JSON object, decoded ("" when the header is empty).
Result<std::string> DecodeClientContext(std::string_view header);
// The payload must be JSON (InvalidRequestContentException with Lambda's message).
Status ValidateJsonPayload(std::string_view payload);

}  // namespace hearth::api
