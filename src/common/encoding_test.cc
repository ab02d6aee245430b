#include "common/encoding.h"

#include <set>

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

TEST(EncodingTest, LambdaTimestampFormat) {
  auto t = std::chrono::system_clock::time_point(std::chrono::milliseconds(1586545592563));
  EXPECT_EQ(FormatLambdaTimestamp(t), "2020-04-10T19:06:32.563+0000");
  EXPECT_EQ(FormatIsoTimestamp(t), "2020-04-10T19:06:32.563Z");
}

}  // namespace
}  // namespace hearth
