#pragma once
// Unpacking an untrusted zip held in memory, refusing hostile input.
//
// SafeUnzip reads the zip with libarchive's seekable reader (entries, Unix modes and symlinks come
// from the central directory, the way unzip(1) sees them) and writes every entry below `dest`
// without ever following a symlink: each directory is opened component by component with
// openat(O_NOFOLLOW), each file is created with O_CREAT|O_EXCL|O_NOFOLLOW. A light pre-pass over
// the raw central directory sees what libarchive hides (it reports a Unix fifo as a regular file)
// and refuses absurd entry counts before libarchive loads the directory into memory.
//
// Refused, as InvalidArgument whose message starts "Zip entry '<name>' ":
//   - names with ".." components, absolute names, names longer than 3072 bytes or with a
//     component over NAME_MAX ('\' is read as a separator by libarchive, so "..\x" is "../x");
//   - symlinks whose target is absolute or resolves outside the package, also through other
//     symlinks of the package (every symlink is re-resolved against the finished tree), symlink
//     chains that loop, and more symlink resolution work than a fixed budget;
//   - entries written through a symlink ("link/x"), entries that collide with an earlier one;
//   - hard links, character and block devices, fifos, sockets;
//   - more than limits.max_entries entries;
//   - more than limits.max_unzipped_bytes bytes, counted as they are written (a header lying about
//     an entry's size does not get past; an honest one is refused before anything is written);
//   - a compression ratio over limits.max_compression_ratio, per entry (bytes written over the
//     compressed bytes actually consumed) and overall (bytes written over the zip's size). Small
//     outputs compress well legitimately, so a ratio is only checked once the output it concerns
//     exceeds kRatioCheckThresholdBytes.
// Not a zip, truncated or corrupt (bad CRC, bad deflate stream, encrypted): InvalidArgument with
// exactly kNotAZipMessage (Lambda's text). A zip without entries: kEmptyZipMessage.
// Disk errors: IOError (or NotFound/PermissionDenied) via PosixError.
//
// Modes after a successful unpack: regular files 0555 when their zip mode has any x bit, else 0444;
// directories (`dest` included) 0555; symlinks are recreated as symlinks. Ownership, timestamps and
// setuid/setgid/sticky bits from the zip are ignored.
//
// Thread safety: stateless; concurrent calls with different `dest` are fine.

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "artifacts/code_store.h"
#include "common/status.h"

struct archive_entry;

namespace hearth::artifacts {

inline constexpr std::string_view kNotAZipMessage =
    "Could not unzip uploaded file. Please check your file, then try to upload again.";
inline constexpr std::string_view kEmptyZipMessage = "Uploaded file must be a non-empty zip";
// Outputs up to this size are never refused for their compression ratio.
inline constexpr int64_t kRatioCheckThresholdBytes = int64_t{1} << 20;

struct UnzipStats {
  int64_t entries = 0;         // entries in the zip (directories and symlinks included)
  int64_t files = 0;           // regular files written
  int64_t unzipped_bytes = 0;  // bytes written to regular files
};

// Unpacks `zip_bytes` into `dest`, an existing empty directory owned by the caller. On failure
// `dest` may hold a partial, still writable tree: the caller removes it (RemoveTree).
Result<UnzipStats> SafeUnzip(std::string_view zip_bytes, const std::filesystem::path& dest,
                             const UnzipLimits& limits);

// Deletes `path` and everything below it, first making read-only directories writable. Never
// follows symlinks. A missing `path` is not an error.
Status RemoveTree(const std::filesystem::path& path);

// Sum of the sizes of the regular files below `dir` (symlinks are not followed).
Result<int64_t> TreeFileBytes(const std::filesystem::path& dir);

namespace internal {

// Checks an entry's name and kind before anything is written; exposed for tests that need entry
// kinds no zip writer produces (hard links). Returns the name's components ("a/./b/" -> {a, b}),
// empty for the package root itself ("./").
Result<std::vector<std::string>> CheckEntry(archive_entry* entry, std::string_view name);

}  // namespace internal
}  // namespace hearth::artifacts
