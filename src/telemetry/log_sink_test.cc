#include "telemetry/log_sink.h"

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

namespace hearth::telemetry {
namespace {

TEST(LogLinesTest, ReportLineMatchesLambdaFormat) {
  ReportFields f;
  f.request_id = "abc";
  f.duration_ms = 26.731;
  f.memory_size_mb = 128;
  f.max_memory_used_mb = 75;
  EXPECT_EQ(FormatReportLine(f),
            "REPORT RequestId: abc\tDuration: 26.73 ms\tBilled Duration: 27 ms\tMemory Size: 128 MB\t"
            "Max Memory Used: 75 MB\t");
  f.init_duration_ms = 841.6;
  EXPECT_EQ(FormatReportLine(f),
            "REPORT RequestId: abc\tDuration: 26.73 ms\tBilled Duration: 27 ms\tMemory Size: 128 MB\t"
            "Max Memory Used: 75 MB\tInit Duration: 841.60 ms\t");
  f.init_duration_ms = -1;
  f.status = "timeout";
  EXPECT_TRUE(FormatReportLine(f).ends_with("Status: timeout\t"));
}

TEST(LogLinesTest, StartAndEnd) {
  EXPECT_EQ(FormatStartLine("id1", "$LATEST"), "START RequestId: id1 Version: $LATEST");
  EXPECT_EQ(FormatEndLine("id1"), "END RequestId: id1");
}

TEST(LogSinkTest, AppendsAndReadsBack) {
  auto dir = std::filesystem::path(::testing::TempDir()) / "logsink_test";
  std::filesystem::remove_all(dir);
  LogSink sink(dir);
  sink.Append("f", "one\n");
  sink.Append("f", "two\n");
  int64_t next = 0;
  auto all = ReadLog(sink.PathFor("f"), 0, 1 << 20, &next);
  ASSERT_TRUE(all.has_value());
  EXPECT_EQ(*all, "one\ntwo\n");
  EXPECT_EQ(next, 8);
  auto tail = ReadLog(sink.PathFor("f"), -4, 1 << 20, &next);
  EXPECT_EQ(*tail, "two\n");
  auto from = ReadLog(sink.PathFor("f"), 4, 2, &next);
  EXPECT_EQ(*from, "tw");
  EXPECT_EQ(next, 6);
  auto missing = ReadLog(sink.PathFor("nope"), 0, 10, &next);
  ASSERT_TRUE(missing.has_value());
  EXPECT_EQ(*missing, "");
  std::filesystem::remove_all(dir);
}

TEST(LogSinkTest, WithALoopOneTurnsAppendsAreWrittenTogetherAtItsEnd) {
  auto dir = std::filesystem::path(::testing::TempDir()) / "logsink_batch_test";
  std::filesystem::remove_all(dir);
  boost::asio::io_context loop;
  LogSink sink(dir, loop.get_executor());
  int64_t next = 0;
  sink.Append("f", "START\n");
  sink.Append("g", "other\n");
  sink.Append("f", "END\n");
  EXPECT_EQ(*ReadLog(sink.PathFor("f"), 0, 1 << 20, &next), "");  // still buffered
  loop.poll();  // the end of this turn
  EXPECT_EQ(*ReadLog(sink.PathFor("f"), 0, 1 << 20, &next), "START\nEND\n");
  EXPECT_EQ(*ReadLog(sink.PathFor("g"), 0, 1 << 20, &next), "other\n");
  // Flush() writes at once (readers call it); so does the destructor.
  sink.Append("f", "REPORT\n");
  sink.Flush();
  EXPECT_EQ(*ReadLog(sink.PathFor("f"), 0, 1 << 20, &next), "START\nEND\nREPORT\n");
  {
    LogSink other(dir, loop.get_executor());
    other.Append("h", "last words\n");
  }
  EXPECT_EQ(*ReadLog(dir / "h.log", 0, 1 << 20, &next), "last words\n");
  loop.poll();  // the destroyed sink's posted flush must do nothing
  std::filesystem::remove_all(dir);
}

TEST(LogSinkTest, LargeBuffersAreWrittenWithoutWaitingForTheLoop) {
  auto dir = std::filesystem::path(::testing::TempDir()) / "logsink_big_test";
  std::filesystem::remove_all(dir);
  boost::asio::io_context loop;
  LogSink sink(dir, loop.get_executor());
  const std::string line(1000, 'x');
  for (int i = 0; i < 70; ++i) sink.Append("f", line + "\n");
  int64_t next = 0;
  auto text = ReadLog(sink.PathFor("f"), 0, 1 << 20, &next);
  EXPECT_GE(text->size(), 64u * 1024);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace hearth::telemetry
