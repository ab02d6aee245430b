#include "artifacts/opt_assembly.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <cerrno>
#include <set>
#include <system_error>

#include "common/encoding.h"

namespace hearth::artifacts {
namespace {

namespace fs = std::filesystem;

Status FsError(const std::string& what, const std::error_code& ec) {
  return PosixError(what, ec.value());
}

// Makes every directory under (and including) `p` writable by its owner, then removes it all:
// finished trees are 0555, which would stop an unprivileged remove.
void ForceRemove(const fs::path& p) {
  std::error_code ec;
  if (fs::is_directory(fs::symlink_status(p, ec))) {
    fs::permissions(p, fs::perms::owner_all, fs::perm_options::add, ec);
    for (auto it = fs::recursive_directory_iterator(p, ec); !ec && it != fs::end(it);
         it.increment(ec)) {
      if (it->is_directory(ec) && !it->is_symlink(ec)) {
        fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add, ec);
      }
    }
  }
  fs::remove_all(p, ec);
}

// Places `src` (a file, symlink or directory of a layer) at `dst`, replacing what an earlier
// layer put there unless both are directories (then their contents merge).
Status Overlay(const fs::path& src, const fs::path& dst) {
  std::error_code ec;
  const fs::file_status s = fs::symlink_status(src, ec);
  if (ec) return FsError("stat " + src.string(), ec);
  const fs::file_status d = fs::symlink_status(dst, ec);
  const bool dst_exists = !ec && d.type() != fs::file_type::not_found;
  if (fs::is_directory(s)) {
    if (dst_exists && !fs::is_directory(d)) {
      fs::remove(dst, ec);
      if (ec) return FsError("remove " + dst.string(), ec);
    }
    if (!dst_exists || !fs::is_directory(d)) {
      fs::create_directory(dst, ec);
      if (ec) return FsError("mkdir " + dst.string(), ec);
    }
    for (auto it = fs::directory_iterator(src, ec); !ec && it != fs::end(it); it.increment(ec)) {
      HEARTH_RETURN_IF_ERROR(Overlay(it->path(), dst / it->path().filename()));
    }
    if (ec) return FsError("list " + src.string(), ec);
    return Status::Ok();
  }
  if (dst_exists) ForceRemove(dst);  // later layers win: remove, then link
  if (fs::is_symlink(s)) {
    fs::path target = fs::read_symlink(src, ec);
    if (ec) return FsError("readlink " + src.string(), ec);
    fs::create_symlink(target, dst, ec);
    if (ec) return FsError("symlink " + dst.string(), ec);
    return Status::Ok();
  }
  if (!fs::is_regular_file(s)) return Status::Ok();  // the code store admits nothing else
  fs::create_hard_link(src, dst, ec);
  if (ec) {  // another file system, or links refused: copy, keeping the mode
    ec.clear();
    fs::copy_file(src, dst, ec);
    if (ec) return FsError("copy " + src.string(), ec);
  }
  return Status::Ok();
}

// Directories read-only (0555), bottom-up is not needed: chmod does not depend on the parent.
void MakeDirsReadOnly(const fs::path& root) {
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (it->is_directory(ec) && !it->is_symlink(ec)) ::chmod(it->path().c_str(), 0555);
  }
  ::chmod(root.c_str(), 0555);
}

}  // namespace

std::string OptKey(const std::vector<std::string>& digests) {
  if (digests.empty()) return "";
  std::string joined;
  for (const auto& d : digests) joined += d + '\n';
  return HexEncode(Sha256(joined));
}

Result<fs::path> AssembleOpt(const fs::path& root, const std::vector<fs::path>& layer_dirs,
                             const std::vector<std::string>& digests) {
  if (layer_dirs.size() != digests.size()) {
    return std::unexpected(Status::InvalidArgument(
        fmt::format("{} layer dirs for {} digests", layer_dirs.size(), digests.size())));
  }
  if (digests.empty()) return fs::path();
  const fs::path final_dir = root / OptKey(digests);
  std::error_code ec;
  if (fs::is_directory(final_dir, ec)) return final_dir;  // cached
  const fs::path tmp = root / "tmp" / NewUuid();
  fs::create_directories(tmp, ec);
  if (ec) return std::unexpected(FsError("mkdir " + tmp.string(), ec));
  for (const fs::path& layer : layer_dirs) {
    Status st = Overlay(layer, tmp);
    if (!st.ok()) {
      ForceRemove(tmp);
      return std::unexpected(st);
    }
  }
  MakeDirsReadOnly(tmp);
  if (::rename(tmp.c_str(), final_dir.c_str()) != 0) {
    int err = errno;
    ForceRemove(tmp);
    // Someone else built it meanwhile: theirs is as good as ours.
    if ((err == ENOTEMPTY || err == EEXIST) && fs::is_directory(final_dir, ec)) return final_dir;
    return std::unexpected(PosixError("rename " + tmp.string(), err));
  }
  return final_dir;
}

Status GarbageCollectOpt(const fs::path& root, const std::vector<std::string>& keep) {
  std::error_code ec;
  if (!fs::exists(root, ec)) return Status::Ok();
  ForceRemove(root / "tmp");
  const std::set<std::string> kept(keep.begin(), keep.end());
  std::vector<fs::path> doomed;
  for (auto it = fs::directory_iterator(root, ec); !ec && it != fs::end(it); it.increment(ec)) {
    if (!kept.contains(it->path().filename().string())) doomed.push_back(it->path());
  }
  if (ec) return FsError("list " + root.string(), ec);
  for (const auto& p : doomed) ForceRemove(p);
  return Status::Ok();
}

}  // namespace hearth::artifacts
