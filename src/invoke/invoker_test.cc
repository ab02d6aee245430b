#include "invoke/invoker.h"

#include <regex>
#include <set>

#include <gtest/gtest.h>

namespace hearth::invoke {
namespace {

TEST(NewTraceIdTest, XRayHeaderLayoutWithTheGivenTime) {
  const std::string t = NewTraceId(0x5f0e1d2c);
  EXPECT_TRUE(std::regex_match(t, std::regex("Root=1-5f0e1d2c-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0")))
      << t;
  EXPECT_TRUE(NewTraceId(0x1).starts_with("Root=1-00000001-"));
}

TEST(NewTraceIdTest, EachTraceIsNew) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(seen.insert(NewTraceId(1700000000)).second);
}

}  // namespace
}  // namespace hearth::invoke
