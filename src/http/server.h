#pragma once
// HTTP/1.1 serving glue over Boost.Beast with C++20 coroutines. One accept loop per listening
// socket; one coroutine per connection; requests on a connection are served in order
// (keep-alive). Used by both the Lambda API and every environment's Runtime API.
//
// Threading: everything runs on the executor of the acceptor/socket passed in; handlers are
// called on that executor.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http.hpp>

namespace hearth::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

using Request = bhttp::request<bhttp::string_body>;
using Response = bhttp::response<bhttp::string_body>;
using RequestHeader = bhttp::request_header<>;

// Handles one request; the response's keep_alive() decides whether the connection stays open.
using Handler = std::function<asio::awaitable<Response>(Request&)>;

// One request served with streaming: its body is read piece by piece as it arrives, and/or its
// response is written as a chunked stream. Handed to ConnectionOptions::streaming with the body
// still unread. Lives on the connection's coroutine frame for the duration of the call.
class Exchange {
 public:
  using Parser = bhttp::request_parser<bhttp::string_body>;
  Exchange(beast::tcp_stream& stream, beast::flat_buffer& buffer, Parser& parser)
      : stream_(stream), buffer_(buffer), parser_(parser) {}

  // The request header; after the whole body was read it also holds the trailer fields.
  const RequestHeader& header() const { return parser_.get().base(); }
  bool body_done() const { return parser_.is_done(); }
  bool keep_alive() const { return parser_.get().keep_alive(); }
  // Why reading stopped early: bhttp::error::body_limit (over the connection's body limit for
  // this request), a truncated body, a reset... Empty while all is well.
  boost::system::error_code read_error() const { return read_error_; }
  // Stops reading the body: ReadSome() fails with `ec` from now on.
  void FailRead(boost::system::error_code ec) { read_error_ = ec; }

  // Replaces `piece` with the next bytes of the body (possibly several chunks' worth). Returns
  // false at the end of the body or on error (see read_error()), with `piece` empty.
  asio::awaitable<bool> ReadSome(std::string& piece);
  // Reads the whole (rest of the) body into `body`. False on error.
  asio::awaitable<bool> ReadAll(std::string& body);

  // Response streaming: the header (Transfer-Encoding: chunked is set here), then chunks, then the
  // last chunk. Each returns false once the connection failed. Empty chunks are skipped.
  asio::awaitable<bool> WriteHeader(bhttp::response_header<>& header);
  asio::awaitable<bool> WriteChunk(std::string_view data);
  asio::awaitable<bool> WriteLast();
  bool response_started() const { return response_started_; }
  bool write_failed() const { return write_failed_; }
  // A write stalled this long (the client stopped reading) fails; zero = never. Default: 0
  void set_write_timeout(std::chrono::milliseconds t) { write_timeout_ = t; }

 private:
  beast::tcp_stream& stream_;
  beast::flat_buffer& buffer_;
  Parser& parser_;
  boost::system::error_code read_error_;
  bool response_started_ = false;
  bool write_failed_ = false;
  std::chrono::milliseconds write_timeout_{0};
};

// A streaming handler answers with a Response (written normally), or nullopt when it has written
// its own chunked response through the Exchange.
using StreamingHandler = std::function<asio::awaitable<std::optional<Response>>(Exchange&)>;

struct ConnectionOptions {
  // Largest request header accepted. Default: 16 KiB
  std::uint32_t header_limit = 16 * 1024;
  // The body limit for a request, chosen once its header has been read. Required.
  std::function<std::uint64_t(const RequestHeader&)> body_limit;
  // The answer to a request whose body exceeds its limit; the connection closes after it. Required.
  std::function<Response(const RequestHeader&)> on_too_large;
  // The answer to a request that cannot be parsed (the connection closes after it). Optional.
  std::function<Response()> on_bad_request;
  // A connection idle (or stalled mid-request) for this long is closed; zero = never (the Runtime
  // API's `next` is a long poll that must never time out). Default: 0
  std::chrono::milliseconds idle_timeout{0};
  // Optional: requests for which `wants_streaming` is true go to `streaming` with their body
  // unread (body_limit still applies, as the parser's limit) instead of to the Handler.
  std::function<bool(const RequestHeader&)> wants_streaming;
  StreamingHandler streaming;
  // Pipelined requests: when a response is ready and the peer has already sent the whole header
  // of its next request (pipelining), hold the response and send it in one write with the next
  // one (HTTP/1.1 answers in order, so the peer reads both as before; it is waiting for the next
  // answer anyway). Held bytes go out before any read that needs the socket, and once they reach
  // 64 KiB. The Runtime API
  // turns this on: a runtime that pipelines `next` behind its POST gets the 202 together with its
  // next invocation, one wake-up instead of two. Default: off
  bool coalesce_pipelined = false;
  // Threads: when set, every request's Handler (and streaming handler) runs on this executor,
  // while the connection itself (reading, parsing, writing, its timers) stays on the executor it
  // was accepted onto. The Lambda API uses it with io_threads > 1 to keep its connections on io
  // loops and the daemon's state on its main loop. Default: none (the connection's executor)
  asio::any_io_executor handler_executor;
  // Accepted connections are spread round-robin over these executors. Default: the acceptor's
  std::vector<asio::any_io_executor> connection_executors;
};

// Serves requests on `socket` until the peer closes, an error occurs, or a response closes it.
asio::awaitable<void> ServeConnection(asio::ip::tcp::socket socket, std::shared_ptr<Handler> handler,
                                      std::shared_ptr<const ConnectionOptions> opts);

// Accepts until the acceptor is closed, spawning ServeConnection for each connection.
asio::awaitable<void> AcceptLoop(asio::ip::tcp::acceptor& acceptor, std::shared_ptr<Handler> handler,
                                 std::shared_ptr<const ConnectionOptions> opts);

// Appends the status line and header fields of `res` to `out`, as they go on the wire, ending
// with the empty line. A Content-Length is added when the response has neither it nor a
// Transfer-Encoding and may carry a body (responses are written as this head plus the body).
void AppendResponseHead(std::string& out, const Response& res);

// A response with a body and content type, HTTP/1.1, keep-alive taken from the request.
Response MakeResponse(const Request& req, bhttp::status status, std::string body,
                      std::string_view content_type = "application/json");

}  // namespace hearth::http
