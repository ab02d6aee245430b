#include "hearth/runtime/runtime.h"

#include <cxxabi.h>
#include <stdlib.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <optional>
#include <thread>
#include <typeinfo>
#include <utility>

#include "http_connection.h"

namespace hearth::runtime {

// ---------------------------------------------------------------------------------------------
// Errors

const char* ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return "InvalidArgument";
    case ErrorCode::kUnavailable:
      return "Unavailable";
    case ErrorCode::kConnectionLost:
      return "ConnectionLost";
    case ErrorCode::kProtocol:
      return "Protocol";
    case ErrorCode::kHttpStatus:
      return "HttpStatus";
  }
  return "Unknown";
}

std::string Error::ToString() const {
  std::string s = ErrorCodeName(code_);
  s += ": ";
  s += message_;
  return s;
}

// ---------------------------------------------------------------------------------------------
// Requests and responses

std::chrono::milliseconds InvocationRequest::RemainingTime() const {
  if (deadline_ms == 0) return std::chrono::milliseconds::max();
  auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::system_clock::now().time_since_epoch());
  return std::chrono::milliseconds(deadline_ms) - now;
}

InvocationResponse::InvocationResponse(bool success, std::string payload, std::string content_type,
                                       std::string error_type)
    : success_(success),
      payload_(std::move(payload)),
      content_type_(std::move(content_type)),
      error_type_(std::move(error_type)) {}

InvocationResponse InvocationResponse::Success(std::string payload, std::string content_type) {
  return InvocationResponse(true, std::move(payload), std::move(content_type), {});
}

InvocationResponse InvocationResponse::Failure(std::string error_type, std::string error_message,
                                               std::vector<std::string> stack_trace) {
  std::string body = MakeErrorJson(error_type, error_message, stack_trace);
  return InvocationResponse(false, std::move(body), "application/vnd.aws.lambda.error+json",
                            std::move(error_type));
}

std::string MakeErrorJson(std::string_view error_type, std::string_view error_message,
                          const std::vector<std::string>& stack_trace) {
  std::string body;
  body.reserve(error_type.size() + error_message.size() + 64);
  body += "{\"errorMessage\":";
  AppendJsonString(&body, error_message);
  body += ",\"errorType\":";
  AppendJsonString(&body, error_type);
  body += ",\"stackTrace\":[";
  for (size_t i = 0; i < stack_trace.size(); ++i) {
    if (i != 0) body += ',';
    AppendJsonString(&body, stack_trace[i]);
  }
  body += "]}";
  return body;
}

// ---------------------------------------------------------------------------------------------
// Runtime

namespace {

constexpr std::string_view kApiPrefix = "/2018-06-01";

// Header values come from user code; CR or LF in them would split the request.
void AppendHeaderValue(std::string* out, std::string_view value) {
  for (char c : value) out->push_back(c == '\r' || c == '\n' ? ' ' : c);
}

// Request ids are UUIDs, but nothing stops a server from sending other bytes; keep the path sane.
void AppendPathSegment(std::string* out, std::string_view segment) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (char ch : segment) {
    unsigned char c = static_cast<unsigned char>(ch);
    bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out->push_back(ch);
    } else {
      out->push_back('%');
      out->push_back(kHex[c >> 4]);
      out->push_back(kHex[c & 0xF]);
    }
  }
}

bool Is2xx(int status) { return status >= 200 && status < 300; }

Error HttpStatusError(std::string_view what, const internal::HttpResponse& response) {
  std::string msg(what);
  msg += " returned HTTP ";
  msg += std::to_string(response.status);
  if (!response.body.empty()) {
    msg += ": ";
    msg.append(response.body, 0, 512);
  }
  return Error(ErrorCode::kHttpStatus, std::move(msg), response.status);
}

}  // namespace

class Runtime::Impl {
 public:
  Impl(internal::Endpoint endpoint, Options options)
      : options_(std::move(options)), connection_(std::move(endpoint)) {
    common_headers_ = "Host: ";
    AppendHeaderValue(&common_headers_, connection_.endpoint().host_port);
    common_headers_ += "\r\nUser-Agent: ";
    AppendHeaderValue(&common_headers_, options_.user_agent);
    common_headers_ += "\r\n";
    next_head_ = "GET ";
    next_head_ += kApiPrefix;
    next_head_ += "/runtime/invocation/next HTTP/1.1\r\n";
    next_head_ += common_headers_;
    next_head_ += "\r\n";
  }

  Result<InvocationRequest> Next() {
    Status s;
    if (next_sent_) {
      // PostAndRequestNext() already sent this request; its answer may be on the way.
      next_sent_ = false;
      s = connection_.ReadPipelined(&response_);
      // The server closed the connection without answering it (e.g. after refusing the post):
      // nothing was taken, ask again.
      if (!s.ok() && s.error().code() == ErrorCode::kConnectionLost) s = Exchange(next_head_, {});
    } else {
      s = Exchange(next_head_, {});
    }
    if (!s.ok()) return s.error();
    if (!Is2xx(response_.status)) return HttpStatusError("GET invocation/next", response_);

    InvocationRequest req;
    bool have_id = false;
    for (internal::HttpHeader& h : response_.headers) {
      std::string_view name = h.name;
      if (name.size() > 15 && internal::EqualsIgnoreCase(name.substr(0, 15), "Lambda-Runtime-")) {
        std::string_view rest = name.substr(15);
        if (internal::EqualsIgnoreCase(rest, "Aws-Request-Id")) {
          req.request_id = std::move(h.value);
          have_id = true;
        } else if (internal::EqualsIgnoreCase(rest, "Deadline-Ms")) {
          if (!ParseDeadline(h.value, &req.deadline_ms)) {
            return Error(
                ErrorCode::kProtocol,
                "invocation/next sent a bad Lambda-Runtime-Deadline-Ms: \"" + h.value + "\"");
          }
        } else if (internal::EqualsIgnoreCase(rest, "Invoked-Function-Arn")) {
          req.invoked_function_arn = std::move(h.value);
        } else if (internal::EqualsIgnoreCase(rest, "Trace-Id")) {
          req.trace_id = std::move(h.value);
        } else if (internal::EqualsIgnoreCase(rest, "Client-Context")) {
          req.client_context = std::move(h.value);
        } else if (internal::EqualsIgnoreCase(rest, "Cognito-Identity")) {
          req.cognito_identity = std::move(h.value);
        } else if (internal::EqualsIgnoreCase(rest, "Aws-Tenant-Id")) {
          req.tenant_id = std::move(h.value);
        }
      } else if (internal::EqualsIgnoreCase(name, "Content-Type")) {
        req.content_type = std::move(h.value);
      }
    }
    if (!have_id || req.request_id.empty()) {
      return Error(ErrorCode::kProtocol,
                   "invocation/next response has no Lambda-Runtime-Aws-Request-Id header");
    }
    if (req.content_type.empty()) req.content_type = "application/json";
    req.payload = std::move(response_.body);
    return req;
  }

  Status PostResponse(const std::string& request_id, const InvocationResponse& response) {
    if (!response.success()) return PostError(request_id, response);
    BuildPostHead("/runtime/invocation/", &request_id, "/response", response.content_type(), {},
                  response.payload().size());
    return Post("POST invocation/response", response.payload());
  }

  // The post, with GET next pipelined behind it in the same write when the connection is open
  // (a new or broken connection takes the ordinary path with its retries; Next() then sends).
  Status PostAndRequestNext(const std::string& request_id, const InvocationResponse& response) {
    if (!connection_.connected()) return PostResponse(request_id, response);
    const bool success = response.success();
    BuildPostHead("/runtime/invocation/", &request_id, success ? "/response" : "/error",
                  response.content_type(), success ? std::string_view() : response.error_type(),
                  response.payload().size());
    const std::string_view what = success ? "POST invocation/response" : "POST invocation/error";
    Status s = connection_.RoundTrip(head_, response.payload(), &response_, next_head_);
    if (!s.ok()) {
      // As Exchange(): a kept-alive connection the server had closed; resend without pipelining.
      if (s.error().code() == ErrorCode::kConnectionLost) return Post(what, response.payload());
      return s;
    }
    // A server that closed the connection after this answer dropped the pipelined request.
    next_sent_ = connection_.connected();
    if (!Is2xx(response_.status)) return HttpStatusError(what, response_);
    return {};
  }

  Status PostError(const std::string& request_id, const InvocationResponse& response) {
    if (response.success()) {
      return Error(ErrorCode::kInvalidArgument, "PostError() needs a Failure response");
    }
    BuildPostHead("/runtime/invocation/", &request_id, "/error", response.content_type(),
                  response.error_type(), response.payload().size());
    return Post("POST invocation/error", response.payload());
  }

  Status PostInitError(const std::string& error_type, const std::string& message,
                       const std::vector<std::string>& stack_trace) {
    std::string body = MakeErrorJson(error_type, message, stack_trace);
    BuildPostHead("/runtime/init/error", nullptr, {}, "application/vnd.aws.lambda.error+json",
                  error_type, body.size());
    return Post("POST init/error", body);
  }

  const std::string& endpoint() const { return connection_.endpoint().host_port; }

  // Response streaming: the POST head, raw body bytes, and the end (last chunk + trailers).
  Status StreamBegin(const std::string& request_id, std::string_view content_type) {
    head_.clear();
    head_ += "POST ";
    head_ += kApiPrefix;
    head_ += "/runtime/invocation/";
    AppendPathSegment(&head_, request_id);
    head_ += "/response HTTP/1.1\r\n";
    head_ += common_headers_;
    head_ += "Content-Type: ";
    AppendHeaderValue(&head_, content_type);
    head_ +=
        "\r\nLambda-Runtime-Function-Response-Mode: streaming\r\n"
        "Transfer-Encoding: chunked\r\n"
        "Trailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body\r\n\r\n";
    return connection_.BeginStreaming(head_);
  }

  Status StreamSend(std::string_view a, std::string_view b = {}, std::string_view c = {}) {
    return connection_.SendParts(a, b, c);
  }

  // Reads the answer to a stream (whose last chunk may not have gone out, when sending failed:
  // the server may still have said why, e.g. 413).
  Status StreamFinish() {
    Status s = connection_.FinishStreaming(&response_);
    if (!s.ok()) return s;
    if (!Is2xx(response_.status)) return HttpStatusError("POST invocation/response (streaming)", response_);
    return {};
  }

  void StreamAbort() { connection_.Close(); }

 private:
  static bool ParseDeadline(std::string_view text, int64_t* out) {
    if (text.empty() || text.size() > 18) return false;
    int64_t v = 0;
    for (char c : text) {
      if (c < '0' || c > '9') return false;
      v = v * 10 + (c - '0');
    }
    *out = v;
    return true;
  }

  void BuildPostHead(std::string_view path, const std::string* request_id, std::string_view suffix,
                     std::string_view content_type, std::string_view error_type, size_t length) {
    head_.clear();
    head_ += "POST ";
    head_ += kApiPrefix;
    head_ += path;
    if (request_id != nullptr) AppendPathSegment(&head_, *request_id);
    head_ += suffix;
    head_ += " HTTP/1.1\r\n";
    head_ += common_headers_;
    head_ += "Content-Type: ";
    AppendHeaderValue(
        &head_, content_type.empty() ? std::string_view("application/octet-stream") : content_type);
    head_ += "\r\n";
    if (!error_type.empty()) {
      head_ += "Lambda-Runtime-Function-Error-Type: ";
      AppendHeaderValue(&head_, error_type);
      head_ += "\r\n";
    }
    head_ += "Content-Length: ";
    head_ += std::to_string(length);
    head_ += "\r\n\r\n";
  }

  Status Post(std::string_view what, std::string_view body) {
    Status s = Exchange(head_, body);
    if (!s.ok()) return s;
    if (!Is2xx(response_.status)) return HttpStatusError(what, response_);
    return {};
  }

  // One request with reconnects: a reused keep-alive connection that fails is retried at once
  // (the server may simply have closed it while idle); other connection failures back off.
  Status Exchange(std::string_view head, std::string_view body) {
    auto backoff = options_.initial_backoff;
    for (int attempt = 0;; ++attempt) {
      bool reused = connection_.reused();
      Status s = connection_.RoundTrip(head, body, &response_);
      if (s.ok()) return s;
      ErrorCode code = s.error().code();
      if (code != ErrorCode::kConnectionLost && code != ErrorCode::kUnavailable) return s;
      if (attempt >= options_.max_retries) return s;
      if (!(reused && code == ErrorCode::kConnectionLost)) {
        std::this_thread::sleep_for(backoff);
        backoff *= 2;
      }
    }
  }

  Options options_;
  internal::HttpConnection connection_;
  std::string common_headers_;  // Host and User-Agent lines.
  std::string next_head_;       // The whole GET next request, built once.
  std::string head_;            // Scratch for POST heads.
  bool next_sent_ = false;      // GET next went out behind the last post; Next() reads its answer.
  internal::HttpResponse response_;
};

Runtime::Runtime(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Runtime::Runtime(Runtime&& other) noexcept = default;
Runtime& Runtime::operator=(Runtime&& other) noexcept = default;
Runtime::~Runtime() = default;

Result<Runtime> Runtime::Create(std::string_view endpoint, Options options) {
  Result<internal::Endpoint> ep = internal::ParseEndpoint(endpoint);
  if (!ep.ok()) return ep.error();
  return Runtime(std::make_unique<Impl>(std::move(ep).value(), std::move(options)));
}

Result<Runtime> Runtime::Create(std::string_view endpoint) { return Create(endpoint, Options()); }

Result<Runtime> Runtime::FromEnvironment(Options options) {
  const char* api = std::getenv("AWS_LAMBDA_RUNTIME_API");
  if (api == nullptr || *api == '\0') {
    return Error(ErrorCode::kInvalidArgument, "AWS_LAMBDA_RUNTIME_API is not set");
  }
  return Create(api, std::move(options));
}

Result<Runtime> Runtime::FromEnvironment() { return FromEnvironment(Options()); }

Result<InvocationRequest> Runtime::Next() { return impl_->Next(); }

Status Runtime::PostResponse(const std::string& request_id, const InvocationResponse& response) {
  return impl_->PostResponse(request_id, response);
}

Status Runtime::PostAndRequestNext(const std::string& request_id, const InvocationResponse& response) {
  return impl_->PostAndRequestNext(request_id, response);
}

Status Runtime::PostError(const std::string& request_id, const InvocationResponse& response) {
  return impl_->PostError(request_id, response);
}

Status Runtime::PostInitError(const std::string& error_type, const std::string& error_message,
                              const std::vector<std::string>& stack_trace) {
  return impl_->PostInitError(error_type, error_message, stack_trace);
}

const std::string& Runtime::endpoint() const { return impl_->endpoint(); }

ResponseStream Runtime::StreamResponse(const std::string& request_id) {
  return ResponseStream(impl_.get(), request_id);
}

// ---------------------------------------------------------------------------------------------
// ResponseStream

namespace {

std::string Base64(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = static_cast<uint32_t>(static_cast<unsigned char>(in[i])) << 16 |
                 static_cast<uint32_t>(static_cast<unsigned char>(in[i + 1])) << 8 |
                 static_cast<unsigned char>(in[i + 2]);
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i < in.size()) {
    uint32_t v = static_cast<uint32_t>(static_cast<unsigned char>(in[i])) << 16;
    if (i + 1 < in.size()) v |= static_cast<uint32_t>(static_cast<unsigned char>(in[i + 1])) << 8;
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < in.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

}  // namespace

ResponseStream::ResponseStream(Runtime::Impl* runtime, std::string request_id)
    : runtime_(runtime), request_id_(std::move(request_id)) {}

ResponseStream::ResponseStream(ResponseStream&& other) noexcept
    : runtime_(other.runtime_),
      request_id_(std::move(other.request_id_)),
      content_type_(std::move(other.content_type_)),
      content_type_set_(other.content_type_set_),
      started_(other.started_),
      ended_(other.ended_),
      bytes_written_(other.bytes_written_),
      broken_(std::move(other.broken_)) {
  other.runtime_ = nullptr;
  other.ended_ = true;
}

ResponseStream& ResponseStream::operator=(ResponseStream&& other) noexcept {
  if (this != &other) {
    if (runtime_ != nullptr && started_ && !ended_) {
      (void)Fail(InvocationResponse::Failure("Runtime.StreamAbandoned", "the response stream was abandoned"));
    }
    runtime_ = other.runtime_;
    request_id_ = std::move(other.request_id_);
    content_type_ = std::move(other.content_type_);
    content_type_set_ = other.content_type_set_;
    started_ = other.started_;
    ended_ = other.ended_;
    bytes_written_ = other.bytes_written_;
    broken_ = std::move(other.broken_);
    other.runtime_ = nullptr;
    other.ended_ = true;
  }
  return *this;
}

ResponseStream::~ResponseStream() {
  if (runtime_ != nullptr && started_ && !ended_) {
    (void)Fail(InvocationResponse::Failure("Runtime.StreamAbandoned", "the response stream was abandoned"));
  }
}

void ResponseStream::SetContentType(std::string content_type) {
  if (started_) return;
  content_type_ = std::move(content_type);
  content_type_set_ = true;
}

Status ResponseStream::Start() {
  if (started_) return broken_;
  started_ = true;
  Status s = runtime_->StreamBegin(request_id_, content_type_);
  if (!s.ok()) broken_ = s;
  return s;
}

Status ResponseStream::Write(std::string_view data) {
  if (ended_ || runtime_ == nullptr) return Error(ErrorCode::kInvalidArgument, "the response stream has ended");
  Status s = Start();
  if (!s.ok()) return s;
  if (data.empty()) return {};
  char size[24];
  int n = std::snprintf(size, sizeof(size), "%zx\r\n", data.size());
  s = runtime_->StreamSend(std::string_view(size, static_cast<size_t>(n)), data, "\r\n");
  if (!s.ok()) {
    broken_ = s;
    return s;
  }
  bytes_written_ += data.size();
  return {};
}

Status ResponseStream::End(std::string_view trailers) {
  if (ended_ || runtime_ == nullptr) return Error(ErrorCode::kInvalidArgument, "the response stream has ended");
  (void)Start();  // a stream with nothing written still sends its (empty) body
  ended_ = true;
  if (broken_.ok()) {
    Status sent = runtime_->StreamSend("0\r\n", trailers, "\r\n");
    if (!sent.ok()) broken_ = sent;
  }
  // Even after a failed send, the server may have answered before closing (413 over the limit).
  Status answer = runtime_->StreamFinish();
  if (!answer.ok() && answer.error().code() == ErrorCode::kHttpStatus) return answer;
  if (!broken_.ok()) return broken_;
  return answer;
}

Status ResponseStream::Finish() { return End({}); }

Status ResponseStream::Fail(const InvocationResponse& failure) {
  if (failure.success()) return Error(ErrorCode::kInvalidArgument, "Fail() needs a Failure response");
  std::string trailers = "Lambda-Runtime-Function-Error-Type: ";
  AppendHeaderValue(&trailers, failure.error_type());
  trailers += "\r\nLambda-Runtime-Function-Error-Body: ";
  trailers += Base64(failure.payload());
  trailers += "\r\n";
  return End(trailers);
}

// ---------------------------------------------------------------------------------------------
// RunHandler

namespace {

std::string Demangle(const char* name) {
  if (name == nullptr) return "unknown";
  int status = 0;
  char* demangled = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  std::string result = (status == 0 && demangled != nullptr) ? demangled : name;
  std::free(demangled);
  return result;
}

// Runs `call` (a handler), turning an exception it throws into a failed invocation.
template <typename Call>
InvocationResponse Guarded(const Call& call) {
  try {
    return call();
  } catch (const std::exception& e) {
    return InvocationResponse::Failure(Demangle(typeid(e).name()), e.what());
  } catch (...) {
    const std::type_info* type = abi::__cxa_current_exception_type();
    return InvocationResponse::Failure(type != nullptr ? Demangle(type->name()) : "unknown",
                                       "the handler threw an exception not derived from "
                                       "std::exception");
  }
}

void Log(const char* what, const Error& error) {
  std::fprintf(stderr, "hearth-runtime: %s: %s\n", what, error.ToString().c_str());
  std::fflush(stderr);
}

// The next invocation, with _X_AMZN_TRACE_ID set to its trace id (unset when it has none); on
// failure it logs why and returns nothing, with the exit code for the runtime in *exit_code.
std::optional<InvocationRequest> NextInvocation(Runtime& runtime, int* exit_code);

// A handler loop run against the Runtime API the environment names.
template <typename H>
int RunFromEnvironment(const H& handler, int (*run)(Runtime&, const H&)) {
  Result<Runtime> runtime = Runtime::FromEnvironment();
  if (!runtime.ok()) {
    Log("startup", runtime.error());
    return 1;
  }
  return run(*runtime, handler);
}

// kUnavailable after all retries: nobody listens at the Runtime API any more.
int ExitCodeFor(const Error& error) { return error.code() == ErrorCode::kUnavailable ? 0 : 1; }

std::optional<InvocationRequest> NextInvocation(Runtime& runtime, int* exit_code) {
  Result<InvocationRequest> next = runtime.Next();
  if (!next.ok()) {
    Log("next invocation", next.error());
    *exit_code = ExitCodeFor(next.error());
    return std::nullopt;
  }
  if (next->trace_id.empty()) {
    ::unsetenv("_X_AMZN_TRACE_ID");
  } else {
    ::setenv("_X_AMZN_TRACE_ID", next->trace_id.c_str(), 1);
  }
  return std::move(*next);
}

}  // namespace

int RunHandler(Runtime& runtime, const Handler& handler) {
  for (;;) {
    int exit_code = 0;
    std::optional<InvocationRequest> next = NextInvocation(runtime, &exit_code);
    if (!next) return exit_code;
    const InvocationRequest& request = *next;

    InvocationResponse response = Guarded([&] { return handler(request); });
    Status posted = runtime.PostAndRequestNext(request.request_id, response);
    if (!posted.ok()) {
      Log(response.success() ? "posting the response" : "posting the error", posted.error());
      // The server rejected this one post (unknown id, too large...); the next invocation may
      // still succeed. Anything else means the connection is beyond repair.
      if (posted.error().code() != ErrorCode::kHttpStatus) return ExitCodeFor(posted.error());
    }
  }
}

int RunStreamingHandler(Runtime& runtime, const StreamingHandler& handler) {
  for (;;) {
    int exit_code = 0;
    std::optional<InvocationRequest> next = NextInvocation(runtime, &exit_code);
    if (!next) return exit_code;
    const InvocationRequest& request = *next;

    ResponseStream stream = runtime.StreamResponse(request.request_id);
    InvocationResponse response = Guarded([&] { return handler(request, stream); });
    Status ended;
    const char* what = "ending the response stream";
    if (response.success()) {
      if (!stream.started() && !stream.content_type_set()) stream.SetContentType(response.content_type());
      if (!response.payload().empty()) {
        Status w = stream.Write(response.payload());
        if (!w.ok()) Log("streaming the response", w.error());
      }
      ended = stream.Finish();
    } else if (stream.started()) {
      ended = stream.Fail(response);
      what = "ending the response stream with an error";
    } else {
      ended = runtime.PostError(request.request_id, response);
      what = "posting the error";
    }
    // A stream has its own connection: whatever happened to it, the next `next` starts afresh.
    if (!ended.ok()) Log(what, ended.error());
  }
}

int RunStreamingHandler(StreamingHandler handler) {
  return RunFromEnvironment<StreamingHandler>(handler, &RunStreamingHandler);
}

int RunHandler(Handler handler) { return RunFromEnvironment<Handler>(handler, &RunHandler); }

}  // namespace hearth::runtime
