#include "common/status.h"

#include <cerrno>

#include <gtest/gtest.h>

namespace hearth {
namespace {

TEST(StatusTest, OkByDefault) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.ToString(), "OK");
}

TEST(StatusTest, PosixErrorMapsErrno) {
  Status s = PosixError("open '/x'", ENOENT);
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.err(), ENOENT);
  EXPECT_NE(s.message().find("open '/x'"), std::string::npos);
  EXPECT_EQ(PosixError("x", EACCES).code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(PosixError("x", EIO).code(), StatusCode::kIOError);
}

TEST(StatusTest, ThrottleCarriesReason) {
  Status s = Status::ResourceExhausted("Rate Exceeded.", "ConcurrentInvocationLimitExceeded");
  EXPECT_EQ(s.detail(), "ConcurrentInvocationLimitExceeded");
}

}  // namespace
}  // namespace hearth
