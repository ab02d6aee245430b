#include "artifacts/safe_unzip.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <fmt/core.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "common/unique_fd.h"


namespace hearth::artifacts {
namespace {

namespace fs = std::filesystem;

// Names are kept well under PATH_MAX so that "<mount point>/<name>" still resolves at run time and
// so the store's own path-based walks (RemoveTree, TreeFileBytes) never hit ENAMETOOLONG.
constexpr size_t kMaxNameBytes = 3072;
constexpr size_t kMaxComponentBytes = NAME_MAX;
// Mirrors the kernel's MAXSYMLINKS: a longer chain of symlinks is refused as a loop.
constexpr int kMaxSymlinkHops = 40;
// Bytes of path the symlink check may hand to fstatat for one zip: bounds the work a zip full of
// long, deep symlinks can cause. Ordinary packages use a tiny fraction of it.
constexpr int64_t kSymlinkCheckBudgetBytes = int64_t{64} << 20;
constexpr size_t kCopyBufferBytes = 256 * 1024;

struct ArchiveReadDeleter {
  void operator()(archive* a) const { archive_read_free(a); }
};
using ArchiveReadPtr = std::unique_ptr<archive, ArchiveReadDeleter>;

// Entry names end up in API error messages: keep them short and printable.
std::string Printable(std::string_view name) {
  constexpr size_t kMaxShown = 200;
  std::string out;
  for (size_t i = 0; i < name.size() && i < kMaxShown; ++i) {
    unsigned char c = static_cast<unsigned char>(name[i]);
    out += (c < 0x20 || c == 0x7f) ? '?' : static_cast<char>(c);
  }
  if (name.size() > kMaxShown) out += "...";
  return out;
}

Status Refuse(std::string_view name, std::string_view why) {
  std::string m = "Zip entry '";
  m += Printable(name);
  m += "' ";
  m += why;
  return Status::InvalidArgument(std::move(m));
}

Status NotAZip() { return Status::InvalidArgument(std::string(kNotAZipMessage)); }

Status EntryIoError(std::string_view what, std::string_view name, int err) {
  std::string ctx(what);
  ctx += " for zip entry '";
  ctx += Printable(name);
  ctx += "'";
  return PosixError(ctx, err);
}

// Splits on '/', dropping empty and "." components; ".." components are kept.
std::vector<std::string> SplitPath(std::string_view path) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view part = path.substr(start, end - start);
    if (!part.empty() && part != ".") parts.emplace_back(part);
    start = end + 1;
  }
  return parts;
}

std::string JoinPath(const std::vector<std::string>& parts, size_t count) {
  std::string out;
  for (size_t i = 0; i < count; ++i) {
    if (i > 0) out += '/';
    out += parts[i];
  }
  return out;
}

const char* EntryName(archive_entry* entry) {
  const char* name = archive_entry_pathname(entry);
  return name != nullptr ? name : archive_entry_pathname_utf8(entry);
}

const char* SymlinkTarget(archive_entry* entry) {
  const char* target = archive_entry_symlink(entry);
  return target != nullptr ? target : archive_entry_symlink_utf8(entry);
}

// Lexically resolves `target` from the directory `dir` (components below the package root).
// False when a ".." climbs above the root.
bool LexicallyInside(std::vector<std::string> dir, std::string_view target) {
  for (std::string& part : SplitPath(target)) {
    if (part == "..") {
      if (dir.empty()) return false;
      dir.pop_back();
    } else {
      dir.push_back(std::move(part));
    }
  }
  return true;
}

// ---- A pre-pass over the raw central directory -------------------------------------------
// libarchive hides two things SafeUnzip must see: it reports a Unix fifo as a regular file, and it
// loads the whole central directory into memory before the first entry (so an absurd entry count
// costs memory before the streaming count can refuse it). This walk reads only what it needs and
// never decides validity: anything it cannot parse is left to libarchive.

uint16_t Le16(std::string_view s, size_t at) {
  return static_cast<uint16_t>(static_cast<unsigned char>(s[at]) |
                               (static_cast<unsigned char>(s[at + 1]) << 8));
}
uint32_t Le32(std::string_view s, size_t at) {
  return static_cast<uint32_t>(Le16(s, at)) | (static_cast<uint32_t>(Le16(s, at + 2)) << 16);
}
uint64_t Le64(std::string_view s, size_t at) {
  return static_cast<uint64_t>(Le32(s, at)) | (static_cast<uint64_t>(Le32(s, at + 4)) << 32);
}

constexpr uint32_t kEocdSignature = 0x06054b50;
constexpr uint32_t kZip64EocdSignature = 0x06064b50;
constexpr uint32_t kZip64LocatorSignature = 0x07064b50;
constexpr uint32_t kCentralHeaderSignature = 0x02014b50;
constexpr size_t kEocdBytes = 22;
constexpr size_t kCentralHeaderBytes = 46;
constexpr unsigned kMadeByUnix = 3;

struct CentralDirectory {
  size_t begin = 0;
  size_t size = 0;
  uint64_t entries = 0;  // as the end record claims
};

// Locates the central directory from the end-of-central-directory record (zip64 included). The
// directory is taken to end where the end record starts, which also works for zips with data
// prepended (self-extracting archives).
std::optional<CentralDirectory> FindCentralDirectory(std::string_view zip) {
  if (zip.size() < kEocdBytes) return std::nullopt;
  const size_t lowest = zip.size() > kEocdBytes + 0xffff ? zip.size() - kEocdBytes - 0xffff : 0;
  for (size_t at = zip.size() - kEocdBytes + 1; at-- > lowest;) {
    if (Le32(zip, at) != kEocdSignature) continue;
    CentralDirectory cd{.begin = 0, .size = Le32(zip, at + 12), .entries = Le16(zip, at + 10)};
    size_t end = at;
    if (cd.entries == 0xffff || cd.size == 0xffffffff || Le32(zip, at + 16) == 0xffffffff) {
      if (at < 20 || Le32(zip, at - 20) != kZip64LocatorSignature) return std::nullopt;
      const uint64_t record = Le64(zip, at - 20 + 8);
      if (record > at - 20 || at - 20 - record < 56 || Le32(zip, record) != kZip64EocdSignature) {
        return std::nullopt;
      }
      cd.entries = Le64(zip, record + 32);
      cd.size = Le64(zip, record + 40);
      end = record;
    }
    if (cd.size > end) return std::nullopt;
    cd.begin = end - cd.size;
    return cd;
  }
  return std::nullopt;
}

// Refuses special files by their Unix mode and more entries than the limit, naming the entry.
Status ScanCentralDirectory(std::string_view zip, const CentralDirectory& cd,
                            const UnzipLimits& limits) {
  const size_t end = cd.begin + cd.size;
  int64_t count = 0;
  for (size_t at = cd.begin; at + kCentralHeaderBytes <= end;) {
    if (Le32(zip, at) != kCentralHeaderSignature) break;
    const size_t name_len = Le16(zip, at + 28);
    const size_t next =
        at + kCentralHeaderBytes + name_len + Le16(zip, at + 30) + Le16(zip, at + 32);
    if (at + kCentralHeaderBytes + name_len > end) break;
    const std::string_view name = zip.substr(at + kCentralHeaderBytes, name_len);
    if (++count > limits.max_entries) {
      return Refuse(name,
                    fmt::format("exceeds the limit of {} entries per zip", limits.max_entries));
    }
    if (static_cast<unsigned char>(zip[at + 5]) == kMadeByUnix) {
      switch ((Le32(zip, at + 38) >> 16) & S_IFMT) {
        case S_IFIFO:
          return Refuse(name, "is a fifo");
        case S_IFCHR:
          return Refuse(name, "is a character device");
        case S_IFBLK:
          return Refuse(name, "is a block device");
        case S_IFSOCK:
          return Refuse(name, "is a socket");
        default:
          break;
      }
    }
    at = next;
  }
  return Status::Ok();
}

enum class Resolution { kInside, kEscapes, kLoops, kTooComplex };

// Resolves `target` from the directory `dir` against the unpacked tree under `root_fd` the way the
// kernel would, following the package's own symlinks, without ever leaving the root: a ".." is
// only safe to apply lexically when the component it cancels is a real directory, so each
// component is inspected with fstatat(AT_SYMLINK_NOFOLLOW). Once a component is missing (or is a
// file), the rest is resolved lexically, which is the conservative answer.
// `budget` is decremented by the bytes of every path inspected.
Result<Resolution> ResolveInTree(int root_fd, std::vector<std::string> dir, std::string_view target,
                                 int64_t* budget) {
  std::deque<std::string> pending;
  for (std::string& part : SplitPath(target)) pending.push_back(std::move(part));
  bool on_disk = true;
  int hops = 0;
  while (!pending.empty()) {
    std::string part = std::move(pending.front());
    pending.pop_front();
    if (part == "..") {
      if (dir.empty()) return Resolution::kEscapes;
      dir.pop_back();
      continue;
    }
    if (!on_disk) {
      dir.push_back(std::move(part));
      continue;
    }
    dir.push_back(part);
    const std::string path = JoinPath(dir, dir.size());
    *budget -= static_cast<int64_t>(path.size()) + 1;
    if (*budget < 0) return Resolution::kTooComplex;
    struct stat st;
    if (::fstatat(root_fd, path.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      int err = errno;
      if (err == ENOENT || err == ENOTDIR) {
        on_disk = false;
        continue;
      }
      if (err == ENAMETOOLONG) return Resolution::kLoops;
      return std::unexpected(
          PosixError(fmt::format("stat '{}' while checking symlinks", Printable(path)), err));
    }
    if (S_ISDIR(st.st_mode)) continue;
    if (!S_ISLNK(st.st_mode)) {
      on_disk = false;
      continue;
    }
    dir.pop_back();  // a symlink is resolved relative to the directory holding it
    if (++hops > kMaxSymlinkHops) return Resolution::kLoops;
    std::string link(PATH_MAX, '\0');
    ssize_t n = ::readlinkat(root_fd, path.c_str(), link.data(), link.size());
    if (n < 0) {
      return std::unexpected(PosixError(fmt::format("readlink '{}'", Printable(path)), errno));
    }
    link.resize(static_cast<size_t>(n));
    if (link.empty() || link.front() == '/') return Resolution::kEscapes;
    std::vector<std::string> link_parts = SplitPath(link);
    pending.insert(pending.begin(), link_parts.begin(), link_parts.end());
  }
  return Resolution::kInside;
}

class Unzipper {
 public:
  Unzipper(std::string_view zip, int root_fd, const UnzipLimits& limits)
      : zip_(zip), root_fd_(root_fd), limits_(limits), buffer_(kCopyBufferBytes) {}

  Result<UnzipStats> Run() {
    if (zip_.empty()) return std::unexpected(NotAZip());
    if (std::optional<CentralDirectory> cd = FindCentralDirectory(zip_)) {
      // libarchive calls a zip without entries unrecognizable; Lambda has a message for it.
      if (cd->entries == 0 && cd->size == 0) {
        return std::unexpected(Status::InvalidArgument(std::string(kEmptyZipMessage)));
      }
      HEARTH_RETURN_IF_ERROR(ScanCentralDirectory(zip_, *cd, limits_));
    }
    ArchiveReadPtr reader(archive_read_new());
    if (!reader) return std::unexpected(Status::Internal("archive_read_new failed"));
    // The seekable reader trusts the central directory, as unzip(1) and Lambda do; it is also the
    // only place Unix modes (and so symlinks and exec bits) are recorded.
    if (archive_read_support_format_zip_seekable(reader.get()) != ARCHIVE_OK ||
        archive_read_open_memory(reader.get(), zip_.data(), zip_.size()) != ARCHIVE_OK) {
      return std::unexpected(NotAZip());
    }
    for (;;) {
      archive_entry* entry = nullptr;
      int r = archive_read_next_header(reader.get(), &entry);
      if (r == ARCHIVE_EOF) break;
      if (r < ARCHIVE_WARN) return std::unexpected(NotAZip());
      ++stats_.entries;
      const char* raw_name = EntryName(entry);
      std::string name = raw_name != nullptr ? raw_name : "";
      if (raw_name == nullptr) {
        return std::unexpected(
            Refuse(fmt::format("#{}", stats_.entries), "has a name that cannot be decoded"));
      }
      if (stats_.entries > limits_.max_entries) {
        return std::unexpected(Refuse(
            name, fmt::format("exceeds the limit of {} entries per zip", limits_.max_entries)));
      }
      HEARTH_RETURN_IF_ERROR(Extract(reader.get(), entry, name));
    }
    if (stats_.entries == 0) {
      return std::unexpected(Status::InvalidArgument(std::string(kEmptyZipMessage)));
    }
    // Symlinks are checked once the whole tree exists: a symlink added later can change where an
    // earlier one leads ("a/up -> .." then "b -> a/up/..").
    int64_t budget = kSymlinkCheckBudgetBytes;
    for (const auto& [name, dir, target] : symlinks_) {
      Result<Resolution> res = ResolveInTree(root_fd_, dir, target, &budget);
      if (!res) return std::unexpected(res.error());
      if (*res == Resolution::kEscapes) {
        return std::unexpected(Refuse(name, "is a symlink that escapes the package"));
      }
      if (*res == Resolution::kTooComplex) {
        return std::unexpected(
            Refuse(name, "is a symlink past the checking budget (too many or too deep symlinks)"));
      }
      if (*res == Resolution::kLoops) {
        return std::unexpected(Refuse(name, "is a symlink chain that loops or is too long"));
      }
    }
    return stats_;
  }

 private:
  Status Extract(archive* reader, archive_entry* entry, const std::string& name) {
    Result<std::vector<std::string>> parts = internal::CheckEntry(entry, name);
    if (!parts) return parts.error();
    switch (archive_entry_filetype(entry)) {
      case AE_IFDIR: {
        Result<int> dir = OpenDir(*parts, parts->size(), name);
        return dir ? Status::Ok() : dir.error();
      }
      case AE_IFLNK:
        return ExtractSymlink(entry, *parts, name);
      default:
        return ExtractFile(reader, entry, *parts, name);
    }
  }

  // Opens (creating as needed) the directory named by the first `count` components, one component
  // at a time and never through a symlink. The result stays owned by a one-entry cache: zips list
  // a directory's files together, so most entries reuse their predecessor's directory. The cache
  // cannot go stale: once created, a directory is never removed or replaced by a later entry.
  Result<int> OpenDir(const std::vector<std::string>& parts, size_t count,
                      const std::string& name) {
    if (cached_dir_.valid() && cached_parts_.size() == count &&
        std::equal(cached_parts_.begin(), cached_parts_.end(), parts.begin())) {
      return cached_dir_.get();
    }
    cached_dir_.Reset();
    UniqueFd dir(::openat(root_fd_, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir.valid()) return std::unexpected(EntryIoError("open package root", name, errno));
    for (size_t i = 0; i < count; ++i) {
      const char* part = parts[i].c_str();
      constexpr int kFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
      int fd = ::openat(dir.get(), part, kFlags);
      if (fd < 0 && errno == ENOENT) {
        if (::mkdirat(dir.get(), part, 0700) != 0 && errno != EEXIST) {
          return std::unexpected(EntryIoError("mkdir", name, errno));
        }
        fd = ::openat(dir.get(), part, kFlags);
      }
      if (fd < 0) {
        int err = errno;
        struct stat st;
        if ((err == ELOOP || err == ENOTDIR) &&
            ::fstatat(dir.get(), part, &st, AT_SYMLINK_NOFOLLOW) == 0) {
          if (S_ISLNK(st.st_mode)) {
            return std::unexpected(Refuse(name, "is written through a symlink"));
          }
          return std::unexpected(Refuse(name, "conflicts with an earlier entry"));
        }
        return std::unexpected(EntryIoError("open directory", name, err));
      }
      dir.Reset(fd);
    }
    cached_parts_.assign(parts.begin(), parts.begin() + static_cast<ptrdiff_t>(count));
    cached_dir_ = std::move(dir);
    return cached_dir_.get();
  }

  Status ExtractSymlink(archive_entry* entry, const std::vector<std::string>& parts,
                        const std::string& name) {
    Result<int> parent = OpenDir(parts, parts.size() - 1, name);
    if (!parent) return parent.error();
    const char* target = SymlinkTarget(entry);
    if (::symlinkat(target, *parent, parts.back().c_str()) != 0) {
      if (errno == EEXIST) return Refuse(name, "conflicts with an earlier entry");
      return EntryIoError("symlink", name, errno);
    }
    symlinks_.push_back({name, std::vector<std::string>(parts.begin(), parts.end() - 1), target});
    return Status::Ok();
  }

  Status SizeLimitExceeded(const std::string& name) const {
    return Refuse(name, fmt::format("takes the package over its unzipped size limit: unzipped "
                                    "size must be smaller than {} bytes",
                                    limits_.max_unzipped_bytes));
  }

  Status RatioLimitExceeded(const std::string& name) const {
    return Refuse(name, fmt::format("exceeds the compression ratio limit of {}:1 (zip bomb)",
                                    limits_.max_compression_ratio));
  }

  Status ExtractFile(archive* reader, archive_entry* entry, const std::vector<std::string>& parts,
                     const std::string& name) {
    // An honest header over the limit is refused before any work; a lying one is caught below.
    if (archive_entry_size_is_set(entry) &&
        archive_entry_size(entry) > limits_.max_unzipped_bytes - stats_.unzipped_bytes) {
      return SizeLimitExceeded(name);
    }
    Result<int> parent = OpenDir(parts, parts.size() - 1, name);
    if (!parent) return parent.error();
    UniqueFd out(::openat(*parent, parts.back().c_str(),
                          O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!out.valid()) {
      if (errno == EEXIST) return Refuse(name, "conflicts with an earlier entry");
      return EntryIoError("create", name, errno);
    }
    const int64_t start = archive_filter_bytes(reader, 0);
    int64_t written = 0;
    for (;;) {
      la_ssize_t n = archive_read_data(reader, buffer_.data(), buffer_.size());
      if (n == 0) break;
      if (n < 0) return NotAZip();
      if (n > limits_.max_unzipped_bytes - stats_.unzipped_bytes) return SizeLimitExceeded(name);
      HEARTH_RETURN_IF_ERROR(WriteAll(out.get(), buffer_.data(), static_cast<size_t>(n), name));
      written += n;
      stats_.unzipped_bytes += n;
      // The zip's size is fixed, so the overall ratio can be checked as the output grows.
      if (stats_.unzipped_bytes > kRatioCheckThresholdBytes &&
          static_cast<double>(stats_.unzipped_bytes) >
              limits_.max_compression_ratio * static_cast<double>(zip_.size())) {
        return RatioLimitExceeded(name);
      }
    }
    // Compressed bytes this entry actually consumed, not what its header claims.
    const int64_t consumed = std::max<int64_t>(archive_filter_bytes(reader, 0) - start, 1);
    if (written > kRatioCheckThresholdBytes &&
        static_cast<double>(written) >
            limits_.max_compression_ratio * static_cast<double>(consumed)) {
      return RatioLimitExceeded(name);
    }
    const bool exec = (archive_entry_perm(entry) & 0111) != 0;
    if (::fchmod(out.get(), exec ? 0555 : 0444) != 0) return EntryIoError("chmod", name, errno);
    if (::close(out.Release()) != 0) return EntryIoError("close", name, errno);
    ++stats_.files;
    return Status::Ok();
  }

  static Status WriteAll(int fd, const char* data, size_t size, const std::string& name) {
    while (size > 0) {
      ssize_t n = ::write(fd, data, size);
      if (n < 0) {
        if (errno == EINTR) continue;
        return EntryIoError("write", name, errno);
      }
      data += n;
      size -= static_cast<size_t>(n);
    }
    return Status::Ok();
  }

  struct Symlink {
    std::string name;
    std::vector<std::string> dir;  // the directory holding the link
    std::string target;
  };

  std::string_view zip_;
  int root_fd_;
  UnzipLimits limits_;
  std::vector<char> buffer_;
  UnzipStats stats_;
  std::vector<Symlink> symlinks_;
  std::vector<std::string> cached_parts_;  // the directory cached_dir_ names
  UniqueFd cached_dir_;
};

// Gives every directory below (and including) `dir` mode `mode`, parents before children so a
// walk can always descend. Symlinks are never followed.
Status ChmodDirs(const fs::path& dir, fs::perms mode) {
  std::error_code ec;
  fs::permissions(dir, mode, fs::perm_options::replace, ec);
  if (ec) return PosixError(fmt::format("chmod '{}'", dir.string()), ec.value());
  fs::recursive_directory_iterator it(dir, fs::directory_options::none, ec);
  if (ec) return PosixError(fmt::format("list '{}'", dir.string()), ec.value());
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    fs::file_status st = it->symlink_status(ec);
    if (ec) break;
    if (fs::is_directory(st)) {
      fs::permissions(it->path(), mode, fs::perm_options::replace, ec);
      if (ec) return PosixError(fmt::format("chmod '{}'", it->path().string()), ec.value());
    }
  }
  if (ec) return PosixError(fmt::format("list '{}'", dir.string()), ec.value());
  return Status::Ok();
}

}  // namespace

namespace internal {

Result<std::vector<std::string>> CheckEntry(archive_entry* entry, std::string_view name) {
  if (name.empty()) return std::unexpected(Refuse(name, "has an empty name"));
  if (name.size() > kMaxNameBytes) {
    return std::unexpected(
        Refuse(name, fmt::format("has a name longer than {} bytes", kMaxNameBytes)));
  }
  if (name.find('\\') != std::string_view::npos) {
    return std::unexpected(Refuse(name, "has a backslash in its name (path traversal)"));
  }
  if (name.front() == '/') {
    return std::unexpected(Refuse(name, "has an absolute path (path traversal)"));
  }
  std::vector<std::string> parts = SplitPath(name);
  for (const std::string& part : parts) {
    if (part == "..") {
      return std::unexpected(Refuse(name, "escapes the package (path traversal)"));
    }
    if (part.size() > kMaxComponentBytes) {
      return std::unexpected(Refuse(
          name, fmt::format("has a path component longer than {} bytes", kMaxComponentBytes)));
    }
  }
  const bool is_dir = archive_entry_filetype(entry) == AE_IFDIR;
  if (parts.empty() && !is_dir) return std::unexpected(Refuse(name, "does not name a file"));
  if (archive_entry_hardlink(entry) != nullptr || archive_entry_hardlink_utf8(entry) != nullptr) {
    return std::unexpected(Refuse(name, "is a hard link"));
  }
  switch (archive_entry_filetype(entry)) {
    case AE_IFREG:
    case AE_IFDIR:
      break;
    case AE_IFLNK: {
      const char* target = SymlinkTarget(entry);
      if (target == nullptr || *target == '\0') {
        return std::unexpected(Refuse(name, "is a symlink with an empty target"));
      }
      std::string_view t(target);
      if (t.size() >= PATH_MAX) {
        return std::unexpected(Refuse(name, "is a symlink with a target too long"));
      }
      if (t.front() == '/') {
        return std::unexpected(Refuse(name, "is a symlink to an absolute path"));
      }
      if (!LexicallyInside(std::vector<std::string>(parts.begin(), parts.end() - 1), t)) {
        return std::unexpected(Refuse(name, "is a symlink that escapes the package"));
      }
      break;
    }
    case AE_IFCHR:
      return std::unexpected(Refuse(name, "is a character device"));
    case AE_IFBLK:
      return std::unexpected(Refuse(name, "is a block device"));
    case AE_IFIFO:
      return std::unexpected(Refuse(name, "is a fifo"));
    case AE_IFSOCK:
      return std::unexpected(Refuse(name, "is a socket"));
    default:
      return std::unexpected(Refuse(name, "has an unsupported file type"));
  }
  return parts;
}

}  // namespace internal

Result<UnzipStats> SafeUnzip(std::string_view zip_bytes, const fs::path& dest,
                             const UnzipLimits& limits) {
  UniqueFd root(::open(dest.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!root.valid()) {
    return std::unexpected(PosixError(fmt::format("open '{}'", dest.string()), errno));
  }
  Unzipper unzipper(zip_bytes, root.get(), limits);
  Result<UnzipStats> stats = unzipper.Run();
  if (!stats) return stats;
  HEARTH_RETURN_IF_ERROR(ChmodDirs(dest, static_cast<fs::perms>(0555)));
  return stats;
}

Status RemoveTree(const fs::path& path) {
  std::error_code ec;
  fs::file_status st = fs::symlink_status(path, ec);
  if (ec || !fs::exists(st)) {
    if (ec && ec != std::errc::no_such_file_or_directory) {
      return PosixError(fmt::format("stat '{}'", path.string()), ec.value());
    }
    return Status::Ok();
  }
  if (fs::is_directory(st)) HEARTH_RETURN_IF_ERROR(ChmodDirs(path, fs::perms::owner_all));
  fs::remove_all(path, ec);
  if (ec) return PosixError(fmt::format("remove '{}'", path.string()), ec.value());
  return Status::Ok();
}

Result<int64_t> TreeFileBytes(const fs::path& dir) {
  std::error_code ec;
  int64_t total = 0;
  fs::recursive_directory_iterator it(dir, fs::directory_options::none, ec);
  if (ec) return std::unexpected(PosixError(fmt::format("list '{}'", dir.string()), ec.value()));
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    fs::file_status st = it->symlink_status(ec);
    if (ec) break;
    if (fs::is_regular_file(st)) {
      uintmax_t size = it->file_size(ec);
      if (ec) break;
      total += static_cast<int64_t>(size);
    }
  }
  if (ec) return std::unexpected(PosixError(fmt::format("list '{}'", dir.string()), ec.value()));
  return total;
}

}  // namespace hearth::artifacts
