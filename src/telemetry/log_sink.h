#pragma once
// Function logs. Each function has one log file under <data>/logs/<function>.log holding the
// lines of all its environments (whole lines only, so concurrent environments never interleave
// mid-line) together with the platform lines START / END / REPORT of section 3.7.
//
// Writes are small appends to an O_APPEND file (page cache, no fsync): bounded, so they are done
// on the event loop. Given the loop's executor, the lines appended during one turn of the loop
// are written together by a handler posted behind them (one write per function per turn instead
// of one per invocation, which a busy function pays for at every invoke); readers call Flush()
// first. Thread safety: none; use from the event loop only.

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

#include "common/status.h"
#include "common/unique_fd.h"

namespace hearth::telemetry {

struct ReportFields {
  std::string request_id;
  double duration_ms = 0;
  int memory_size_mb = 0;
  int64_t max_memory_used_mb = 0;
  double init_duration_ms = -1;  // < 0: not a cold start
  std::string status;            // "timeout", "error" or empty
};

// "REPORT RequestId: <id>\tDuration: 1.23 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\t
//  Max Memory Used: 12 MB\t[Init Duration: 3.45 ms\t][Status: timeout\t]" (no newline)
std::string FormatReportLine(const ReportFields& f);
std::string FormatStartLine(std::string_view request_id, std::string_view version);
std::string FormatEndLine(std::string_view request_id);

class LogSink {
 public:
  // Without an executor every Append() writes at once.
  explicit LogSink(std::filesystem::path dir, boost::asio::any_io_executor loop = {});
  ~LogSink();  // writes what is still buffered
  LogSink(const LogSink&) = delete;
  LogSink& operator=(const LogSink&) = delete;

  // Appends `text` (one or more whole lines, each ending in '\n') to the function's log: written
  // by the end of the current turn of the loop (at once without a loop, or past 64 KiB buffered).
  void Append(const std::string& function, std::string_view text);

  // Writes everything buffered now (before the log files are read).
  void Flush();

  // Path of a function's log file (it may not exist yet).
  std::filesystem::path PathFor(const std::string& function) const;

  // Closes the cached descriptor of a function (after DeleteFunction).
  void Forget(const std::string& function);

 private:
  struct File {
    UniqueFd fd;
    std::string pending;  // appended, not written yet
  };
  void Write(File& f);

  std::filesystem::path dir_;
  boost::asio::any_io_executor loop_;
  std::map<std::string, File, std::less<>> files_;
  std::vector<std::string> dirty_;  // functions with pending bytes
  bool flush_posted_ = false;
  std::shared_ptr<LogSink*> self_;  // the posted flush holds a weak reference
};

// Reads bytes [offset, offset+max_bytes) of a log file. Blocking: call off the event loop.
// Returns the text and sets *next_offset. A missing file reads as empty.
Result<std::string> ReadLog(const std::filesystem::path& path, int64_t offset, int64_t max_bytes,
                            int64_t* next_offset);

}  // namespace hearth::telemetry
