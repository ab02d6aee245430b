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

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http.hpp>

namespace hearth::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

using Request = bhttp::request<bhttp::string_body>;
using Response = bhttp::response<bhttp::string_body>;
using RequestHeader = bhttp::request_header<>;

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
};

// Handles one request; the response's keep_alive() decides whether the connection stays open.
using Handler = std::function<asio::awaitable<Response>(Request&)>;

// Serves requests on `socket` until the peer closes, an error occurs, or a response closes it.
asio::awaitable<void> ServeConnection(asio::ip::tcp::socket socket, std::shared_ptr<Handler> handler,
                                      std::shared_ptr<const ConnectionOptions> opts);

// Accepts until the acceptor is closed, spawning ServeConnection for each connection.
asio::awaitable<void> AcceptLoop(asio::ip::tcp::acceptor& acceptor, std::shared_ptr<Handler> handler,
                                 std::shared_ptr<const ConnectionOptions> opts);

// A response with a body and content type, HTTP/1.1, keep-alive taken from the request.
Response MakeResponse(const Request& req, bhttp::status status, std::string body,
                      std::string_view content_type = "application/json");

}  // namespace hearth::http
