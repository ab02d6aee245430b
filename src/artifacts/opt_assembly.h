#pragma once
// /opt assembly: a function's layers stacked into one read-only tree (lambda-reference.md §3.5).
//
// Layout under `root` (<data>/opt):  <root>/<key>/   one assembled tree per ordered combination
//                                                    of layer digests, key = OptKey(digests)
//                                    <root>/tmp/<uuid>/  trees being built
// A tree is built once (never per invocation): the unpacked layer trees are hard-linked in order
// (copied when the file system refuses links), later layers replacing earlier ones on the same
// path, symlinks recreated; then directories are made read-only (0555) and the tree is renamed
// into place, so a crash never leaves a half tree under its final name. The unpacked code trees
// are read-only and content-addressed, so sharing their inodes is safe.
//
// Thread safety: safe to call from several threads at once (two builders of one key race on the
// rename; the loser discards its copy). Blocking: call from a worker thread.

#include <filesystem>
#include <string>
#include <vector>

#include "common/status.h"

namespace hearth::artifacts {

// Hex SHA-256 of the ordered digests (joined by '\n'); "" for no layers.
std::string OptKey(const std::vector<std::string>& digests);

// The assembled tree for `layer_dirs` (unpacked layer trees, in order) whose digests are
// `digests` (same length). Returns the existing tree when it was built before. An empty list
// gives an empty path (an empty /opt). InvalidArgument when the lists differ in length;
// PosixError's code on file system failures.
Result<std::filesystem::path> AssembleOpt(const std::filesystem::path& root,
                                          const std::vector<std::filesystem::path>& layer_dirs,
                                          const std::vector<std::string>& digests);

// Removes every assembled tree whose key is not in `keep`, and everything under <root>/tmp.
Status GarbageCollectOpt(const std::filesystem::path& root, const std::vector<std::string>& keep);

}  // namespace hearth::artifacts
