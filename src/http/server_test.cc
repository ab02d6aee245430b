#include "http/server.h"

#include <netinet/in.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

namespace hearth::http {
namespace {

TEST(AppendResponseHeadTest, StatusLineFieldsAndEmptyLine) {
  Response res{bhttp::status::accepted, 11};
  res.set(bhttp::field::content_type, "application/json");
  res.set("Lambda-Runtime-Aws-Request-Id", "r-1");
  res.body() = R"({"status":"OK"})";
  res.prepare_payload();
  std::string out;
  AppendResponseHead(out, res);
  EXPECT_EQ(out,
            "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\n"
            "Lambda-Runtime-Aws-Request-Id: r-1\r\nContent-Length: 15\r\n\r\n");
}

TEST(AppendResponseHeadTest, AddsContentLengthOnlyWhereABodyIsAllowed) {
  Response res{bhttp::status::payload_too_large, 10};  // no prepare_payload()
  res.body() = "too big";
  std::string out;
  AppendResponseHead(out, res);
  EXPECT_EQ(out, "HTTP/1.0 413 Payload Too Large\r\nContent-Length: 7\r\n\r\n");
  Response empty{bhttp::status::no_content, 11};
  out.clear();
  AppendResponseHead(out, empty);
  EXPECT_EQ(out, "HTTP/1.1 204 No Content\r\n\r\n");
}

// A server on 127.0.0.1 with its own loop thread. "/slow" answers only once release() was called.
class ServerFixture : public ::testing::Test {
 protected:
  void Start(bool coalesce) {
    acceptor_ = std::make_unique<asio::ip::tcp::acceptor>(
        io_, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    port_ = acceptor_->local_endpoint().port();
    auto* self = this;
    auto handler = std::make_shared<Handler>([self](Request& req) { return self->Handle(req); });
    auto opts = std::make_shared<ConnectionOptions>();
    opts->body_limit = [](const RequestHeader&) -> std::uint64_t { return 1 << 20; };
    opts->on_too_large = [](const RequestHeader&) { return Response{bhttp::status::payload_too_large, 11}; };
    opts->coalesce_pipelined = coalesce;
    asio::co_spawn(io_, AcceptLoop(*acceptor_, handler, opts), asio::detached);
    thread_ = std::thread([this] { io_.run(); });
  }

  void TearDown() override {
    io_.stop();
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) ::close(fd_);
  }

  asio::awaitable<Response> Handle(Request& req) {
    if (req.target() == "/slow") {
      asio::steady_timer t(io_);
      while (!released_) {
        t.expires_after(std::chrono::milliseconds(2));
        co_await t.async_wait(asio::use_awaitable);
      }
    }
    ++served_;
    if (req.target() == "/big") co_return MakeResponse(req, bhttp::status::ok, std::string(10000, 'b'), "text/plain");
    co_return MakeResponse(req, bhttp::status::ok, "body of " + std::string(req.target()), "text/plain");
  }

  void Connect() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port_);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  }

  void Send(std::string_view bytes) {
    ASSERT_EQ(::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL), static_cast<ssize_t>(bytes.size()));
  }

  // Everything that arrives within `wait`.
  std::string ReadFor(std::chrono::milliseconds wait) {
    std::string got;
    const auto until = std::chrono::steady_clock::now() + wait;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      char buf[4096];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) break;
      got.append(buf, static_cast<size_t>(n));
    }
    return got;
  }

  // Reads until `count` responses ("HTTP/1.1 " occurrences with their bodies) or 5 s.
  std::string ReadResponses(int count, const std::string& last_body) {
    std::string got;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::chrono::steady_clock::now() < until) {
      int seen = 0;
      for (size_t p = got.find("HTTP/1.1 "); p != std::string::npos; p = got.find("HTTP/1.1 ", p + 1)) ++seen;
      if (seen >= count && got.ends_with(last_body)) break;
      got += ReadFor(std::chrono::milliseconds(50));
    }
    return got;
  }

  // /fast pipelined with the first part of another request: /fast's answer must arrive before
  // the rest is sent, then the other request (whose target is `second`) is answered too.
  void ExpectHeldAnswerFlushedBeforeTheRest(std::string_view part, std::string_view rest, std::string_view second) {
    Start(/*coalesce=*/true);
    Connect();
    Send(std::string(kFast) + std::string(part));
    std::string first = ReadResponses(1, "body of /fast");
    EXPECT_NE(first.find("body of /fast"), std::string::npos) << first;
    Send(rest);
    const std::string body = "body of " + std::string(second);
    EXPECT_NE(ReadResponses(1, body).find(body), std::string::npos);
  }

  static constexpr const char* kFast = "GET /fast HTTP/1.1\r\nHost: x\r\n\r\n";
  static constexpr const char* kSlow = "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n";

  asio::io_context io_;
  std::unique_ptr<asio::ip::tcp::acceptor> acceptor_;
  std::thread thread_;
  unsigned short port_ = 0;
  int fd_ = -1;
  std::atomic<bool> released_{false};
  std::atomic<int> served_{0};
};

TEST_F(ServerFixture, PipelinedAnswerIsHeldAndSentWithTheNextOne) {
  Start(/*coalesce=*/true);
  Connect();
  Send(std::string(kFast) + kSlow);  // pipelined: both requests in one segment
  // /fast was answered by its handler, but its answer waits for /slow's.
  std::string early = ReadFor(std::chrono::milliseconds(150));
  EXPECT_EQ(early, "");
  EXPECT_EQ(served_.load(), 1);
  released_ = true;
  std::string both = ReadResponses(2, "body of /slow");
  const size_t fast = both.find("body of /fast");
  const size_t slow = both.find("body of /slow");
  ASSERT_NE(fast, std::string::npos) << both;
  ASSERT_NE(slow, std::string::npos) << both;
  EXPECT_LT(fast, slow);  // in request order
  EXPECT_TRUE(both.starts_with("HTTP/1.1 200 OK\r\n")) << both;
}

TEST_F(ServerFixture, WithoutCoalescingEachAnswerGoesOutAtOnce) {
  Start(/*coalesce=*/false);
  Connect();
  Send(std::string(kFast) + kSlow);
  std::string early = ReadResponses(1, "body of /fast");
  EXPECT_NE(early.find("body of /fast"), std::string::npos) << early;
  EXPECT_EQ(early.find("body of /slow"), std::string::npos) << early;
  released_ = true;
  EXPECT_NE(ReadResponses(1, "body of /slow").find("body of /slow"), std::string::npos);
}

TEST_F(ServerFixture, HeldAnswerIsFlushedWhenTheNextHeaderIsIncomplete) {
  // The next request's header is cut short: the server must not sit on /fast's answer while it
  // waits for the rest (the client may be waiting for that answer before it sends more).
  ExpectHeldAnswerFlushedBeforeTheRest("GET /fast2 HTTP/1.1\r\nHo", "st: x\r\n\r\n", "/fast2");
}

TEST_F(ServerFixture, HeldAnswerIsFlushedBeforeABodyIsAwaited) {
  // The pipelined request's header is complete but its body is not here yet.
  ExpectHeldAnswerFlushedBeforeTheRest("POST /post HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nab", "cd",
                                       "/post");
}

TEST_F(ServerFixture, ManyPipelinedRequestsAllAnsweredInOrder) {
  Start(/*coalesce=*/true);
  Connect();
  std::string burst;
  for (int i = 0; i < 20; ++i) burst += "GET /r" + std::to_string(i) + " HTTP/1.1\r\nHost: x\r\n\r\n";
  Send(burst);
  std::string got = ReadResponses(20, "body of /r19");
  size_t at = 0;
  for (int i = 0; i < 20; ++i) {
    size_t p = got.find("body of /r" + std::to_string(i) + "HTTP", at);
    if (i == 19) p = got.find("body of /r19", at);
    ASSERT_NE(p, std::string::npos) << "answer " << i << " missing or out of order:\n" << got;
    at = p;
  }
}

TEST_F(ServerFixture, HeldAnswersAreBoundedInSize) {
  Start(/*coalesce=*/true);
  Connect();
  // 20 answers of 10 KB, then one that waits: the held answers may not pile up behind it.
  std::string burst;
  for (int i = 0; i < 20; ++i) burst += "GET /big HTTP/1.1\r\nHost: x\r\n\r\n";
  burst += kSlow;
  Send(burst);
  std::string early = ReadFor(std::chrono::milliseconds(300));
  EXPECT_GE(early.size(), 64u * 1024);
  EXPECT_EQ(early.find("body of /slow"), std::string::npos);
  released_ = true;
  std::string rest = ReadResponses(1, "body of /slow");
  EXPECT_NE(rest.find("body of /slow"), std::string::npos);
}

TEST_F(ServerFixture, MalformedPipelinedRequestStillGetsTheHeldAnswerFirst) {
  Start(/*coalesce=*/true);
  Connect();
  Send(std::string(kFast) + "NOT-HTTP\r\n\r\n");
  std::string got = ReadFor(std::chrono::milliseconds(500));
  EXPECT_NE(got.find("body of /fast"), std::string::npos) << got;
}

asio::awaitable<Response> AnswerX(Request& req) { co_return MakeResponse(req, bhttp::status::ok, "x"); }

TEST(AcceptLoopTest, OutOfDescriptorsAConnectionIsClosedAtOnceNotLeftWaiting) {
  int port_pipe[2];
  ASSERT_EQ(::pipe(port_pipe), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // A server that has used up its descriptors (its limit lowered, the rest taken).
    ::close(port_pipe[0]);
    asio::io_context io;
    asio::ip::tcp::acceptor acc(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    auto handler = std::make_shared<Handler>(&AnswerX);
    auto opts = std::make_shared<ConnectionOptions>();
    opts->body_limit = [](const RequestHeader&) -> std::uint64_t { return 1024; };
    opts->on_too_large = [](const RequestHeader&) { return Response{bhttp::status::payload_too_large, 11}; };
    asio::co_spawn(io, AcceptLoop(acc, handler, opts), asio::detached);
    io.poll();  // the loop runs: its reserve descriptor is open and an accept is pending
    rlimit rl{128, 128};
    if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) ::_exit(2);
    while (::open("/dev/null", O_RDONLY) >= 0) {
    }
    const unsigned short port = acc.local_endpoint().port();
    if (::write(port_pipe[1], &port, sizeof port) != sizeof port) ::_exit(3);
    io.run_for(std::chrono::seconds(5));
    ::_exit(0);
  }
  ::close(port_pipe[1]);
  unsigned short port = 0;
  ASSERT_EQ(::read(port_pipe[0], &port, sizeof port), static_cast<ssize_t>(sizeof port));
  ::close(port_pipe[0]);
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);  // the kernel's backlog
  const std::string req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(::send(fd, req.data(), req.size(), MSG_NOSIGNAL), static_cast<ssize_t>(req.size()));
  // The server cannot serve it, but says so at once (EOF or reset), not after minutes.
  pollfd p{fd, POLLIN, 0};
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(::poll(&p, 1, 2000), 1) << "the connection was left waiting";
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
  char buf[64];
  EXPECT_LE(::recv(fd, buf, sizeof buf, 0), 0);  // no answer, the connection is gone
  ::close(fd);
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
}

}  // namespace
}  // namespace hearth::http
