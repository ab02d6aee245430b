#include "telemetry/log_sink.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>

#include <boost/asio/post.hpp>

#include <fmt/format.h>

namespace hearth::telemetry {

std::string FormatReportLine(const ReportFields& f) {
  std::string line = fmt::format(
      "REPORT RequestId: {}\tDuration: {:.2f} ms\tBilled Duration: {} ms\tMemory Size: {} MB\t"
      "Max Memory Used: {} MB\t",
      f.request_id, f.duration_ms, static_cast<int64_t>(std::ceil(f.duration_ms)), f.memory_size_mb,
      f.max_memory_used_mb);
  if (f.init_duration_ms >= 0) line += fmt::format("Init Duration: {:.2f} ms\t", f.init_duration_ms);
  if (!f.status.empty()) line += fmt::format("Status: {}\t", f.status);
  return line;
}

std::string FormatStartLine(std::string_view request_id, std::string_view version) {
  return fmt::format("START RequestId: {} Version: {}", request_id, version);
}

std::string FormatEndLine(std::string_view request_id) {
  return fmt::format("END RequestId: {}", request_id);
}

LogSink::LogSink(std::filesystem::path dir, boost::asio::any_io_executor loop)
    : dir_(std::move(dir)), loop_(std::move(loop)), self_(std::make_shared<LogSink*>(this)) {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
}

LogSink::~LogSink() { Flush(); }

std::filesystem::path LogSink::PathFor(const std::string& function) const {
  return dir_ / (function + ".log");
}

void LogSink::Append(const std::string& function, std::string_view text) {
  auto it = files_.find(function);
  if (it == files_.end()) {
    int fd = ::open(PathFor(function).c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return;  // logging must never fail an invocation
    it = files_.emplace(function, File{UniqueFd(fd), {}}).first;
  }
  File& f = it->second;
  const bool was_clean = f.pending.empty();
  f.pending.append(text);
  if (!loop_ || f.pending.size() >= 64 * 1024) {
    Write(f);
    return;
  }
  if (was_clean) dirty_.push_back(function);
  if (!flush_posted_) {
    flush_posted_ = true;
    boost::asio::post(loop_, [weak = std::weak_ptr<LogSink*>(self_)] {
      if (auto self = weak.lock()) (*self)->Flush();
    });
  }
}

void LogSink::Write(File& f) {
  const char* p = f.pending.data();
  size_t left = f.pending.size();
  while (left > 0) {
    ssize_t n = ::write(f.fd.get(), p, left);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      break;  // a full disk drops log lines, never the invocation
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  f.pending.clear();
}

void LogSink::Flush() {
  flush_posted_ = false;
  for (const std::string& name : dirty_) {
    auto it = files_.find(name);
    if (it != files_.end() && !it->second.pending.empty()) Write(it->second);
  }
  dirty_.clear();
}

void LogSink::Forget(const std::string& function) {
  if (auto it = files_.find(function); it != files_.end()) {
    Write(it->second);
    files_.erase(it);
  }
}

Result<std::string> ReadLog(const std::filesystem::path& path, int64_t offset, int64_t max_bytes,
                            int64_t* next_offset) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) {
      *next_offset = 0;
      return std::string();
    }
    return std::unexpected(PosixError("open " + path.string(), errno));
  }
  struct stat st{};
  if (::fstat(fd.get(), &st) != 0) return std::unexpected(PosixError("fstat", errno));
  if (offset < 0) offset = std::max<int64_t>(0, st.st_size + offset);  // negative: from the end
  if (offset > st.st_size) offset = st.st_size;
  int64_t len = std::min<int64_t>(max_bytes, st.st_size - offset);
  std::string out(static_cast<size_t>(len), '\0');
  int64_t got = 0;
  while (got < len) {
    ssize_t n = ::pread(fd.get(), out.data() + got, static_cast<size_t>(len - got), offset + got);
    if (n < 0) {
      if (errno == EINTR) continue;
      return std::unexpected(PosixError("read " + path.string(), errno));
    }
    if (n == 0) break;
    got += n;
  }
  out.resize(static_cast<size_t>(got));
  *next_offset = offset + got;
  return out;
}

}  // namespace hearth::telemetry
