#include "artifacts/code_store.h"

#include "artifacts/fs_code_store.h"

namespace hearth::artifacts {

Result<CodeStorePtr> OpenCodeStore(const std::filesystem::path& root, UnzipLimits limits) {
  Result<std::unique_ptr<FsCodeStore>> store = FsCodeStore::Open(root, limits);
  if (!store) return std::unexpected(store.error());
  return CodeStorePtr(std::move(*store));
}

}  // namespace hearth::artifacts
