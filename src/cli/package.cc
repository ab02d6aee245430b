#include "cli/package.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <string_view>
#include <system_error>

#include "common/defer.h"
#include "common/encoding.h"
#include "common/unique_fd.h"

namespace hearth::cli {
namespace {

namespace fs = std::filesystem;

// Mirrors the kernel's MAXSYMLINKS.
constexpr int kMaxSymlinkHops = 40;
constexpr size_t kChunk = 1 << 16;

struct Entry {
  std::string name;  // relative, '/'-separated; directories end with '/'
  fs::path path;     // on disk
  mode_t type = 0;   // S_IFREG, S_IFDIR or S_IFLNK
  mode_t perm = 0;
  std::string link_target;
};

enum class Resolution { kInside, kEscapes, kLoops };

// Resolves `target` from the directory `stack` (components below `root`) as the kernel would,
// following the tree's own symlinks, and says whether the walk ever leaves `root`. Missing
// components are taken lexically (a dangling link inside the tree is fine).
Resolution Resolve(const fs::path& root, std::vector<std::string>& stack, std::string_view target,
                   int& hops) {
  if (target.starts_with('/')) return Resolution::kEscapes;
  size_t pos = 0;
  while (pos <= target.size()) {
    size_t end = target.find('/', pos);
    if (end == std::string_view::npos) end = target.size();
    const std::string_view comp = target.substr(pos, end - pos);
    pos = end + 1;
    if (comp.empty() || comp == ".") continue;
    if (comp == "..") {
      if (stack.empty()) return Resolution::kEscapes;
      stack.pop_back();
      continue;
    }
    stack.emplace_back(comp);
    fs::path p = root;
    for (const auto& s : stack) p /= s;
    struct stat st {};
    if (::lstat(p.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
      if (++hops > kMaxSymlinkHops) return Resolution::kLoops;
      std::error_code ec;
      const fs::path next = fs::read_symlink(p, ec);
      if (ec) return Resolution::kLoops;
      stack.pop_back();  // a symlink resolves relative to the directory holding it
      const std::string next_str = next.string();
      const Resolution r = Resolve(root, stack, next_str, hops);
      if (r != Resolution::kInside) return r;
    }
  }
  return Resolution::kInside;
}

std::vector<std::string> Components(std::string_view rel) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < rel.size()) {
    size_t end = rel.find('/', pos);
    if (end == std::string_view::npos) end = rel.size();
    if (end > pos) out.emplace_back(rel.substr(pos, end - pos));
    pos = end + 1;
  }
  return out;
}

Status FsError(const std::string& what, const std::error_code& ec) {
  return PosixError(what, ec.value());
}

Result<std::vector<Entry>> Collect(const fs::path& root, const fs::path& output_abs,
                                   PackageResult& result) {
  std::vector<Entry> entries;
  std::error_code ec;
  fs::recursive_directory_iterator it(root, fs::directory_options::none, ec);
  if (ec)
    return std::unexpected(FsError(fmt::format("cannot read directory '{}'", root.string()), ec));
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    const fs::path& p = it->path();
    const std::string rel = p.lexically_relative(root).generic_string();
    if (p == output_abs) {
      result.skipped.push_back(rel);
      continue;
    }
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0) {
      return std::unexpected(PosixError(fmt::format("cannot stat '{}'", p.string()), errno));
    }
    Entry e;
    e.path = p;
    e.name = rel;
    e.perm = st.st_mode & 0777;
    if (S_ISREG(st.st_mode)) {
      e.type = S_IFREG;
    } else if (S_ISDIR(st.st_mode)) {
      e.type = S_IFDIR;
      e.name += '/';
    } else if (S_ISLNK(st.st_mode)) {
      e.type = S_IFLNK;
      e.perm = 0777;
      const fs::path target = fs::read_symlink(p, ec);
      if (ec)
        return std::unexpected(FsError(fmt::format("cannot read symlink '{}'", p.string()), ec));
      e.link_target = target.string();
      std::vector<std::string> stack = Components(rel);
      stack.pop_back();
      int hops = 0;
      switch (Resolve(root, stack, e.link_target, hops)) {
        case Resolution::kInside:
          break;
        case Resolution::kEscapes:
          return std::unexpected(Status::InvalidArgument(fmt::format(
              "'{}' is a symlink to '{}', which is outside '{}'; a deployment package can only "
              "hold symlinks that stay inside it (copy the target in instead)",
              rel, e.link_target, root.string())));
        case Resolution::kLoops:
          return std::unexpected(Status::InvalidArgument(
              fmt::format("'{}' is a symlink that loops (too many levels of symlinks)", rel)));
      }
    } else {
      return std::unexpected(Status::InvalidArgument(fmt::format(
          "'{}' is not a regular file, directory or symlink (a fifo, socket or device); a "
          "deployment package cannot hold it",
          rel)));
    }
    entries.push_back(std::move(e));
  }
  if (ec)
    return std::unexpected(
        FsError(fmt::format("cannot read directory under '{}'", root.string()), ec));
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.name < b.name; });
  return entries;
}

struct ArchiveDeleter {
  void operator()(archive* a) const { archive_write_free(a); }
};
struct EntryDeleter {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};

la_ssize_t AppendToString(archive*, void* client, const void* buf, size_t n) {
  static_cast<std::string*>(client)->append(static_cast<const char*>(buf), n);
  return static_cast<la_ssize_t>(n);
}

Result<std::string> WriteZip(const std::vector<Entry>& entries, PackageResult& result) {
  std::string out;
  std::unique_ptr<archive, ArchiveDeleter> a(archive_write_new());
  auto fail = [&](const char* what) {
    return Status::Internal(fmt::format("libarchive {}: {}", what, archive_error_string(a.get())));
  };
  if (archive_write_set_format_zip(a.get()) != ARCHIVE_OK)
    return std::unexpected(fail("zip format"));
  if (archive_write_set_options(a.get(), "zip:compression=deflate") != ARCHIVE_OK)
    return std::unexpected(fail("options"));
  if (archive_write_set_bytes_in_last_block(a.get(), 1) != ARCHIVE_OK)
    return std::unexpected(fail("block size"));
  if (archive_write_open(a.get(), &out, nullptr, &AppendToString, nullptr) != ARCHIVE_OK)
    return std::unexpected(fail("open"));
  std::string buf(kChunk, '\0');
  for (const Entry& e : entries) {
    std::unique_ptr<archive_entry, EntryDeleter> h(archive_entry_new());
    archive_entry_copy_pathname(h.get(), e.name.c_str());
    archive_entry_set_filetype(h.get(), e.type);
    archive_entry_set_perm(h.get(), e.perm);
    archive_entry_set_mtime(h.get(), kPackageMtime, 0);
    archive_entry_set_uid(h.get(), 0);
    archive_entry_set_gid(h.get(), 0);
    UniqueFd fd;
    int64_t size = 0;
    if (e.type == S_IFREG) {
      fd.Reset(::open(e.path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
      if (!fd.valid())
        return std::unexpected(PosixError(fmt::format("cannot read '{}'", e.path.string()), errno));
      struct stat st {};
      if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
        return std::unexpected(
            Status::IOError(fmt::format("'{}' changed while packaging", e.path.string())));
      }
      size = st.st_size;
      archive_entry_set_size(h.get(), size);
      ++result.files;
      result.content_bytes += size;
    } else if (e.type == S_IFDIR) {
      archive_entry_set_size(h.get(), 0);
      ++result.directories;
    } else {
      archive_entry_set_size(h.get(), 0);
      archive_entry_copy_symlink(h.get(), e.link_target.c_str());
      ++result.symlinks;
    }
    if (archive_write_header(a.get(), h.get()) != ARCHIVE_OK)
      return std::unexpected(fail("write header"));
    for (int64_t left = size; left > 0;) {
      const ssize_t n =
          ::read(fd.get(), buf.data(), static_cast<size_t>(std::min<int64_t>(left, kChunk)));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0)
        return std::unexpected(PosixError(fmt::format("cannot read '{}'", e.path.string()), errno));
      if (n == 0) {
        return std::unexpected(
            Status::IOError(fmt::format("'{}' shrank while packaging", e.path.string())));
      }
      if (archive_write_data(a.get(), buf.data(), static_cast<size_t>(n)) != n)
        return std::unexpected(fail("write data"));
      left -= n;
    }
  }
  if (archive_write_close(a.get()) != ARCHIVE_OK) return std::unexpected(fail("close"));
  return out;
}

Status WriteFileAtomically(const fs::path& output, const std::string& data) {
  const fs::path parent = output.parent_path().empty() ? fs::path(".") : output.parent_path();
  std::string tmpl = (parent / fmt::format(".{}.tmp-XXXXXX", output.filename().string())).string();
  UniqueFd fd(::mkstemp(tmpl.data()));
  if (!fd.valid()) return PosixError(fmt::format("cannot create '{}'", output.string()), errno);
  Defer remove_tmp([&tmpl] { ::unlink(tmpl.c_str()); });
  for (size_t off = 0; off < data.size();) {
    const ssize_t n = ::write(fd.get(), data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return PosixError(fmt::format("cannot write '{}'", output.string()), errno);
    off += static_cast<size_t>(n);
  }
  if (::fchmod(fd.get(), 0644) != 0 || ::close(fd.Release()) != 0) {
    return PosixError(fmt::format("cannot write '{}'", output.string()), errno);
  }
  if (::rename(tmpl.c_str(), output.c_str()) != 0) {
    return PosixError(fmt::format("cannot write '{}'", output.string()), errno);
  }
  remove_tmp.Cancel();
  return Status::Ok();
}

}  // namespace

Result<PackageResult> PackageDirectory(const fs::path& dir, const fs::path& output) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    const int err = errno;
    if (err == ENOENT)
      return std::unexpected(
          Status::NotFound(fmt::format("no such directory: '{}'", dir.string())));
    return std::unexpected(PosixError(fmt::format("cannot open '{}'", dir.string()), err));
  }
  if (!S_ISDIR(st.st_mode)) {
    return std::unexpected(
        Status::InvalidArgument(fmt::format("'{}' is not a directory", dir.string())));
  }
  std::error_code ec;
  const fs::path root = fs::canonical(dir, ec);
  if (ec) return std::unexpected(FsError(fmt::format("cannot resolve '{}'", dir.string()), ec));
  const fs::path output_abs = fs::weakly_canonical(fs::absolute(output), ec);
  if (ec) return std::unexpected(FsError(fmt::format("cannot resolve '{}'", output.string()), ec));
  if (output_abs == root || fs::is_directory(output_abs)) {
    return std::unexpected(Status::InvalidArgument(fmt::format(
        "the output '{}' is a directory; name the zip file to write", output.string())));
  }

  PackageResult result;
  auto entries = Collect(root, output_abs, result);
  if (!entries) return std::unexpected(entries.error());
  const bool has_content = std::any_of(entries->begin(), entries->end(),
                                       [](const Entry& e) { return e.type != S_IFDIR; });
  if (!has_content) {
    return std::unexpected(Status::InvalidArgument(
        fmt::format("'{}' holds no files: nothing to package", dir.string())));
  }
  for (const Entry& e : *entries) {
    if (e.name == "bootstrap" && e.type == S_IFREG && (e.perm & 0111) == 0) {
      result.warnings.push_back(
          "'bootstrap' is not executable: a provided.* runtime cannot start it (chmod +x "
          "bootstrap)");
    }
  }
  auto zip = WriteZip(*entries, result);
  if (!zip) return std::unexpected(zip.error());
  if (Status s = WriteFileAtomically(output, *zip); !s.ok()) return std::unexpected(s);
  result.zip_bytes = static_cast<int64_t>(zip->size());
  result.code_sha256 = Base64Encode(Sha256(*zip));
  return result;
}

}  // namespace hearth::cli
