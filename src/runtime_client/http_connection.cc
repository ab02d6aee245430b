#include "http_connection.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <limits>
#include <utility>

// Name lookup is referenced weakly: a statically linked glibc binary that calls getaddrinfo()
// draws a link-time warning and needs the NSS shared libraries at run time anyway. The Runtime API
// address is numeric in practice (Lambda and Hearth both set "127.0.0.1:port"), so a static
// bootstrap simply cannot resolve names, while a dynamic one resolves them as usual.
#pragma weak getaddrinfo
#pragma weak freeaddrinfo

namespace hearth::runtime::internal {
namespace {

constexpr size_t kBufferSize = 64 * 1024;  // Also the limit for one status or header line.
constexpr size_t kMaxHeaders = 256;
// Refuse absurd lengths before allocating; Lambda's own limits are 6 MB buffered, 200 MB streamed.
constexpr uint64_t kMaxBodyBytes = uint64_t{1} << 31;

Error LostError(const Endpoint& ep, std::string_view what, int err) {
  std::string msg = "connection to ";
  msg += ep.host_port;
  msg += ' ';
  msg += what;
  if (err != 0) {
    msg += ": ";
    msg += std::strerror(err);
  }
  return Error(ErrorCode::kConnectionLost, std::move(msg));
}

Error ProtocolError(const Endpoint& ep, std::string_view what) {
  std::string msg = "bad HTTP response from ";
  msg += ep.host_port;
  msg += ": ";
  msg += what;
  return Error(ErrorCode::kProtocol, std::move(msg));
}

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Parses a non-empty run of decimal digits; false on anything else or overflow.
bool ParseDecimal(std::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 19) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  *out = v;
  return true;
}

// True when a comma-separated header value contains `token` (case-insensitive).
bool HasToken(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view item = TrimOws(list.substr(0, comma));
    if (EqualsIgnoreCase(item, token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

// The last transfer coding decides how the body is framed.
bool IsChunked(std::string_view transfer_encoding) {
  size_t comma = transfer_encoding.rfind(',');
  std::string_view last =
      comma == std::string_view::npos ? transfer_encoding : transfer_encoding.substr(comma + 1);
  last = TrimOws(last);
  size_t semi = last.find(';');
  return EqualsIgnoreCase(TrimOws(last.substr(0, semi)), "chunked");
}

// Grows *out by `n` bytes that the caller overwrites at once. (Plain resize(): GCC 12's
// std::string::resize_and_overwrite computes the new size wrongly.)
char* Grow(std::string* out, size_t n) {
  size_t old = out->size();
  out->resize(old + n);
  return out->data() + old;
}

}  // namespace

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    unsigned char x = static_cast<unsigned char>(a[i]);
    unsigned char y = static_cast<unsigned char>(b[i]);
    if (x == y) continue;
    if ((x | 0x20) != (y | 0x20) || (x | 0x20) < 'a' || (x | 0x20) > 'z') return false;
  }
  return true;
}

const std::string* HttpResponse::FindHeader(std::string_view name) const {
  for (const HttpHeader& h : headers) {
    if (EqualsIgnoreCase(h.name, name)) return &h.value;
  }
  return nullptr;
}

Result<Endpoint> ParseEndpoint(std::string_view text) {
  std::string_view original = text;
  auto invalid = [&](std::string_view why) {
    std::string msg = "invalid Runtime API address \"";
    msg += original;
    msg += "\": ";
    msg += why;
    return Error(ErrorCode::kInvalidArgument, std::move(msg));
  };
  if (text.substr(0, 7) == "http://") text.remove_prefix(7);
  while (!text.empty() && text.back() == '/') text.remove_suffix(1);
  if (text.empty()) return invalid("empty");

  std::string_view host;
  std::string_view port_text;
  if (text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos) return invalid("missing ']'");
    host = text.substr(1, close - 1);
    std::string_view rest = text.substr(close + 1);
    if (rest.empty() || rest.front() != ':') return invalid("missing port");
    port_text = rest.substr(1);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return invalid("missing port (want host:port)");
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
  }
  uint64_t port = 0;
  if (!ParseDecimal(port_text, &port) || port == 0 || port > 65535) return invalid("bad port");
  if (host.empty()) return invalid("missing host");

  Endpoint ep;
  ep.host_port = std::string(text);
  std::string host_str(host);
  if (host_str == "localhost") host_str = "127.0.0.1";

  auto* v4 = reinterpret_cast<sockaddr_in*>(&ep.address);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ep.address);
  if (inet_pton(AF_INET, host_str.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    ep.address_length = sizeof(sockaddr_in);
    return ep;
  }
  if (inet_pton(AF_INET6, host_str.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    ep.address_length = sizeof(sockaddr_in6);
    return ep;
  }
  if (&getaddrinfo == nullptr || &freeaddrinfo == nullptr) {
    return invalid("cannot resolve host names in a statically linked binary; use an IP address");
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  int rc = getaddrinfo(host_str.c_str(), nullptr, &hints, &found);
  if (rc != 0 || found == nullptr) {
    return invalid(std::string("cannot resolve host: ") + gai_strerror(rc));
  }
  std::memcpy(&ep.address, found->ai_addr, found->ai_addrlen);
  ep.address_length = static_cast<socklen_t>(found->ai_addrlen);
  freeaddrinfo(found);
  if (ep.address.ss_family == AF_INET) {
    v4->sin_port = htons(static_cast<uint16_t>(port));
  } else if (ep.address.ss_family == AF_INET6) {
    v6->sin6_port = htons(static_cast<uint16_t>(port));
  } else {
    return invalid("unsupported address family");
  }
  return ep;
}

HttpConnection::HttpConnection(Endpoint endpoint)
    : endpoint_(std::move(endpoint)), buffer_(new char[kBufferSize]) {}

HttpConnection::~HttpConnection() { Close(); }

void HttpConnection::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  exchanges_ = 0;
  begin_ = end_ = 0;
}

Status HttpConnection::Connect() {
  Close();
  int fd = ::socket(endpoint_.address.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    int err = errno;
    return Error(ErrorCode::kUnavailable, std::string("socket(): ") + std::strerror(err));
  }
  int one = 1;
  // Requests and responses are small writes that must not wait for Nagle's algorithm.
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&endpoint_.address),
                     endpoint_.address_length);
  int err = rc == 0 ? 0 : errno;
  if (rc != 0 && err == EINTR) {
    // The connection attempt goes on in the background; wait for it to finish.
    pollfd p{fd, POLLOUT, 0};
    while ((rc = ::poll(&p, 1, -1)) < 0 && errno == EINTR) {
    }
    socklen_t len = sizeof(err);
    if (rc < 0 || ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  }
  if (err != 0) {
    ::close(fd);
    std::string msg = "connect to ";
    msg += endpoint_.host_port;
    msg += ": ";
    msg += std::strerror(err);
    return Error(ErrorCode::kUnavailable, std::move(msg));
  }
  fd_ = fd;
  exchanges_ = 0;
  begin_ = end_ = 0;
  return {};
}

Status HttpConnection::Fill() {
  if (begin_ == end_) {
    begin_ = end_ = 0;
  } else if (end_ == kBufferSize) {
    if (begin_ == 0) return ProtocolError(endpoint_, "line longer than 64 KiB");
    std::memmove(buffer_.get(), buffer_.get() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  for (;;) {
    ssize_t n = ::recv(fd_, buffer_.get() + end_, kBufferSize - end_, 0);
    if (n > 0) {
      end_ += static_cast<size_t>(n);
      return {};
    }
    if (n == 0) return LostError(endpoint_, "closed by the server", 0);
    if (errno == EINTR) continue;
    return LostError(endpoint_, "failed while receiving", errno);
  }
}

Status HttpConnection::ReadLine(std::string_view* line) {
  size_t scanned = 0;  // Bytes after begin_ already known to hold no '\n'.
  for (;;) {
    char* start = buffer_.get() + begin_;
    size_t avail = end_ - begin_;
    const void* nl = std::memchr(start + scanned, '\n', avail - scanned);
    if (nl != nullptr) {
      size_t len = static_cast<size_t>(static_cast<const char*>(nl) - start);
      begin_ += len + 1;
      if (len > 0 && start[len - 1] == '\r') --len;
      *line = std::string_view(start, len);
      return {};
    }
    scanned = avail;
    Status s = Fill();
    if (!s.ok()) return s;
  }
}

Status HttpConnection::ReadExact(size_t n, std::string* out) {
  char* dst = Grow(out, n);
  size_t from_buffer = std::min(n, end_ - begin_);
  std::memcpy(dst, buffer_.get() + begin_, from_buffer);
  begin_ += from_buffer;
  size_t got = from_buffer;
  // The rest goes straight from the socket into the caller's string: no copy via the buffer.
  while (got < n) {
    ssize_t r = ::recv(fd_, dst + got, n - got, 0);
    if (r > 0) {
      got += static_cast<size_t>(r);
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    int err = r < 0 ? errno : 0;
    out->resize(out->size() - (n - got));
    if (r == 0) return LostError(endpoint_, "closed by the server in the middle of a body", 0);
    return LostError(endpoint_, "failed while receiving", err);
  }
  return {};
}

Status HttpConnection::ReadChunked(std::string* out) {
  for (;;) {
    std::string_view line;
    Status s = ReadLine(&line);
    if (!s.ok()) return s;
    size_t semi = line.find(';');  // Chunk extensions are ignored.
    std::string_view hex = TrimOws(line.substr(0, semi));
    if (hex.empty() || hex.size() > 15) return ProtocolError(endpoint_, "bad chunk size");
    uint64_t size = 0;
    for (char c : hex) {
      int d;
      if (c >= '0' && c <= '9') {
        d = c - '0';
      } else if (c >= 'a' && c <= 'f') {
        d = c - 'a' + 10;
      } else if (c >= 'A' && c <= 'F') {
        d = c - 'A' + 10;
      } else {
        return ProtocolError(endpoint_, "bad chunk size");
      }
      size = size * 16 + static_cast<uint64_t>(d);
    }
    if (size == 0) break;
    if (out->size() + size > kMaxBodyBytes) return ProtocolError(endpoint_, "body too large");
    s = ReadExact(static_cast<size_t>(size), out);
    if (!s.ok()) return s;
    s = ReadLine(&line);
    if (!s.ok()) return s;
    if (!line.empty()) return ProtocolError(endpoint_, "missing CRLF after chunk");
  }
  // Trailer fields, if any, up to the empty line; none of them matter to us.
  for (;;) {
    std::string_view line;
    Status s = ReadLine(&line);
    if (!s.ok()) return s;
    if (line.empty()) return {};
  }
}

Status HttpConnection::ReadUntilClose(std::string* out) {
  out->append(buffer_.get() + begin_, end_ - begin_);
  begin_ = end_ = 0;
  for (;;) {
    size_t old = out->size();
    char* dst = Grow(out, kBufferSize);
    ssize_t r = ::recv(fd_, dst, kBufferSize, 0);
    out->resize(old + (r > 0 ? static_cast<size_t>(r) : 0));
    if (r == 0) return {};
    if (r < 0) {
      if (errno == EINTR) continue;
      return LostError(endpoint_, "failed while receiving", errno);
    }
    if (out->size() > kMaxBodyBytes) return ProtocolError(endpoint_, "body too large");
  }
}

Status HttpConnection::ReadResponse(HttpResponse* response) {
  for (;;) {
    response->status = 0;
    response->headers.clear();
    response->body.clear();

    std::string_view line;
    Status s = ReadLine(&line);
    if (!s.ok()) return s;
    // "HTTP/1.1 200 OK"
    if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || line[8] != ' ') {
      return ProtocolError(endpoint_, "bad status line");
    }
    bool http10 = line[7] == '0';
    uint64_t status = 0;
    if (!ParseDecimal(line.substr(9, 3), &status) || status < 100 || status > 999 ||
        (line.size() > 12 && line[12] != ' ')) {
      return ProtocolError(endpoint_, "bad status line");
    }
    response->status = static_cast<int>(status);

    for (;;) {
      s = ReadLine(&line);
      if (!s.ok()) return s;
      if (line.empty()) break;
      if (line.front() == ' ' || line.front() == '\t') {
        // Obsolete line folding: continue the previous value.
        if (response->headers.empty()) return ProtocolError(endpoint_, "bad header line");
        response->headers.back().value += ' ';
        response->headers.back().value += TrimOws(line);
        continue;
      }
      size_t colon = line.find(':');
      if (colon == std::string_view::npos || colon == 0) {
        return ProtocolError(endpoint_, "bad header line");
      }
      if (response->headers.size() >= kMaxHeaders) {
        return ProtocolError(endpoint_, "too many headers");
      }
      response->headers.push_back(HttpHeader{std::string(line.substr(0, colon)),
                                             std::string(TrimOws(line.substr(colon + 1)))});
    }
    // 1xx interim responses (100 Continue...) precede the real one.
    if (status < 200 && status != 101) continue;

    bool keep_alive = !http10;
    const std::string* connection = response->FindHeader("Connection");
    if (connection != nullptr) {
      if (HasToken(*connection, "close")) keep_alive = false;
      if (HasToken(*connection, "keep-alive")) keep_alive = true;
    }

    const std::string* te = response->FindHeader("Transfer-Encoding");
    const std::string* cl = response->FindHeader("Content-Length");
    if (te != nullptr && IsChunked(*te)) {
      s = ReadChunked(&response->body);
    } else if (te != nullptr) {
      s = ReadUntilClose(&response->body);
      keep_alive = false;
    } else if (cl != nullptr) {
      uint64_t length = 0;
      if (!ParseDecimal(*cl, &length)) return ProtocolError(endpoint_, "bad Content-Length");
      for (const HttpHeader& h : response->headers) {
        if (&h.value != cl && EqualsIgnoreCase(h.name, "Content-Length") && h.value != *cl) {
          return ProtocolError(endpoint_, "conflicting Content-Length headers");
        }
      }
      if (length > kMaxBodyBytes) return ProtocolError(endpoint_, "body too large");
      response->body.reserve(static_cast<size_t>(length));
      s = ReadExact(static_cast<size_t>(length), &response->body);
    } else if (status == 204 || status == 304) {
      s = {};
    } else {
      s = ReadUntilClose(&response->body);
      keep_alive = false;
    }
    if (!s.ok()) return s;
    if (!keep_alive) {
      Close();
    } else {
      ++exchanges_;
    }
    return {};
  }
}

Status HttpConnection::BeginStreaming(std::string_view head) {
  Status s = Connect();  // always a fresh connection: nothing can be resent once body bytes left
  if (!s.ok()) return s;
  s = SendParts(head);
  if (!s.ok()) Close();
  return s;
}

Status HttpConnection::SendParts(std::string_view a, std::string_view b, std::string_view c) {
  if (fd_ < 0) return LostError(endpoint_, "is not open", 0);
  iovec iov[3];
  int count = 0;
  for (std::string_view part : {a, b, c}) {
    if (part.empty()) continue;
    iov[count].iov_base = const_cast<char*>(part.data());
    iov[count].iov_len = part.size();
    ++count;
  }
  iovec* cur = iov;
  while (count > 0) {
    msghdr msg{};
    msg.msg_iov = cur;
    msg.msg_iovlen = static_cast<size_t>(count);
    ssize_t n = ::sendmsg(fd_, &msg, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return LostError(endpoint_, "failed while sending", errno);
    }
    size_t left = static_cast<size_t>(n);
    while (count > 0 && left >= cur->iov_len) {
      left -= cur->iov_len;
      ++cur;
      --count;
    }
    if (count > 0) {
      cur->iov_base = static_cast<char*>(cur->iov_base) + left;
      cur->iov_len -= left;
    }
  }
  return {};
}

Status HttpConnection::FinishStreaming(HttpResponse* response) {
  if (fd_ < 0) return LostError(endpoint_, "is not open", 0);
  Status s = ReadResponse(response);
  Close();
  return s;
}

Status HttpConnection::RoundTrip(std::string_view head, std::string_view body,
                                 HttpResponse* response, std::string_view pipelined) {
  if (fd_ < 0) {
    Status s = Connect();
    if (!s.ok()) return s;
  }
  // Whatever is still buffered belongs to no request of ours; a server must not send it.
  begin_ = end_ = 0;
  Status s = SendParts(head, body, pipelined);
  if (s.ok()) s = ReadResponse(response);
  if (!s.ok()) Close();
  return s;
}

Status HttpConnection::ReadPipelined(HttpResponse* response) {
  if (fd_ < 0) return LostError(endpoint_, "was closed before the pipelined answer", 0);
  Status s = ReadResponse(response);
  if (!s.ok()) Close();
  return s;
}

}  // namespace hearth::runtime::internal
