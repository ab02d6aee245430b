#include "api/invoke_headers.h"

#include <gtest/gtest.h>

#include "common/encoding.h"

namespace hearth::api {
namespace {

TEST(InvokeHeaders, InvocationTypesWithLambdasEnumMessage) {
  EXPECT_TRUE(CheckInvocationType("", true).ok());
  EXPECT_TRUE(CheckInvocationType("Event", true).ok());
  EXPECT_TRUE(CheckInvocationType("DryRun", false).ok());
  Status st = CheckInvocationType("Event", /*event_allowed=*/false);
  EXPECT_EQ(st.code(), StatusCode::kValidation);
  EXPECT_NE(st.message().find("Value 'Event' at 'invocationType'"), std::string::npos);
  EXPECT_NE(st.message().find("[RequestResponse, DryRun]"), std::string::npos) << st.message();
  st = CheckInvocationType("Later", true);
  EXPECT_NE(st.message().find("[Event, RequestResponse, DryRun]"), std::string::npos) << st.message();
}

TEST(InvokeHeaders, LogTypes) {
  EXPECT_TRUE(CheckLogType("").ok());
  EXPECT_TRUE(CheckLogType("Tail").ok());
  Status st = CheckLogType("All");
  EXPECT_EQ(st.code(), StatusCode::kValidation);
  EXPECT_NE(st.message().find("Value 'All' at 'logType'"), std::string::npos);
}

TEST(InvokeHeaders, ClientContextMustBeBase64OfAJsonObjectWithinTheLimit) {
  EXPECT_EQ(DecodeClientContext("").value(), "");
  const std::string obj = R"({"custom":{"a":1}})";
  EXPECT_EQ(DecodeClientContext(Base64Encode(obj)).value(), obj);
  EXPECT_FALSE(DecodeClientContext("not base64!").has_value());
  EXPECT_FALSE(DecodeClientContext(Base64Encode("[1,2]")).has_value());
  auto big = DecodeClientContext(Base64Encode("{\"k\":\"" + std::string(3000, 'x') + "\"}"));
  ASSERT_FALSE(big.has_value());
  EXPECT_EQ(big.error().message(), "Client context must be a valid Base64-encoded JSON object.");
}

TEST(InvokeHeaders, PayloadMustBeJson) {
  EXPECT_TRUE(ValidateJsonPayload(R"({"a":[1,2,3]})").ok());
  EXPECT_TRUE(ValidateJsonPayload("42").ok());
  Status st = ValidateJsonPayload("{broken");
  EXPECT_EQ(st.code(), StatusCode::kInvalidContent);
  EXPECT_TRUE(st.message().starts_with("Could not parse request body into json: Could not parse payload into json:"))
      << st.message();
}

}  // namespace
}  // namespace hearth::api
