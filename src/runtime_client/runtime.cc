#include "hearth/runtime/runtime.h"

#include <cxxabi.h>
#include <stdlib.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <exception>
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
    Status s = Exchange(next_head_, {});
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

Status Runtime::PostError(const std::string& request_id, const InvocationResponse& response) {
  return impl_->PostError(request_id, response);
}

Status Runtime::PostInitError(const std::string& error_type, const std::string& error_message,
                              const std::vector<std::string>& stack_trace) {
  return impl_->PostInitError(error_type, error_message, stack_trace);
}

const std::string& Runtime::endpoint() const { return impl_->endpoint(); }

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

InvocationResponse CallHandler(const Handler& handler, const InvocationRequest& request) {
  try {
    return handler(request);
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

// kUnavailable after all retries: nobody listens at the Runtime API any more.
int ExitCodeFor(const Error& error) { return error.code() == ErrorCode::kUnavailable ? 0 : 1; }

}  // namespace

int RunHandler(Runtime& runtime, const Handler& handler) {
  for (;;) {
    Result<InvocationRequest> next = runtime.Next();
    if (!next.ok()) {
      Log("next invocation", next.error());
      return ExitCodeFor(next.error());
    }
    const InvocationRequest& request = *next;
    if (request.trace_id.empty()) {
      ::unsetenv("_X_AMZN_TRACE_ID");
    } else {
      ::setenv("_X_AMZN_TRACE_ID", request.trace_id.c_str(), 1);
    }

    InvocationResponse response = CallHandler(handler, request);
    Status posted = response.success() ? runtime.PostResponse(request.request_id, response)
                                       : runtime.PostError(request.request_id, response);
    if (!posted.ok()) {
      Log(response.success() ? "posting the response" : "posting the error", posted.error());
      // The server rejected this one post (unknown id, too large...); the next invocation may
      // still succeed. Anything else means the connection is beyond repair.
      if (posted.error().code() != ErrorCode::kHttpStatus) return ExitCodeFor(posted.error());
    }
  }
}

int RunHandler(Handler handler) {
  Result<Runtime> runtime = Runtime::FromEnvironment();
  if (!runtime.ok()) {
    Log("startup", runtime.error());
    return 1;
  }
  return RunHandler(*runtime, handler);
}

}  // namespace hearth::runtime
