// Tests for the runtime client against an in-process fake Runtime API: a plain-socket HTTP/1.1
// server on 127.0.0.1:0 whose answers are scripted per test.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <future>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "hearth/runtime/json.h"
#include "hearth/runtime/runtime.h"
#include "http_connection.h"

namespace hearth::runtime {
namespace {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct FakeRequest {
  std::string method;
  std::string target;
  Headers headers;
  std::string body;
  // A chunked request body: its chunks as they arrived (body holds their concatenation), and the
  // trailer fields after the last chunk.
  std::vector<std::string> chunks;
  Headers trailers;
  // Bytes of a further request had already arrived when this one was read (pipelining).
  bool followed_by_more = false;

  // Case-insensitive; "" when absent.
  std::string Header(std::string_view name) const {
    for (const auto& [k, v] : headers) {
      if (internal::EqualsIgnoreCase(k, name)) return v;
    }
    return "";
  }
  bool HasHeader(std::string_view name) const {
    for (const auto& [k, v] : headers) {
      if (internal::EqualsIgnoreCase(k, name)) return true;
    }
    return false;
  }
};

struct FakeResponse {
  int status = 200;
  Headers headers;
  std::string body;
  bool chunked = false;  // Transfer-Encoding: chunked (chunks of chunk_size bytes).
  size_t chunk_size = 1000;
  bool connection_close = false;  // Send "Connection: close" and close after the response.
  bool silent_close = false;      // Close after the response without saying so.
  bool drop = false;              // Close without answering at all.
  size_t write_piece = 0;         // When > 0, write the response in pieces of this many bytes.
  std::string raw;                // When non-empty, written verbatim instead of the above.
};

using Script = std::function<FakeResponse(const FakeRequest&)>;

bool WriteAll(int fd, std::string_view data, size_t piece) {
  if (piece == 0) piece = data.size();
  while (!data.empty()) {
    size_t n = std::min(piece, data.size());
    ssize_t w = ::send(fd, data.data(), n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<size_t>(w));
  }
  return true;
}

std::string Serialize(const FakeResponse& r) {
  if (!r.raw.empty()) return r.raw;
  std::string out = "HTTP/1.1 " + std::to_string(r.status) + " Whatever\r\n";
  for (const auto& [k, v] : r.headers) out += k + ": " + v + "\r\n";
  if (r.connection_close) out += "Connection: close\r\n";
  if (r.chunked) {
    out += "Transfer-Encoding: chunked\r\n\r\n";
    char size[32];
    for (size_t i = 0; i < r.body.size(); i += r.chunk_size) {
      size_t n = std::min(r.chunk_size, r.body.size() - i);
      std::snprintf(size, sizeof(size), "%zx;ext=1\r\n", n);
      out += size;
      out.append(r.body, i, n);
      out += "\r\n";
    }
    out += "0\r\nX-Trailer: t\r\n\r\n";
  } else {
    out += "Content-Length: " + std::to_string(r.body.size()) + "\r\n\r\n";
    out += r.body;
  }
  return out;
}

class FakeRuntimeApi {
 public:
  explicit FakeRuntimeApi(Script script) : script_(std::move(script)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        ::listen(listen_fd_, 64) != 0) {
      std::abort();
    }
    socklen_t len = sizeof(addr);
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    accept_thread_ = std::thread([this] { AcceptLoop(); });
  }

  ~FakeRuntimeApi() { Shutdown(); }

  std::string endpoint() const { return "127.0.0.1:" + std::to_string(port_); }

  // Refuses new connections from now on (safe to call from a script).
  void StopAccepting() { ::shutdown(listen_fd_, SHUT_RDWR); }

  void Shutdown() {
    StopAccepting();
    if (accept_thread_.joinable()) accept_thread_.join();
    std::vector<std::thread> threads;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
      for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
      threads.swap(threads_);
    }
    cv_.notify_all();
    for (std::thread& t : threads) t.join();
    if (listen_fd_ >= 0) ::close(listen_fd_);
    listen_fd_ = -1;
  }

  std::vector<FakeRequest> requests() const {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

  // Blocks until at least `n` requests have arrived.
  void WaitForRequests(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return requests_.size() >= n || stopping_; });
  }

  // Waits up to `timeout` until at least `n` body chunks (of chunked requests) have arrived.
  bool WaitForChunks(size_t n, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return chunks_seen_ >= n || stopping_; }) && chunks_seen_ >= n;
  }

  int connections_accepted() const {
    std::lock_guard<std::mutex> lock(mu_);
    return accepted_;
  }

 private:
  void AcceptLoop() {
    for (;;) {
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        return;
      }
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      std::lock_guard<std::mutex> lock(mu_);
      ++accepted_;
      open_fds_.insert(fd);
      threads_.emplace_back([this, fd] { Serve(fd); });
    }
  }

  // Reads until `buffer` holds `what`; its position, or npos on EOF/error.
  static size_t ReadUntil(int fd, std::string* buffer, std::string_view what) {
    size_t at;
    while ((at = buffer->find(what)) == std::string::npos) {
      char tmp[65536];
      ssize_t n = ::recv(fd, tmp, sizeof(tmp), 0);
      if (n <= 0) return std::string::npos;
      buffer->append(tmp, static_cast<size_t>(n));
    }
    return at;
  }

  // A chunked body (with trailers); every chunk is counted as it arrives.
  bool ReadChunkedBody(int fd, std::string* buffer, FakeRequest* req) {
    for (;;) {
      size_t eol = ReadUntil(fd, buffer, "\r\n");
      if (eol == std::string::npos) return false;
      size_t size = std::stoul(buffer->substr(0, eol), nullptr, 16);
      buffer->erase(0, eol + 2);
      if (size == 0) break;
      while (buffer->size() < size + 2) {
        char tmp[65536];
        ssize_t n = ::recv(fd, tmp, sizeof(tmp), 0);
        if (n <= 0) return false;
        buffer->append(tmp, static_cast<size_t>(n));
      }
      req->chunks.push_back(buffer->substr(0, size));
      req->body += req->chunks.back();
      buffer->erase(0, size + 2);
      {
        std::lock_guard<std::mutex> lock(mu_);
        ++chunks_seen_;
      }
      cv_.notify_all();
    }
    for (;;) {
      size_t eol = ReadUntil(fd, buffer, "\r\n");
      if (eol == std::string::npos) return false;
      std::string line = buffer->substr(0, eol);
      buffer->erase(0, eol + 2);
      if (line.empty()) return true;
      size_t colon = line.find(':');
      std::string value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      req->trailers.emplace_back(line.substr(0, colon), value);
    }
  }

  // Reads one request; false on EOF or error.
  bool ReadRequest(int fd, std::string* buffer, FakeRequest* req) {
    size_t end;
    while ((end = buffer->find("\r\n\r\n")) == std::string::npos) {
      char tmp[65536];
      ssize_t n = ::recv(fd, tmp, sizeof(tmp), 0);
      if (n <= 0) return false;
      buffer->append(tmp, static_cast<size_t>(n));
    }
    std::string head = buffer->substr(0, end);
    buffer->erase(0, end + 4);
    size_t line_end = head.find("\r\n");
    std::string request_line = head.substr(0, line_end);
    size_t sp1 = request_line.find(' ');
    size_t sp2 = request_line.rfind(' ');
    req->method = request_line.substr(0, sp1);
    req->target = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
    size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
    while (pos < head.size()) {
      size_t next = head.find("\r\n", pos);
      if (next == std::string::npos) next = head.size();
      std::string line = head.substr(pos, next - pos);
      size_t colon = line.find(':');
      std::string value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      req->headers.emplace_back(line.substr(0, colon), value);
      pos = next + 2;
    }
    if (internal::EqualsIgnoreCase(req->Header("Transfer-Encoding"), "chunked")) {
      return ReadChunkedBody(fd, buffer, req);
    }
    size_t length = 0;
    std::string cl = req->Header("Content-Length");
    if (!cl.empty()) length = std::stoul(cl);
    while (buffer->size() < length) {
      char tmp[65536];
      ssize_t n = ::recv(fd, tmp, sizeof(tmp), 0);
      if (n <= 0) return false;
      buffer->append(tmp, static_cast<size_t>(n));
    }
    req->body = buffer->substr(0, length);
    buffer->erase(0, length);
    return true;
  }

  void Serve(int fd) {
    std::string buffer;
    for (;;) {
      FakeRequest req;
      if (!ReadRequest(fd, &buffer, &req)) break;
      req.followed_by_more = !buffer.empty();
      {
        std::lock_guard<std::mutex> lock(mu_);
        requests_.push_back(req);
      }
      cv_.notify_all();
      FakeResponse resp = script_(req);
      if (resp.drop) break;
      if (!WriteAll(fd, Serialize(resp), resp.write_piece)) break;
      if (resp.connection_close || resp.silent_close) break;
    }
    std::lock_guard<std::mutex> lock(mu_);
    open_fds_.erase(fd);
    ::close(fd);
  }

  Script script_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::thread accept_thread_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  int accepted_ = 0;
  size_t chunks_seen_ = 0;
  std::set<int> open_fds_;
  std::vector<std::thread> threads_;
  std::vector<FakeRequest> requests_;
};

constexpr char kNextPath[] = "/2018-06-01/runtime/invocation/next";

bool IsNext(const FakeRequest& r) { return r.method == "GET" && r.target == kNextPath; }

FakeResponse Event(std::string id, std::string payload, Headers extra = {}) {
  FakeResponse r;
  r.headers = {{"Lambda-Runtime-Aws-Request-Id", std::move(id)},
               {"Lambda-Runtime-Deadline-Ms", "4102444800000"},
               {"Content-Type", "application/json"}};
  for (auto& h : extra) r.headers.push_back(std::move(h));
  r.body = std::move(payload);
  return r;
}

FakeResponse Accepted() {
  FakeResponse r;
  r.status = 202;
  r.body = R"({"status":"OK"})";
  return r;
}

// Small backoff so that tests which exhaust the retries stay fast.
Runtime::Options FastOptions() {
  Runtime::Options o;
  o.max_retries = 3;
  o.initial_backoff = std::chrono::milliseconds(1);
  return o;
}

Runtime MakeRuntime(const FakeRuntimeApi& server) {
  Result<Runtime> rt = Runtime::Create(server.endpoint(), FastOptions());
  if (!rt.ok()) std::abort();
  return std::move(rt).value();
}

// A script serving `events` to successive `next` calls and 202 to every post; once the events
// are used up it stops accepting connections and drops the poll, i.e. the Runtime API goes away.
class EventScript {
 public:
  explicit EventScript(std::vector<FakeResponse> events) : events_(std::move(events)) {}
  FakeResponse operator()(FakeRuntimeApi* server, const FakeRequest& req) {
    if (!IsNext(req)) return Accepted();
    std::lock_guard<std::mutex> lock(mu_);
    if (next_ < events_.size()) return events_[next_++];
    server->StopAccepting();
    FakeResponse gone;
    gone.drop = true;
    return gone;
  }

 private:
  std::mutex mu_;
  std::vector<FakeResponse> events_;
  size_t next_ = 0;
};

// Server with an EventScript; the script needs the server pointer, hence the indirection.
struct EventServer {
  explicit EventServer(std::vector<FakeResponse> events)
      : script(std::move(events)),
        server([this](const FakeRequest& r) { return script(&server, r); }) {}
  EventScript script;
  FakeRuntimeApi server;
};

// ---------------------------------------------------------------------------------------------
// JSON and response bodies

TEST(JsonTest, QuotesAndEscapes) {
  struct Case {
    std::string in;
    std::string want;
  };
  const Case cases[] = {
      {"", R"("")"},
      {"plain", R"("plain")"},
      {"say \"hi\"", R"("say \"hi\"")"},
      {"back\\slash", R"("back\\slash")"},
      {"a\nb\rc\td\be\ff", R"("a\nb\rc\td\be\ff")"},
      {std::string("nul\0x", 5), R"("nul\u0000x")"},
      {"\x01\x1f", R"("\u0001\u001f")"},
      {"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80",
       "\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\""},
      {"bad\xFFutf8", "\"bad\xEF\xBF\xBDutf8\""},
      {"overlong\xC0\xAF", "\"overlong\xEF\xBF\xBD\xEF\xBF\xBD\""},
      {"surrogate\xED\xA0\x80", "\"surrogate\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\""},
      {"truncated\xE2\x82", "\"truncated\xEF\xBF\xBD\xEF\xBF\xBD\""},
      {"/slash and \x7f", "\"/slash and \x7f\""},
  };
  for (const Case& c : cases) EXPECT_EQ(JsonQuote(c.in), c.want) << c.in;
}

TEST(InvocationResponseTest, SuccessKeepsPayloadAndContentType) {
  InvocationResponse r = InvocationResponse::Success("raw bytes", "text/plain");
  EXPECT_TRUE(r.success());
  EXPECT_EQ(r.payload(), "raw bytes");
  EXPECT_EQ(r.content_type(), "text/plain");
  EXPECT_EQ(r.error_type(), "");
  EXPECT_EQ(InvocationResponse::Success("{}").content_type(), "application/json");
}

TEST(InvocationResponseTest, FailureBuildsErrorJson) {
  InvocationResponse r =
      InvocationResponse::Failure("Custom.Error", "it \"broke\"\n", {"at a()", "at \\b()"});
  EXPECT_FALSE(r.success());
  EXPECT_EQ(r.error_type(), "Custom.Error");
  EXPECT_EQ(r.payload(), R"js({"errorMessage":"it \"broke\"\n","errorType":"Custom.Error",)js"
                         R"js("stackTrace":["at a()","at \\b()"]})js");
  EXPECT_EQ(InvocationResponse::Failure("T", "m").payload(),
            R"({"errorMessage":"m","errorType":"T","stackTrace":[]})");
}

TEST(InvocationRequestTest, RemainingTime) {
  using std::chrono::milliseconds;
  InvocationRequest req;
  EXPECT_EQ(req.RemainingTime(), milliseconds::max());
  auto now =
      std::chrono::duration_cast<milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  req.deadline_ms = now + 5000;
  EXPECT_LE(req.RemainingTime(), milliseconds(5000));
  EXPECT_GT(req.RemainingTime(), milliseconds(4000));
  req.deadline_ms = now - 100;
  EXPECT_LE(req.RemainingTime(), milliseconds(-100));
}

// ---------------------------------------------------------------------------------------------
// Endpoint and environment

TEST(EndpointTest, ParsesForms) {
  struct Case {
    const char* text;
    bool ok;
    int family;
  };
  const Case cases[] = {
      {"127.0.0.1:9001", true, AF_INET},
      {"localhost:9001", true, AF_INET},
      {"http://127.0.0.1:9001/", true, AF_INET},
      {"[::1]:9001", true, AF_INET6},
      {"", false, 0},
      {"127.0.0.1", false, 0},
      {"127.0.0.1:", false, 0},
      {"127.0.0.1:0", false, 0},
      {"127.0.0.1:70000", false, 0},
      {"127.0.0.1:90x1", false, 0},
      {":9001", false, 0},
      {"[::1:9001", false, 0},
  };
  for (const Case& c : cases) {
    Result<internal::Endpoint> ep = internal::ParseEndpoint(c.text);
    ASSERT_EQ(ep.ok(), c.ok) << c.text;
    if (c.ok) {
      EXPECT_EQ(ep->address.ss_family, c.family) << c.text;
    } else {
      EXPECT_EQ(ep.error().code(), ErrorCode::kInvalidArgument) << c.text;
    }
  }
}

TEST(RuntimeTest, FromEnvironment) {
  ::unsetenv("AWS_LAMBDA_RUNTIME_API");
  Result<Runtime> missing = Runtime::FromEnvironment();
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(missing.error().message().find("AWS_LAMBDA_RUNTIME_API"), std::string::npos);

  ::setenv("AWS_LAMBDA_RUNTIME_API", "no-port", 1);
  EXPECT_FALSE(Runtime::FromEnvironment().ok());

  EventServer s({Event("env-1", "{}")});
  ::setenv("AWS_LAMBDA_RUNTIME_API", s.server.endpoint().c_str(), 1);
  Result<Runtime> rt = Runtime::FromEnvironment();
  ASSERT_TRUE(rt.ok()) << rt.error().ToString();
  EXPECT_EQ(rt->endpoint(), s.server.endpoint());
  Result<InvocationRequest> next = rt->Next();
  ASSERT_TRUE(next.ok()) << next.error().ToString();
  EXPECT_EQ(next->request_id, "env-1");
  ::unsetenv("AWS_LAMBDA_RUNTIME_API");
}

// ---------------------------------------------------------------------------------------------
// next

TEST(RuntimeTest, NextReturnsHeadersAndPayload) {
  // Header names in odd cases: they are case-insensitive.
  FakeResponse ev;
  ev.headers = {{"lambda-runtime-aws-request-id", "8476a536-e9f4-11e8-9739-2dfe598c3fcd"},
                {"LAMBDA-RUNTIME-DEADLINE-MS", "1542409706888"},
                {"Lambda-Runtime-Invoked-Function-Arn",
                 "arn:aws:lambda:us-east-2:123456789012:function:custom-runtime:prod"},
                {"lambda-runtime-trace-id", "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Sampled=1"},
                {"Lambda-Runtime-Client-Context", R"({"client":{"app_title":"x"},"custom":{}})"},
                {"Lambda-Runtime-Cognito-Identity", R"({"cognitoIdentityId":"id"})"},
                {"Lambda-Runtime-Aws-Tenant-Id", "tenant-7"},
                {"content-type", "text/plain"},
                {"X-Unrelated", "ignored"}};
  ev.body = R"({"key":"value"})";
  EventServer s({ev});
  Runtime rt = MakeRuntime(s.server);

  Result<InvocationRequest> next = rt.Next();
  ASSERT_TRUE(next.ok()) << next.error().ToString();
  EXPECT_EQ(next->request_id, "8476a536-e9f4-11e8-9739-2dfe598c3fcd");
  EXPECT_EQ(next->deadline_ms, 1542409706888);
  EXPECT_EQ(next->invoked_function_arn,
            "arn:aws:lambda:us-east-2:123456789012:function:custom-runtime:prod");
  EXPECT_EQ(next->trace_id, "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Sampled=1");
  EXPECT_EQ(next->client_context, R"({"client":{"app_title":"x"},"custom":{}})");
  EXPECT_EQ(next->cognito_identity, R"({"cognitoIdentityId":"id"})");
  EXPECT_EQ(next->tenant_id, "tenant-7");
  EXPECT_EQ(next->content_type, "text/plain");
  EXPECT_EQ(next->payload, R"({"key":"value"})");

  std::vector<FakeRequest> reqs = s.server.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "GET");
  EXPECT_EQ(reqs[0].target, kNextPath);
  EXPECT_EQ(reqs[0].Header("Host"), s.server.endpoint());
}

TEST(RuntimeTest, NextDefaultsAndOptionalHeaders) {
  FakeResponse ev;
  ev.headers = {{"Lambda-Runtime-Aws-Request-Id", "id-1"}};
  EventServer s({ev});
  Runtime rt = MakeRuntime(s.server);
  Result<InvocationRequest> next = rt.Next();
  ASSERT_TRUE(next.ok()) << next.error().ToString();
  EXPECT_EQ(next->content_type, "application/json");
  EXPECT_EQ(next->deadline_ms, 0);
  EXPECT_EQ(next->trace_id, "");
  EXPECT_EQ(next->payload, "");
}

TEST(RuntimeTest, NextRejectsMissingIdAndBadDeadline) {
  FakeResponse no_id = Event("x", "{}");
  no_id.headers.erase(no_id.headers.begin());
  FakeResponse bad_deadline = Event("y", "{}", {});
  bad_deadline.headers[1].second = "soon";
  EventServer s({no_id, bad_deadline});
  Runtime rt = MakeRuntime(s.server);

  Result<InvocationRequest> a = rt.Next();
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.error().code(), ErrorCode::kProtocol);
  Result<InvocationRequest> b = rt.Next();
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.error().code(), ErrorCode::kProtocol);
  EXPECT_NE(b.error().message().find("soon"), std::string::npos);
}

TEST(RuntimeTest, NextHandlesChunkedBodyInSmallPieces) {
  FakeResponse ev = Event("chunky", std::string(10000, 'c') + "end");
  ev.chunked = true;
  ev.chunk_size = 777;
  ev.write_piece = 13;  // Make the client's reads stop at awkward places.
  EventServer s({ev, Event("after", "second")});
  Runtime rt = MakeRuntime(s.server);
  Result<InvocationRequest> next = rt.Next();
  ASSERT_TRUE(next.ok()) << next.error().ToString();
  EXPECT_EQ(next->request_id, "chunky");
  EXPECT_EQ(next->payload.size(), 10003u);
  EXPECT_TRUE(next->payload == std::string(10000, 'c') + "end");
  // The connection stays usable after a chunked body with trailers.
  Result<InvocationRequest> second = rt.Next();
  ASSERT_TRUE(second.ok()) << second.error().ToString();
  EXPECT_EQ(second->payload, "second");
  EXPECT_EQ(s.server.connections_accepted(), 1);
}

TEST(RuntimeTest, NextSkipsInterimAndReadsUntilCloseWithoutLength) {
  FakeResponse interim;
  interim.raw =
      "HTTP/1.1 100 Continue\r\n\r\n"
      "HTTP/1.0 200 OK\r\n"
      "Lambda-Runtime-Aws-Request-Id: old-style\r\n"
      "X-Folded: a\r\n"
      "  b\r\n"
      "\r\n"
      "body until close";
  interim.silent_close = true;
  EventServer s({interim, Event("then", "ok")});
  Runtime rt = MakeRuntime(s.server);
  Result<InvocationRequest> next = rt.Next();
  ASSERT_TRUE(next.ok()) << next.error().ToString();
  EXPECT_EQ(next->request_id, "old-style");
  EXPECT_EQ(next->payload, "body until close");
  Result<InvocationRequest> second = rt.Next();
  ASSERT_TRUE(second.ok()) << second.error().ToString();
  EXPECT_EQ(second->request_id, "then");
}

TEST(RuntimeTest, NextReportsHttpStatus) {
  FakeResponse broken;
  broken.status = 500;
  broken.body =
      R"({"errorMessage":"State transition failed","errorType":"InvalidStateTransition"})";
  FakeRuntimeApi server([&](const FakeRequest&) { return broken; });
  Runtime rt = MakeRuntime(server);
  Result<InvocationRequest> next = rt.Next();
  ASSERT_FALSE(next.ok());
  EXPECT_EQ(next.error().code(), ErrorCode::kHttpStatus);
  EXPECT_EQ(next.error().http_status(), 500);
  EXPECT_NE(next.error().message().find("InvalidStateTransition"), std::string::npos);
}

TEST(RuntimeTest, NextRejectsGarbage) {
  FakeResponse junk;
  junk.raw = "SSH-2.0-OpenSSH\r\n\r\n";
  junk.silent_close = true;
  FakeRuntimeApi server([&](const FakeRequest&) { return junk; });
  Runtime rt = MakeRuntime(server);
  Result<InvocationRequest> next = rt.Next();
  ASSERT_FALSE(next.ok());
  EXPECT_EQ(next.error().code(), ErrorCode::kProtocol);
}

TEST(RuntimeTest, NextIsALongPollWithoutTimeout) {
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  FakeRuntimeApi server([&](const FakeRequest&) {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return release; });
    return Event("late", "finally");
  });
  Runtime rt = MakeRuntime(server);
  auto next = std::async(std::launch::async, [&] { return rt.Next(); });
  server.WaitForRequests(1);
  // Nothing may happen on the client side while the server holds the poll.
  EXPECT_EQ(next.wait_for(std::chrono::milliseconds(1500)), std::future_status::timeout);
  {
    std::lock_guard<std::mutex> lock(mu);
    release = true;
  }
  cv.notify_all();
  Result<InvocationRequest> got = next.get();
  ASSERT_TRUE(got.ok()) << got.error().ToString();
  EXPECT_EQ(got->payload, "finally");
}

// ---------------------------------------------------------------------------------------------
// Posts

TEST(RuntimeTest, PostResponseSendsPathBodyAndContentType) {
  EventServer s({});
  Runtime rt = MakeRuntime(s.server);
  Status st = rt.PostResponse("req-1", InvocationResponse::Success(R"({"ok":true})"));
  ASSERT_TRUE(st.ok()) << st.error().ToString();
  st = rt.PostResponse("req-2", InvocationResponse::Success("<p>", "text/html"));
  ASSERT_TRUE(st.ok()) << st.error().ToString();

  std::vector<FakeRequest> reqs = s.server.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].method, "POST");
  EXPECT_EQ(reqs[0].target, "/2018-06-01/runtime/invocation/req-1/response");
  EXPECT_EQ(reqs[0].body, R"({"ok":true})");
  EXPECT_EQ(reqs[0].Header("Content-Type"), "application/json");
  EXPECT_EQ(reqs[0].Header("Content-Length"), "11");
  EXPECT_FALSE(reqs[0].HasHeader("Lambda-Runtime-Function-Error-Type"));
  EXPECT_FALSE(reqs[0].HasHeader("Expect"));
  EXPECT_EQ(reqs[1].target, "/2018-06-01/runtime/invocation/req-2/response");
  EXPECT_EQ(reqs[1].Header("Content-Type"), "text/html");
  EXPECT_EQ(reqs[1].body, "<p>");
  EXPECT_EQ(s.server.connections_accepted(), 1);
}

TEST(RuntimeTest, PostResponseEscapesOddRequestIds) {
  EventServer s({});
  Runtime rt = MakeRuntime(s.server);
  ASSERT_TRUE(rt.PostResponse("a/b c", InvocationResponse::Success("{}")).ok());
  EXPECT_EQ(s.server.requests()[0].target, "/2018-06-01/runtime/invocation/a%2Fb%20c/response");
}

TEST(RuntimeTest, PostErrorSendsErrorTypeHeaderAndJsonBody) {
  EventServer s({});
  Runtime rt = MakeRuntime(s.server);
  InvocationResponse failure =
      InvocationResponse::Failure("Custom.Error", "went \"wrong\"", {"frame 1"});
  Status st = rt.PostError("req-9", failure);
  ASSERT_TRUE(st.ok()) << st.error().ToString();
  // PostResponse with a failure goes to /error too.
  st = rt.PostResponse("req-10", failure);
  ASSERT_TRUE(st.ok()) << st.error().ToString();

  std::vector<FakeRequest> reqs = s.server.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].target, "/2018-06-01/runtime/invocation/req-9/error");
  EXPECT_EQ(reqs[0].Header("Lambda-Runtime-Function-Error-Type"), "Custom.Error");
  EXPECT_EQ(reqs[0].Header("Content-Type"), "application/vnd.aws.lambda.error+json");
  EXPECT_EQ(
      reqs[0].body,
      R"({"errorMessage":"went \"wrong\"","errorType":"Custom.Error","stackTrace":["frame 1"]})");
  EXPECT_EQ(reqs[1].target, "/2018-06-01/runtime/invocation/req-10/error");

  // A success is not an error.
  Status bad = rt.PostError("req-11", InvocationResponse::Success("{}"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(s.server.requests().size(), 2u);
}

TEST(RuntimeTest, HeaderInjectionIsNeutralised) {
  EventServer s({});
  Runtime rt = MakeRuntime(s.server);
  ASSERT_TRUE(rt.PostError("r", InvocationResponse::Failure("A\r\nX-Evil: 1", "m")).ok());
  FakeRequest req = s.server.requests()[0];
  EXPECT_FALSE(req.HasHeader("X-Evil"));
  EXPECT_EQ(req.Header("Lambda-Runtime-Function-Error-Type"), "A  X-Evil: 1");
}

TEST(RuntimeTest, PostInitError) {
  EventServer s({});
  Runtime rt = MakeRuntime(s.server);
  Status st = rt.PostInitError("Runtime.NoSuchHandler", "handler 'x' missing");
  ASSERT_TRUE(st.ok()) << st.error().ToString();
  std::vector<FakeRequest> reqs = s.server.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "POST");
  EXPECT_EQ(reqs[0].target, "/2018-06-01/runtime/init/error");
  EXPECT_EQ(reqs[0].Header("Lambda-Runtime-Function-Error-Type"), "Runtime.NoSuchHandler");
  EXPECT_EQ(
      reqs[0].body,
      R"({"errorMessage":"handler 'x' missing","errorType":"Runtime.NoSuchHandler","stackTrace":[]})");
}

TEST(RuntimeTest, PostReportsRejection) {
  FakeRuntimeApi server([](const FakeRequest&) {
    FakeResponse r;
    r.status = 413;
    r.body = R"({"errorType":"RequestEntityTooLarge"})";
    return r;
  });
  Runtime rt = MakeRuntime(server);
  Status st = rt.PostResponse("big", InvocationResponse::Success("x"));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), ErrorCode::kHttpStatus);
  EXPECT_EQ(st.error().http_status(), 413);
}

// ---------------------------------------------------------------------------------------------
// Connections

TEST(RuntimeTest, KeepsOneConnectionAlive) {
  EventServer s({Event("1", "a"), Event("2", "b"), Event("3", "c")});
  Runtime rt = MakeRuntime(s.server);
  for (const char* id : {"1", "2", "3"}) {
    Result<InvocationRequest> next = rt.Next();
    ASSERT_TRUE(next.ok()) << next.error().ToString();
    EXPECT_EQ(next->request_id, id);
    ASSERT_TRUE(rt.PostResponse(id, InvocationResponse::Success(next->payload)).ok());
  }
  EXPECT_EQ(s.server.connections_accepted(), 1);
}

TEST(RuntimeTest, ReconnectsAfterConnectionClose) {
  // "Connection: close" announced, then a silent close, then a reused connection that the
  // server drops without answering (an idle keep-alive connection going away).
  FakeResponse announced = Event("1", "a");
  announced.connection_close = true;
  FakeResponse silent = Event("2", "b");
  silent.silent_close = true;
  std::atomic<int> nexts{0};
  FakeRuntimeApi server([&](const FakeRequest& req) {
    if (!IsNext(req)) return Accepted();
    switch (nexts++) {
      case 0:
        return announced;
      case 1:
        return silent;
      case 2:
        return Event("3", "c");
      case 3: {
        FakeResponse drop;
        drop.drop = true;
        return drop;
      }
      default:
        return Event("4", "d");
    }
  });
  Runtime rt = MakeRuntime(server);
  for (const char* id : {"1", "2", "3", "4"}) {
    Result<InvocationRequest> next = rt.Next();
    ASSERT_TRUE(next.ok()) << id << ": " << next.error().ToString();
    EXPECT_EQ(next->request_id, id);
  }
  // 1: first connection, announced close; 2: second, silent close; 3 on a third one which is
  // then dropped during the next poll; 4 on a fourth.
  EXPECT_EQ(server.connections_accepted(), 4);
  EXPECT_EQ(nexts.load(), 5);
}

TEST(RuntimeTest, ReconnectsWhenPostHitsAClosedConnection) {
  FakeResponse ev = Event("1", "a");
  ev.silent_close = true;
  EventServer s({ev});
  Runtime rt = MakeRuntime(s.server);
  ASSERT_TRUE(rt.Next().ok());
  Status st = rt.PostResponse("1", InvocationResponse::Success("answer"));
  ASSERT_TRUE(st.ok()) << st.error().ToString();
  std::vector<FakeRequest> reqs = s.server.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[1].body, "answer");
  EXPECT_EQ(s.server.connections_accepted(), 2);
}

TEST(RuntimeTest, GivesUpWhenNobodyListens) {
  std::string endpoint;
  {
    FakeRuntimeApi server([](const FakeRequest&) { return Accepted(); });
    endpoint = server.endpoint();
  }
  Result<Runtime> rt = Runtime::Create(endpoint, FastOptions());
  ASSERT_TRUE(rt.ok());
  Result<InvocationRequest> next = rt->Next();
  ASSERT_FALSE(next.ok());
  EXPECT_EQ(next.error().code(), ErrorCode::kUnavailable);
}

TEST(RuntimeTest, GivesUpWhenConnectionsKeepBreaking) {
  FakeRuntimeApi server([](const FakeRequest&) {
    FakeResponse drop;
    drop.drop = true;
    return drop;
  });
  Runtime rt = MakeRuntime(server);
  Result<InvocationRequest> next = rt.Next();
  ASSERT_FALSE(next.ok());
  EXPECT_EQ(next.error().code(), ErrorCode::kConnectionLost);
  EXPECT_EQ(server.connections_accepted(), 1 + FastOptions().max_retries);
}

TEST(RuntimeTest, LargePayloadsBothWays) {
  std::string big(5 * 1024 * 1024, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
  FakeResponse chunked = Event("chunked", big);
  chunked.chunked = true;
  chunked.chunk_size = 100000;
  EventServer s({Event("plain", big), chunked});
  Runtime rt = MakeRuntime(s.server);

  for (const char* id : {"plain", "chunked"}) {
    Result<InvocationRequest> next = rt.Next();
    ASSERT_TRUE(next.ok()) << next.error().ToString();
    EXPECT_EQ(next->request_id, id);
    ASSERT_EQ(next->payload.size(), big.size());
    EXPECT_TRUE(next->payload == big);
    ASSERT_TRUE(rt.PostResponse(id, InvocationResponse::Success(std::move(next->payload))).ok());
  }
  std::vector<FakeRequest> reqs = s.server.requests();
  ASSERT_EQ(reqs.size(), 4u);
  EXPECT_EQ(reqs[1].body.size(), big.size());
  EXPECT_TRUE(reqs[1].body == big);
  EXPECT_TRUE(reqs[3].body == big);
}

// ---------------------------------------------------------------------------------------------
// RunHandler

TEST(RunHandlerTest, AnswersEveryInvocationAndSetsTraceId) {
  EventServer s({Event("1", "one", {{"Lambda-Runtime-Trace-Id", "Root=1-aaa"}}), Event("2", "two"),
                 Event("3", "three", {{"lambda-runtime-trace-id", "Root=1-ccc"}})});
  Runtime rt = MakeRuntime(s.server);
  ::setenv("_X_AMZN_TRACE_ID", "stale", 1);
  std::vector<std::string> seen_trace;
  int rc = RunHandler(rt, [&](const InvocationRequest& req) {
    const char* t = std::getenv("_X_AMZN_TRACE_ID");
    seen_trace.push_back(t == nullptr ? "<unset>" : t);
    return InvocationResponse::Success("echo:" + req.payload, "text/plain");
  });
  EXPECT_EQ(rc, 0);  // The API went away after the third event.
  EXPECT_EQ(seen_trace, (std::vector<std::string>{"Root=1-aaa", "<unset>", "Root=1-ccc"}));

  std::vector<FakeRequest> reqs = s.server.requests();
  std::vector<std::pair<std::string, std::string>> posts;
  for (const FakeRequest& r : reqs) {
    if (r.method == "POST") posts.emplace_back(r.target, r.body);
  }
  EXPECT_EQ(posts, (std::vector<std::pair<std::string, std::string>>{
                       {"/2018-06-01/runtime/invocation/1/response", "echo:one"},
                       {"/2018-06-01/runtime/invocation/2/response", "echo:two"},
                       {"/2018-06-01/runtime/invocation/3/response", "echo:three"}}));
}

TEST(RunHandlerTest, PipelinesNextBehindEachPostOnOneConnection) {
  EventServer s({Event("1", "one"), Event("2", "two"), Event("3", "three")});
  Runtime rt = MakeRuntime(s.server);
  int rc = RunHandler(rt, [](const InvocationRequest& req) {
    if (req.request_id == "2") return InvocationResponse::Failure("Custom.Error", "nope");
    return InvocationResponse::Success(req.payload);
  });
  EXPECT_EQ(rc, 0);
  std::vector<FakeRequest> reqs = s.server.requests();
  int posts = 0;
  for (size_t i = 0; i < reqs.size(); ++i) {
    if (reqs[i].method != "POST") continue;
    ++posts;
    // The GET next came in the same write, right behind the post (responses and errors alike).
    EXPECT_TRUE(reqs[i].followed_by_more) << reqs[i].target;
    ASSERT_LT(i + 1, reqs.size());
    EXPECT_TRUE(IsNext(reqs[i + 1])) << reqs[i + 1].target;
  }
  EXPECT_EQ(posts, 3);
  // Exactly one GET next per invocation plus the first: nothing asked twice.
  int nexts = 0;
  for (const FakeRequest& r : reqs) nexts += IsNext(r) ? 1 : 0;
  EXPECT_EQ(nexts, 4);
}

TEST(RuntimeTest, PipelinedNextIsAskedAgainWhenTheServerClosesAfterRefusingThePost) {
  std::atomic<int> nexts{0};
  FakeRuntimeApi server([&](const FakeRequest& req) {
    if (IsNext(req)) {
      int n = nexts++;
      return Event(std::to_string(n), "p" + std::to_string(n));
    }
    FakeResponse r = Accepted();
    if (req.target.find("/0/") != std::string::npos) {
      r.status = 413;
      r.connection_close = true;  // the pipelined GET next is dropped unanswered
    }
    return r;
  });
  Runtime rt = MakeRuntime(server);
  Result<InvocationRequest> first = rt.Next();
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->request_id, "0");
  Status posted = rt.PostAndRequestNext("0", InvocationResponse::Success("too big"));
  ASSERT_FALSE(posted.ok());
  EXPECT_EQ(posted.error().http_status(), 413);
  Result<InvocationRequest> second = rt.Next();  // reconnects and asks again
  ASSERT_TRUE(second.ok()) << second.error().ToString();
  EXPECT_EQ(second->request_id, "1");
  EXPECT_EQ(second->payload, "p1");
  ASSERT_TRUE(rt.PostAndRequestNext("1", InvocationResponse::Success("fine")).ok());
  Result<InvocationRequest> third = rt.Next();
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(third->request_id, "2");
  EXPECT_EQ(server.connections_accepted(), 2);
  EXPECT_EQ(nexts.load(), 3);  // the dropped request was not answered, so not counted
}

struct MyError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

TEST(RunHandlerTest, ThrowingHandlerPostsError) {
  EventServer s({Event("std", "x"), Event("custom", "y"), Event("int", "z"), Event("failure", "w"),
                 Event("fine", "v")});
  Runtime rt = MakeRuntime(s.server);
  int rc = RunHandler(rt, [](const InvocationRequest& req) -> InvocationResponse {
    if (req.request_id == "std") throw std::runtime_error("boom \"quoted\"");
    if (req.request_id == "custom") throw MyError("mine");
    if (req.request_id == "int") throw 42;
    if (req.request_id == "failure") return InvocationResponse::Failure("Custom.Error", "nope");
    return InvocationResponse::Success("ok");
  });
  EXPECT_EQ(rc, 0);

  std::vector<FakeRequest> posts;
  for (const FakeRequest& r : s.server.requests()) {
    if (r.method == "POST") posts.push_back(r);
  }
  ASSERT_EQ(posts.size(), 5u);
  EXPECT_EQ(posts[0].target, "/2018-06-01/runtime/invocation/std/error");
  EXPECT_EQ(posts[0].Header("Lambda-Runtime-Function-Error-Type"), "std::runtime_error");
  EXPECT_EQ(
      posts[0].body,
      R"({"errorMessage":"boom \"quoted\"","errorType":"std::runtime_error","stackTrace":[]})");
  EXPECT_EQ(posts[1].Header("Lambda-Runtime-Function-Error-Type"),
            "hearth::runtime::(anonymous namespace)::MyError");
  EXPECT_EQ(posts[2].target, "/2018-06-01/runtime/invocation/int/error");
  EXPECT_EQ(posts[2].Header("Lambda-Runtime-Function-Error-Type"), "int");
  EXPECT_EQ(posts[3].target, "/2018-06-01/runtime/invocation/failure/error");
  EXPECT_EQ(posts[3].Header("Lambda-Runtime-Function-Error-Type"), "Custom.Error");
  EXPECT_EQ(posts[4].target, "/2018-06-01/runtime/invocation/fine/response");
  EXPECT_EQ(posts[4].body, "ok");
}

TEST(RunHandlerTest, ContinuesAfterRejectedPost) {
  std::atomic<int> nexts{0};
  FakeRuntimeApi* self = nullptr;
  FakeRuntimeApi server([&](const FakeRequest& req) {
    if (IsNext(req)) {
      int n = nexts++;
      if (n < 2) return Event(std::to_string(n), "p");
      self->StopAccepting();
      FakeResponse drop;
      drop.drop = true;
      return drop;
    }
    FakeResponse r = Accepted();
    if (req.target.find("/0/") != std::string::npos) r.status = 413;
    return r;
  });
  self = &server;
  Runtime rt = MakeRuntime(server);
  int calls = 0;
  int rc = RunHandler(rt, [&](const InvocationRequest& req) {
    ++calls;
    return InvocationResponse::Success(req.payload);
  });
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(calls, 2);
}

TEST(RunHandlerTest, ExitsNonZeroOnServerError) {
  FakeRuntimeApi server([](const FakeRequest&) {
    FakeResponse r;
    r.status = 500;
    return r;
  });
  Runtime rt = MakeRuntime(server);
  int calls = 0;
  EXPECT_EQ(RunHandler(rt,
                       [&](const InvocationRequest&) {
                         ++calls;
                         return InvocationResponse::Success("");
                       }),
            1);
  EXPECT_EQ(calls, 0);
}

TEST(RunHandlerTest, ExitsNonZeroWhenConnectionsKeepBreaking) {
  std::atomic<int> nexts{0};
  FakeRuntimeApi server([&](const FakeRequest& req) {
    if (IsNext(req) && nexts++ == 0) return Event("only", "x");
    if (!IsNext(req)) return Accepted();
    FakeResponse drop;
    drop.drop = true;
    return drop;
  });
  Runtime rt = MakeRuntime(server);
  int rc = RunHandler(
      rt, [](const InvocationRequest& r) { return InvocationResponse::Success(r.payload); });
  EXPECT_EQ(rc, 1);
}

TEST(RunHandlerTest, FromEnvironmentFailureExitsNonZero) {
  ::unsetenv("AWS_LAMBDA_RUNTIME_API");
  EXPECT_EQ(RunHandler([](const InvocationRequest&) { return InvocationResponse::Success(""); }),
            1);
}


// ---------------------------------------------------------------------------------------------
// Response streaming

std::string Unbase64(std::string_view in) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v = val(c);
    if (v < 0) break;
    acc = acc << 6 | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return out;
}

std::string Trailer(const FakeRequest& r, std::string_view name) {
  for (const auto& [k, v] : r.trailers) {
    if (internal::EqualsIgnoreCase(k, name)) return v;
  }
  return "";
}

std::vector<FakeRequest> Posts(const FakeRuntimeApi& server) {
  std::vector<FakeRequest> out;
  for (const FakeRequest& r : server.requests()) {
    if (r.method == "POST") out.push_back(r);
  }
  return out;
}

TEST(ResponseStreamTest, EachWriteReachesTheServerBeforeTheHandlerReturns) {
  EventServer s({Event("s1", "{}")});
  Runtime rt = MakeRuntime(s.server);
  bool first_seen_early = false;
  int rc = RunStreamingHandler(rt, [&](const InvocationRequest&, ResponseStream& out) {
    out.SetContentType("text/plain");
    EXPECT_TRUE(out.Write("one ").ok());
    // The server sees the first chunk while the handler is still running.
    first_seen_early = s.server.WaitForChunks(1, std::chrono::seconds(5));
    EXPECT_TRUE(out.Write("two ").ok());
    EXPECT_TRUE(out.Write("").ok());  // nothing: an empty chunk would end the body
    return InvocationResponse::Success("three");
  });
  EXPECT_EQ(rc, 0);
  EXPECT_TRUE(first_seen_early);
  std::vector<FakeRequest> posts = Posts(s.server);
  ASSERT_EQ(posts.size(), 1u);
  const FakeRequest& p = posts[0];
  EXPECT_EQ(p.target, "/2018-06-01/runtime/invocation/s1/response");
  EXPECT_EQ(p.Header("Lambda-Runtime-Function-Response-Mode"), "streaming");
  EXPECT_EQ(p.Header("Transfer-Encoding"), "chunked");
  EXPECT_EQ(p.Header("Trailer"), "Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body");
  EXPECT_EQ(p.Header("Content-Type"), "text/plain");
  EXPECT_FALSE(p.HasHeader("Content-Length"));
  EXPECT_EQ(p.chunks, (std::vector<std::string>{"one ", "two ", "three"}));
  EXPECT_TRUE(p.trailers.empty());
}

TEST(ResponseStreamTest, FailureMidStreamSendsErrorTrailers) {
  EventServer s({Event("f1", "{}"), Event("f2", "{}")});
  Runtime rt = MakeRuntime(s.server);
  int rc = RunStreamingHandler(rt, [&](const InvocationRequest& req, ResponseStream& out) -> InvocationResponse {
    EXPECT_TRUE(out.Write("partial").ok());
    if (req.request_id == "f1") return InvocationResponse::Failure("Custom.Broken", "lost the \"source\"");
    throw std::runtime_error("thrown mid-stream");
  });
  EXPECT_EQ(rc, 0);
  std::vector<FakeRequest> posts = Posts(s.server);
  ASSERT_EQ(posts.size(), 2u);
  EXPECT_EQ(posts[0].chunks, (std::vector<std::string>{"partial"}));
  EXPECT_EQ(Trailer(posts[0], "Lambda-Runtime-Function-Error-Type"), "Custom.Broken");
  EXPECT_EQ(Unbase64(Trailer(posts[0], "Lambda-Runtime-Function-Error-Body")),
            R"({"errorMessage":"lost the \"source\"","errorType":"Custom.Broken","stackTrace":[]})");
  EXPECT_EQ(posts[1].target, "/2018-06-01/runtime/invocation/f2/response");
  EXPECT_EQ(Trailer(posts[1], "Lambda-Runtime-Function-Error-Type"), "std::runtime_error");
  EXPECT_EQ(Unbase64(Trailer(posts[1], "Lambda-Runtime-Function-Error-Body")),
            R"({"errorMessage":"thrown mid-stream","errorType":"std::runtime_error","stackTrace":[]})");
}

TEST(ResponseStreamTest, FailureBeforeAnyWriteUsesTheErrorEndpoint) {
  EventServer s({Event("e1", "{}"), Event("ok", "{}")});
  Runtime rt = MakeRuntime(s.server);
  int rc = RunStreamingHandler(rt, [](const InvocationRequest& req, ResponseStream&) {
    if (req.request_id == "e1") return InvocationResponse::Failure("Custom.Early", "before streaming");
    return InvocationResponse::Success(R"({"whole":true})");  // nothing written: one chunk
  });
  EXPECT_EQ(rc, 0);
  std::vector<FakeRequest> posts = Posts(s.server);
  ASSERT_EQ(posts.size(), 2u);
  EXPECT_EQ(posts[0].target, "/2018-06-01/runtime/invocation/e1/error");
  EXPECT_EQ(posts[0].Header("Lambda-Runtime-Function-Error-Type"), "Custom.Early");
  EXPECT_FALSE(posts[0].HasHeader("Lambda-Runtime-Function-Response-Mode"));
  EXPECT_EQ(posts[1].Header("Lambda-Runtime-Function-Response-Mode"), "streaming");
  EXPECT_EQ(posts[1].Header("Content-Type"), "application/json");  // from Success()
  EXPECT_EQ(posts[1].chunks, (std::vector<std::string>{R"({"whole":true})"}));
}

TEST(ResponseStreamTest, RejectedStreamIsReportedAndTheLoopGoesOn) {
  std::atomic<int> nexts{0};
  FakeRuntimeApi* self = nullptr;
  FakeRuntimeApi server([&](const FakeRequest& req) {
    if (IsNext(req)) {
      int n = nexts++;
      if (n < 2) return Event(std::to_string(n), "p");
      self->StopAccepting();
      FakeResponse drop;
      drop.drop = true;
      return drop;
    }
    FakeResponse r = Accepted();
    if (req.target.find("/0/") != std::string::npos) {
      r.status = 413;
      r.body = R"({"errorType":"RequestEntityTooLarge"})";
    }
    return r;
  });
  self = &server;
  Runtime rt = MakeRuntime(server);
  int calls = 0;
  int rc = RunStreamingHandler(rt, [&](const InvocationRequest&, ResponseStream& out) {
    ++calls;
    EXPECT_TRUE(out.Write("x").ok());
    return InvocationResponse::Success("");
  });
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(calls, 2);

  // The same through the low-level API: Finish() reports the status.
  FakeRuntimeApi refusing([](const FakeRequest&) {
    FakeResponse r;
    r.status = 413;
    return r;
  });
  Runtime rt2 = MakeRuntime(refusing);
  ResponseStream stream = rt2.StreamResponse("big");
  ASSERT_TRUE(stream.Write("data").ok());
  EXPECT_EQ(stream.bytes_written(), 4u);
  Status st = stream.Finish();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), ErrorCode::kHttpStatus);
  EXPECT_EQ(st.error().http_status(), 413);
  EXPECT_TRUE(stream.ended());
  EXPECT_EQ(stream.Write("more").error().code(), ErrorCode::kInvalidArgument);
}

TEST(ResponseStreamTest, AbandonedStreamEndsWithAnErrorAndNothingIsSentForUnusedOnes) {
  EventServer s({});
  Runtime rt = MakeRuntime(s.server);
  {
    ResponseStream unused = rt.StreamResponse("never");
  }
  {
    ResponseStream stream = rt.StreamResponse("a1");
    ASSERT_TRUE(stream.Write("half").ok());
    ResponseStream moved = std::move(stream);  // the moved-from stream owns nothing
  }
  std::vector<FakeRequest> posts = Posts(s.server);
  ASSERT_EQ(posts.size(), 1u);
  EXPECT_EQ(posts[0].target, "/2018-06-01/runtime/invocation/a1/response");
  EXPECT_EQ(posts[0].chunks, (std::vector<std::string>{"half"}));
  EXPECT_EQ(Trailer(posts[0], "Lambda-Runtime-Function-Error-Type"), "Runtime.StreamAbandoned");
  // A Fail() needs a failure.
  ResponseStream other = rt.StreamResponse("a2");
  EXPECT_EQ(other.Fail(InvocationResponse::Success("")).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(other.Finish().ok());  // an empty stream is still a (streamed, empty) response
  ASSERT_EQ(Posts(s.server).size(), 2u);
  EXPECT_TRUE(Posts(s.server)[1].chunks.empty());
}

}  // namespace
}  // namespace hearth::runtime
