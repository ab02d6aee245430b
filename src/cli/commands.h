#pragma once
// The CLI's verbs. Each returns the process exit code.

#include <string>

#include "cli/client.h"

namespace hearth::cli {

struct InvokeOptions {
  std::string name;
  std::string payload;     // JSON text or @file
  std::string qualifier;
  bool tail = false;       // print the invocation's log tail to stderr
};
int RunInvoke(Client& client, const InvokeOptions& opts);
int RunFunctions(Client& client, bool json_output);
int RunLogs(Client& client, const std::string& name, bool follow);
// `hearth package DIR -o OUT.zip` (no daemon involved).
int RunPackage(const std::string& dir, const std::string& output);

}  // namespace hearth::cli
