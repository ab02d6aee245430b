#include "scheduler/environment.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstring>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/blocking.h"
#include "common/encoding.h"
#include "scheduler/runtimes.h"

namespace hearth::scheduler {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using runtimeapi::InvocationResult;

namespace {

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kMaxResponseBytes = 6291556;  // 6 MiB + 100 B, as Lambda enforces
constexpr std::size_t kTailBytes = 4096;
constexpr std::string_view kPrefix = "/2018-06-01/runtime/";

std::string ErrorJson(std::string_view type, std::string_view message) {
  return boost::json::serialize(boost::json::object{{"errorMessage", message}, {"errorType", type}});
}

http::Response RuntimeReply(const http::Request& req, int status, std::string body) {
  return http::MakeResponse(req, static_cast<bhttp::status>(status), std::move(body));
}

InvocationResult FunctionError(std::string type, std::string message, std::string report_status = "") {
  InvocationResult r;
  r.kind = InvocationResult::Kind::kFunctionError;
  r.error_type = type;
  r.body = ErrorJson(type, message);
  r.environment_broken = true;
  r.report_status = std::move(report_status);
  return r;
}

bool IsExecutableFile(const std::filesystem::path& p) {
  struct stat st{};
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111) != 0;
}


}  // namespace

Environment::Environment(const EnvironmentContext& ctx, config::FunctionConfig cfg,
                         std::filesystem::path code_dir, std::filesystem::path opt_dir)
    : ctx_(ctx),
      cfg_(std::move(cfg)),
      code_dir_(std::move(code_dir)),
      opt_dir_(std::move(opt_dir)),
      next_wake_(ctx.loop),
      caller_wake_(ctx.loop),
      park_wake_(ctx.loop) {
  id_ = NewUuid();
  id_.erase(std::remove(id_.begin(), id_.end(), '-'), id_.end());
  last_used_ = ctx_.clock->Monotonic();
}

Environment::~Environment() = default;

double Environment::MsSince(std::chrono::steady_clock::time_point t) const {
  return std::chrono::duration<double, std::milli>(ctx_.clock->Monotonic() - t).count();
}

std::vector<std::string> Environment::BuildEnvironment() const {
  const std::string task_root = ctx_.launcher->TaskRoot(code_dir_);
  auto now = ctx_.clock->Now();
  std::time_t secs = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  // Unreserved: the function's own variables may override these.
  std::map<std::string, std::string> env = DefaultStartEnvironment(task_root);
  env["AWS_XRAY_CONTEXT_MISSING"] = "LOG_ERROR";
  env["AWS_XRAY_DAEMON_ADDRESS"] = "169.254.79.129:2000";
  for (const auto& [k, v] : cfg_.environment) env[k] = v;
  // Reserved: always the platform's values.
  env["_HANDLER"] = cfg_.handler;
  env["AWS_REGION"] = ctx_.region;
  env["AWS_DEFAULT_REGION"] = ctx_.region;
  env["AWS_LAMBDA_FUNCTION_NAME"] = cfg_.name;
  env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] = std::to_string(cfg_.memory_mb);
  env["AWS_LAMBDA_FUNCTION_VERSION"] = cfg_.version;
  env["AWS_LAMBDA_INITIALIZATION_TYPE"] = init_type_;
  env["AWS_LAMBDA_LOG_GROUP_NAME"] = "/aws/lambda/" + cfg_.name;
  env["AWS_LAMBDA_LOG_STREAM_NAME"] = fmt::format("{:04}/{:02}/{:02}/[{}]{}", tm.tm_year + 1900,
                                                  tm.tm_mon + 1, tm.tm_mday, cfg_.version, id_);
  env["LAMBDA_RUNTIME_DIR"] = "/var/runtime";
  // Hearth issues no real IAM credentials; SDKs inside functions still find well-formed ones.
  env["AWS_ACCESS_KEY_ID"] = "HEARTHLOCALACCESSKEY";
  env["AWS_SECRET_ACCESS_KEY"] = "hearth-local-secret-access-key";
  env["AWS_SESSION_TOKEN"] = "hearth-local-session-token";
  if (!IsProvidedRuntime(cfg_.runtime)) env["AWS_EXECUTION_ENV"] = "AWS_Lambda_" + cfg_.runtime;
  std::vector<std::string> out;
  out.reserve(env.size());
  for (const auto& [k, v] : env) out.push_back(k + "=" + v);
  return out;
}

asio::awaitable<std::optional<InvocationResult>> Environment::Start(const std::string& request_id) {
  state_ = State::kStarting;
  started_at_ = ctx_.clock->Monotonic();
  auto fail = [&](InvocationResult r) -> std::optional<InvocationResult> {
    dead_ = true;
    state_ = State::kDead;
    return r;
  };
  // A managed runtime (python3.11, nodejs20.x): its directory is mounted at /var/runtime.
  std::filesystem::path managed_runtime;
  if (!IsProvidedRuntime(cfg_.runtime)) {
    managed_runtime = ctx_.runtimes_dir / cfg_.runtime;
    if (cfg_.runtime.find('/') != std::string::npos || !IsExecutableFile(managed_runtime / "bootstrap")) {
      std::string installed;
      for (const auto& r : InstalledRuntimes(ctx_.runtimes_dir)) installed += (installed.empty() ? "" : ", ") + r;
      co_return fail(FunctionError(
          "Runtime.InvalidEntrypoint",
          fmt::format("RequestId: {} Error: runtime {} is not available on this Hearth host "
                      "(installed: {})",
                      request_id, cfg_.runtime, installed)));
    }
  }
  sandbox::LaunchSpec spec;
  spec.environment_id = id_;
  spec.code_dir = code_dir_;
  spec.opt_dir = opt_dir_;
  spec.entrypoint = "/var/task/bootstrap";
  if (!managed_runtime.empty()) {
    spec.runtime_dir = managed_runtime;
    spec.entrypoint = "/var/runtime/bootstrap";
  } else {
    // Section 3.4: /var/task/bootstrap, then /opt/bootstrap (from a layer).
    spec.entrypoint.clear();
    for (const char* candidate : {"/var/task/bootstrap", "/opt/bootstrap"}) {
      std::filesystem::path host = sandbox::HostPath(spec, candidate);
      if (!host.empty() && IsExecutableFile(host)) {
        spec.entrypoint = candidate;
        break;
      }
    }
    if (spec.entrypoint.empty()) {
      co_return fail(FunctionError(
          "Runtime.InvalidEntrypoint",
          fmt::format("RequestId: {} Error: Couldn't find valid bootstrap(s): [/var/task/bootstrap "
                      "/opt/bootstrap]",
                      request_id)));
    }
  }
  spec.env = BuildEnvironment();
  spec.memory_mb = cfg_.memory_mb;
  spec.ephemeral_storage_mb = cfg_.ephemeral_storage_mb;
  sandbox::Launcher* launcher = ctx_.launcher;
  // Named, not a temporary inside co_await: g++ 12 destroys such temporaries twice.
  auto launch = [launcher, spec]() { return launcher->Launch(spec); };
  auto launched = co_await RunBlocking(*ctx_.workers, std::move(launch));
  if (!launched) {
    spdlog::warn("environment {} of {}: launch failed: {}", id_, cfg_.name, launched.error().ToString());
    co_return fail(FunctionError(
        "Runtime.InvalidEntrypoint",
        fmt::format("RequestId: {} Error: {}", request_id, launched.error().message())));
  }
  process_ = std::move(*launched);
  // Init (its limit and Init Duration) starts when the runtime process exists: time spent
  // queued behind other launches during a burst is Hearth's, not the function's.
  started_at_ = ctx_.clock->Monotonic();

  auto self = shared_from_this();
  // Runtime API.
  UniqueFd listener = process_->TakeRuntimeApiListener();
  acceptor_ = std::make_unique<asio::ip::tcp::acceptor>(ctx_.loop, asio::ip::tcp::v4(), listener.Release());
  auto handler = std::make_shared<http::Handler>(
      [self](http::Request& req) { return self->HandleRuntimeApi(req); });
  auto opts = std::make_shared<http::ConnectionOptions>();
  std::weak_ptr<Environment> weak = self;
  opts->body_limit = [](const http::RequestHeader& h) -> std::uint64_t {
    if (h.method() != bhttp::verb::post) return 0;
    return h["Lambda-Runtime-Function-Response-Mode"] == "streaming" ? runtimeapi::kMaxStreamedResponseBytes
                                                                      : kMaxResponseBytes;
  };
  opts->on_too_large = [weak](const http::RequestHeader& h) {
    if (auto env = weak.lock()) return env->RuntimeTooLarge(h);
    return http::Response{bhttp::status::payload_too_large, 11};
  };
  // Response streaming (section 1.6): the body is relayed while it arrives, up to 200 MiB.
  opts->wants_streaming = [](const http::RequestHeader& h) {
    return h.method() == bhttp::verb::post && h["Lambda-Runtime-Function-Response-Mode"] == "streaming" &&
           h.target().ends_with("/response");
  };
  opts->streaming = [self](http::Exchange& ex) { return self->HandleStreamingResponse(ex); };
  // A runtime that pipelines `next` behind its response POST gets the 202 with its next
  // invocation (one write, one wake-up); runtimes that wait for the 202 get it at once.
  opts->coalesce_pipelined = true;
  // The handler holds `self`, so the environment (and acceptor_) live as long as the loop.
  asio::co_spawn(ctx_.loop, http::AcceptLoop(*acceptor_, handler, opts), asio::detached);
  // Output capture.
  UniqueFd out = process_->TakeStdout();
  UniqueFd err = process_->TakeStderr();
  out_fds_[0] = out.get();
  out_fds_[1] = err.get();
  asio::co_spawn(ctx_.loop, [self, fd = out.Release()]() { return self->PumpOutput(fd); }, asio::detached);
  asio::co_spawn(ctx_.loop, [self, fd = err.Release()]() { return self->PumpOutput(fd); }, asio::detached);
  // Exit watch.
  exit_watch_ = std::make_unique<asio::posix::stream_descriptor>(ctx_.loop, ::dup(process_->exit_fd()));
  asio::co_spawn(ctx_.loop, [self]() { return self->WatchExit(); }, asio::detached);
  co_return std::nullopt;
}

asio::awaitable<void> Environment::PumpOutput(int fd) {
  asio::posix::stream_descriptor sd(ctx_.loop, fd);
  const int slot = (fd == out_fds_[0]) ? 0 : 1;
  char buf[16384];
  for (;;) {
    auto [ec, n] = co_await sd.async_read_some(asio::buffer(buf), kNoThrow);
    if (n > 0) OnOutput(std::string_view(buf, n), out_partial_[slot]);
    if (ec) break;
  }
  if (!out_partial_[slot].empty()) {
    out_partial_[slot].push_back('\n');
    EmitLine(out_partial_[slot]);
    out_partial_[slot].clear();
  }
  out_fds_[slot] = -1;
}

void Environment::OnOutput(std::string_view chunk, std::string& partial) {
  std::size_t start = 0;
  while (start < chunk.size()) {
    auto nl = chunk.find('\n', start);
    if (nl == std::string_view::npos) {
      partial.append(chunk.substr(start));
      // A runaway line without newlines must not grow without bound.
      if (partial.size() > 256 * 1024) {
        partial.push_back('\n');
        EmitLine(partial);
        partial.clear();
      }
      return;
    }
    if (partial.empty()) {
      EmitLine(chunk.substr(start, nl - start + 1));
    } else {
      partial.append(chunk.substr(start, nl - start + 1));
      EmitLine(partial);
      partial.clear();
    }
    start = nl + 1;
  }
}

void Environment::FlushHeldLog() {
  if (log_pending_.empty()) return;
  ctx_.logs->Append(cfg_.name, log_pending_);
  log_pending_.clear();
}

void Environment::EmitLine(std::string_view line) {
  if (!log_pending_.empty()) {
    log_pending_.append(line);
    ctx_.logs->Append(cfg_.name, log_pending_);
    log_pending_.clear();
  } else {
    ctx_.logs->Append(cfg_.name, line);
  }
  if (capturing_) {
    tail_.append(line);
    if (tail_.size() > 4 * kTailBytes) tail_.erase(0, tail_.size() - kTailBytes);
  }
}

void Environment::DrainOutputNow() {
  // The runtime wrote its output before posting its result, so it is already in the pipes. One
  // poll over both pipes (most invokes print nothing: no read that returns EAGAIN), then read
  // what is there.
  struct pollfd pfd[2];
  int slots[2];
  nfds_t n_fds = 0;
  for (int slot = 0; slot < 2; ++slot) {
    if (out_fds_[slot] < 0) continue;
    pfd[n_fds] = {out_fds_[slot], POLLIN, 0};
    slots[n_fds++] = slot;
  }
  if (n_fds == 0 || ::poll(pfd, n_fds, 0) <= 0) return;
  char buf[16384];
  for (nfds_t i = 0; i < n_fds; ++i) {
    if ((pfd[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
    for (;;) {
      ssize_t n = ::read(pfd[i].fd, buf, sizeof buf);
      if (n <= 0) break;
      OnOutput(std::string_view(buf, static_cast<size_t>(n)), out_partial_[slots[i]]);
      if (static_cast<size_t>(n) < sizeof buf) break;  // the pipe is empty now
    }
  }
}

asio::awaitable<void> Environment::WatchExit() {
  auto [ec] = co_await exit_watch_->async_wait(asio::posix::descriptor_base::wait_read, kNoThrow);
  if (ec) co_return;
  wait_status_ = process_->TryReap();
  // A readable pidfd can run ahead of a reapable child (e.g. a traced or multi-threaded leader):
  // give the process up to a second to become reapable before calling it gone, and then make sure.
  asio::steady_timer retry(ctx_.loop);
  for (int i = 0; i < 100 && !wait_status_; ++i) {
    retry.expires_after(std::chrono::milliseconds(10));
    co_await retry.async_wait(kNoThrow);
    wait_status_ = process_->TryReap();
  }
  if (!wait_status_) {
    spdlog::warn("environment {}: runtime pid {} signalled exit but cannot be reaped; killing it", id_,
                 process_->pid());
    process_->Signal(SIGKILL);
    wait_status_ = W_EXITCODE(0, SIGKILL);
  }
  dead_ = true;
  state_ = State::kDead;
  if (kill_timer_) kill_timer_->cancel();
  boost::system::error_code ignored;
  if (acceptor_) acceptor_->close(ignored);
  next_wake_.Notify();
  caller_wake_.Notify();
  park_wake_.Notify();
}

std::string Environment::ExitMessage() const {
  int st = wait_status_.value_or(0);
  if (WIFSIGNALED(st)) {
    std::string name = ::strsignal(WTERMSIG(st));
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return "Runtime exited with error: signal: " + name;
  }
  if (WIFEXITED(st) && WEXITSTATUS(st) != 0)
    return fmt::format("Runtime exited with error: exit status {}", WEXITSTATUS(st));
  return "Runtime exited without providing a reason";
}

void Environment::Complete(InvocationResult r) {
  result_ = std::move(r);
  caller_wake_.Notify();
}

http::Response Environment::RuntimeTooLarge(const http::RequestHeader& h) {
  // POST /2018-06-01/runtime/invocation/{id}/response over the limit.
  std::string_view target = h.target();
  if (auto* cur = api_.current(); cur && target.find(cur->request_id) != std::string_view::npos) {
    api_.OnInvocationPost(cur->request_id);
    DrainOutputNow();
    InvocationResult r;
    r.kind = InvocationResult::Kind::kFunctionError;
    r.error_type = "Function.ResponseSizeTooLarge";
    r.body = ErrorJson("Function.ResponseSizeTooLarge",
                       fmt::format("Response payload size exceeded maximum allowed payload size ({} bytes).",
                                   kMaxResponseBytes));
    Complete(std::move(r));
  }
  http::Response res{bhttp::status::payload_too_large, 11};
  res.set(bhttp::field::content_type, "application/json");
  res.body() = ErrorJson("RequestEntityTooLarge",
                         fmt::format("Exceeded maximum allowed payload size ({} bytes).", kMaxResponseBytes));
  res.prepare_payload();
  return res;
}

asio::awaitable<http::Response> Environment::HandleRuntimeApi(http::Request& req) {
  std::string_view target = req.target();
  if (auto q = target.find('?'); q != std::string_view::npos) target = target.substr(0, q);
  if (target == "/ping" || target == "/2018-06-01/ping") co_return RuntimeReply(req, 200, "pong");
  if (!target.starts_with(kPrefix)) {
    co_return RuntimeReply(req, 404, ErrorJson("InvalidRequest", "Unknown Runtime API path"));
  }
  std::string_view rest = target.substr(kPrefix.size());

  if (rest == "invocation/next") {
    if (req.method() != bhttp::verb::get)
      co_return RuntimeReply(req, 405, ErrorJson("MethodNotAllowed", "next requires GET"));
    bool was_init = !api_.init_done();
    auto inv = api_.OnNext();
    if (was_init && api_.init_done()) {
      init_duration_ms_ = MsSince(started_at_);
      if (process_) process_->EndInit();  // Init's full vCPU ends here
      caller_wake_.Notify();
    }
    while (!inv && !dead_ && api_.phase() != runtimeapi::RuntimeApiState::Phase::kInitFailed) {
      parked_ = true;
      park_wake_.Notify();
      co_await next_wake_.Wait();
      parked_ = false;
      inv = api_.OnNext();
    }
    if (!inv) {
      // The environment is going away: tell the runtime to exit.
      co_return RuntimeReply(req, 500, ErrorJson("Runtime.Shutdown", "The execution environment is shutting down"));
    }
    http::Response res{bhttp::status::ok, req.version()};
    res.keep_alive(req.keep_alive());
    res.set(bhttp::field::content_type, inv->content_type.empty() ? "application/json" : inv->content_type);
    res.set("Lambda-Runtime-Aws-Request-Id", inv->request_id);
    res.set("Lambda-Runtime-Deadline-Ms", std::to_string(inv->deadline_ms));
    res.set("Lambda-Runtime-Invoked-Function-Arn", inv->invoked_function_arn);
    if (!inv->trace_id.empty()) res.set("Lambda-Runtime-Trace-Id", inv->trace_id);
    if (!inv->client_context.empty()) res.set("Lambda-Runtime-Client-Context", inv->client_context);
    if (!inv->cognito_identity.empty()) res.set("Lambda-Runtime-Cognito-Identity", inv->cognito_identity);
    if (!inv->tenant_id.empty()) res.set("Lambda-Runtime-Aws-Tenant-Id", inv->tenant_id);
    res.body() = std::move(inv->payload);
    res.prepare_payload();
    co_return res;
  }

  if (rest == "init/error") {
    if (req.method() != bhttp::verb::post)
      co_return RuntimeReply(req, 405, ErrorJson("MethodNotAllowed", "init/error requires POST"));
    auto out = api_.OnInitError();
    if (!out.completes) co_return RuntimeReply(req, out.http_status, ErrorJson(out.error_type, out.error_message));
    InvocationResult r;
    r.kind = InvocationResult::Kind::kFunctionError;
    r.error_type = std::string(req["Lambda-Runtime-Function-Error-Type"]);
    if (r.error_type.empty()) r.error_type = "Runtime.Unknown";
    r.body = req.body().empty() ? ErrorJson(r.error_type, "Init failed") : std::move(req.body());
    r.environment_broken = true;
    DrainOutputNow();
    init_error_ = std::move(r);
    init_duration_ms_ = MsSince(started_at_);
    caller_wake_.Notify();
    next_wake_.Notify();
    co_return RuntimeReply(req, 202, R"({"status":"OK"})");
  }

  if (rest.starts_with("invocation/")) {
    std::string_view tail = rest.substr(std::string_view("invocation/").size());
    auto slash = tail.rfind('/');
    if (slash != std::string_view::npos && req.method() == bhttp::verb::post) {
      std::string_view id = tail.substr(0, slash);
      std::string_view verb = tail.substr(slash + 1);
      if (verb == "response" || verb == "error") {
        std::string_view mode = req["Lambda-Runtime-Function-Response-Mode"];
        if (verb == "response" && !mode.empty() && mode != "streaming") {
          auto out = api_.OnInvocationPost(id);
          if (out.completes) {
            Complete(FunctionError("Runtime.InvalidResponseModeHeader",
                                   fmt::format("Invalid response mode header value: {}", mode)));
            result_->environment_broken = false;
          }
          co_return RuntimeReply(req, 400, ErrorJson("InvalidFunctionResponseMode",
                                                     "Invalid Lambda-Runtime-Function-Response-Mode"));
        }
        auto out = api_.OnInvocationPost(id);
        if (!out.completes)
          co_return RuntimeReply(req, out.http_status, ErrorJson(out.error_type, out.error_message));
        DrainOutputNow();
        InvocationResult r;
        std::string_view ct = req[bhttp::field::content_type];
        if (verb == "response") {
          r.kind = InvocationResult::Kind::kSuccess;
          r.content_type = ct.empty() ? "application/json" : std::string(ct);
          r.body = std::move(req.body());
        } else {
          r.kind = InvocationResult::Kind::kFunctionError;
          r.error_type = std::string(req["Lambda-Runtime-Function-Error-Type"]);
          if (r.error_type.empty()) r.error_type = "Unhandled";
          r.body = req.body().empty() ? ErrorJson(r.error_type, "") : std::move(req.body());
        }
        Complete(std::move(r));
        // Let the waiting caller answer its client before the runtime is woken by the 202.
        co_await asio::post(ctx_.loop, asio::use_awaitable);
        co_return RuntimeReply(req, 202, R"({"status":"OK"})");
      }
    }
  }
  co_return RuntimeReply(req, 404, ErrorJson("InvalidRequest", "Unknown Runtime API path"));
}

asio::awaitable<std::optional<http::Response>> Environment::HandleStreamingResponse(http::Exchange& ex) {
  const http::RequestHeader& h = ex.header();
  const unsigned version = h.version();
  const bool keep = ex.keep_alive();
  auto reply = [&](int status, std::string body) {
    http::Response res{static_cast<bhttp::status>(status), version};
    res.keep_alive(keep);
    res.set(bhttp::field::content_type, "application/json");
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
  };
  // /2018-06-01/runtime/invocation/{id}/response
  std::string_view target = h.target();
  if (auto q = target.find('?'); q != std::string_view::npos) target = target.substr(0, q);
  constexpr std::string_view kInvocation = "/2018-06-01/runtime/invocation/";
  constexpr std::string_view kResponse = "/response";
  if (!target.starts_with(kInvocation) || !target.ends_with(kResponse) ||
      target.size() <= kInvocation.size() + kResponse.size()) {
    co_return reply(404, ErrorJson("InvalidRequest", "Unknown Runtime API path"));
  }
  const std::string id(target.substr(kInvocation.size(), target.size() - kInvocation.size() - kResponse.size()));
  auto begin = api_.OnStreamBegin(id);
  if (begin.http_status != 202) co_return reply(begin.http_status, ErrorJson(begin.error_type, begin.error_message));

  // The caller of InvokeWithResponseStream, or none (a plain Invoke collects the stream).
  std::shared_ptr<runtimeapi::ResponseSink> sink = api_.current()->stream;
  std::string_view declared = h[bhttp::field::content_type];
  const std::string content_type = declared.empty() ? "application/octet-stream" : std::string(declared);
  bool sink_open = false;
  if (sink) sink_open = co_await sink->Begin(content_type);

  const auto stream_start = ctx_.clock->Monotonic();
  std::string piece, collected;
  std::uint64_t total = 0;
  bool too_large = false;
  asio::steady_timer throttle(ctx_.loop);
  for (;;) {
    const bool more = co_await ex.ReadSome(piece);
    if (!more) break;
    total += piece.size();
    if (!sink) {
      // A buffered Invoke of a streaming function: Lambda's buffered limit applies.
      if (collected.size() + piece.size() > kMaxResponseBytes) {
        too_large = true;
        ex.FailRead(bhttp::error::body_limit);  // the server drains the rest before closing
        break;
      }
      collected.append(piece);
      continue;
    }
    if (sink_open) sink_open = co_await sink->Write(piece);
    const auto elapsed = std::chrono::duration_cast<std::chrono::microseconds>(ctx_.clock->Monotonic() - stream_start);
    const auto delay = runtimeapi::StreamThrottleDelay(total, elapsed);
    if (delay.count() > 0) {
      throttle.expires_after(delay);
      co_await throttle.async_wait(kNoThrow);
    }
  }
  const auto read_error = ex.read_error();
  if (read_error == bhttp::error::body_limit) too_large = true;
  const std::uint64_t limit = sink ? runtimeapi::kMaxStreamedResponseBytes : kMaxResponseBytes;

  InvocationResult r;
  int status = 202;
  std::string runtime_body = R"({"status":"OK"})";
  if (too_large) {
    r = FunctionError("Function.ResponseSizeTooLarge",
                      fmt::format("Response payload size exceeded maximum allowed payload size ({} bytes).", limit));
    r.environment_broken = false;
    status = 413;
    runtime_body = ErrorJson("RequestEntityTooLarge",
                             fmt::format("Exceeded maximum allowed payload size ({} bytes).", limit));
  } else if (read_error) {
    // Cut short without the last chunk: the runtime died or gave up mid-stream.
    r = FunctionError("Runtime.TruncatedResponse",
                      fmt::format("RequestId: {} Error: the streamed response was cut short after {} bytes", id, total));
    status = 400;
    runtime_body = ErrorJson("TruncatedHTTPRequest", "The streamed response ended without its last chunk");
  } else if (std::string_view type = h["Lambda-Runtime-Function-Error-Type"]; !type.empty()) {
    // A mid-stream failure: the error trailers (type, base64 JSON body).
    r.kind = InvocationResult::Kind::kFunctionError;
    r.error_type = std::string(type);
    auto decoded = Base64Decode(h["Lambda-Runtime-Function-Error-Body"]);
    r.body = decoded && !decoded->empty() ? std::move(*decoded) : ErrorJson(r.error_type, "");
  } else {
    r.kind = InvocationResult::Kind::kSuccess;
    r.content_type = content_type;
    r.body = std::move(collected);
  }
  r.streamed = sink != nullptr;
  r.streamed_bytes = total;
  auto end = api_.OnStreamEnd(id);
  if (end.completes) {
    DrainOutputNow();
    Complete(std::move(r));
    // Let the waiting caller finish its answer before the runtime is woken by the 202.
    co_await asio::post(ctx_.loop, asio::use_awaitable);
  }
  http::Response res = reply(status, std::move(runtime_body));
  if (status != 202) res.keep_alive(false);
  co_return res;
}

asio::awaitable<InvokeOutcome> Environment::Invoke(runtimeapi::Invocation&& inv) {
  auto self = shared_from_this();  // outlive any Shutdown() during the call
  state_ = State::kBusy;
  if (frozen_) {
    frozen_ = false;
    process_->SetFrozen(false);  // the event below finds it running (~60-90 us, benchmarks.md)
  }
  InvokeOutcome outcome;
  outcome.executed_version = cfg_.version;
  const std::string id = inv.request_id;
  const bool cold = !init_reported_;
  init_reported_ = true;

  tail_.clear();
  capturing_ = true;
  auto start_line = telemetry::FormatStartLine(id, cfg_.version) + "\n";
  log_pending_ = start_line;  // written with the first output line, or with END + REPORT
  std::string head = std::move(start_line);

  // Init: wait for the runtime's first `next`, an init error, its death, or the init limit.
  const auto init_deadline = started_at_ + ctx_.init_timeout;
  while (!api_.init_done() && !init_error_ && !dead_) {
    const bool woken = co_await caller_wake_.WaitUntil(init_deadline);
    if (!woken && ctx_.clock->Monotonic() >= init_deadline) break;
  }
  std::optional<InvocationResult> failed;
  if (init_error_) {
    failed = *init_error_;
  } else if (!api_.init_done() && dead_) {
    failed = FunctionError("Runtime.ExitError", fmt::format("RequestId: {} Error: {}", id, ExitMessage()),
                           "error");
  } else if (!api_.init_done()) {
    double secs = std::chrono::duration<double>(ctx_.init_timeout).count();
    failed = FunctionError("Sandbox.Timedout",
                           fmt::format("RequestId: {} Error: Init phase timed out after {:.2f} seconds", id, secs),
                           "timeout");
  }

  const auto invoke_start = ctx_.clock->Monotonic();
  if (!failed) {
    inv.deadline_ms = ToEpochMillis(ctx_.clock->Now()) + inv.timeout.count();
    const auto deadline = invoke_start + inv.timeout;
    result_.reset();
    api_.Queue(std::move(inv));
    next_wake_.Notify();
    while (!result_ && !dead_) {
      const bool woken = co_await caller_wake_.WaitUntil(deadline);
      if (!woken && ctx_.clock->Monotonic() >= deadline) break;
    }
    if (result_) {
      outcome.result = std::move(*result_);
      result_.reset();
    } else if (dead_) {
      api_.Abort();
      DrainOutputNow();
      failed = FunctionError("Runtime.ExitError", fmt::format("RequestId: {} Error: {}", id, ExitMessage()),
                             "error");
    } else {
      api_.Abort();
      DrainOutputNow();
      double secs = static_cast<double>(cfg_.timeout_s);
      std::string line = fmt::format("{} {} Task timed out after {:.2f} seconds\n",
                                     FormatIsoTimestamp(ctx_.clock->Now()), id, secs);
      EmitLine(line);  // capturing: also into tail_
      failed = FunctionError("Sandbox.Timedout",
                             fmt::format("RequestId: {} Error: Task timed out after {:.2f} seconds", id, secs),
                             "timeout");
    }
  }
  if (failed) outcome.result = std::move(*failed);
  capturing_ = false;

  telemetry::ReportFields report;
  report.request_id = id;
  report.duration_ms = MsSince(invoke_start);
  report.memory_size_mb = cfg_.memory_mb;
  int64_t peak = process_ ? process_->PeakMemoryBytes() : 0;
  last_peak_bytes_ = peak;
  report.max_memory_used_mb = (peak + (1 << 20) - 1) >> 20;
  if (cold) report.init_duration_ms = init_duration_ms_ >= 0 ? init_duration_ms_ : MsSince(started_at_);
  report.status = outcome.result.report_status;
  std::string end = telemetry::FormatEndLine(id) + "\n" + telemetry::FormatReportLine(report) + "\n";
  if (!log_pending_.empty()) {
    log_pending_.append(end);  // the function printed nothing: START, END and REPORT in one write
    ctx_.logs->Append(cfg_.name, log_pending_);
    log_pending_.clear();
  } else {
    ctx_.logs->Append(cfg_.name, end);
  }

  std::string full = head + tail_ + end;
  if (full.size() > kTailBytes) full.erase(0, full.size() - kTailBytes);
  outcome.log_tail = std::move(full);
  tail_.clear();

  last_used_ = ctx_.clock->Monotonic();
  if (outcome.result.environment_broken || dead_) {
    Shutdown();
  } else {
    state_ = State::kIdle;
    ArmFreeze();
  }
  co_return outcome;
}

void Environment::ArmFreeze() {
  if (ctx_.freeze_idle.count() <= 0 || !process_ || freeze_armed_ || frozen_ || dead_) return;
  if (!freeze_timer_) freeze_timer_ = std::make_unique<asio::steady_timer>(ctx_.loop);
  freeze_armed_ = true;
  freeze_timer_->expires_at(last_used_ + ctx_.freeze_idle);
  std::weak_ptr<Environment> weak = weak_from_this();
  freeze_timer_->async_wait([weak](boost::system::error_code ec) {
    auto self = weak.lock();
    if (!self) return;
    self->freeze_armed_ = false;
    if (ec || self->dead_ || self->state_ != State::kIdle) return;
    if (self->ctx_.clock->Monotonic() - self->last_used_ < self->ctx_.freeze_idle || !self->parked_) {
      self->ArmFreeze();  // used meanwhile, or the runtime is not back in `next` yet
      return;
    }
    self->frozen_ = self->process_->SetFrozen(true);
  });
}

asio::awaitable<bool> Environment::WaitInitialized(std::chrono::steady_clock::time_point deadline,
                                                  std::string* error) {
  auto self = shared_from_this();
  while (!api_.init_done() && !init_error_ && !dead_) {
    const bool woken = co_await caller_wake_.WaitUntil(deadline);
    if (!woken && ctx_.clock->Monotonic() >= deadline) break;
  }
  if (api_.init_done() && !init_error_ && !dead_) {
    init_reported_ = true;  // Init happened ahead of traffic: no Init Duration on the first invoke
    ArmFreeze();  // provisioned: frozen until its first invoke, like any idle environment
    co_return true;
  }
  if (error) {
    if (init_error_) {
      *error = fmt::format("{}: {}", init_error_->error_type, init_error_->body);
    } else if (dead_) {
      *error = ExitMessage();
    } else {
      *error = "Init did not finish in time";
    }
  }
  co_return false;
}

asio::awaitable<void> Environment::WaitParked(std::chrono::steady_clock::time_point deadline) {
  while (!parked_ && !dead_) {
    const bool woken = co_await park_wake_.WaitUntil(deadline);
    if (!woken && ctx_.clock->Monotonic() >= deadline) break;
  }
  co_return;
}

void Environment::Shutdown() {
  if (state_ != State::kDead) state_ = State::kDead;
  bool was_dead = dead_;
  dead_ = true;
  next_wake_.Notify();
  caller_wake_.Notify();
  park_wake_.Notify();
  boost::system::error_code ignored;
  if (acceptor_) acceptor_->close(ignored);
  if (!process_ || was_dead || wait_status_) return;
  process_->Signal(SIGTERM);
  kill_timer_ = std::make_unique<asio::steady_timer>(ctx_.loop, ctx_.shutdown_grace);
  auto self = shared_from_this();
  kill_timer_->async_wait([self](boost::system::error_code ec) {
    if (!ec && !self->wait_status_) self->process_->Signal(SIGKILL);
  });
}

}  // namespace hearth::scheduler
