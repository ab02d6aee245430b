#include <iostream>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "cli/commands.h"

namespace hearth::cli {

int RunFunctions(Client& client, bool json_output) {
  namespace json = boost::json;
  json::array all;
  std::string marker;
  for (;;) {
    std::string target = "/2015-03-31/functions/?MaxItems=50";
    if (!marker.empty()) target += "&Marker=" + EncodeSegment(marker);
    auto r = client.Request("GET", target);
    if (int code = FailureExitCode(r); code != 0) return code;
    boost::system::error_code ec;
    json::value v = json::parse(r->body, ec);
    if (ec || !v.is_object()) {
      std::cerr << "hearth: unexpected answer: " << r->body << "\n";
      return 1;
    }
    if (auto* fns = v.as_object().if_contains("Functions"); fns && fns->is_array())
      for (auto& f : fns->as_array()) all.push_back(f);
    auto* next = v.as_object().if_contains("NextMarker");
    if (!next || !next->is_string()) break;
    marker = std::string(next->as_string());
  }
  if (json_output) {
    std::cout << json::serialize(json::object{{"Functions", all}}) << "\n";
    return 0;
  }
  auto str = [](const json::value& f, const char* k) -> std::string {
    auto* p = f.as_object().if_contains(k);
    if (!p) return "";
    if (p->is_string()) return std::string(p->as_string());
    return json::serialize(*p);
  };
  std::cout << fmt::format("{:<40} {:<16} {:>7} {:>8}  {}\n", "NAME", "RUNTIME", "MEMORY", "TIMEOUT", "LAST MODIFIED");
  for (const auto& f : all) {
    std::cout << fmt::format("{:<40} {:<16} {:>7} {:>8}  {}\n", str(f, "FunctionName"), str(f, "Runtime"),
                             str(f, "MemorySize"), str(f, "Timeout"), str(f, "LastModified"));
  }
  return 0;
}

}  // namespace hearth::cli
