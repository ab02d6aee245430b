#pragma once
// Synchronous invocation: qualifier -> configuration -> environment -> result.
//
// Threading: loop-confined.

#include <memory>
#include <string>

#include <boost/asio/awaitable.hpp>

#include "common/clock.h"
#include "common/status.h"
#include "invoke/registry.h"
#include "invoke/routing.h"
#include "scheduler/manager.h"

namespace hearth::invoke {

struct InvokeRequest {
  std::string request_id;
  std::string function_name;
  std::string qualifier;           // "", "$LATEST", a version number or an alias name
  std::string invoked_arn;         // the ARN as the caller addressed it
  std::string payload;             // valid JSON
  std::string client_context;      // decoded JSON, or empty
  std::string trace_id;            // X-Ray header for the runtime, or empty (one is made)
  // InvokeWithResponseStream: where the response streams to (see runtimeapi/stream.h); null
  // for a buffered Invoke.
  std::shared_ptr<runtimeapi::ResponseSink> stream;
};

class Invoker {
 public:
  // `uniform` drives weighted alias routing (default: a seeded Mersenne Twister).
  Invoker(FunctionRegistry& registry, scheduler::EnvironmentManager& manager, std::string region,
          std::string account, UniformSource uniform = DefaultUniformSource())
      : registry_(registry),
        manager_(manager),
        region_(std::move(region)),
        account_(std::move(account)),
        uniform_(std::move(uniform)) {}

  // NotFound for unknown functions or qualifiers; ResourceExhausted when throttled. Function
  // failures are not errors here: they come back inside the outcome.
  boost::asio::awaitable<Result<scheduler::InvokeOutcome>> Invoke(InvokeRequest&& req);

  // Checks that the function and qualifier exist (DryRun); the version that would run (for an
  // alias, one routing decision).
  Result<std::string> Check(const std::string& function_name, const std::string& qualifier);

  // The configuration and code one request for `qualifier` runs: $LATEST for "" or "$LATEST", a
  // published version, or an alias's version picked by weight (one draw per call). NotFound for
  // unknown functions, versions and aliases.
  struct Target {
    std::shared_ptr<const config::FunctionConfig> config;  // a snapshot: the registry may change
    std::filesystem::path code_dir;
    std::filesystem::path opt_dir;
  };
  Result<Target> Resolve(const std::string& name, const std::string& qualifier);

 private:
  // Resolve() without the copies; valid until the registry changes.
  struct TargetRef {
    const config::FunctionConfig* config;
    const std::filesystem::path* code_dir;
    const std::filesystem::path* opt_dir;
    const FunctionEntry* function;  // with version == nullptr: $LATEST
    const VersionEntry* version;
  };
  Result<TargetRef> Find(const std::string& name, const std::string& qualifier);

  FunctionRegistry& registry_;
  scheduler::EnvironmentManager& manager_;
  std::string region_, account_;
  UniformSource uniform_;
};

// A new X-Ray trace header "Root=1-<8 hex time>-<24 hex>;Parent=<16 hex>;Sampled=0".
std::string NewTraceId(int64_t epoch_seconds);

}  // namespace hearth::invoke
