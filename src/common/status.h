#pragma once
// Errors as values. Every fallible call at a module boundary returns Status or Result<T>.
// Status -> HTTP status and Lambda exception name happens in exactly one place: ToApiError()
// in api/render.cc.

#include <expected>
#include <string>
#include <string_view>
#include <utility>

namespace hearth {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // InvalidParameterValueException (400)
  kValidation,          // ValidationException (400): a field breaks the API model's constraints
  kInvalidContent,      // InvalidRequestContentException (400): body is not what it must be
  kNotFound,            // ResourceNotFoundException (404)
  kAlreadyExists,       // ResourceConflictException (409)
  kConflict,            // ResourceConflictException (409)
  kFailedPrecondition,  // PreconditionFailedException (412): RevisionId mismatch
  kTooLarge,            // RequestTooLargeException (413)
  kResourceExhausted,   // TooManyRequestsException (429); detail() holds the Reason
  kCodeStorageExceeded, // CodeStorageExceededException (400)
  kDeadlineExceeded,
  kUnavailable,
  kPermissionDenied,
  kIOError,
  kInternal,            // ServiceException (500)
};

std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message, std::string detail = {}, int err = 0)
      : code_(code), message_(std::move(message)), detail_(std::move(detail)), errno_(err) {}

  static Status Ok() { return {}; }
  static Status InvalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
  static Status Validation(std::string m) { return {StatusCode::kValidation, std::move(m)}; }
  static Status InvalidContent(std::string m) { return {StatusCode::kInvalidContent, std::move(m)}; }
  static Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status AlreadyExists(std::string m) { return {StatusCode::kAlreadyExists, std::move(m)}; }
  static Status Conflict(std::string m) { return {StatusCode::kConflict, std::move(m)}; }
  static Status FailedPrecondition(std::string m) {
    return {StatusCode::kFailedPrecondition, std::move(m)};
  }
  static Status TooLarge(std::string m) { return {StatusCode::kTooLarge, std::move(m)}; }
  // `reason` is the Lambda throttling Reason, e.g. "ConcurrentInvocationLimitExceeded".
  static Status ResourceExhausted(std::string m, std::string reason) {
    return {StatusCode::kResourceExhausted, std::move(m), std::move(reason)};
  }
  static Status DeadlineExceeded(std::string m) { return {StatusCode::kDeadlineExceeded, std::move(m)}; }
  static Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
  static Status PermissionDenied(std::string m) { return {StatusCode::kPermissionDenied, std::move(m)}; }
  static Status IOError(std::string m, int err = 0) { return {StatusCode::kIOError, std::move(m), {}, err}; }
  static Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // Extra machine-readable detail (the throttling Reason for kResourceExhausted).
  const std::string& detail() const { return detail_; }
  int err() const { return errno_; }
  std::string ToString() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
  std::string detail_;
  int errno_ = 0;
};

template <class T>
using Result = std::expected<T, Status>;

// The one place errno becomes a Status: "context: strerror(err)".
Status PosixError(std::string_view context, int err);

namespace internal {
// Lets HEARTH_RETURN_IF_ERROR return from functions yielding Status or Result<T>.
struct ErrorReturn {
  Status st;
  operator Status() && { return std::move(st); }
  template <class T>
  operator std::expected<T, Status>() && {
    return std::unexpected(std::move(st));
  }
};
}  // namespace internal

#define HEARTH_RETURN_IF_ERROR(expr)                              \
  do {                                                            \
    ::hearth::Status _st = (expr);                                \
    if (!_st.ok()) return ::hearth::internal::ErrorReturn{std::move(_st)}; \
  } while (0)

}  // namespace hearth
