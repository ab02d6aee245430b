#include "http/server.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <charconv>
#include <cstdio>
#include <mutex>

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
// Answers held for pipelined requests (coalesce_pipelined) are written once they reach this.
constexpr std::size_t kMaxHeldBytes = 64 * 1024;
}

void AppendResponseHead(std::string& out, const Response& res) {
  out += res.version() == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  char code[8];
  const auto conv = std::to_chars(code, code + sizeof code, res.result_int());
  out.append(code, conv.ptr);
  out += ' ';
  std::string_view reason = res.reason();
  if (reason.empty()) reason = bhttp::obsolete_reason(res.result());
  out += reason;
  out += "\r\n";
  for (const auto& field : res.base()) {
    out += field.name_string();
    out += ": ";
    out += field.value();
    out += "\r\n";
  }
  const unsigned status = res.result_int();
  const bool body_allowed = status >= 200 && status != 204 && status != 304;
  if (body_allowed && !res.has_content_length() && res.find(bhttp::field::transfer_encoding) == res.end()) {
    out += "Content-Length: ";
    const auto len = std::to_chars(code, code + sizeof code, res.body().size());
    if (len.ec == std::errc()) out.append(code, len.ptr);
    out += "\r\n";
  }
  out += "\r\n";
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

// Writes the responses held back for a pipelined request (ConnectionOptions::coalesce_pipelined),
// then `res`, in one gathered write. `head` is scratch space kept by the connection.
asio::awaitable<boost::system::error_code> WriteResponse(beast::tcp_stream& stream, std::string& held,
                                                         std::string& head, Response& res) {
  if (res.chunked()) {  // not produced by our handlers; Beast frames it
    if (!held.empty()) {
      auto [hec, hn] = co_await asio::async_write(stream, asio::buffer(held), kNoThrow);
      held.clear();
      if (hec) co_return hec;
    }
    auto [ec, n] = co_await bhttp::async_write(stream, res, kNoThrow);
    co_return ec;
  }
  head.clear();
  AppendResponseHead(head, res);
  const std::array<asio::const_buffer, 3> bufs{asio::buffer(held), asio::buffer(head),
                                               asio::buffer(res.body())};
  auto [ec, n] = co_await asio::async_write(stream, bufs, kNoThrow);
  held.clear();
  co_return ec;
}

asio::awaitable<boost::system::error_code> FlushHeld(beast::tcp_stream& stream, std::string& held) {
  if (held.empty()) co_return boost::system::error_code{};
  auto [ec, n] = co_await asio::async_write(stream, asio::buffer(held), kNoThrow);
  held.clear();
  co_return ec;
}

bool IsQuietEnd(const boost::system::error_code& ec) {
  return ec == bhttp::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::operation_aborted || ec == beast::error::timeout;
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
  std::string head;  // scratch for response heads
  std::string held;  // answers held for a pipelined request (ConnectionOptions::coalesce_pipelined)
  for (;;) {
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(opts->header_limit);
    // No body limit while the header is read: Beast checks Content-Length against its limit (1 MiB
    // by default for requests) at the end of the header, before our per-request limit is known.
    parser.body_limit(boost::none);
    boost::system::error_code ec;
    if (!held.empty()) {
      // Answers are held only while the next request's header is already here: parse it from the
      // buffer; when it is incomplete, the held answers go out before the socket is read.
      buffer.consume(parser.put(buffer.data(), ec));
      if (ec == bhttp::error::need_more) ec = {};
      if (ec || !parser.is_header_done()) {
        const auto fec = co_await FlushHeld(stream, held);
        if (fec) break;
      }
    }
    if (!ec && !parser.is_header_done()) {
      if (timed) stream.expires_after(opts->idle_timeout);
      auto [rec, n] = co_await bhttp::async_read_header(stream, buffer, parser, kNoThrow);
      ec = rec;
    }
    if (ec) {
      if (!IsQuietEnd(ec) && opts->on_bad_request) {
        Response bad = opts->on_bad_request();
        bad.keep_alive(false);
        co_await WriteResponse(stream, held, head, bad);
      }
      break;
    }
    const std::uint64_t limit = opts->body_limit(parser.get().base());
    parser.body_limit(limit);  // still applies to chunked bodies
    if (opts->wants_streaming && opts->streaming && opts->wants_streaming(parser.get().base())) {
      if (timed) stream.expires_never();
      const auto fec = co_await FlushHeld(stream, held);
      if (fec) break;
      const bool client_keep = parser.get().keep_alive();
      Exchange ex(stream, buffer, parser);
      ex.set_write_timeout(opts->idle_timeout);
      if (parser.content_length() && *parser.content_length() > limit) ex.FailRead(bhttp::error::body_limit);
      auto serve = opts->streaming(ex);
      std::optional<Response> res;
      if (opts->handler_executor) {
        res = co_await asio::co_spawn(opts->handler_executor, std::move(serve), asio::use_awaitable);
      } else {
        res = co_await std::move(serve);
      }
      if (!res) {  // the handler wrote its own (chunked) response
        if (ex.write_failed() || !ex.body_done() || !client_keep) break;
        if (timed) stream.expires_after(opts->idle_timeout);
        continue;
      }
      const bool body_unread = !ex.body_done();
      if (body_unread) res->keep_alive(false);
      const bool keep = res->keep_alive();
      if (timed) stream.expires_after(opts->idle_timeout);
      auto wec = co_await WriteResponse(stream, held, head, *res);
      if (wec) break;
      if (body_unread && ex.read_error() == bhttp::error::body_limit) {
        co_await LingeringClose(stream, buffer);  // as for the 413 below
      }
      if (!keep) break;
      continue;
    }
    bool too_large = parser.content_length() && *parser.content_length() > limit;
    if (!too_large && !parser.is_done()) {
      const auto fec = co_await FlushHeld(stream, held);
      if (fec) break;
      auto [ec2, n2] = co_await bhttp::async_read(stream, buffer, parser, kNoThrow);
      too_large = ec2 == bhttp::error::body_limit;
      if (ec2 && !too_large) {
        if (opts->on_bad_request && ec2 != asio::error::eof && ec2 != bhttp::error::end_of_stream &&
            ec2 != asio::error::connection_reset) {
          Response bad = opts->on_bad_request();
          bad.keep_alive(false);
          co_await WriteResponse(stream, held, head, bad);
        }
        break;
      }
    }
    if (too_large) {
      Response res = opts->on_too_large(parser.get().base());
      res.keep_alive(false);
      co_await WriteResponse(stream, held, head, res);
      co_await LingeringClose(stream, buffer);
      break;
    }
    Request req = parser.release();
    if (timed) stream.expires_never();
    auto call = (*handler)(req);
    Response res;
    if (opts->handler_executor) {
      res = co_await asio::co_spawn(opts->handler_executor, std::move(call), asio::use_awaitable);
    } else {
      res = co_await std::move(call);
    }
    if (timed) stream.expires_after(opts->idle_timeout);
    const bool keep = res.keep_alive();
    if (keep && opts->coalesce_pipelined && buffer.size() > 0 && held.size() < kMaxHeldBytes) {
      // The peer pipelined its next request: this answer goes out with the next one.
      AppendResponseHead(held, res);
      held += res.body();
      continue;
    }
    auto wec = co_await WriteResponse(stream, held, head, res);
    if (wec || !keep) break;
  }
  co_await FlushHeld(stream, held);
  stream.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
  stream.socket().close(ignored);
}

namespace {

// One descriptor kept in reserve for the whole process. Out of descriptors (EMFILE), a connection
// the kernel already accepted would wait in the backlog until some other descriptor is closed —
// minutes, when the others are idle keep-alive connections. Instead the reserve is given up to
// accept it and close it at once: its client learns now (EOF or reset) and can retry. One for
// all listeners (every environment has one), guarded for the io threads.
std::mutex g_reserve_mu;
int g_reserve_fd = -1;

void KeepReserve() {
  std::lock_guard<std::mutex> lock(g_reserve_mu);
  if (g_reserve_fd < 0) g_reserve_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
}

// True when a waiting connection was accepted and closed.
bool ShedOneConnection(int listen_fd) {
  std::lock_guard<std::mutex> lock(g_reserve_mu);
  if (g_reserve_fd < 0) g_reserve_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (g_reserve_fd < 0) return false;
  ::close(g_reserve_fd);
  const int shed = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (shed >= 0) ::close(shed);
  g_reserve_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  return shed >= 0;
}

}  // namespace

asio::awaitable<void> AcceptLoop(asio::ip::tcp::acceptor& acceptor, std::shared_ptr<Handler> handler,
                                 std::shared_ptr<const ConnectionOptions> opts) {
  std::size_t next = 0;
  KeepReserve();
  for (;;) {
    asio::any_io_executor ex = opts->connection_executors.empty()
                                   ? acceptor.get_executor()
                                   : opts->connection_executors[next++ % opts->connection_executors.size()];
    auto [ec, socket] = co_await acceptor.async_accept(ex, kNoThrow);
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
      if (ec == asio::error::no_descriptors && ShedOneConnection(acceptor.native_handle())) continue;
      // Still short of descriptors or buffers: keep serving the connections we have rather than
      // spinning.
      if (ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space) {
        asio::steady_timer t(acceptor.get_executor(), std::chrono::milliseconds(50));
        co_await t.async_wait(kNoThrow);
      }
      continue;
    }
    asio::co_spawn(ex, ServeConnection(std::move(socket), handler, opts), asio::detached);
  }
}

}  // namespace hearth::http
