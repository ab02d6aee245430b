#pragma once
// A small synchronous HTTP client for the CLI, which talks to the daemon only over its HTTP API.

#include <map>
#include <string>

#include "common/status.h"

namespace hearth::cli {

struct HttpResult {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

class Client {
 public:
  // `endpoint` is "http://host:port" (the scheme is optional).
  explicit Client(std::string endpoint);
  Result<HttpResult> Request(const std::string& method, const std::string& target, const std::string& body = "",
                             const std::map<std::string, std::string>& headers = {});
  const std::string& endpoint() const { return endpoint_; }

 private:
  std::string endpoint_, host_, port_;
};

// Percent-encodes a path segment (function names and ARNs).
std::string EncodeSegment(const std::string& s);

// The Lambda error message of an error response body, or the body itself.
std::string ErrorMessage(const HttpResult& r);

// For a CLI verb: 0 when `r` is a 200 answer; otherwise prints why to stderr and returns the exit
// code (2: the daemon could not be reached; 1: it answered with an error).
int FailureExitCode(const Result<HttpResult>& r);

}  // namespace hearth::cli
