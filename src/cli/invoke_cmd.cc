#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/commands.h"
#include "common/encoding.h"

namespace hearth::cli {

int RunInvoke(Client& client, const InvokeOptions& opts) {
  std::string payload = opts.payload;
  if (!payload.empty() && payload[0] == '@') {
    std::ifstream in(payload.substr(1), std::ios::binary);
    if (!in) {
      std::cerr << "hearth: cannot read payload file '" << payload.substr(1) << "'\n";
      return 2;
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    payload = ss.str();
  }
  std::string target = "/2015-03-31/functions/" + EncodeSegment(opts.name) + "/invocations";
  if (!opts.qualifier.empty()) target += "?Qualifier=" + EncodeSegment(opts.qualifier);
  std::map<std::string, std::string> headers;
  if (opts.tail) headers["X-Amz-Log-Type"] = "Tail";
  auto r = client.Request("POST", target, payload.empty() ? "{}" : payload, headers);
  if (int code = FailureExitCode(r); code != 0) return code;
  if (opts.tail) {
    if (auto it = r->headers.find("x-amz-log-result"); it != r->headers.end()) {
      if (auto logs = Base64Decode(it->second)) std::cerr << *logs;
    }
  }
  std::cout << r->body;
  if (r->body.empty() || r->body.back() != '\n') std::cout << "\n";
  if (r->headers.contains("x-amz-function-error")) {
    std::cerr << "hearth: the function failed (" << r->headers["x-amz-function-error"] << ")\n";
    return 1;
  }
  return 0;
}

}  // namespace hearth::cli
