// stream: a response-streaming function (Lambda response streaming with the hearth::runtime
// library). It writes `chunks` lines, sleeping `sleep_ms` between them, so the caller of
// InvokeWithResponseStream sees the first line long before the last:
//
//   {"chunks": 5, "sleep_ms": 200}     "chunk 0 of 5\n" ... "chunk 4 of 5\n", then "done\n"
//   {"fail_at": 2}                     after chunk 2, fails mid-stream (error type
//                                      "Stream.Failed"): the caller gets the chunks so far, then
//                                      the error
//   {"bytes": 1048576}                 each chunk is padded with 'x' to this many bytes
//
// Missing keys take the defaults chunks=5, sleep_ms=100, no failure, no padding. Each chunk is
// also logged to stdout ("wrote chunk i").

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <thread>

#include "hearth/runtime/runtime.h"

namespace {

using hearth::runtime::InvocationRequest;
using hearth::runtime::InvocationResponse;
using hearth::runtime::ResponseStream;

// The integer after "key": in a flat JSON object, or `fallback`. (An example, not a JSON parser.)
long Field(std::string_view json, std::string_view key, long fallback) {
  std::string quoted = "\"" + std::string(key) + "\"";
  size_t at = json.find(quoted);
  if (at == std::string_view::npos) return fallback;
  at = json.find(':', at + quoted.size());
  if (at == std::string_view::npos) return fallback;
  std::string rest(json.substr(at + 1, 32));
  char* end = nullptr;
  long v = std::strtol(rest.c_str(), &end, 10);
  return end == rest.c_str() ? fallback : v;
}

InvocationResponse Handle(const InvocationRequest& req, ResponseStream& out) {
  const long chunks = Field(req.payload, "chunks", 5);
  const long sleep_ms = Field(req.payload, "sleep_ms", 100);
  const long fail_at = Field(req.payload, "fail_at", -1);
  const long bytes = Field(req.payload, "bytes", 0);
  out.SetContentType("text/plain");
  for (long i = 0; i < chunks; ++i) {
    if (i > 0 && sleep_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms));
    std::string line = "chunk " + std::to_string(i) + " of " + std::to_string(chunks) + "\n";
    if (bytes > static_cast<long>(line.size())) line.insert(0, static_cast<size_t>(bytes) - line.size(), 'x');
    if (auto st = out.Write(line); !st.ok()) {
      std::fprintf(stderr, "write failed: %s\n", st.error().ToString().c_str());
      break;
    }
    std::printf("wrote chunk %ld\n", i);
    std::fflush(stdout);
    if (i == fail_at) return InvocationResponse::Failure("Stream.Failed", "failed after chunk " + std::to_string(i));
  }
  return InvocationResponse::Success("done\n");
}

}  // namespace

int main() { return hearth::runtime::RunStreamingHandler(Handle); }
