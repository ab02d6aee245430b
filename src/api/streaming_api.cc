// InvokeWithResponseStream — POST /2021-11-15/functions/{FunctionName}/response-streaming-invocations
// (reference section 4.2).
//
// Everything that stops the function from running (unknown function, bad headers, bad payload,
// throttling) is answered before the stream starts, as a normal JSON error. Otherwise the answer
// is HTTP 200 with X-Amz-Executed-Version and Content-Type = the content type the function's
// stream declared, and a chunked body framed as an AWS event stream: one PayloadChunk per piece
// the runtime sent, written while the function runs (the environment awaits each write, so a
// slow reader slows the function's stream down rather than filling memory), then one
// InvokeComplete carrying ErrorCode/ErrorDetails for a function error (the error type and the
// error JSON) and LogResult with `X-Amz-Log-Type: Tail`. A buffered /response from the runtime
// becomes a single PayloadChunk.

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <boost/url.hpp>

#include "api/arn.h"
#include "api/event_stream.h"
#include "api/invoke_headers.h"
#include "api/lambda_api.h"
#include "api/render.h"
#include "common/blocking.h"
#include "common/encoding.h"
#include "common/notifier.h"

namespace hearth::api {

namespace asio = boost::asio;
namespace json = boost::json;
namespace bhttp = boost::beast::http;

namespace {

constexpr std::uint64_t kStreamInvokePayloadLimit = 6291456;  // as the synchronous Invoke

// The caller's connection as the environment sees it: it starts the HTTP response when the
// runtime's stream begins and frames each piece as a PayloadChunk. Detach() ends the
// environment's access (the invocation is over) once a write in progress has finished.
class EventStreamSink final : public runtimeapi::ResponseSink {
 public:
  EventStreamSink(http::Exchange& ex, bhttp::response_header<>&& header, asio::any_io_executor loop)
      : ex_(ex), header_(std::move(header)), idle_(loop) {}

  asio::awaitable<bool> Begin(const std::string& content_type) override {
    if (detached_) co_return false;
    header_.set(bhttp::field::content_type, content_type);
    const bool ok = co_await Start();
    co_return ok;
  }

  asio::awaitable<bool> Write(const std::string& bytes) override {
    if (detached_ || !started_) co_return false;
    const std::string frame = EncodePayloadChunk(bytes);
    busy_ = true;
    const bool ok = co_await ex_.WriteChunk(frame);
    busy_ = false;
    idle_.Notify();
    co_return ok;
  }

  // Writes the HTTP response header once.
  asio::awaitable<bool> Start() {
    if (started_) co_return !ex_.write_failed();
    started_ = true;
    busy_ = true;
    const bool ok = co_await ex_.WriteHeader(header_);
    busy_ = false;
    idle_.Notify();
    co_return ok;
  }

  asio::awaitable<void> Detach() {
    detached_ = true;
    while (busy_) co_await idle_.Wait();
  }

  bool started() const { return started_; }
  void SetContentType(const std::string& ct) { header_.set(bhttp::field::content_type, ct); }

 private:
  http::Exchange& ex_;
  bhttp::response_header<> header_;
  Notifier idle_;
  bool started_ = false;
  bool busy_ = false;
  bool detached_ = false;
};

}  // namespace

asio::awaitable<std::optional<http::Response>> LambdaApi::InvokeWithResponseStream(http::Exchange& ex) const {
  const std::string rid = NewUuid();
  Request req(ex.header());
  const bool read = co_await ex.ReadAll(req.body());
  if (!read) {
    if (ex.read_error() == bhttp::error::body_limit) {
      co_return Error(req, rid,
                      Status::TooLarge(fmt::format("Request must be smaller than {} bytes for the "
                                                   "InvokeWithResponseStream operation",
                                                   kStreamInvokePayloadLimit)));
    }
    co_return Error(req, rid, Status::InvalidContent("Malformed HTTP request"));
  }
  auto url = boost::urls::parse_origin_form(req.target());
  if (!url) co_return Error(req, rid, Status::InvalidContent("Malformed request target"));
  std::vector<std::string> seg;
  for (auto s : url->segments()) seg.push_back(s);
  if (seg.size() != 4) {
    Response res = Error(req, rid, Status::NotFound("Unknown operation"));
    res.set("x-amzn-ErrorType", "UnknownOperationException");
    co_return res;
  }
  std::string qualifier;
  if (auto it = url->params().find("Qualifier"); it != url->params().end()) qualifier = (*it).value;

  auto fr = ResolveRef(seg[2], qualifier);
  if (!fr) co_return Error(req, rid, fr.error());
  std::string_view type = req["X-Amz-Invocation-Type"];
  if (type.empty()) type = "RequestResponse";
  if (Status st = CheckInvocationType(type, /*event_allowed=*/false); !st.ok())
    co_return Error(req, rid, st);
  std::string_view log_type = req["X-Amz-Log-Type"];
  if (Status st = CheckLogType(log_type); !st.ok()) co_return Error(req, rid, st);
  const bool tail = log_type == "Tail";
  // The version that runs, decided now (for an alias, its one routing draw): the header goes out
  // before the function finishes.
  auto checked = ctx_.invoker->Check(fr->name, fr->qualifier);
  if (!checked) co_return Error(req, rid, checked.error());
  const std::string executed = *checked;
  if (type == "DryRun") co_return DryRun(req, rid, executed);
  auto input = co_await ReadInvokeInput(req);
  if (!input) co_return Error(req, rid, input.error());

  bhttp::response_header<> header;
  header.result(bhttp::status::ok);
  header.version(req.version());
  if (!req.keep_alive()) header.set(bhttp::field::connection, "close");
  header.set("x-amzn-RequestId", rid);
  header.set("X-Amz-Executed-Version", executed);
  header.set(bhttp::field::content_type, "application/octet-stream");
  auto sink = std::make_shared<EventStreamSink>(ex, std::move(header), ctx_.loop);

  invoke::InvokeRequest ir;
  ir.request_id = rid;
  ir.function_name = fr->name;
  ir.qualifier = executed;  // the version chosen above, not a second routing draw
  ir.invoked_arn = Arn(fr->name, fr->qualifier);
  ir.payload = std::move(input->payload);
  ir.client_context = std::move(input->client_context);
  if (std::string_view trace = req["X-Amzn-Trace-Id"]; !trace.empty()) ir.trace_id = std::string(trace);
  ir.stream = sink;

  auto out = co_await ctx_.invoker->Invoke(std::move(ir));
  co_await sink->Detach();
  if (!out && !sink->started()) co_return Error(req, rid, out.error());  // e.g. throttled

  std::string error_code, error_details, log_result;
  std::string buffered;  // a buffered /response: one PayloadChunk
  if (!out) {
    ApiError e = ToApiError(out.error());
    error_code = e.type;
    error_details = std::string(out.error().message());
  } else {
    runtimeapi::InvocationResult& r = out->result;
    if (r.kind == runtimeapi::InvocationResult::Kind::kFunctionError) {
      error_code = r.error_type.empty() ? "Unhandled" : r.error_type;
      error_details = std::move(r.body);
    } else if (!r.streamed) {
      buffered = std::move(r.body);
      if (!sink->started()) sink->SetContentType(r.content_type.empty() ? "application/json" : r.content_type);
    }
    if (tail) log_result = Base64Encode(out->log_tail);
  }
  const bool started = co_await sink->Start();
  if (!started) co_return std::nullopt;  // the caller went away
  if (!buffered.empty()) {
    const std::string chunk = EncodePayloadChunk(buffered);
    const bool ok = co_await ex.WriteChunk(chunk);
    if (!ok) co_return std::nullopt;
  }
  const std::string complete = EncodeInvokeComplete(error_code, error_details, log_result);
  const bool ok = co_await ex.WriteChunk(complete);
  if (ok) co_await ex.WriteLast();
  co_return std::nullopt;
}

}  // namespace hearth::api
