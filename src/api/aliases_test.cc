#include "api/aliases.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace hearth::api {
namespace {

namespace json = boost::json;

Result<AliasRequest> Parse(std::string_view text, bool create = true) {
  return ParseAliasRequest(json::parse(text), create);
}

TEST(AliasRequestTest, ParsesCreateBody) {
  auto r = Parse(R"({"Name":"live","FunctionVersion":"1","Description":"d",
                     "RoutingConfig":{"AdditionalVersionWeights":{"2":0.25}}})");
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(*r->name, "live");
  EXPECT_EQ(*r->function_version, "1");
  EXPECT_EQ(*r->description, "d");
  ASSERT_TRUE(r->routing);
  EXPECT_EQ(r->routing->first, "2");
  EXPECT_DOUBLE_EQ(r->routing->second, 0.25);
}

TEST(AliasRequestTest, CreateNeedsNameAndVersion) {
  EXPECT_EQ(Parse(R"({"FunctionVersion":"1"})").error().code(), StatusCode::kValidation);
  EXPECT_EQ(Parse(R"({"Name":"a"})").error().code(), StatusCode::kValidation);
  // Update needs neither.
  EXPECT_TRUE(Parse(R"({})", false));
}

TEST(AliasRequestTest, NameRules) {
  EXPECT_TRUE(ValidateAliasName("PROD-1_x").ok());
  EXPECT_EQ(ValidateAliasName("").code(), StatusCode::kValidation);
  EXPECT_EQ(ValidateAliasName("123").code(), StatusCode::kValidation);  // purely numeric
  EXPECT_EQ(ValidateAliasName("a.b").code(), StatusCode::kValidation);
  EXPECT_EQ(ValidateAliasName(std::string(128, 'a')).code(), StatusCode::kOk);
  Status long_name = ValidateAliasName(std::string(129, 'a'));
  EXPECT_EQ(long_name.code(), StatusCode::kValidation);
  EXPECT_NE(long_name.message().find("less than or equal to 128"), std::string::npos);
  EXPECT_EQ(Parse(R"({"Name":"42","FunctionVersion":"1"})").error().code(),
            StatusCode::kValidation);
}

TEST(AliasRequestTest, FunctionVersionMustBeLatestOrNumber) {
  EXPECT_TRUE(Parse(R"({"Name":"a","FunctionVersion":"$LATEST"})"));
  EXPECT_EQ(Parse(R"({"Name":"a","FunctionVersion":"other"})").error().code(),
            StatusCode::kValidation);  // an alias cannot point to an alias
}

TEST(AliasRequestTest, RoutingErrorsAsLambda) {
  auto two = Parse(R"({"Name":"a","FunctionVersion":"1",
                       "RoutingConfig":{"AdditionalVersionWeights":{"2":0.1,"3":0.1}}})");
  ASSERT_FALSE(two);
  EXPECT_EQ(two.error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(two.error().message(),
            "Number of items in AdditionalVersionWeights cannot be greater than 1");
  for (const char* w : {"1.5", "-0.1"}) {
    auto bad = Parse(std::string(R"({"Name":"a","FunctionVersion":"1","RoutingConfig":)") +
                     R"({"AdditionalVersionWeights":{"2":)" + w + "}}}");
    ASSERT_FALSE(bad) << w;
    EXPECT_EQ(bad.error().code(), StatusCode::kValidation) << w;
  }
  auto key = Parse(R"({"Name":"a","FunctionVersion":"1",
                       "RoutingConfig":{"AdditionalVersionWeights":{"x":0.1}}})");
  EXPECT_EQ(key.error().code(), StatusCode::kValidation);
  auto type = Parse(R"({"Name":"a","FunctionVersion":"1","RoutingConfig":[]})");
  EXPECT_EQ(type.error().code(), StatusCode::kInvalidContent);
  // Edges are allowed.
  EXPECT_TRUE(Parse(R"({"Name":"a","FunctionVersion":"1",
                        "RoutingConfig":{"AdditionalVersionWeights":{"2":0}}})"));
  EXPECT_TRUE(Parse(R"({"Name":"a","FunctionVersion":"1",
                        "RoutingConfig":{"AdditionalVersionWeights":{"2":1}}})"));
}

TEST(AliasRequestTest, CrossFieldRules) {
  config::AliasConfig a;
  auto same = Parse(R"({"Name":"a","FunctionVersion":"1",
                        "RoutingConfig":{"AdditionalVersionWeights":{"1":0.5}}})");
  ASSERT_TRUE(same);
  Status st = ApplyAliasRequest(*same, &a);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(st.message(), "Function version 1 is already included in routing configuration.");
  EXPECT_TRUE(a.name.empty());  // unchanged on error

  auto latest = Parse(R"({"Name":"a","FunctionVersion":"$LATEST",
                          "RoutingConfig":{"AdditionalVersionWeights":{"1":0.5}}})");
  st = ApplyAliasRequest(*latest, &a);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(st.message(), "$LATEST is not supported for an alias pointing to more than 1 version");
}

TEST(AliasRequestTest, UpdateKeepsOrClearsRouting) {
  config::AliasConfig a{.function_name = "f",
                        .name = "live",
                        .function_version = "1",
                        .additional_version = "2",
                        .additional_weight = 0.1};
  auto move = Parse(R"({"FunctionVersion":"3"})", false);
  ASSERT_TRUE(ApplyAliasRequest(*move, &a).ok());
  EXPECT_EQ(a.function_version, "3");
  EXPECT_EQ(a.additional_version, "2");
  auto clear = Parse(R"({"RoutingConfig":{"AdditionalVersionWeights":{}}})", false);
  ASSERT_TRUE(ApplyAliasRequest(*clear, &a).ok());
  EXPECT_TRUE(a.additional_version.empty());
}

TEST(AliasRenderTest, Shape) {
  config::AliasConfig a{.function_name = "f",
                        .name = "live",
                        .function_version = "1",
                        .description = "d",
                        .revision_id = "r"};
  json::object o = RenderAlias(a, "us-east-1", "000000000000");
  EXPECT_EQ(o["AliasArn"], "arn:aws:lambda:us-east-1:000000000000:function:f:live");
  EXPECT_EQ(o["FunctionVersion"], "1");
  EXPECT_EQ(o["RevisionId"], "r");
  EXPECT_FALSE(o.contains("RoutingConfig"));
  a.additional_version = "2";
  a.additional_weight = 0.5;
  o = RenderAlias(a, "us-east-1", "000000000000");
  EXPECT_EQ(o["RoutingConfig"].at("AdditionalVersionWeights").at("2").as_double(), 0.5);
}

}  // namespace
}  // namespace hearth::api
