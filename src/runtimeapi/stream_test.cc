// Response streaming in the Runtime API state machine, and the stream bandwidth limit.

#include <gtest/gtest.h>

#include "runtimeapi/state.h"
#include "runtimeapi/stream.h"

namespace hearth::runtimeapi {
namespace {

using std::chrono::microseconds;

RuntimeApiState InFlight(const std::string& id) {
  RuntimeApiState s;
  Invocation inv;
  inv.request_id = id;
  s.Queue(std::move(inv));
  EXPECT_TRUE(s.OnNext().has_value());
  return s;
}

TEST(StreamStateTest, StreamKeepsInvocationInFlightUntilItEnds) {
  RuntimeApiState s = InFlight("a");
  auto begin = s.OnStreamBegin("a");
  EXPECT_EQ(begin.http_status, 202);
  EXPECT_FALSE(begin.completes);
  EXPECT_TRUE(s.streaming());
  EXPECT_TRUE(s.in_flight());
  EXPECT_EQ(s.phase(), RuntimeApiState::Phase::kInvoking);
  auto end = s.OnStreamEnd("a");
  EXPECT_EQ(end.http_status, 202);
  EXPECT_TRUE(end.completes);
  EXPECT_FALSE(s.streaming());
  EXPECT_FALSE(s.in_flight());
  EXPECT_EQ(s.phase(), RuntimeApiState::Phase::kReady);
  // A post after the stream ended is a second answer.
  EXPECT_EQ(s.OnInvocationPost("a").http_status, 403);
  EXPECT_EQ(s.OnStreamBegin("a").http_status, 403);
}

TEST(StreamStateTest, PostsDuringAStreamAreRefused) {
  RuntimeApiState s = InFlight("a");
  ASSERT_EQ(s.OnStreamBegin("a").http_status, 202);
  auto second = s.OnStreamBegin("a");
  EXPECT_EQ(second.http_status, 403);
  EXPECT_EQ(second.error_type, "InvalidStateTransition");
  auto error = s.OnInvocationPost("a");  // e.g. /error while the response streams
  EXPECT_EQ(error.http_status, 403);
  EXPECT_FALSE(error.completes);
  EXPECT_TRUE(s.streaming());
  EXPECT_TRUE(s.OnStreamEnd("a").completes);
}

TEST(StreamStateTest, WrongIdIsRefusedAndAbortEndsTheStream) {
  RuntimeApiState s = InFlight("a");
  auto wrong = s.OnStreamBegin("b");
  EXPECT_EQ(wrong.http_status, 400);
  EXPECT_EQ(wrong.error_type, "InvalidRequestID");
  EXPECT_FALSE(s.streaming());
  ASSERT_EQ(s.OnStreamBegin("a").http_status, 202);
  s.Abort();  // timeout or crash while streaming
  EXPECT_FALSE(s.streaming());
  auto end = s.OnStreamEnd("a");
  EXPECT_FALSE(end.completes);
  EXPECT_EQ(end.http_status, 403);
}

TEST(StreamStateTest, StreamWithoutInvocationIsRefused) {
  RuntimeApiState s;
  EXPECT_FALSE(s.OnNext().has_value());
  EXPECT_EQ(s.OnStreamBegin("x").http_status, 400);
  EXPECT_FALSE(s.OnStreamEnd("x").completes);
}

TEST(StreamThrottleTest, BurstIsFreeThenTwoMebibytesPerSecond) {
  EXPECT_EQ(StreamThrottleDelay(0, microseconds(0)).count(), 0);
  EXPECT_EQ(StreamThrottleDelay(kStreamBurstBytes, microseconds(0)).count(), 0);
  // 2 MiB beyond the burst may not go out before one second has passed since the start.
  EXPECT_EQ(StreamThrottleDelay(kStreamBurstBytes + (2 << 20), microseconds(0)),
            microseconds(1000000));
  EXPECT_EQ(StreamThrottleDelay(kStreamBurstBytes + (2 << 20), microseconds(400000)),
            microseconds(600000));
  EXPECT_EQ(StreamThrottleDelay(kStreamBurstBytes + (2 << 20), microseconds(1500000)).count(), 0);
  // The whole 200 MiB cannot take less than (200 - 6) / 2 = 97 s.
  EXPECT_EQ(StreamThrottleDelay(kMaxStreamedResponseBytes, microseconds(0)),
            microseconds(97000000));
}

}  // namespace
}  // namespace hearth::runtimeapi
