#pragma once
// Test-only helpers that build zips in memory, hostile ones included.
//
// ZipWriter uses libarchive's zip writer (deflate by default), so it produces what real tools
// produce: regular files (with any mode), directories, symlinks, and large entries streamed from
// a generator without holding them in memory. libarchive refuses to write devices, fifos and
// sockets into a zip, so RawZip assembles stored (uncompressed) entries by hand with any Unix
// mode in the central directory. PatchUncompressedSize makes a header lie about an entry's size.

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "artifacts/safe_unzip.h"

namespace hearth::artifacts::ziptest {

class ZipWriter {
 public:
  // `compression` is libarchive's zip:compression option, "deflate" or "store".
  explicit ZipWriter(const char* compression = "deflate") : archive_(archive_write_new()) {
    Check(archive_write_set_format_zip(archive_.get()), "set_format_zip");
    Check(archive_write_set_options(archive_.get(),
                                    (std::string("zip:compression=") + compression).c_str()),
          "set_options");
    Check(archive_write_set_bytes_in_last_block(archive_.get(), 1),
          "bytes_in_last_block");  // no padding
    Check(archive_write_open(archive_.get(), &out_, nullptr, &ZipWriter::Append, nullptr), "open");
  }

  ZipWriter& File(std::string_view name, std::string_view content, int perm = 0644) {
    Header(name, AE_IFREG, perm, static_cast<int64_t>(content.size()), nullptr, nullptr);
    if (!content.empty()) Write(content);
    return *this;
  }

  // A file of `size` zero bytes, written in chunks so a huge entry costs no memory.
  ZipWriter& Zeros(std::string_view name, int64_t size, int perm = 0644) {
    Header(name, AE_IFREG, perm, size, nullptr, nullptr);
    const std::string chunk(1 << 16, '\0');
    for (int64_t left = size; left > 0;) {
      const int64_t n = std::min<int64_t>(left, static_cast<int64_t>(chunk.size()));
      Write(std::string_view(chunk.data(), static_cast<size_t>(n)));
      left -= n;
    }
    return *this;
  }

  ZipWriter& Dir(std::string_view name, int perm = 0755) {
    Header(name, AE_IFDIR, perm, 0, nullptr, nullptr);
    return *this;
  }

  ZipWriter& Symlink(std::string_view name, const std::string& target) {
    Header(name, AE_IFLNK, 0777, 0, target.c_str(), nullptr);
    return *this;
  }

  // libarchive writes a hard link into a zip as an ordinary (empty) file: zip has no hard links.
  ZipWriter& Hardlink(std::string_view name, const std::string& target) {
    Header(name, AE_IFREG, 0644, 0, nullptr, target.c_str());
    return *this;
  }

  std::string Finish() {
    Check(archive_write_close(archive_.get()), "close");
    archive_.reset();
    return std::move(out_);
  }

 private:
  struct Deleter {
    void operator()(archive* a) const { archive_write_free(a); }
  };

  static la_ssize_t Append(archive*, void* client, const void* buf, size_t n) {
    static_cast<std::string*>(client)->append(static_cast<const char*>(buf), n);
    return static_cast<la_ssize_t>(n);
  }

  void Check(int r, const char* what) {
    if (r != ARCHIVE_OK) {
      ADD_FAILURE() << "libarchive " << what << ": " << archive_error_string(archive_.get());
    }
  }

  void Header(std::string_view name, unsigned type, int perm, int64_t size, const char* symlink,
              const char* hardlink) {
    std::unique_ptr<archive_entry, decltype(&archive_entry_free)> e(archive_entry_new(),
                                                                    &archive_entry_free);
    archive_entry_copy_pathname(e.get(), std::string(name).c_str());
    archive_entry_set_filetype(e.get(), type);
    archive_entry_set_perm(e.get(), static_cast<mode_t>(perm));
    archive_entry_set_size(e.get(), size);
    if (symlink != nullptr) archive_entry_copy_symlink(e.get(), symlink);
    if (hardlink != nullptr) archive_entry_copy_hardlink(e.get(), hardlink);
    Check(archive_write_header(archive_.get(), e.get()), "write_header");
  }

  void Write(std::string_view data) {
    if (archive_write_data(archive_.get(), data.data(), data.size()) !=
        static_cast<la_ssize_t>(data.size())) {
      ADD_FAILURE() << "libarchive write_data: " << archive_error_string(archive_.get());
    }
  }

  std::string out_;
  std::unique_ptr<archive, Deleter> archive_;
};

// A zip of stored entries assembled byte by byte; `mode` is the full st_mode (type bits included)
// written to the central directory's external attributes, as Info-ZIP does on Unix.
class RawZip {
 public:
  RawZip& Add(std::string_view name, std::string_view data, uint32_t mode) {
    entries_.push_back({std::string(name), std::string(data), mode});
    return *this;
  }

  std::string Finish() const {
    std::string out, central;
    for (const Entry& e : entries_) {
      const uint32_t offset = static_cast<uint32_t>(out.size());
      const uint32_t crc = Crc32(e.data);
      const uint32_t size = static_cast<uint32_t>(e.data.size());
      Put32(out, 0x04034b50);
      Put16(out, 10);    // version needed
      Put16(out, 0);     // flags
      Put16(out, 0);     // stored
      Put16(out, 0);     // time
      Put16(out, 0x21);  // date: 1980-01-01
      Put32(out, crc);
      Put32(out, size);
      Put32(out, size);
      Put16(out, static_cast<uint16_t>(e.name.size()));
      Put16(out, 0);  // extra
      out += e.name;
      out += e.data;

      Put32(central, 0x02014b50);
      Put16(central, (3 << 8) | 20);  // made by Unix
      Put16(central, 10);
      Put16(central, 0);
      Put16(central, 0);
      Put16(central, 0);
      Put16(central, 0x21);
      Put32(central, crc);
      Put32(central, size);
      Put32(central, size);
      Put16(central, static_cast<uint16_t>(e.name.size()));
      Put16(central, 0);  // extra
      Put16(central, 0);  // comment
      Put16(central, 0);  // disk
      Put16(central, 0);  // internal attributes
      Put32(central, e.mode << 16);
      Put32(central, offset);
      central += e.name;
    }
    const uint32_t cd_offset = static_cast<uint32_t>(out.size());
    out += central;
    Put32(out, 0x06054b50);
    Put16(out, 0);
    Put16(out, 0);
    Put16(out, static_cast<uint16_t>(entries_.size()));
    Put16(out, static_cast<uint16_t>(entries_.size()));
    Put32(out, static_cast<uint32_t>(central.size()));
    Put32(out, cd_offset);
    Put16(out, 0);
    return out;
  }

 private:
  struct Entry {
    std::string name;
    std::string data;
    uint32_t mode;
  };

  static void Put16(std::string& s, uint16_t v) {
    s += static_cast<char>(v & 0xff);
    s += static_cast<char>(v >> 8);
  }
  static void Put32(std::string& s, uint32_t v) {
    Put16(s, static_cast<uint16_t>(v & 0xffff));
    Put16(s, static_cast<uint16_t>(v >> 16));
  }
  static uint32_t Crc32(std::string_view data) {
    uint32_t crc = 0xffffffffu;
    for (unsigned char c : data) {
      crc ^= c;
      for (int i = 0; i < 8; ++i) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
    }
    return ~crc;
  }

  std::vector<Entry> entries_;
};

inline uint32_t Get32(const std::string& s, size_t at) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) {
    v = (v << 8) | static_cast<unsigned char>(s[at + static_cast<size_t>(i)]);
  }
  return v;
}
inline uint16_t Get16(const std::string& s, size_t at) {
  return static_cast<uint16_t>(static_cast<unsigned char>(s[at]) |
                               (static_cast<unsigned char>(s[at + 1]) << 8));
}
inline void Set32(std::string& s, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) {
    s[at + static_cast<size_t>(i)] = static_cast<char>((v >> (8 * i)) & 0xff);
  }
}

// Rewrites the uncompressed size recorded for entry `name` (central directory and, when it holds
// one, the local header) to `size`. Returns how many headers were patched.
inline int PatchUncompressedSize(std::string& zip, std::string_view name, uint32_t size) {
  int patched = 0;
  for (size_t at = 0; at + 46 <= zip.size(); ++at) {
    const uint32_t sig = Get32(zip, at);
    if (sig == 0x02014b50) {  // central directory header
      const size_t len = Get16(zip, at + 28);
      if (zip.compare(at + 46, len, name) == 0 && len == name.size()) {
        Set32(zip, at + 24, size);
        ++patched;
      }
    } else if (sig == 0x04034b50) {  // local header
      const size_t len = Get16(zip, at + 26);
      if (zip.compare(at + 30, len, name) == 0 && len == name.size() && Get32(zip, at + 22) != 0) {
        Set32(zip, at + 22, size);
        ++patched;
      }
    }
  }
  return patched;
}

// A fresh directory under $TMPDIR, removed (read-only parts included) on destruction.
class ScopedTempDir {
 public:
  ScopedTempDir() {
    std::string templ =
        (std::filesystem::temp_directory_path() / "hearth_artifacts_XXXXXX").string();
    if (::mkdtemp(templ.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed";
    path_ = templ;
  }
  ~ScopedTempDir() {
    Status st = RemoveTree(path_);
    if (!st.ok()) ADD_FAILURE() << st.ToString();
  }
  ScopedTempDir(const ScopedTempDir&) = delete;
  ScopedTempDir& operator=(const ScopedTempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace hearth::artifacts::ziptest
