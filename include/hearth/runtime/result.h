#pragma once
// Errors as values for the Hearth runtime client.
//
// This header is part of the library that ships inside user functions, so it depends only on the
// C++17 standard library (no <expected>, nothing from the Hearth daemon). Result<T> mirrors the
// part of std::expected<T, Error> that callers need; nothing in the library throws.

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace hearth::runtime {

enum class ErrorCode {
  // A caller-supplied value is malformed (bad AWS_LAMBDA_RUNTIME_API, wrong response kind...).
  kInvalidArgument = 1,
  // Nothing accepts connections at the Runtime API address (connect() failed, e.g. ECONNREFUSED).
  // After the retries are spent this means the Runtime API is gone for good.
  kUnavailable,
  // An established connection broke (EOF, ECONNRESET, EPIPE) before a whole response arrived.
  kConnectionLost,
  // The server sent something that is not the HTTP/1.1 or Runtime API we speak.
  kProtocol,
  // The server answered with an unexpected HTTP status; see Error::http_status().
  kHttpStatus,
};

// Returns a stable name such as "ConnectionLost".
const char* ErrorCodeName(ErrorCode code);

class Error {
 public:
  Error(ErrorCode code, std::string message, int http_status = 0)
      : code_(code), message_(std::move(message)), http_status_(http_status) {}

  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // The HTTP status for kHttpStatus errors, 0 otherwise.
  int http_status() const { return http_status_; }
  // "ConnectionLost: <message>".
  std::string ToString() const;

 private:
  ErrorCode code_;
  std::string message_;
  int http_status_;
};

namespace internal {
[[noreturn]] inline void DieOnBadAccess(const Error* error) {
  std::fprintf(stderr, "hearth-runtime: value() called on an error Result: %s\n",
               error != nullptr ? error->message().c_str() : "(no error)");
  std::abort();
}
}  // namespace internal

// Holds either a T or an Error. Accessing value() of an error Result aborts the process (the
// library itself never does that); check ok() first.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::in_place_index<0>, std::move(value)) {}      // NOLINT: implicit
  Result(Error error) : state_(std::in_place_index<1>, std::move(error)) {}  // NOLINT: implicit

  bool ok() const { return state_.index() == 0; }
  bool has_value() const { return ok(); }
  explicit operator bool() const { return ok(); }

  T& value() & {
    if (!ok()) internal::DieOnBadAccess(&std::get<1>(state_));
    return std::get<0>(state_);
  }
  const T& value() const& {
    if (!ok()) internal::DieOnBadAccess(&std::get<1>(state_));
    return std::get<0>(state_);
  }
  T&& value() && {
    if (!ok()) internal::DieOnBadAccess(&std::get<1>(state_));
    return std::get<0>(std::move(state_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  // REQUIRES: !ok().
  const Error& error() const {
    if (ok()) internal::DieOnBadAccess(nullptr);
    return std::get<1>(state_);
  }

 private:
  std::variant<T, Error> state_;
};

// Success carries no value.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)) {}  // NOLINT: implicit

  bool ok() const { return !error_.has_value(); }
  bool has_value() const { return ok(); }
  explicit operator bool() const { return ok(); }

  // REQUIRES: !ok().
  const Error& error() const {
    if (ok()) internal::DieOnBadAccess(nullptr);
    return *error_;
  }

 private:
  std::optional<Error> error_;
};

using Status = Result<void>;

}  // namespace hearth::runtime
