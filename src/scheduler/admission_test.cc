#include "scheduler/admission.h"

#include <gtest/gtest.h>

#include "scheduler/capacity.h"

namespace hearth::scheduler {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

std::string ReasonOf(const Status& st) { return st.ok() ? "" : st.detail(); }

TEST(ConcurrencyLimitsTest, ReservedIsACapAndExactlyKAreThrottled) {
  ConcurrencyLimits l(1000);
  l.SetReserved("f", 5);
  int ok = 0, throttled = 0;
  for (int i = 0; i < 8; ++i) {
    Status st = l.TryAcquire("f");
    if (st.ok()) {
      ++ok;
    } else {
      ++throttled;
      EXPECT_EQ(st.code(), StatusCode::kResourceExhausted);
      EXPECT_EQ(ReasonOf(st), kReasonReservedLimit);
      EXPECT_EQ(st.message(), "Rate Exceeded.");
    }
  }
  EXPECT_EQ(ok, 5);
  EXPECT_EQ(throttled, 3);
  EXPECT_EQ(l.in_flight("f"), 5);
  l.Release("f");
  EXPECT_TRUE(l.TryAcquire("f").ok());
  EXPECT_FALSE(l.TryAcquire("f").ok());
}

TEST(ConcurrencyLimitsTest, ReservedZeroDisablesInvocation) {
  ConcurrencyLimits l(1000);
  l.SetReserved("off", 0);
  EXPECT_EQ(ReasonOf(l.TryAcquire("off")), kReasonReservedLimit);
  EXPECT_EQ(l.in_flight(), 0);
}

TEST(ConcurrencyLimitsTest, ReservedIsAGuaranteeOthersCannotUse) {
  ConcurrencyLimits l(150);
  l.SetReserved("vip", 50);
  EXPECT_EQ(l.unreserved(), 100);
  // Unreserved functions share the 100 left.
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(l.TryAcquire(i % 2 ? "a" : "b").ok()) << i;
  EXPECT_EQ(ReasonOf(l.TryAcquire("a")), kReasonAccountLimit);
  EXPECT_EQ(ReasonOf(l.TryAcquire("c")), kReasonAccountLimit);
  // The reserved function still gets all 50 of its own.
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(l.TryAcquire("vip").ok()) << i;
  EXPECT_EQ(ReasonOf(l.TryAcquire("vip")), kReasonReservedLimit);
  EXPECT_EQ(l.in_flight(), 150);
  l.Release("b");
  EXPECT_TRUE(l.TryAcquire("c").ok());
}

TEST(ConcurrencyLimitsTest, HundredMustStayUnreserved) {
  ConcurrencyLimits l(1000);
  EXPECT_TRUE(l.CheckReserved("f", 900).ok());
  Status st = l.CheckReserved("f", 901);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(st.message(),
            "Specified ReservedConcurrentExecutions for function decreases account's "
            "UnreservedConcurrentExecution below its minimum value of [100].");
  l.SetReserved("f", 600);
  EXPECT_FALSE(l.CheckReserved("g", 301).ok());
  EXPECT_TRUE(l.CheckReserved("g", 300).ok());
  // Changing a function's own reservation does not count it twice.
  EXPECT_TRUE(l.CheckReserved("f", 900).ok());
  l.SetReserved("f", std::nullopt);
  EXPECT_EQ(l.unreserved(), 1000);
  EXPECT_FALSE(l.reserved("f").has_value());
}

TEST(ConcurrencyLimitsTest, ProvisionedWithinReservedAndCountsAgainstTheAccount) {
  ConcurrencyLimits l(1000);
  l.SetReserved("r", 10);
  EXPECT_TRUE(l.CheckProvisioned("r", 10).ok());
  EXPECT_EQ(l.CheckProvisioned("r", 11).code(), StatusCode::kInvalidArgument);
  l.SetProvisioned("r", 4);
  EXPECT_EQ(l.CheckReserved("r", 3).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(l.unreserved(), 990);  // provisioned inside a reservation is not counted twice

  l.SetProvisioned("p", 40);  // no reservation: taken from the pool
  EXPECT_EQ(l.unreserved(), 950);
  EXPECT_EQ(l.CheckProvisioned("q", 851).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(l.CheckProvisioned("q", 850).ok());
}

TEST(ConcurrencyLimitsTest, ProvisionedSlotsAreTheFunctionsOwnThenThePool) {
  ConcurrencyLimits l(110);
  l.SetProvisioned("p", 10);  // pool: 100
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(l.TryAcquire("other").ok());
  EXPECT_EQ(ReasonOf(l.TryAcquire("other")), kReasonAccountLimit);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(l.TryAcquire("p").ok()) << i;  // its own slots
  EXPECT_EQ(ReasonOf(l.TryAcquire("p")), kReasonAccountLimit);            // spill-over: pool full
  l.Release("other");
  EXPECT_TRUE(l.TryAcquire("p").ok());  // spill-over into the pool
  EXPECT_EQ(l.pool_in_use(), 100);
  l.Release("p");
  EXPECT_EQ(l.pool_in_use(), 99);
}

TEST(ConcurrencyLimitsTest, ForgetDropsReservationButInFlightStillReleases) {
  ConcurrencyLimits l(1000);
  l.SetReserved("f", 2);
  ASSERT_TRUE(l.TryAcquire("f").ok());
  l.Forget("f");
  EXPECT_EQ(l.unreserved(), 1000);
  EXPECT_EQ(l.in_flight(), 1);
  l.Release("f");
  EXPECT_EQ(l.in_flight(), 0);
  l.Release("f");  // unbalanced release is ignored
  EXPECT_EQ(l.in_flight(), 0);
}

TEST(TokenBucketTest, RefillsContinuouslyAndDoesNotBank) {
  std::chrono::steady_clock::time_point t{};
  TokenBucket b(1000, seconds(10), t);
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(b.TryTake(t)) << i;
  EXPECT_FALSE(b.TryTake(t));
  t += milliseconds(10);  // 1 token per 10 ms
  EXPECT_TRUE(b.TryTake(t));
  EXPECT_FALSE(b.TryTake(t));
  t += seconds(5);
  EXPECT_NEAR(b.tokens(t), 500, 1e-6);
  t += seconds(3600);  // an hour idle: still one bucket, not 360,000 tokens
  EXPECT_NEAR(b.tokens(t), 1000, 1e-6);
  EXPECT_TRUE(b.Full(t));
}

TEST(MemoryGateTest, AdmitsOnMeasuredMemoryAndLearnedFootprint) {
  int64_t available = int64_t{1} << 30;  // 1 GiB
  MemoryGate g([&] { return available; }, MemoryPolicy{.reserve_bytes = int64_t{256} << 20,
                                                       .default_estimate_bytes = int64_t{64} << 20});
  // 1024 - 256 = 768 MiB to hand out at 64 MiB each: 12 starts.
  std::vector<int64_t> held;
  for (int i = 0; i < 12; ++i) {
    int64_t r = g.TryReserve("f", 128);
    ASSERT_GT(r, 0) << i;
    held.push_back(r);
  }
  EXPECT_EQ(g.TryReserve("f", 128), 0);
  // The 12 finished starting: their real footprint (learned, 4 MiB) shows in MemAvailable.
  for (int64_t r : held) g.Unreserve(r);
  g.Learn("f", int64_t{4} << 20);
  available -= 12 * (int64_t{4} << 20);
  EXPECT_EQ(g.Estimate("f", 128), int64_t{4} << 20);
  int n = 0;
  while (g.TryReserve("f", 128) > 0) ++n;
  EXPECT_EQ(n, (1024 - 256 - 48) / 4);  // 180
  // A function never measured uses the default, capped by its MemorySize.
  EXPECT_EQ(g.Estimate("g", 128), int64_t{64} << 20);
  EXPECT_EQ(g.Estimate("g", 32), int64_t{32} << 20);
  // The largest peak seen wins.
  g.Learn("f", int64_t{2} << 20);
  EXPECT_EQ(g.Estimate("f", 128), int64_t{4} << 20);
  g.Forget("f");
  EXPECT_EQ(g.Estimate("f", 128), int64_t{64} << 20);
}

TEST(CapacityTest, DerivedFromTheTightestHostLimit) {
  HostFacts f{.mem_total_bytes = int64_t{24} << 30,
              .open_files_limit = 20000,
              .pid_max = 32768,
              .threads_max = 192730};
  std::string why;
  // fds: (20000 - 1024) / 12 = 1581; processes: (32768 - 1024) / 8 = 3968; memory: 3072.
  EXPECT_EQ(DeriveMaxEnvironments(f, {}, &why), 1581);
  EXPECT_NE(why.find("open files"), std::string::npos) << why;
  f.open_files_limit = 1 << 20;
  EXPECT_EQ(DeriveMaxEnvironments(f, {}, &why), 3072);
  EXPECT_NE(why.find("memory"), std::string::npos) << why;
  f.pid_max = 4096;
  EXPECT_EQ(DeriveMaxEnvironments(f), (4096 - 1024) / 8);
  EXPECT_EQ(DeriveMaxEnvironments(HostFacts{}), 256);  // nothing known: the old default
  EXPECT_GE(DeriveMaxEnvironments(HostFacts{.open_files_limit = 10}), 1);
}

TEST(CapacityTest, ReadsThisHost) {
  HostFacts f = ReadHostFacts();
  EXPECT_GT(f.mem_total_bytes, 0);
  EXPECT_GT(f.open_files_limit, 0);
  EXPECT_GT(f.pid_max, 0);
  EXPECT_GT(ReadMemAvailable(), 0);
  EXPECT_LE(ReadMemAvailable(), f.mem_total_bytes);
}

}  // namespace
}  // namespace hearth::scheduler
