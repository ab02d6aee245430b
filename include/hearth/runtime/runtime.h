#pragma once
// Hearth runtime client: the Lambda Runtime API (2018-06-01) from inside a function.
//
// A custom runtime (`bootstrap`) links this library and either calls RunHandler() with a handler,
// or drives the loop itself through Runtime:
//
//   int main() {
//     return hearth::runtime::RunHandler([](const hearth::runtime::InvocationRequest& req) {
//       return hearth::runtime::InvocationResponse::Success(req.payload);
//     });
//   }
//
// Dependencies: the C++17 standard library and POSIX sockets only (the library speaks HTTP/1.1
// itself over one keep-alive TCP connection with TCP_NODELAY). Nothing here throws.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "hearth/runtime/json.h"
#include "hearth/runtime/result.h"

namespace hearth::runtime {

// One invocation, as delivered by GET /runtime/invocation/next.
struct InvocationRequest {
  // The invoke payload, byte for byte.
  std::string payload;
  // Lambda-Runtime-Aws-Request-Id; used in the response/error paths.
  std::string request_id;
  // Lambda-Runtime-Invoked-Function-Arn: the ARN exactly as the caller addressed the function.
  std::string invoked_function_arn;
  // Lambda-Runtime-Trace-Id (X-Ray header); RunHandler copies it into env _X_AMZN_TRACE_ID.
  std::string trace_id;
  // Lambda-Runtime-Client-Context: JSON text (already base64-decoded), empty when absent.
  std::string client_context;
  // Lambda-Runtime-Cognito-Identity: JSON text, empty when absent.
  std::string cognito_identity;
  // Lambda-Runtime-Aws-Tenant-Id, empty when absent.
  std::string tenant_id;
  // Content-Type of the payload. Default: "application/json".
  std::string content_type;
  // Lambda-Runtime-Deadline-Ms: absolute deadline in milliseconds since the Unix epoch.
  // 0 when the server sent no deadline.
  int64_t deadline_ms = 0;

  // Time left until deadline_ms by the system clock (negative once the deadline has passed).
  // With no deadline (deadline_ms == 0) returns std::chrono::milliseconds::max().
  std::chrono::milliseconds RemainingTime() const;
};

// What a handler returns: a result payload, or a failure reported through the /error endpoint.
class InvocationResponse {
 public:
  // A successful result; `payload` is posted unchanged with the given Content-Type.
  static InvocationResponse Success(std::string payload,
                                    std::string content_type = "application/json");

  // A function error. The posted body is
  //   {"errorMessage":"...","errorType":"...","stackTrace":["...",...]}
  // (valid JSON whatever bytes the strings hold) and `error_type` also goes in the
  // Lambda-Runtime-Function-Error-Type header. Convention for types: "Category.Reason".
  static InvocationResponse Failure(std::string error_type, std::string error_message,
                                    std::vector<std::string> stack_trace = {});

  bool success() const { return success_; }
  // The body to post: the result payload, or the error JSON for a failure.
  const std::string& payload() const { return payload_; }
  const std::string& content_type() const { return content_type_; }
  // Empty for a success.
  const std::string& error_type() const { return error_type_; }

 private:
  InvocationResponse(bool success, std::string payload, std::string content_type,
                     std::string error_type);

  bool success_;
  std::string payload_;
  std::string content_type_;
  std::string error_type_;
};

// Builds the Runtime API error body {"errorMessage":..,"errorType":..,"stackTrace":[..]}.
std::string MakeErrorJson(std::string_view error_type, std::string_view error_message,
                          const std::vector<std::string>& stack_trace = {});

class ResponseStream;

// A client of one Runtime API endpoint. Not thread-safe: one Runtime per thread (the Runtime API
// serves one invocation at a time per environment anyway). Movable, not copyable.
//
// Every call sends one HTTP request on a kept-alive connection. If the connection is lost (EOF,
// ECONNRESET, refused) the call reconnects and resends, up to Options::max_retries times with a
// doubling backoff, then fails with kConnectionLost or kUnavailable. A reused connection that
// turns out to be closed by the server is retried at once, without backoff.
class Runtime {
 public:
  struct Options {
    // Reconnect attempts per call after the first try. Default: 5.
    int max_retries = 5;
    // Pause before the first backoff retry; doubled for each later one. Default: 10 ms
    // (5 retries wait 10+20+40+80+160 ms in total).
    std::chrono::milliseconds initial_backoff{10};
    // Value of the User-Agent header. Default: "hearth-runtime/0.1".
    std::string user_agent = "hearth-runtime/0.1";
  };

  // Reads AWS_LAMBDA_RUNTIME_API ("host:port", "[v6addr]:port"; an "http://" prefix is
  // tolerated). Fails with kInvalidArgument when it is unset or malformed, or when the host
  // cannot be resolved. Does not connect yet.
  static Result<Runtime> FromEnvironment(Options options);
  static Result<Runtime> FromEnvironment();
  // Same, for an explicit "host:port" endpoint.
  static Result<Runtime> Create(std::string_view endpoint, Options options);
  static Result<Runtime> Create(std::string_view endpoint);

  Runtime(Runtime&& other) noexcept;
  Runtime& operator=(Runtime&& other) noexcept;
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;
  ~Runtime();

  // GET /runtime/invocation/next: blocks, with no timeout, until the next invocation exists.
  // Fails with kHttpStatus for any status but 2xx (500: the environment is broken and the runtime
  // should exit), kProtocol if the request id is missing or the deadline is not a number.
  Result<InvocationRequest> Next();

  // POST /runtime/invocation/{id}/response with the payload and Content-Type of `response`.
  // A failure response is forwarded to PostError(). Fails with kHttpStatus on a non-2xx answer
  // (400 unknown id, 403 already answered, 413 payload too large...).
  Status PostResponse(const std::string& request_id, const InvocationResponse& response);

  // POST /runtime/invocation/{id}/error with header Lambda-Runtime-Function-Error-Type and the
  // error JSON body. REQUIRES: !response.success() (else kInvalidArgument, nothing is sent).
  Status PostError(const std::string& request_id, const InvocationResponse& response);

  // PostResponse() (PostError() for a failure) with GET next pipelined behind it in the same
  // write (HTTP/1.1 pipelining): the following Next() only reads that answer. One write per
  // invocation instead of two, and one wait instead of two (Hearth sends the 202 together with
  // the next invocation). Same results as PostResponse(); when the server closed the connection
  // after answering the post (413...), Next() asks again. Call Next() next. RunHandler uses this.
  Status PostAndRequestNext(const std::string& request_id, const InvocationResponse& response);

  // Response streaming (Lambda-Runtime-Function-Response-Mode: streaming): a stream for the
  // response to `request_id`. Nothing is sent until its first Write() (or Finish()/Fail()); it
  // then uses its own connection, closed at the end. Do not call Next() while a stream is open.
  // REQUIRES: the Runtime outlives the stream.
  ResponseStream StreamResponse(const std::string& request_id);

  // POST /runtime/init/error: initialisation failed; the runtime should exit afterwards.
  Status PostInitError(const std::string& error_type, const std::string& error_message,
                       const std::vector<std::string>& stack_trace = {});

  // "host:port" this runtime talks to.
  const std::string& endpoint() const;

 private:
  class Impl;
  friend class ResponseStream;
  explicit Runtime(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The response of one invocation, sent to the caller piece by piece while the handler runs: the
// caller of InvokeWithResponseStream receives each Write() as it happens (up to 200 MiB; the
// first 6 MiB at full speed, then about 2 MiB/s). A plain Invoke of the same function gets the
// whole stream as one buffered response (up to 6 MB).
//
// On the wire: POST .../{id}/response with Lambda-Runtime-Function-Response-Mode: streaming and
// Transfer-Encoding: chunked, one chunk per Write(); Fail() ends it with the trailers
// Lambda-Runtime-Function-Error-Type and Lambda-Runtime-Function-Error-Body (base64 error JSON).
// Movable, not copyable. A stream destroyed while open is ended with Fail() as an
// "Runtime.StreamAbandoned" error.
class ResponseStream {
 public:
  ResponseStream(ResponseStream&& other) noexcept;
  ResponseStream& operator=(ResponseStream&& other) noexcept;
  ResponseStream(const ResponseStream&) = delete;
  ResponseStream& operator=(const ResponseStream&) = delete;
  ~ResponseStream();

  // Content-Type the caller sees; only before the first Write(). Default:
  // "application/octet-stream".
  void SetContentType(std::string content_type);
  bool content_type_set() const { return content_type_set_; }

  // Sends `data` now, as one chunk (empty data sends nothing). The first call opens the request.
  // Fails with kConnectionLost / kUnavailable when the connection broke (every later call fails
  // too), kInvalidArgument once the stream has ended.
  Status Write(std::string_view data);

  // Ends the stream and reads the server's answer: kHttpStatus for a non-2xx one (413 beyond
  // 200 MiB, 400/403 for an unknown or already answered request id).
  Status Finish();

  // Ends the stream with a mid-stream error. REQUIRES: !failure.success() (else kInvalidArgument).
  Status Fail(const InvocationResponse& failure);

  bool started() const { return started_; }
  bool ended() const { return ended_; }
  // Payload bytes sent so far.
  uint64_t bytes_written() const { return bytes_written_; }

 private:
  friend class Runtime;
  ResponseStream(Runtime::Impl* runtime, std::string request_id);
  Status Start();
  Status End(std::string_view trailers);

  Runtime::Impl* runtime_;
  std::string request_id_;
  std::string content_type_ = "application/octet-stream";
  bool content_type_set_ = false;
  bool started_ = false;
  bool ended_ = false;
  uint64_t bytes_written_ = 0;
  Status broken_;  // the first send failure; later writes repeat it
};

using Handler = std::function<InvocationResponse(const InvocationRequest&)>;

// The standard runtime loop: Next() -> set env _X_AMZN_TRACE_ID (unset it when the invocation
// has no trace id) -> handler -> PostAndRequestNext() -> Next() ...
//
// A handler that throws is reported as a function error whose errorType is the demangled
// exception type ("std::runtime_error") and whose errorMessage is what(). A post the server
// rejects (e.g. 413 payload too large) is logged to stderr and the loop goes on.
//
// Returns 0 when the Runtime API is gone for good (nothing accepts connections any more, after
// the retries). Returns 1 when it gives up otherwise: connections keep breaking after the retries,
// `next` answers a non-2xx status (500 means "exit now") or garbage, or AWS_LAMBDA_RUNTIME_API is
// unusable. Diagnostics go to stderr prefixed "hearth-runtime: ".
int RunHandler(Handler handler);
int RunHandler(Runtime& runtime, const Handler& handler);

// A handler that streams its response: it writes to `stream` while it runs and returns how the
// invocation ended. Success(payload, content_type): `payload` (if any) is sent as the last chunk
// and the stream ends; `content_type` applies when nothing was written yet and SetContentType()
// was not called. Failure(...) or an exception: once something was written, the stream ends with
// the error trailers (the caller gets the chunks so far, then the error); before that, the error
// goes to the /error endpoint as with RunHandler().
using StreamingHandler = std::function<InvocationResponse(const InvocationRequest&, ResponseStream&)>;

// RunHandler()'s loop for a StreamingHandler, with the same exit codes. A stream the server
// refuses or a connection lost mid-stream is logged and the loop goes on.
int RunStreamingHandler(StreamingHandler handler);
int RunStreamingHandler(Runtime& runtime, const StreamingHandler& handler);

}  // namespace hearth::runtime
