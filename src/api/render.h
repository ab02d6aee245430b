#pragma once
// Lambda REST API responses (lambda-reference.md §4.4, §4.6). Pure: no I/O.

#include <boost/json/object.hpp>
#include <string>
#include <string_view>

#include "common/status.h"
#include "config/function_config.h"

namespace hearth::api {

// The FunctionConfiguration object of Create/Get/Update/Publish/List responses.
// FunctionArn: a published version always carries ":<version>"; $LATEST is unqualified unless
// `qualified_arn` (e.g. ListVersionsByFunction, or GetFunction?Qualifier=$LATEST).
// Environment and Layers are omitted when empty; Runtime, Handler and RuntimeVersionConfig when
// the function has no runtime.
boost::json::object RenderFunctionConfiguration(const config::FunctionConfig& c,
                                                std::string_view region, std::string_view account,
                                                bool qualified_arn);

// A Lambda error response: status line, x-amzn-ErrorType header, JSON body and (429 only) the
// Retry-After header value ("" when the header must not be sent).
struct ApiError {
  int http_status = 500;
  std::string type;  // exception name, e.g. "ResourceNotFoundException"
  boost::json::object body;
  std::string retry_after;
};

// THE one place a Status becomes a Lambda error. Precondition: !st.ok() (an OK status yields a
// 500 ServiceException saying so).
//   kInvalidArgument     400 InvalidParameterValueException
//   kValidation          400 ValidationException
//   kInvalidContent      400 InvalidRequestContentException
//   kNotFound            404 ResourceNotFoundException     (body key "Message", capital M);
//                            with a detail(), 404 of that exception name (e.g.
//                            ProvisionedConcurrencyConfigNotFoundException), body key "message"
//   kAlreadyExists,
//   kConflict            409 ResourceConflictException
//   kFailedPrecondition  412 PreconditionFailedException
//   kTooLarge            413 RequestTooLargeException
//   kResourceExhausted   429 TooManyRequestsException      (+ "Reason": st.detail(), Retry-After 1)
//   kCodeStorageExceeded 400 CodeStorageExceededException
//   anything else        500 ServiceException              ("Type": "Service")
// Body: {"Type":"User"|"Service","message": st.message()}.
ApiError ToApiError(const Status& st);

// Lambda's CodeSha256 (base64 of the raw digest) from the code store's hex key. "" when `hex`
// is not valid hex.
std::string CodeSha256Base64FromHex(std::string_view hex);

}  // namespace hearth::api
