#include "artifacts/fs_code_store.h"

#include <fcntl.h>
#include <fmt/core.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <optional>
#include <system_error>
#include <unordered_set>
#include <utility>

#include "artifacts/safe_unzip.h"
#include "common/defer.h"
#include "common/encoding.h"
#include "common/unique_fd.h"


namespace hearth::artifacts {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kZipSuffix = ".zip";
constexpr std::string_view kMetaSuffix = ".meta";

struct Meta {
  int64_t zip_size = 0;
  int64_t unzipped_size = 0;
};

std::string FormatMeta(const Meta& m) {
  return fmt::format("zip_size {}\nunzipped_size {}\n", m.zip_size, m.unzipped_size);
}

bool ParseField(std::string_view text, std::string_view key, int64_t* out) {
  const std::string needle = fmt::format("{} ", key);
  size_t pos = text.find(needle);
  if (pos == std::string_view::npos || (pos != 0 && text[pos - 1] != '\n')) return false;
  const char* begin = text.data() + pos + needle.size();
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(begin, end, *out);
  return ec == std::errc() && ptr != begin && *out >= 0;
}

std::optional<Meta> ParseMeta(std::string_view text) {
  Meta m;
  if (!ParseField(text, "zip_size", &m.zip_size) ||
      !ParseField(text, "unzipped_size", &m.unzipped_size)) {
    return std::nullopt;
  }
  return m;
}

// Reads a small file; NotFound when absent.
Result<std::string> ReadSmallFile(const fs::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) {
    return std::unexpected(PosixError(fmt::format("open '{}'", path.string()), errno));
  }
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return std::unexpected(PosixError(fmt::format("read '{}'", path.string()), errno));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > 65536) {
      return std::unexpected(Status::IOError(fmt::format("'{}' is too large", path.string())));
    }
  }
  return out;
}

Status FsyncDir(const fs::path& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return PosixError(fmt::format("open '{}'", dir.string()), errno);
  if (::fsync(fd.get()) != 0) return PosixError(fmt::format("fsync '{}'", dir.string()), errno);
  return Status::Ok();
}

Status Chmod(const fs::path& path, mode_t mode) {
  if (::fchmodat(AT_FDCWD, path.c_str(), mode, 0) != 0) {
    return PosixError(fmt::format("chmod '{}'", path.string()), errno);
  }
  return Status::Ok();
}

std::string HexToBase64(std::string_view hex) {
  std::string raw;
  raw.reserve(hex.size() / 2);
  auto nibble = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    raw.push_back(static_cast<char>((nibble(hex[i]) << 4) | nibble(hex[i + 1])));
  }
  return Base64Encode(raw);
}

}  // namespace

bool IsSha256Hex(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

FsCodeStore::FsCodeStore(fs::path root, UnzipLimits limits)
    : zips_(root / "zips"), unpacked_(root / "unpacked"), tmp_(root / "tmp"), limits_(limits) {}

Result<std::unique_ptr<FsCodeStore>> FsCodeStore::Open(const fs::path& root, UnzipLimits limits) {
  std::unique_ptr<FsCodeStore> store(new FsCodeStore(root, limits));
  for (const fs::path& dir : {store->zips_, store->unpacked_, store->tmp_}) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) {
      return std::unexpected(PosixError(fmt::format("create '{}'", dir.string()), ec.value()));
    }
  }
  // Leftovers of a crash: half-unpacked trees, half-written files, trees being collected.
  std::error_code ec;
  fs::directory_iterator it(store->tmp_, ec);
  std::vector<fs::path> leftovers;
  for (; !ec && it != fs::directory_iterator(); it.increment(ec)) leftovers.push_back(it->path());
  if (ec) {
    return std::unexpected(PosixError(fmt::format("list '{}'", store->tmp_.string()), ec.value()));
  }
  for (const fs::path& p : leftovers) {
    Status st = RemoveTree(p);
    if (!st.ok()) return std::unexpected(st);
  }
  return store;
}

FsCodeStore::DigestLock FsCodeStore::LockDigest(const std::string& hex) {
  std::shared_ptr<std::mutex> mu;
  {
    std::lock_guard<std::mutex> guard(locks_mu_);
    std::erase_if(locks_, [](const auto& kv) { return kv.second.expired(); });
    std::weak_ptr<std::mutex>& slot = locks_[hex];
    mu = slot.lock();
    if (!mu) {
      mu = std::make_shared<std::mutex>();
      slot = mu;
    }
  }
  DigestLock lock{mu, std::unique_lock<std::mutex>(*mu)};
  return lock;
}

fs::path FsCodeStore::TempPath(std::string_view stem) const {
  return tmp_ / fmt::format("{}.{}", stem, NewUuid());
}

Status FsCodeStore::WriteFileAtomically(const fs::path& path, std::string_view data, int mode) {
  const fs::path tmp = TempPath(path.filename().string());
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd.valid()) return PosixError(fmt::format("create '{}'", tmp.string()), errno);
  Defer unlink_tmp([&] { ::unlink(tmp.c_str()); });
  const char* p = data.data();
  size_t left = data.size();
  while (left > 0) {
    ssize_t n = ::write(fd.get(), p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return PosixError(fmt::format("write '{}'", tmp.string()), errno);
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  if (::fchmod(fd.get(), static_cast<mode_t>(mode)) != 0) {
    return PosixError(fmt::format("chmod '{}'", tmp.string()), errno);
  }
  if (::fsync(fd.get()) != 0) return PosixError(fmt::format("fsync '{}'", tmp.string()), errno);
  if (::close(fd.Release()) != 0) return PosixError(fmt::format("close '{}'", tmp.string()), errno);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return PosixError(fmt::format("rename '{}' to '{}'", tmp.string(), path.string()), errno);
  }
  unlink_tmp.Cancel();
  return Status::Ok();
}

Result<StoredCode> FsCodeStore::Lookup(const std::string& hex) {
  StoredCode code;
  code.sha256_hex = hex;
  code.sha256_base64 = HexToBase64(hex);
  code.dir = unpacked_ / hex;
  struct stat st;
  if (::lstat(code.dir.c_str(), &st) != 0) {
    if (errno == ENOENT) {
      return std::unexpected(Status::NotFound(fmt::format("no code stored with SHA-256 {}", hex)));
    }
    return std::unexpected(PosixError(fmt::format("stat '{}'", code.dir.string()), errno));
  }
  if (!S_ISDIR(st.st_mode)) {
    return std::unexpected(
        Status::Internal(fmt::format("'{}' is not a directory", code.dir.string())));
  }
  const fs::path meta_path = unpacked_ / (hex + std::string(kMetaSuffix));
  Result<std::string> text = ReadSmallFile(meta_path);
  std::optional<Meta> meta = text ? ParseMeta(*text) : std::nullopt;
  if (!meta) {
    // Only possible if someone removed or damaged the file: recompute it from what is on disk.
    Result<int64_t> unzipped = TreeFileBytes(code.dir);
    if (!unzipped) return std::unexpected(unzipped.error());
    Meta fresh{.zip_size = 0, .unzipped_size = *unzipped};
    std::error_code ec;
    uintmax_t zip_size = fs::file_size(zips_ / (hex + std::string(kZipSuffix)), ec);
    if (!ec) fresh.zip_size = static_cast<int64_t>(zip_size);
    HEARTH_RETURN_IF_ERROR(WriteFileAtomically(meta_path, FormatMeta(fresh), 0444));
    meta = fresh;
  }
  code.zip_size = meta->zip_size;
  code.unzipped_size = meta->unzipped_size;
  return code;
}

Result<StoredCode> FsCodeStore::Put(std::string_view zip_bytes) {
  const std::string digest = Sha256(zip_bytes);
  const std::string hex = HexEncode(digest);
  const fs::path zip_path = zips_ / (hex + std::string(kZipSuffix));
  DigestLock lock = LockDigest(hex);

  Result<StoredCode> existing = Lookup(hex);
  if (existing) {
    std::error_code ec;
    if (!fs::exists(zip_path, ec)) {
      HEARTH_RETURN_IF_ERROR(WriteFileAtomically(zip_path, zip_bytes, 0444));
    }
    return existing;
  }
  if (existing.error().code() != StatusCode::kNotFound) return existing;

  const fs::path work = TempPath(hex);
  if (::mkdir(work.c_str(), 0700) != 0) {
    return std::unexpected(PosixError(fmt::format("mkdir '{}'", work.string()), errno));
  }
  Defer remove_work([&] { (void)RemoveTree(work); });
  Result<UnzipStats> stats = SafeUnzip(zip_bytes, work, limits_);
  if (!stats) return std::unexpected(stats.error());

  HEARTH_RETURN_IF_ERROR(WriteFileAtomically(zip_path, zip_bytes, 0444));
  const Meta meta{.zip_size = static_cast<int64_t>(zip_bytes.size()),
                  .unzipped_size = stats->unzipped_bytes};
  HEARTH_RETURN_IF_ERROR(
      WriteFileAtomically(unpacked_ / (hex + std::string(kMetaSuffix)), FormatMeta(meta), 0444));

  {
    // One syncfs instead of an fsync per file: the tree must be on disk before it is committed.
    UniqueFd fd(::open(work.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd.valid()) {
      return std::unexpected(PosixError(fmt::format("open '{}'", work.string()), errno));
    }
    if (::syncfs(fd.get()) != 0) return std::unexpected(PosixError("syncfs", errno));
  }
  // Moving a directory to another parent rewrites its "..": it must be writable for a moment.
  const fs::path final_dir = unpacked_ / hex;
  HEARTH_RETURN_IF_ERROR(Chmod(work, 0755));
  if (::rename(work.c_str(), final_dir.c_str()) != 0) {
    return std::unexpected(
        PosixError(fmt::format("rename '{}' to '{}'", work.string(), final_dir.string()), errno));
  }
  remove_work.Cancel();
  HEARTH_RETURN_IF_ERROR(Chmod(final_dir, 0555));
  HEARTH_RETURN_IF_ERROR(FsyncDir(unpacked_));

  StoredCode code;
  code.sha256_hex = hex;
  code.sha256_base64 = Base64Encode(digest);
  code.zip_size = meta.zip_size;
  code.unzipped_size = meta.unzipped_size;
  code.dir = final_dir;
  return code;
}

Result<StoredCode> FsCodeStore::Get(std::string_view sha256_hex) {
  if (!IsSha256Hex(sha256_hex)) {
    return std::unexpected(
        Status::NotFound(fmt::format("'{}' is not a SHA-256 digest", sha256_hex.substr(0, 80))));
  }
  const std::string hex(sha256_hex);
  DigestLock lock = LockDigest(hex);
  return Lookup(hex);
}

Status FsCodeStore::Delete(const std::string& hex) {
  const fs::path tree = unpacked_ / hex;
  struct stat st;
  if (::lstat(tree.c_str(), &st) == 0) {
    // Uncommit first (one rename), so nobody sees a half-deleted tree under its final name.
    const fs::path doomed = TempPath(fmt::format("gc-{}", hex));
    if (S_ISDIR(st.st_mode)) HEARTH_RETURN_IF_ERROR(Chmod(tree, 0755));
    if (::rename(tree.c_str(), doomed.c_str()) != 0) {
      return PosixError(fmt::format("rename '{}' to '{}'", tree.string(), doomed.string()), errno);
    }
    HEARTH_RETURN_IF_ERROR(RemoveTree(doomed));
  } else if (errno != ENOENT) {
    return PosixError(fmt::format("stat '{}'", tree.string()), errno);
  }
  for (const fs::path& file :
       {unpacked_ / (hex + std::string(kMetaSuffix)), zips_ / (hex + std::string(kZipSuffix))}) {
    if (::unlink(file.c_str()) != 0 && errno != ENOENT) {
      return PosixError(fmt::format("unlink '{}'", file.string()), errno);
    }
  }
  return Status::Ok();
}

Status FsCodeStore::GarbageCollect(const std::vector<std::string>& keep) {
  const std::unordered_set<std::string> kept(keep.begin(), keep.end());
  std::unordered_set<std::string> doomed;
  auto collect = [&](const fs::path& dir, std::string_view suffix) -> Status {
    std::error_code ec;
    fs::directory_iterator it(dir, ec);
    for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
      std::string name = it->path().filename().string();
      if (!name.ends_with(suffix)) continue;
      name.resize(name.size() - suffix.size());
      if (IsSha256Hex(name) && !kept.contains(name)) doomed.insert(std::move(name));
    }
    if (ec) return PosixError(fmt::format("list '{}'", dir.string()), ec.value());
    return Status::Ok();
  };
  HEARTH_RETURN_IF_ERROR(collect(zips_, kZipSuffix));
  HEARTH_RETURN_IF_ERROR(collect(unpacked_, kMetaSuffix));
  HEARTH_RETURN_IF_ERROR(collect(unpacked_, ""));

  Status first_error;
  for (const std::string& hex : doomed) {
    DigestLock lock = LockDigest(hex);
    Status st = Delete(hex);
    if (!st.ok() && first_error.ok()) first_error = st;
  }
  return first_error;
}

}  // namespace hearth::artifacts
