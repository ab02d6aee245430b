#pragma once
// The Runtime API (2018-06-01) state machine of one execution environment, free of I/O so it can
// be tested on its own. The environment owns one and drives it from its HTTP handlers.
//
// Phases:  kInit --next--> kReady <--(response|error)-- kInvoking
//            |                 |  ^--------next-------------'
//            +--init/error--> kInitFailed
//
// Thread safety: none; the owning environment confines it to one executor.

#include <optional>
#include <string>
#include <string_view>

#include "runtimeapi/invocation.h"

namespace hearth::runtimeapi {

class RuntimeApiState {
 public:
  enum class Phase { kInit, kReady, kInvoking, kInitFailed };

  Phase phase() const { return phase_; }
  bool init_done() const { return phase_ == Phase::kReady || phase_ == Phase::kInvoking; }

  // The daemon hands over the next invocation. REQUIRES: no invocation is queued or in flight.
  void Queue(Invocation inv);
  bool has_queued() const { return queued_.has_value(); }
  bool in_flight() const { return in_flight_.has_value(); }
  const Invocation* current() const { return in_flight_ ? &*in_flight_ : nullptr; }

  // The runtime calls `next`. Ends Init on the first call. Returns the invocation to send now, or
  // nullopt when the runtime must wait. A second `next` while an invocation is in flight gets the
  // same event again, as the reference emulator does.
  std::optional<Invocation> OnNext();

  // The runtime posts /response or /error for `request_id`.
  struct PostOutcome {
    int http_status = 202;        // for the runtime
    std::string error_type;       // "InvalidRequestID", "InvalidStateTransition" when refused
    std::string error_message;
    bool completes = false;       // the in-flight invocation is now finished
  };
  PostOutcome OnInvocationPost(std::string_view request_id);

  // The runtime starts a streaming /response (section 1.6) for `request_id`: refused like
  // OnInvocationPost (400/403), else accepted (202, completes=false) and the invocation stays in
  // flight, streaming, until OnStreamEnd. Posts for a streaming invocation get 403.
  PostOutcome OnStreamBegin(std::string_view request_id);
  // The streamed response ended (whole, with an error trailer, or cut short). completes=false
  // when the invocation was aborted in the meantime (timeout, crash).
  PostOutcome OnStreamEnd(std::string_view request_id);
  bool streaming() const { return streaming_; }

  // The runtime posts /runtime/init/error: accepted only during Init.
  PostOutcome OnInitError();

  // Abandons the in-flight/queued invocation (timeout, crash).
  void Abort();

 private:
  Phase phase_ = Phase::kInit;
  std::optional<Invocation> queued_;
  std::optional<Invocation> in_flight_;
  std::string last_completed_id_;
  bool streaming_ = false;
};

}  // namespace hearth::runtimeapi
