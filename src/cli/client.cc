#include "cli/client.h"

#include <iostream>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <fmt/format.h>

namespace hearth::cli {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

Client::Client(std::string endpoint) : endpoint_(std::move(endpoint)) {
  std::string rest = endpoint_;
  if (auto p = rest.find("://"); p != std::string::npos) rest = rest.substr(p + 3);
  if (auto p = rest.find('/'); p != std::string::npos) rest = rest.substr(0, p);
  auto colon = rest.rfind(':');
  if (colon == std::string::npos) {
    host_ = rest;
    port_ = "80";
  } else {
    host_ = rest.substr(0, colon);
    port_ = rest.substr(colon + 1);
  }
}

Result<HttpResult> Client::Request(const std::string& method, const std::string& target, const std::string& body,
                                   const std::map<std::string, std::string>& headers) {
  asio::io_context ioc;
  asio::ip::tcp::resolver resolver(ioc);
  beast::tcp_stream stream(ioc);
  boost::system::error_code ec;
  auto results = resolver.resolve(host_, port_, ec);
  if (ec) return std::unexpected(Status::Unavailable(fmt::format("cannot resolve {}: {}", endpoint_, ec.message())));
  stream.connect(results, ec);
  if (ec) {
    return std::unexpected(Status::Unavailable(
        fmt::format("cannot reach the Hearth daemon at {}: {} (is `hearth serve` running? set --endpoint or "
                    "HEARTH_ENDPOINT)", endpoint_, ec.message())));
  }
  bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(method), target, 11};
  req.set(bhttp::field::host, host_ + ":" + port_);
  req.set(bhttp::field::user_agent, "hearth-cli/0.1");
  for (const auto& [k, v] : headers) req.set(k, v);
  if (!body.empty() || method == "POST" || method == "PUT") {
    if (!headers.contains("Content-Type")) req.set(bhttp::field::content_type, "application/json");
    req.body() = body;
  }
  req.prepare_payload();
  bhttp::write(stream, req, ec);
  if (ec) return std::unexpected(Status::Unavailable("send: " + ec.message()));
  beast::flat_buffer buf;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(1ull << 32);
  bhttp::read(stream, buf, parser, ec);
  if (ec) return std::unexpected(Status::Unavailable("receive: " + ec.message()));
  auto res = parser.release();
  HttpResult out;
  out.status = static_cast<int>(res.result_int());
  for (const auto& f : res) {
    std::string name(f.name_string());
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out.headers[name] = std::string(f.value());
  }
  out.body = std::move(res.body());
  stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  return out;
}

std::string EncodeSegment(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

std::string ErrorMessage(const HttpResult& r) {
  boost::system::error_code ec;
  auto v = boost::json::parse(r.body, ec);
  std::string type;
  if (auto it = r.headers.find("x-amzn-errortype"); it != r.headers.end()) type = it->second;
  if (!ec && v.is_object()) {
    for (const char* key : {"message", "Message", "errorMessage"}) {
      if (auto* m = v.as_object().if_contains(key); m && m->is_string()) {
        return type.empty() ? std::string(m->as_string()) : type + ": " + std::string(m->as_string());
      }
    }
  }
  return fmt::format("HTTP {}{}: {}", r.status, type.empty() ? "" : " " + type, r.body);
}

int FailureExitCode(const Result<HttpResult>& r) {
  if (!r) {
    std::cerr << "hearth: " << r.error().message() << "\n";
    return 2;
  }
  if (r->status != 200) {
    std::cerr << "hearth: " << ErrorMessage(*r) << "\n";
    return 1;
  }
  return 0;
}

}  // namespace hearth::cli
