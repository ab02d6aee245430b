#pragma once
// Function logs. Each function has one log file under <data>/logs/<function>.log holding the
// lines of all its environments (whole lines only, so concurrent environments never interleave
// mid-line) together with the platform lines START / END / REPORT of section 3.7.
//
// Writes are small appends to an O_APPEND file (page cache, no fsync): bounded, so they are done
// on the event loop. Thread safety: none; use from the event loop only.

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>

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
  explicit LogSink(std::filesystem::path dir);

  // Appends `text` (one or more whole lines, each ending in '\n') to the function's log.
  void Append(const std::string& function, std::string_view text);

  // Path of a function's log file (it may not exist yet).
  std::filesystem::path PathFor(const std::string& function) const;

  // Closes the cached descriptor of a function (after DeleteFunction).
  void Forget(const std::string& function);

 private:
  std::filesystem::path dir_;
  std::map<std::string, UniqueFd, std::less<>> files_;
};

// Reads bytes [offset, offset+max_bytes) of a log file. Blocking: call off the event loop.
// Returns the text and sets *next_offset. A missing file reads as empty.
Result<std::string> ReadLog(const std::filesystem::path& path, int64_t offset, int64_t max_bytes,
                            int64_t* next_offset);

}  // namespace hearth::telemetry
