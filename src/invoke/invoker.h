#pragma once
// Synchronous invocation: qualifier -> configuration -> environment -> result.
//
// Threading: loop-confined.

#include <string>

#include <boost/asio/awaitable.hpp>

#include "common/clock.h"
#include "common/status.h"
#include "invoke/registry.h"
#include "scheduler/manager.h"

namespace hearth::invoke {

struct InvokeRequest {
  std::string request_id;
  std::string function_name;
  std::string qualifier;           // "" or "$LATEST" (versions arrive with the versions issue)
  std::string invoked_arn;         // the ARN as the caller addressed it
  std::string payload;             // valid JSON
  std::string client_context;      // decoded JSON, or empty
  std::string trace_id;            // X-Ray header for the runtime, or empty (one is made)
};

class Invoker {
 public:
  Invoker(FunctionRegistry& registry, scheduler::EnvironmentManager& manager, std::string region,
          std::string account)
      : registry_(registry), manager_(manager), region_(std::move(region)), account_(std::move(account)) {}

  // NotFound for unknown functions or qualifiers; ResourceExhausted when throttled. Function
  // failures are not errors here: they come back inside the outcome.
  boost::asio::awaitable<Result<scheduler::InvokeOutcome>> Invoke(InvokeRequest&& req);

  // Checks that the function and qualifier exist (DryRun).
  Status Check(const std::string& function_name, const std::string& qualifier) const;

 private:
  Result<const FunctionEntry*> Resolve(const std::string& name, const std::string& qualifier) const;

  FunctionRegistry& registry_;
  scheduler::EnvironmentManager& manager_;
  std::string region_, account_;
};

// A new X-Ray trace header "Root=1-<8 hex time>-<24 hex>;Parent=<16 hex>;Sampled=0".
std::string NewTraceId(int64_t epoch_seconds);

}  // namespace hearth::invoke
