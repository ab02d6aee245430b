#pragma once
// A minimal blocking HTTP/1.1 client connection: exactly what the Runtime API needs and no more.
// One request at a time on one kept-alive TCP connection (TCP_NODELAY, CLOEXEC, no SIGPIPE).
// Responses may use Content-Length, chunked transfer coding, or end at connection close; bodies of
// any size are read straight into the caller's string. Reads have no timeout (`next` is a long
// poll). Internal to the runtime client library; not installed.

#include <sys/socket.h>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "hearth/runtime/result.h"

namespace hearth::runtime::internal {

// A resolved Runtime API address.
struct Endpoint {
  std::string host_port;  // "host:port" as given; used for the Host header.
  sockaddr_storage address{};
  socklen_t address_length = 0;
};

// Parses "host:port", "[v6]:port" (an "http://" prefix and a trailing "/" are tolerated) and
// resolves the host: numeric addresses and "localhost" without any lookup, other names with
// getaddrinfo() when the binary has it (dynamically linked). Fails with kInvalidArgument.
Result<Endpoint> ParseEndpoint(std::string_view text);

struct HttpHeader {
  std::string name;
  std::string value;
};

struct HttpResponse {
  int status = 0;
  std::vector<HttpHeader> headers;  // In arrival order, names as sent.
  std::string body;

  // Case-insensitive lookup of the first header called `name`; nullptr when absent.
  const std::string* FindHeader(std::string_view name) const;
};

// ASCII case-insensitive equality.
bool EqualsIgnoreCase(std::string_view a, std::string_view b);

class HttpConnection {
 public:
  explicit HttpConnection(Endpoint endpoint);
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;
  ~HttpConnection();

  // Connects if not connected, sends `head` (request line and headers, ending with the empty line)
  // followed by `body`, and reads one final response (1xx responses are skipped) into *response.
  // Errors: kUnavailable (connect failed), kConnectionLost (EOF/reset mid-exchange), kProtocol
  // (malformed response). After any error the connection is closed. Any HTTP status is "ok" here.
  // `pipelined`, when given, is a whole further request (no body) sent in the same write, right
  // behind this one (HTTP/1.1 pipelining); ReadPipelined() reads its answer later.
  Status RoundTrip(std::string_view head, std::string_view body, HttpResponse* response,
                   std::string_view pipelined = {});
  // Reads the answer to the request RoundTrip() pipelined. Errors as for RoundTrip(): after the
  // server closed the connection (e.g. "Connection: close" on the first answer) kConnectionLost.
  Status ReadPipelined(HttpResponse* response);

  // A request whose body is sent piece by piece (response streaming): BeginStreaming() opens a
  // fresh connection and sends `head`; SendParts() sends raw bytes, all of them, in one sendmsg
  // when the socket allows (the caller frames chunks; RoundTrip sends head and body with it);
  // FinishStreaming() reads the final response and closes the connection, as Lambda asks of
  // streaming runtimes. Errors as for RoundTrip(); the connection is closed after any error.
  Status BeginStreaming(std::string_view head);
  Status SendParts(std::string_view a, std::string_view b = {}, std::string_view c = {});
  Status FinishStreaming(HttpResponse* response);

  // True when the open connection has already carried a complete exchange, i.e. a failure on it
  // may just mean the server dropped an idle keep-alive connection.
  bool reused() const { return fd_ >= 0 && exchanges_ > 0; }
  bool connected() const { return fd_ >= 0; }
  void Close();

  const Endpoint& endpoint() const { return endpoint_; }

 private:
  Status Connect();
  Status ReadResponse(HttpResponse* response);
  // Reads one line (without CR LF) into *line; the view is valid until the next read.
  Status ReadLine(std::string_view* line);
  // Reads more bytes into the buffer (compacting it first when needed).
  Status Fill();
  // Appends exactly `n` body bytes to *out.
  Status ReadExact(size_t n, std::string* out);
  Status ReadChunked(std::string* out);
  Status ReadUntilClose(std::string* out);

  Endpoint endpoint_;
  int fd_ = -1;
  unsigned long exchanges_ = 0;
  std::unique_ptr<char[]> buffer_;
  size_t begin_ = 0;  // First unread byte in buffer_.
  size_t end_ = 0;    // One past the last byte read into buffer_.
};

}  // namespace hearth::runtime::internal
