#include <fmt/format.h>
#include <stdlib.h>
#include <time.h>

#include <iostream>

#include "cli/commands.h"
#include "cli/package.h"

namespace hearth::cli {

int RunPackage(const std::string& dir, const std::string& output) {
  // The zip's DOS timestamps are local time: pin the zone so the bytes (and CodeSha256) are the
  // same on every machine.
  ::setenv("TZ", "UTC", 1);
  ::tzset();
  auto r = PackageDirectory(dir, output);
  if (!r) {
    std::cerr << "hearth: " << r.error().message() << "\n";
    return 1;
  }
  for (const auto& s : r->skipped)
    std::cerr << "hearth: note: left out '" << s << "' (the output itself)\n";
  for (const auto& w : r->warnings) std::cerr << "hearth: warning: " << w << "\n";
  std::cout << fmt::format(
      "{}: {} files, {} directories, {} symlinks; {} bytes zipped to {}\nCodeSha256: {}\n", output,
      r->files, r->directories, r->symlinks, r->content_bytes, r->zip_bytes, r->code_sha256);
  return 0;
}

}  // namespace hearth::cli
