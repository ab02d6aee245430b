#include "common/encoding.h"

#include <set>
#include <thread>

#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include <gtest/gtest.h>

namespace hearth {
namespace {

TEST(EncodingTest, Base64RoundTrip) {
  struct Case { std::string plain, b64; } cases[] = {
      {"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"foobar", "Zm9vYmFy"}};
  for (const auto& c : cases) {
    EXPECT_EQ(Base64Encode(c.plain), c.b64);
    auto d = Base64Decode(c.b64);
    ASSERT_TRUE(d.has_value()) << c.b64;
    EXPECT_EQ(*d, c.plain);
  }
}

TEST(EncodingTest, Base64RejectsGarbage) {
  EXPECT_FALSE(Base64Decode("Zm9v!").has_value());
  EXPECT_FALSE(Base64Decode("Zg==Zg").has_value());
}

TEST(EncodingTest, Sha256OfEmptyIsKnown) {
  EXPECT_EQ(HexEncode(Sha256("")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Base64Encode(Sha256("")), "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
}

TEST(EncodingTest, UuidsAreV4AndUnique) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string u = NewUuid();
    ASSERT_EQ(u.size(), 36u);
    EXPECT_EQ(u[14], '4');
    EXPECT_TRUE(seen.insert(u).second);
  }
}

TEST(EncodingTest, UuidsHaveTheRfc4122Layout) {
  for (int i = 0; i < 200; ++i) {
    std::string u = NewUuid();
    for (size_t p : {8u, 13u, 18u, 23u}) EXPECT_EQ(u[p], '-') << u;
    EXPECT_NE(std::string("89ab").find(u[19]), std::string::npos) << u;  // the variant
    EXPECT_EQ(u.find_first_not_of("0123456789abcdef-"), std::string::npos) << u;
  }
}

TEST(EncodingTest, ForkedChildDrawsOtherIdsThanItsParent) {
  NewUuid();  // the parent's generator is seeded
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::string u = NewUuid();
    ssize_t w = ::write(fds[1], u.data(), u.size());
    ::_exit(w == static_cast<ssize_t>(u.size()) ? 0 : 1);
  }
  std::string parent = NewUuid();
  char buf[64];
  ssize_t n = ::read(fds[0], buf, sizeof buf);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ::close(fds[0]);
  ::close(fds[1]);
  ASSERT_EQ(n, 36);
  EXPECT_NE(std::string(buf, 36), parent);  // same draw position, different sequence
}

TEST(EncodingTest, FillRandomFillsOddSizesAndThreadsDiffer) {
  unsigned char a[13] = {}, b[13] = {};
  FillRandom(a, sizeof a);
  std::thread t([&] { FillRandom(b, sizeof b); });
  t.join();
  EXPECT_NE(std::memcmp(a, b, sizeof a), 0);
  int zeros = 0;
  for (unsigned char c : a) zeros += c == 0;
  EXPECT_LT(zeros, 5);
}

TEST(EncodingTest, LambdaTimestampFormat) {
  auto t = std::chrono::system_clock::time_point(std::chrono::milliseconds(1586545592563));
  EXPECT_EQ(FormatLambdaTimestamp(t), "2020-04-10T19:06:32.563+0000");
  EXPECT_EQ(FormatIsoTimestamp(t), "2020-04-10T19:06:32.563Z");
}

}  // namespace
}  // namespace hearth
