#include "api/arn.h"

#include <gtest/gtest.h>

#include <string>

namespace hearth::api {
namespace {

struct GoodRefCase {
  std::string text;
  std::string name;
  std::string qualifier;
};

class ParseFunctionRefGoodTest : public ::testing::TestWithParam<GoodRefCase> {};

TEST_P(ParseFunctionRefGoodTest, Parses) {
  const GoodRefCase& c = GetParam();
  Result<FunctionRef> ref = ParseFunctionRef(c.text);
  ASSERT_TRUE(ref.has_value()) << c.text << ": " << ref.error().ToString();
  EXPECT_EQ(ref->name, c.name);
  EXPECT_EQ(ref->qualifier, c.qualifier);
}

INSTANTIATE_TEST_SUITE_P(
    Forms, ParseFunctionRefGoodTest,
    ::testing::Values(
        GoodRefCase{"my-function", "my-function", ""},
        GoodRefCase{"My_Function-2", "My_Function-2", ""},
        GoodRefCase{std::string(64, 'a'), std::string(64, 'a'), ""},
        GoodRefCase{"f:$LATEST", "f", "$LATEST"}, GoodRefCase{"f:1", "f", "1"},
        GoodRefCase{"f:1234567890", "f", "1234567890"}, GoodRefCase{"f:prod", "f", "prod"},
        GoodRefCase{"f:v1-blue_green", "f", "v1-blue_green"},
        GoodRefCase{"f:" + std::string(128, 'a'), "f", std::string(128, 'a')},
        GoodRefCase{"123456789012:function:f", "f", ""},
        GoodRefCase{"123456789012:function:f:7", "f", "7"},
        GoodRefCase{"arn:aws:lambda:us-east-1:123456789012:function:f", "f", ""},
        GoodRefCase{"arn:aws:lambda:us-east-1:123456789012:function:f:$LATEST", "f", "$LATEST"},
        GoodRefCase{"arn:aws:lambda:us-east-1:123456789012:function:f:live", "f", "live"},
        GoodRefCase{"arn:aws-cn:lambda:cn-north-1:123456789012:function:f", "f", ""},
        GoodRefCase{"arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:f:3", "f", "3"},
        GoodRefCase{"arn:aws-iso-b:lambda:us-isob-east-1:123456789012:function:f", "f", ""},
        GoodRefCase{"arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:" +
                        std::string(64, 'n') + ":" + std::string(128, 'q'),
                    std::string(64, 'n'), std::string(128, 'q')}));

struct BadRefCase {
  std::string text;
  std::string fragment;  // expected in the message
};

class ParseFunctionRefBadTest : public ::testing::TestWithParam<BadRefCase> {};

constexpr const char* kPatternFragment =
    "failed to satisfy constraint: Member must satisfy regular expression pattern: "
    R"((arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\d{1}:)?(\d{12}:)?(function:)?)"
    R"(([a-zA-Z0-9-_\.]+)(:(\$LATEST|[a-zA-Z0-9-_]+))?)";

TEST_P(ParseFunctionRefBadTest, RejectsWithValidationException) {
  const BadRefCase& c = GetParam();
  Result<FunctionRef> ref = ParseFunctionRef(c.text);
  ASSERT_FALSE(ref.has_value()) << c.text;
  EXPECT_EQ(ref.error().code(), StatusCode::kValidation) << c.text;
  EXPECT_NE(ref.error().message().find(c.fragment), std::string::npos)
      << c.text << " -> " << ref.error().message();
  EXPECT_EQ(ref.error().message().rfind("1 validation error detected: Value '" + c.text +
                                            "' at 'functionName' failed to satisfy constraint: ",
                                        0),
            0u)
      << ref.error().message();
}

INSTANTIATE_TEST_SUITE_P(
    Forms, ParseFunctionRefBadTest,
    ::testing::Values(
        BadRefCase{"", "Member must have length greater than or equal to 1"},
        BadRefCase{std::string(65, 'a'), "Member must have length less than or equal to 64"},
        BadRefCase{std::string(257, 'a'), "Member must have length less than or equal to 256"},
        BadRefCase{"a b", kPatternFragment}, BadRefCase{"a.b", kPatternFragment},
        BadRefCase{"arn:aws:s3:::x", kPatternFragment}, BadRefCase{":::", kPatternFragment},
        BadRefCase{":", kPatternFragment}, BadRefCase{"f:", kPatternFragment},
        BadRefCase{":q", kPatternFragment}, BadRefCase{"f:$LATES", kPatternFragment},
        BadRefCase{"f:12345678901", kPatternFragment},  // 11 digits: not a version
        BadRefCase{"f:" + std::string(129, 'a'), kPatternFragment},
        BadRefCase{"f:a:b", kPatternFragment},
        BadRefCase{"12345678901:function:f", kPatternFragment},
        BadRefCase{"123456789012:layer:f", kPatternFragment},
        BadRefCase{"arn:aws:lambda:us-east-1:123456789012:function", kPatternFragment},
        BadRefCase{"arn:aws:lambda:us-east-1:123456789012:layer:f:1", kPatternFragment},
        BadRefCase{"arn:gcp:lambda:us-east-1:123456789012:function:f", kPatternFragment},
        BadRefCase{"arn:aws:lambda:useast1:123456789012:function:f", kPatternFragment},
        BadRefCase{"arn:aws:lambda:us-east-1:12345:function:f", kPatternFragment},
        BadRefCase{"arn:aws:lambda:us-east-1:123456789012:function:f:1:2", kPatternFragment},
        BadRefCase{"arn:aws:lambda:us-east-1:123456789012:function:" + std::string(65, 'a'),
                   "Member must have length less than or equal to 64"}));

TEST(ArnTest, PatternMessageIsExactlyAws) {
  Result<FunctionRef> ref = ParseFunctionRef("a b");
  ASSERT_FALSE(ref.has_value());
  EXPECT_EQ(ref.error().message(),
            std::string("1 validation error detected: Value 'a b' at 'functionName' ") +
                kPatternFragment);
}

TEST(ArnTest, FunctionArn) {
  EXPECT_EQ(FunctionArn("us-east-1", "123456789012", "f"),
            "arn:aws:lambda:us-east-1:123456789012:function:f");
  EXPECT_EQ(FunctionArn("eu-west-1", "000000000000", "f", "$LATEST"),
            "arn:aws:lambda:eu-west-1:000000000000:function:f:$LATEST");
  EXPECT_EQ(FunctionArn("eu-west-1", "000000000000", "f", "prod"),
            "arn:aws:lambda:eu-west-1:000000000000:function:f:prod");
}

TEST(ArnTest, FunctionArnRoundTrips) {
  std::string arn = FunctionArn("ap-southeast-2", "123456789012", "fn_1", "42");
  Result<FunctionRef> ref = ParseFunctionRef(arn);
  ASSERT_TRUE(ref.has_value());
  EXPECT_EQ(ref->name, "fn_1");
  EXPECT_EQ(ref->qualifier, "42");
}

struct MergeCase {
  std::string text;
  std::string query;
  StatusCode code;        // kOk when the merge succeeds
  std::string qualifier;  // on success
  std::string fragment;   // on failure
};

class MergeQualifierTest : public ::testing::TestWithParam<MergeCase> {};

TEST_P(MergeQualifierTest, Merges) {
  const MergeCase& c = GetParam();
  Result<FunctionRef> ref = ParseFunctionRef(c.text);
  ASSERT_TRUE(ref.has_value());
  Result<FunctionRef> merged = MergeQualifier(*ref, c.query);
  if (c.code == StatusCode::kOk) {
    ASSERT_TRUE(merged.has_value()) << merged.error().ToString();
    EXPECT_EQ(merged->name, ref->name);
    EXPECT_EQ(merged->qualifier, c.qualifier);
  } else {
    ASSERT_FALSE(merged.has_value());
    EXPECT_EQ(merged.error().code(), c.code);
    EXPECT_NE(merged.error().message().find(c.fragment), std::string::npos)
        << merged.error().message();
  }
}

constexpr const char* kMismatch =
    "The derived qualifier from the function name does not match the specified qualifier.";

INSTANTIATE_TEST_SUITE_P(
    Cases, MergeQualifierTest,
    ::testing::Values(
        MergeCase{"f", "", StatusCode::kOk, "", ""}, MergeCase{"f", "1", StatusCode::kOk, "1", ""},
        MergeCase{"f", "$LATEST", StatusCode::kOk, "$LATEST", ""},
        MergeCase{"f:prod", "", StatusCode::kOk, "prod", ""},
        MergeCase{"f:prod", "prod", StatusCode::kOk, "prod", ""},
        MergeCase{"arn:aws:lambda:us-east-1:123456789012:function:f:3", "3", StatusCode::kOk, "3",
                  ""},
        MergeCase{"f:prod", "dev", StatusCode::kInvalidArgument, "", kMismatch},
        MergeCase{"f:1", "$LATEST", StatusCode::kInvalidArgument, "", kMismatch},
        MergeCase{"f", "a b", StatusCode::kValidation, "",
                  "1 validation error detected: Value 'a b' at 'qualifier' failed to satisfy "
                  "constraint: Member must satisfy regular expression pattern: "
                  "(|[a-zA-Z0-9$_-]+)"},
        MergeCase{"f", "$NEWEST", StatusCode::kValidation, "", "at 'qualifier'"},
        MergeCase{"f", std::string(129, 'a'), StatusCode::kValidation, "",
                  "at 'qualifier' failed to satisfy constraint: Member must have length less "
                  "than or equal to 128"}));

struct ScopeCase {
  std::string text;
  StatusCode code;
  std::string fragment;
};

class CheckArnScopeTest : public ::testing::TestWithParam<ScopeCase> {};

TEST_P(CheckArnScopeTest, Checks) {
  const ScopeCase& c = GetParam();
  Status st = CheckArnScope(c.text, "us-east-1", "123456789012");
  EXPECT_EQ(st.code(), c.code) << c.text << ": " << st.ToString();
  EXPECT_NE(st.message().find(c.fragment), std::string::npos) << st.message();
}

INSTANTIATE_TEST_SUITE_P(
    Cases, CheckArnScopeTest,
    ::testing::Values(
        ScopeCase{"f", StatusCode::kOk, ""}, ScopeCase{"f:1", StatusCode::kOk, ""},
        ScopeCase{"123456789012:function:f", StatusCode::kOk, ""},
        ScopeCase{"arn:aws:lambda:us-east-1:123456789012:function:f:prod", StatusCode::kOk, ""},
        ScopeCase{"arn:aws:lambda:us-west-2:123456789012:function:f", StatusCode::kInvalidArgument,
                  "Functions from 'us-west-2' are not reachable in this region ('us-east-1')"},
        ScopeCase{"arn:aws:lambda:us-east-1:999999999999:function:f", StatusCode::kInvalidArgument,
                  "'999999999999'"},
        ScopeCase{"999999999999:function:f", StatusCode::kInvalidArgument, "'123456789012'"},
        ScopeCase{"a b", StatusCode::kValidation, "at 'functionName'"}));

TEST(ArnTest, QualifierPredicates) {
  EXPECT_TRUE(IsValidQualifier("$LATEST"));
  EXPECT_TRUE(IsVersionNumber("1"));
  EXPECT_FALSE(IsVersionNumber("v1"));
  EXPECT_FALSE(IsValidAliasName("123"));  // digits only: a version, not an alias
  EXPECT_TRUE(IsValidAliasName("1a"));
  EXPECT_FALSE(IsValidAliasName(""));
  EXPECT_TRUE(IsValidFunctionName(std::string(64, 'x')));
  EXPECT_FALSE(IsValidFunctionName(std::string(65, 'x')));
  EXPECT_FALSE(IsValidFunctionName("a:b"));
}

}  // namespace
}  // namespace hearth::api
