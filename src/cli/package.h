#pragma once
// `hearth package DIR -o OUT.zip`: a directory as a Lambda deployment package.
//
// PackageDirectory writes every entry below `dir` into a zip (libarchive, deflate) named by its
// path relative to `dir` ('/'-separated; directories as "name/"):
//   - regular files with their permission bits (a `bootstrap` stays executable), read in chunks;
//   - directories (so empty ones survive);
//   - symlinks as symlinks, never followed, when their target stays inside `dir` once resolved the
//     way the kernel would (through the tree's other symlinks, ".." included); an absolute target,
//     one that leaves `dir`, or a loop is refused with the link's path named;
//   - anything else (fifo, socket, device) is refused with its path named.
// Deterministic: entries sorted by name, every timestamp fixed (kPackageMtime), owner 0:0, so the
// same tree gives the same bytes and therefore the same CodeSha256. (The zip's DOS date is local
// time; `hearth package` runs with TZ=UTC so the bytes do not depend on the time zone either.)
// The output is written next to its final name and renamed into place. When the output lies inside
// `dir`, that path is left out of the package (and reported in `skipped`).

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "common/status.h"

namespace hearth::cli {

// 2000-01-01T00:00:00Z: the mtime of every entry.
inline constexpr int64_t kPackageMtime = 946684800;

struct PackageResult {
  int64_t files = 0;
  int64_t directories = 0;
  int64_t symlinks = 0;
  int64_t content_bytes = 0;  // bytes of regular-file content
  int64_t zip_bytes = 0;
  std::string code_sha256;            // base64 SHA-256 of the zip, as Lambda's CodeSha256
  std::vector<std::string> skipped;   // relative paths left out (the output itself)
  std::vector<std::string> warnings;  // things a user should know (bootstrap not executable)
};

// Errors: NotFound (no `dir`), InvalidArgument (not a directory, empty, an escaping symlink, a
// special file, output is a directory), IOError / PermissionDenied (reading or writing).
Result<PackageResult> PackageDirectory(const std::filesystem::path& dir,
                                       const std::filesystem::path& output);

}  // namespace hearth::cli
