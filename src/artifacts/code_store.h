#pragma once
// The code store's door: content-addressed function packages.
//
// Layout under `root`:  <root>/zips/<sha256hex>.zip   the uploaded zip, as received
//                       <root>/unpacked/<sha256hex>/  the zip unpacked once, read-only (dirs 0555,
//                                                     files 0444, or 0555 where the zip marks them
//                                                     executable)
// A package is unpacked to a temporary directory and renamed into place, so a crash never leaves
// a half-unpacked tree under its final name; Open() sweeps leftovers.
//
// Thread safety: safe to call from several threads at once. All calls block on disk: call from a
// worker thread, never from the event loop.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace hearth::artifacts {

// Limits applied while unpacking. A violation is InvalidArgument whose message names the entry,
// so the API can answer InvalidParameterValueException with it.
struct UnzipLimits {
  int64_t max_unzipped_bytes = 262144000;  // 250 MB, Lambda's function+layers limit
  int64_t max_entries = 100000;            // absurd entry counts are refused
  double max_compression_ratio = 1000.0;   // per entry and overall; zip bombs are refused
};

struct StoredCode {
  std::string sha256_hex;      // digest of the zip bytes (the key)
  std::string sha256_base64;   // the same digest as Lambda's CodeSha256
  int64_t zip_size = 0;        // CodeSize
  int64_t unzipped_size = 0;   // sum of regular file sizes once unpacked
  std::filesystem::path dir;   // the read-only unpacked tree
};

class CodeStore {
 public:
  virtual ~CodeStore() = default;

  // Stores `zip_bytes` and unpacks it (once per digest; a second Put of the same bytes returns the
  // existing entry). InvalidArgument for hostile or broken zips: path traversal ("../", absolute
  // paths), symlinks leaving the package, device files/fifos/sockets, over the limits, not a zip.
  virtual Result<StoredCode> Put(std::string_view zip_bytes) = 0;

  // The unpacked tree of a stored digest. NotFound if absent.
  virtual Result<StoredCode> Get(std::string_view sha256_hex) = 0;

  // Deletes every stored package whose digest is not in `keep`.
  virtual Status GarbageCollect(const std::vector<std::string>& keep) = 0;
};

using CodeStorePtr = std::unique_ptr<CodeStore>;

// The filesystem-backed store rooted at `root` (created if missing).
Result<CodeStorePtr> OpenCodeStore(const std::filesystem::path& root, UnzipLimits limits = {});

}  // namespace hearth::artifacts
