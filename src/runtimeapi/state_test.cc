#include "runtimeapi/state.h"

#include <gtest/gtest.h>

namespace hearth::runtimeapi {
namespace {

Invocation Inv(std::string id) {
  Invocation i;
  i.request_id = std::move(id);
  i.payload = "{}";
  return i;
}

TEST(RuntimeApiStateTest, FirstNextEndsInitAndParksWithoutWork) {
  RuntimeApiState s;
  EXPECT_EQ(s.phase(), RuntimeApiState::Phase::kInit);
  EXPECT_FALSE(s.OnNext().has_value());
  EXPECT_TRUE(s.init_done());
}

TEST(RuntimeApiStateTest, QueuedInvocationIsDeliveredThenCompleted) {
  RuntimeApiState s;
  s.Queue(Inv("a"));
  auto got = s.OnNext();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->request_id, "a");
  EXPECT_EQ(s.phase(), RuntimeApiState::Phase::kInvoking);
  auto post = s.OnInvocationPost("a");
  EXPECT_EQ(post.http_status, 202);
  EXPECT_TRUE(post.completes);
  EXPECT_EQ(s.phase(), RuntimeApiState::Phase::kReady);
}

TEST(RuntimeApiStateTest, WrongRequestIdIs400) {
  RuntimeApiState s;
  s.Queue(Inv("a"));
  ASSERT_TRUE(s.OnNext());
  auto post = s.OnInvocationPost("b");
  EXPECT_EQ(post.http_status, 400);
  EXPECT_EQ(post.error_type, "InvalidRequestID");
  EXPECT_FALSE(post.completes);
  EXPECT_TRUE(s.in_flight());
}

TEST(RuntimeApiStateTest, SecondResponseForOneIdIs403) {
  RuntimeApiState s;
  s.Queue(Inv("a"));
  ASSERT_TRUE(s.OnNext());
  ASSERT_TRUE(s.OnInvocationPost("a").completes);
  auto again = s.OnInvocationPost("a");
  EXPECT_EQ(again.http_status, 403);
  EXPECT_EQ(again.error_type, "InvalidStateTransition");
}

TEST(RuntimeApiStateTest, SecondNextWhileInFlightRepeatsTheEvent) {
  RuntimeApiState s;
  s.Queue(Inv("a"));
  ASSERT_TRUE(s.OnNext());
  auto again = s.OnNext();
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->request_id, "a");
}

TEST(RuntimeApiStateTest, InitErrorOnlyDuringInit) {
  RuntimeApiState s;
  EXPECT_TRUE(s.OnInitError().completes);
  EXPECT_EQ(s.phase(), RuntimeApiState::Phase::kInitFailed);
  EXPECT_FALSE(s.OnNext().has_value());

  RuntimeApiState t;
  t.OnNext();
  auto late = t.OnInitError();
  EXPECT_EQ(late.http_status, 403);
  EXPECT_FALSE(late.completes);
}

TEST(RuntimeApiStateTest, AbortForgetsTheInvocation) {
  RuntimeApiState s;
  s.Queue(Inv("a"));
  ASSERT_TRUE(s.OnNext());
  s.Abort();
  EXPECT_FALSE(s.in_flight());
  EXPECT_EQ(s.OnInvocationPost("a").http_status, 403);
}

TEST(RuntimeApiStateTest, PostWithNothingInFlightIs400) {
  RuntimeApiState s;
  s.OnNext();
  EXPECT_EQ(s.OnInvocationPost("zzz").http_status, 400);
}

}  // namespace
}  // namespace hearth::runtimeapi
