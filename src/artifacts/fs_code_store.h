#pragma once
// FsCodeStore: the filesystem-backed CodeStore (see code_store.h for the layout and contract).
//
// Besides the layout in code_store.h it keeps <root>/unpacked/<hex>.meta (the zip and unzipped
// sizes) and uses <root>/tmp/ for everything not yet committed. Commit order for a new digest:
// unpack into tmp/, save zips/<hex>.zip, write unpacked/<hex>.meta, syncfs, then rename the tree
// to unpacked/<hex>. The tree's presence under its final name is the commit point; a tree whose
// .meta is missing has its sizes recomputed.
//
// Concurrency: every operation on one digest (Put, Get, the deletion in GarbageCollect) holds a
// per-digest mutex, so two Puts of the same bytes unpack once and a Get never sees a tree that
// GarbageCollect is deleting (the tree is renamed into tmp/ before it is removed). Different
// digests proceed in parallel. One process per root: Open() deletes whatever is in tmp/.

#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "artifacts/code_store.h"
#include "common/status.h"

namespace hearth::artifacts {

class FsCodeStore final : public CodeStore {
 public:
  // Creates root/{zips,unpacked,tmp} as needed and empties tmp/.
  static Result<std::unique_ptr<FsCodeStore>> Open(const std::filesystem::path& root,
                                                   UnzipLimits limits);

  Result<StoredCode> Put(std::string_view zip_bytes) override;
  Result<StoredCode> Get(std::string_view sha256_hex) override;
  // Digests being Put concurrently must be in `keep`, or their fresh entry may be deleted as soon
  // as the Put returns.
  Status GarbageCollect(const std::vector<std::string>& keep) override;

 private:
  struct DigestLock {
    std::shared_ptr<std::mutex> mu;  // declared first: outlives `lock`
    std::unique_lock<std::mutex> lock;
  };

  FsCodeStore(std::filesystem::path root, UnzipLimits limits);

  DigestLock LockDigest(const std::string& hex);
  // The committed entry for `hex`, NotFound if there is none. Caller holds the digest lock.
  Result<StoredCode> Lookup(const std::string& hex);
  // Writes `data` to `path` through a temporary file in tmp/ (fsync + rename).
  Status WriteFileAtomically(const std::filesystem::path& path, std::string_view data, int mode);
  // Removes every trace of `hex`. Caller holds the digest lock.
  Status Delete(const std::string& hex);
  std::filesystem::path TempPath(std::string_view stem) const;

  const std::filesystem::path zips_;
  const std::filesystem::path unpacked_;
  const std::filesystem::path tmp_;
  const UnzipLimits limits_;

  std::mutex locks_mu_;
  // Per-digest mutexes; entries whose mutex nobody holds any more are swept on insertion.
  std::unordered_map<std::string, std::weak_ptr<std::mutex>> locks_;  // GUARDED_BY(locks_mu_)
};

// True for a 64-character lower-case hex string (a SHA-256 digest as the store names it).
bool IsSha256Hex(std::string_view s);

}  // namespace hearth::artifacts
