#include "runtimeapi/state.h"

#include <utility>

namespace hearth::runtimeapi {

void RuntimeApiState::Queue(Invocation inv) { queued_ = std::move(inv); }

std::optional<Invocation> RuntimeApiState::OnNext() {
  if (phase_ == Phase::kInitFailed) return std::nullopt;
  if (phase_ == Phase::kInit) phase_ = Phase::kReady;
  if (in_flight_) return *in_flight_;
  if (queued_) {
    in_flight_ = std::move(queued_);
    queued_.reset();
    phase_ = Phase::kInvoking;
    return *in_flight_;
  }
  return std::nullopt;
}

namespace {
RuntimeApiState::PostOutcome AlreadyStreaming(std::string_view request_id) {
  RuntimeApiState::PostOutcome out;
  out.http_status = 403;
  out.error_type = "InvalidStateTransition";
  out.error_message = "State transition from InvocationResponseStreaming failed for runtime. Error: "
                      "invocation " + std::string(request_id) + " is already streaming its response";
  return out;
}
}  // namespace

RuntimeApiState::PostOutcome RuntimeApiState::OnStreamBegin(std::string_view request_id) {
  if (in_flight_ && in_flight_->request_id == request_id) {
    if (streaming_) return AlreadyStreaming(request_id);
    streaming_ = true;
    return PostOutcome{};  // 202 once the stream ends; not complete yet
  }
  return OnInvocationPost(request_id);  // the same refusals (nothing in flight matches)
}

RuntimeApiState::PostOutcome RuntimeApiState::OnStreamEnd(std::string_view request_id) {
  if (!streaming_ || !in_flight_ || in_flight_->request_id != request_id) {
    PostOutcome out;
    out.http_status = 403;
    out.error_type = "InvalidStateTransition";
    out.error_message = "The invocation is no longer in flight";
    return out;
  }
  streaming_ = false;
  return OnInvocationPost(request_id);
}

RuntimeApiState::PostOutcome RuntimeApiState::OnInvocationPost(std::string_view request_id) {
  PostOutcome out;
  if (streaming_ && in_flight_ && in_flight_->request_id == request_id) return AlreadyStreaming(request_id);
  if (in_flight_ && in_flight_->request_id == request_id) {
    last_completed_id_ = in_flight_->request_id;
    in_flight_.reset();
    phase_ = Phase::kReady;
    out.completes = true;
    return out;
  }
  if (!request_id.empty() && request_id == last_completed_id_) {
    out.http_status = 403;
    out.error_type = "InvalidStateTransition";
    out.error_message = "State transition from Ready to InvocationResponse failed for runtime. Error: "
                        "invocation " + std::string(request_id) + " already has a response";
    return out;
  }
  out.http_status = 400;
  out.error_type = "InvalidRequestID";
  out.error_message = "Invalid request ID";
  return out;
}

RuntimeApiState::PostOutcome RuntimeApiState::OnInitError() {
  PostOutcome out;
  if (phase_ != Phase::kInit) {
    out.http_status = 403;
    out.error_type = "InvalidStateTransition";
    out.error_message = "State transition from Ready to InitError failed for runtime. "
                        "Init errors can only be reported during Init";
    return out;
  }
  phase_ = Phase::kInitFailed;
  out.completes = true;
  return out;
}

void RuntimeApiState::Abort() {
  if (in_flight_) last_completed_id_ = in_flight_->request_id;
  in_flight_.reset();
  queued_.reset();
  streaming_ = false;
  if (phase_ == Phase::kInvoking) phase_ = Phase::kReady;
}

}  // namespace hearth::runtimeapi
