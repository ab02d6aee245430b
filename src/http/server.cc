#include "http/server.h"

#include <array>
#include <cstdio>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/write.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>

namespace hearth::http {

namespace {
constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
// At most this much of a refused body is read and dropped before the connection is closed.
constexpr std::uint64_t kMaxDrainBytes = 128ull << 20;
}

Response MakeResponse(const Request& req, bhttp::status status, std::string body,
                      std::string_view content_type) {
  Response res{status, req.version()};
  if (!content_type.empty()) res.set(bhttp::field::content_type, content_type);
  res.keep_alive(req.keep_alive());
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

asio::awaitable<bool> Exchange::ReadSome(std::string& piece) {
  piece.clear();
  while (!read_error_ && !parser_.is_done()) {
    auto [ec, n] = co_await bhttp::async_read_some(stream_, buffer_, parser_, kNoThrow);
    if (ec) {
      read_error_ = ec;
      co_return false;
    }
    std::string& body = parser_.get().body();
    if (!body.empty()) {
      piece.swap(body);  // the body reader appends at the (now empty) body's end
      body.clear();
      co_return true;
    }
  }
  co_return false;
}

asio::awaitable<bool> Exchange::ReadAll(std::string& body) {
  std::string piece;
  for (;;) {
    const bool more = co_await ReadSome(piece);
    if (!more) break;
    body.append(piece);
  }
  co_return !read_error_;
}

asio::awaitable<bool> Exchange::WriteHeader(bhttp::response_header<>& header) {
  if (write_failed_) co_return false;
  header.set(bhttp::field::transfer_encoding, "chunked");
  header.erase(bhttp::field::content_length);
  bhttp::response<bhttp::empty_body> res(std::move(header));
  bhttp::response_serializer<bhttp::empty_body> sr(res);
  if (write_timeout_.count() > 0) stream_.expires_after(write_timeout_);
  auto [ec, n] = co_await bhttp::async_write_header(stream_, sr, kNoThrow);
  if (write_timeout_.count() > 0) stream_.expires_never();
  response_started_ = true;
  if (ec) write_failed_ = true;
  co_return !write_failed_;
}

asio::awaitable<bool> Exchange::WriteChunk(std::string_view data) {
  if (write_failed_) co_return false;
  if (data.empty()) co_return true;  // an empty chunk would end the body
  char size[24];
  const int len = std::snprintf(size, sizeof size, "%zx\r\n", data.size());
  const std::array<asio::const_buffer, 3> bufs{asio::buffer(size, static_cast<std::size_t>(len)),
                                               asio::buffer(data.data(), data.size()),
                                               asio::buffer("\r\n", 2)};
  if (write_timeout_.count() > 0) stream_.expires_after(write_timeout_);
  auto [ec, n] = co_await asio::async_write(stream_, bufs, kNoThrow);
  if (write_timeout_.count() > 0) stream_.expires_never();
  if (ec) write_failed_ = true;
  co_return !write_failed_;
}

asio::awaitable<bool> Exchange::WriteLast() {
  if (write_failed_) co_return false;
  if (write_timeout_.count() > 0) stream_.expires_after(write_timeout_);
  auto [ec, n] = co_await asio::async_write(stream_, asio::buffer("0\r\n\r\n", 5), kNoThrow);
  if (write_timeout_.count() > 0) stream_.expires_never();
  if (ec) write_failed_ = true;
  co_return !write_failed_;
}

// Lingering close after answering a request whose body is still arriving (413): closing with
// unread data would reset the connection, and the client would see the reset instead of the
// answer. Stops sending, then drains (bounded in bytes and time).
namespace {
asio::awaitable<void> LingeringClose(beast::tcp_stream& stream, beast::flat_buffer& buffer) {
  boost::system::error_code ignored;
  stream.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
  stream.expires_after(std::chrono::seconds(5));
  std::uint64_t drained = 0;
  while (drained < kMaxDrainBytes) {
    auto [dec, dn] = co_await stream.async_read_some(buffer.prepare(64 * 1024), kNoThrow);
    if (dec) break;
    drained += dn;
  }
}
}  // namespace

asio::awaitable<void> ServeConnection(asio::ip::tcp::socket socket, std::shared_ptr<Handler> handler,
                                      std::shared_ptr<const ConnectionOptions> opts) {
  boost::system::error_code ignored;
  socket.set_option(asio::ip::tcp::no_delay(true), ignored);
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  const bool timed = opts->idle_timeout.count() > 0;
  for (;;) {
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(opts->header_limit);
    // No body limit while the header is read: Beast checks Content-Length against its limit (1 MiB
    // by default for requests) at the end of the header, before our per-request limit is known.
    parser.body_limit(boost::none);
    if (timed) stream.expires_after(opts->idle_timeout);
    auto [ec, n] = co_await bhttp::async_read_header(stream, buffer, parser, kNoThrow);
    if (ec) {
      if (ec != bhttp::error::end_of_stream && ec != asio::error::eof &&
          ec != asio::error::connection_reset && ec != asio::error::operation_aborted &&
          ec != beast::error::timeout && opts->on_bad_request) {
        Response bad = opts->on_bad_request();
        bad.keep_alive(false);
        co_await bhttp::async_write(stream, bad, kNoThrow);
      }
      break;
    }
    const std::uint64_t limit = opts->body_limit(parser.get().base());
    parser.body_limit(limit);  // still applies to chunked bodies
    if (opts->wants_streaming && opts->streaming && opts->wants_streaming(parser.get().base())) {
      if (timed) stream.expires_never();
      const bool client_keep = parser.get().keep_alive();
      Exchange ex(stream, buffer, parser);
      ex.set_write_timeout(opts->idle_timeout);
      if (parser.content_length() && *parser.content_length() > limit) ex.FailRead(bhttp::error::body_limit);
      auto serve = opts->streaming(ex);
      std::optional<Response> res = co_await std::move(serve);
      if (!res) {  // the handler wrote its own (chunked) response
        if (ex.write_failed() || !ex.body_done() || !client_keep) break;
        if (timed) stream.expires_after(opts->idle_timeout);
        continue;
      }
      const bool body_unread = !ex.body_done();
      if (body_unread) res->keep_alive(false);
      const bool keep = res->keep_alive();
      if (timed) stream.expires_after(opts->idle_timeout);
      auto [wec, wn] = co_await bhttp::async_write(stream, *res, kNoThrow);
      if (wec) break;
      if (body_unread && ex.read_error() == bhttp::error::body_limit) {
        co_await LingeringClose(stream, buffer);  // as for the 413 below
      }
      if (!keep) break;
      continue;
    }
    bool too_large = parser.content_length() && *parser.content_length() > limit;
    if (!too_large && !parser.is_done()) {
      auto [ec2, n2] = co_await bhttp::async_read(stream, buffer, parser, kNoThrow);
      too_large = ec2 == bhttp::error::body_limit;
      if (ec2 && !too_large) {
        if (opts->on_bad_request && ec2 != asio::error::eof && ec2 != bhttp::error::end_of_stream &&
            ec2 != asio::error::connection_reset) {
          Response bad = opts->on_bad_request();
          bad.keep_alive(false);
          co_await bhttp::async_write(stream, bad, kNoThrow);
        }
        break;
      }
    }
    if (too_large) {
      Response res = opts->on_too_large(parser.get().base());
      res.keep_alive(false);
      co_await bhttp::async_write(stream, res, kNoThrow);
      co_await LingeringClose(stream, buffer);
      break;
    }
    Request req = parser.release();
    if (timed) stream.expires_never();
    Response res = co_await (*handler)(req);
    if (timed) stream.expires_after(opts->idle_timeout);
    bool keep = res.keep_alive();
    auto [wec, wn] = co_await bhttp::async_write(stream, res, kNoThrow);
    if (wec || !keep) break;
  }
  stream.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
  stream.socket().close(ignored);
}

asio::awaitable<void> AcceptLoop(asio::ip::tcp::acceptor& acceptor, std::shared_ptr<Handler> handler,
                                 std::shared_ptr<const ConnectionOptions> opts) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(kNoThrow);
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
      // EMFILE and friends: keep serving the connections we have rather than spinning.
      if (ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space) {
        asio::steady_timer t(acceptor.get_executor(), std::chrono::milliseconds(50));
        co_await t.async_wait(kNoThrow);
      }
      continue;
    }
    asio::co_spawn(acceptor.get_executor(), ServeConnection(std::move(socket), handler, opts),
                   asio::detached);
  }
}

}  // namespace hearth::http
