#include <chrono>
#include <iostream>
#include <thread>

#include "cli/commands.h"

namespace hearth::cli {

int RunLogs(Client& client, const std::string& name, bool follow) {
  // Without --follow: the last 64 KiB. With it: then every new line as it is written.
  int64_t offset = -65536;
  for (;;) {
    std::string target = "/hearth/v1/functions/" + EncodeSegment(name) + "/logs?offset=" + std::to_string(offset);
    auto r = client.Request("GET", target);
    if (int code = FailureExitCode(r); code != 0) return code;
    std::cout << r->body << std::flush;
    if (auto it = r->headers.find("x-hearth-log-offset"); it != r->headers.end()) offset = std::stoll(it->second);
    if (!follow) return 0;
    if (r->body.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

}  // namespace hearth::cli
