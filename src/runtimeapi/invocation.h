#pragma once
// One invocation as the Runtime API hands it to a runtime, and what came back.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "runtimeapi/stream.h"

namespace hearth::runtimeapi {

struct Invocation {
  std::string request_id;            // Lambda-Runtime-Aws-Request-Id
  std::string payload;               // body of `next`, unmodified
  std::string content_type = "application/json";
  int64_t deadline_ms = 0;           // Lambda-Runtime-Deadline-Ms (epoch ms); set at delivery
  std::chrono::milliseconds timeout{3000};  // the function's timeout, from which the deadline comes
  std::string invoked_function_arn;  // as the caller addressed it
  std::string trace_id;              // Lambda-Runtime-Trace-Id
  std::string client_context;        // decoded JSON, or empty
  std::string cognito_identity;      // JSON, or empty
  std::string tenant_id;             // or empty
  // InvokeWithResponseStream: where the response goes while it arrives; null for a buffered
  // Invoke (a streamed response is then collected, up to the 6 MB buffered limit).
  std::shared_ptr<ResponseSink> stream;
};

// How an invocation ended, as the caller of Invoke will see it.
struct InvocationResult {
  enum class Kind {
    kSuccess,        // runtime posted /response
    kFunctionError,  // runtime posted /error, init failed, crashed, timed out, ...
  };
  Kind kind = Kind::kSuccess;
  std::string body;
  std::string content_type = "application/json";
  // For kFunctionError: the errorType reported (header, or platform type such as
  // "Sandbox.Timedout"); used for logs and metrics. The caller sees X-Amz-Function-Error: Unhandled.
  std::string error_type;
  // True when the environment must not be reused (timeout, crash, init failure).
  bool environment_broken = false;
  // For the REPORT line: "timeout", "error" (runtime exit) or empty.
  std::string report_status;
  // The body already went to the invocation's ResponseSink (`body` is then empty, or holds the
  // error of a stream that failed midway); `streamed_bytes` counts what was relayed.
  bool streamed = false;
  std::uint64_t streamed_bytes = 0;
};

}  // namespace hearth::runtimeapi
