#include "api/render.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>

namespace hearth::api {
namespace {

namespace json = boost::json;

constexpr const char* kRegion = "us-east-1";
constexpr const char* kAccount = "123456789012";
// SHA-256("hello").
constexpr const char* kHelloHex =
    "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
constexpr const char* kHelloBase64 = "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=";

config::FunctionConfig SampleConfig() {
  config::FunctionConfig c;
  c.name = "my-fn";
  c.runtime = "provided.al2023";
  c.handler = "bootstrap";
  c.role = "arn:aws:iam::123456789012:role/r";
  c.description = "desc";
  c.memory_mb = 256;
  c.timeout_s = 30;
  c.ephemeral_storage_mb = 1024;
  c.code_sha256_hex = kHelloHex;
  c.code_size = 5;
  c.last_modified = "2020-04-10T19:06:32.563+0000";
  c.revision_id = "0b8e1c3a-7a1e-4a55-9c38-7c5c5a0d2f11";
  return c;
}

std::string Str(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return (v != nullptr && v->is_string()) ? std::string(v->as_string()) : "<missing>";
}

TEST(CodeSha256Test, HexToBase64) {
  EXPECT_EQ(CodeSha256Base64FromHex(kHelloHex), kHelloBase64);
  EXPECT_EQ(
      CodeSha256Base64FromHex("2CF24DBA5FB0A30E26E83B2AC5B9E29E1B161E5C1FA7425E73043362938B9824"),
      kHelloBase64);
  EXPECT_EQ(CodeSha256Base64FromHex(""), "");
  EXPECT_EQ(CodeSha256Base64FromHex("abc"), "");  // odd length
  EXPECT_EQ(CodeSha256Base64FromHex("zz"), "");   // not hex
}

TEST(RenderFunctionConfigurationTest, EveryField) {
  json::object o = RenderFunctionConfiguration(SampleConfig(), kRegion, kAccount, false);
  EXPECT_EQ(Str(o, "FunctionName"), "my-fn");
  EXPECT_EQ(Str(o, "FunctionArn"), "arn:aws:lambda:us-east-1:123456789012:function:my-fn");
  EXPECT_EQ(Str(o, "Runtime"), "provided.al2023");
  EXPECT_EQ(Str(o, "Role"), "arn:aws:iam::123456789012:role/r");
  EXPECT_EQ(Str(o, "Handler"), "bootstrap");
  EXPECT_EQ(o.at("CodeSize").to_number<int64_t>(), 5);
  EXPECT_EQ(Str(o, "Description"), "desc");
  EXPECT_EQ(o.at("Timeout").to_number<int>(), 30);
  EXPECT_EQ(o.at("MemorySize").to_number<int>(), 256);
  EXPECT_EQ(Str(o, "LastModified"), "2020-04-10T19:06:32.563+0000");
  EXPECT_EQ(Str(o, "CodeSha256"), kHelloBase64);
  EXPECT_EQ(Str(o, "Version"), "$LATEST");
  EXPECT_EQ(o.at("TracingConfig"), (json::object{{"Mode", "PassThrough"}}));
  EXPECT_EQ(Str(o, "RevisionId"), "0b8e1c3a-7a1e-4a55-9c38-7c5c5a0d2f11");
  EXPECT_EQ(Str(o, "State"), "Active");
  EXPECT_EQ(Str(o, "LastUpdateStatus"), "Successful");
  EXPECT_EQ(Str(o, "PackageType"), "Zip");
  EXPECT_EQ(o.at("Architectures"), (json::array{"x86_64"}));
  EXPECT_EQ(o.at("EphemeralStorage"), (json::object{{"Size", 1024}}));
  EXPECT_EQ(o.at("SnapStart"), (json::object{{"ApplyOn", "None"}, {"OptimizationStatus", "Off"}}));
  EXPECT_EQ(o.at("LoggingConfig"),
            (json::object{{"LogFormat", "Text"}, {"LogGroup", "/aws/lambda/my-fn"}}));
  // SHA-256("provided.al2023").
  EXPECT_EQ(o.at("RuntimeVersionConfig"),
            (json::object{{"RuntimeVersionArn",
                           "arn:aws:lambda:us-east-1::runtime:"
                           "0c7a6b68ae8de5940afe217dbb81f77b9fcad26466e440a79ad48af42a49669c"}}));
  EXPECT_FALSE(o.contains("Environment"));
  EXPECT_FALSE(o.contains("Layers"));
}

TEST(RenderFunctionConfigurationTest, RuntimeVersionArnIsDeterministicPerRuntime) {
  config::FunctionConfig a = SampleConfig();
  config::FunctionConfig b = SampleConfig();
  b.runtime = "python3.12";
  std::string arn_a = Str(RenderFunctionConfiguration(a, kRegion, kAccount, false)
                              .at("RuntimeVersionConfig")
                              .as_object(),
                          "RuntimeVersionArn");
  std::string arn_a2 = Str(RenderFunctionConfiguration(a, kRegion, kAccount, true)
                               .at("RuntimeVersionConfig")
                               .as_object(),
                           "RuntimeVersionArn");
  std::string arn_b = Str(RenderFunctionConfiguration(b, kRegion, kAccount, false)
                              .at("RuntimeVersionConfig")
                              .as_object(),
                          "RuntimeVersionArn");
  EXPECT_EQ(arn_a, arn_a2);
  EXPECT_NE(arn_a, arn_b);
  EXPECT_EQ(arn_b.size(), std::string("arn:aws:lambda:us-east-1::runtime:").size() + 64);
}

struct ArnCase {
  std::string version;
  bool qualified;
  std::string arn;
};

class RenderArnTest : public ::testing::TestWithParam<ArnCase> {};

TEST_P(RenderArnTest, FunctionArn) {
  config::FunctionConfig c = SampleConfig();
  c.version = GetParam().version;
  json::object o = RenderFunctionConfiguration(c, kRegion, kAccount, GetParam().qualified);
  EXPECT_EQ(Str(o, "FunctionArn"), GetParam().arn);
  EXPECT_EQ(Str(o, "Version"), GetParam().version);
}

INSTANTIATE_TEST_SUITE_P(
    Versions, RenderArnTest,
    ::testing::Values(
        ArnCase{"$LATEST", false, "arn:aws:lambda:us-east-1:123456789012:function:my-fn"},
        ArnCase{"$LATEST", true, "arn:aws:lambda:us-east-1:123456789012:function:my-fn:$LATEST"},
        ArnCase{"3", true, "arn:aws:lambda:us-east-1:123456789012:function:my-fn:3"},
        ArnCase{"3", false, "arn:aws:lambda:us-east-1:123456789012:function:my-fn:3"}));

TEST(RenderFunctionConfigurationTest, EnvironmentAndLayersWhenPresent) {
  config::FunctionConfig c = SampleConfig();
  c.environment = {{"A1", "x"}, {"B2", "y"}};
  c.layers = {"arn:aws:lambda:us-east-1:123456789012:layer:lib:1"};
  c.layer_code_sizes = {4242};
  c.architecture = "arm64";
  c.tracing_mode = "Active";
  json::object o = RenderFunctionConfiguration(c, kRegion, kAccount, false);
  EXPECT_EQ(o.at("Environment"),
            (json::object{{"Variables", json::object{{"A1", "x"}, {"B2", "y"}}}}));
  EXPECT_EQ(o.at("Layers"),
            (json::array{json::object{{"Arn", "arn:aws:lambda:us-east-1:123456789012:layer:lib:1"},
                                      {"CodeSize", 4242}}}));
  EXPECT_EQ(o.at("Architectures"), (json::array{"arm64"}));
  EXPECT_EQ(o.at("TracingConfig"), (json::object{{"Mode", "Active"}}));
}

TEST(RenderFunctionConfigurationTest, NoRuntimeOmitsRuntimeFields) {
  config::FunctionConfig c = SampleConfig();
  c.runtime.clear();
  json::object o = RenderFunctionConfiguration(c, kRegion, kAccount, false);
  EXPECT_FALSE(o.contains("Runtime"));
  EXPECT_FALSE(o.contains("Handler"));
  EXPECT_FALSE(o.contains("RuntimeVersionConfig"));
}

// ---- Status -> Lambda error ----

struct ErrorCase {
  StatusCode code;
  int http_status;
  std::string type;
  std::string fault;  // "User" | "Service"
};

class ToApiErrorTest : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(ToApiErrorTest, Maps) {
  const ErrorCase& c = GetParam();
  ApiError e = ToApiError(Status(c.code, "the message"));
  EXPECT_EQ(e.http_status, c.http_status);
  EXPECT_EQ(e.type, c.type);
  EXPECT_EQ(Str(e.body, "Type"), c.fault);
  EXPECT_EQ(Str(e.body, "message"), "the message");
  EXPECT_FALSE(e.body.contains("Message"));
  EXPECT_EQ(e.retry_after, "");
}

INSTANTIATE_TEST_SUITE_P(
    Codes, ToApiErrorTest,
    ::testing::Values(
        ErrorCase{StatusCode::kInvalidArgument, 400, "InvalidParameterValueException", "User"},
        ErrorCase{StatusCode::kValidation, 400, "ValidationException", "User"},
        ErrorCase{StatusCode::kInvalidContent, 400, "InvalidRequestContentException", "User"},
        ErrorCase{StatusCode::kAlreadyExists, 409, "ResourceConflictException", "User"},
        ErrorCase{StatusCode::kConflict, 409, "ResourceConflictException", "User"},
        ErrorCase{StatusCode::kFailedPrecondition, 412, "PreconditionFailedException", "User"},
        ErrorCase{StatusCode::kTooLarge, 413, "RequestTooLargeException", "User"},
        ErrorCase{StatusCode::kCodeStorageExceeded, 400, "CodeStorageExceededException", "User"},
        ErrorCase{StatusCode::kDeadlineExceeded, 500, "ServiceException", "Service"},
        ErrorCase{StatusCode::kUnavailable, 500, "ServiceException", "Service"},
        ErrorCase{StatusCode::kPermissionDenied, 500, "ServiceException", "Service"},
        ErrorCase{StatusCode::kIOError, 500, "ServiceException", "Service"},
        ErrorCase{StatusCode::kInternal, 500, "ServiceException", "Service"}));

TEST(ToApiErrorTest, NotFoundUsesCapitalMessage) {
  ApiError e = ToApiError(
      Status::NotFound("Function not found: arn:aws:lambda:us-east-1:123456789012:function:nope"));
  EXPECT_EQ(e.http_status, 404);
  EXPECT_EQ(e.type, "ResourceNotFoundException");
  EXPECT_EQ(e.body, (json::object{{"Type", "User"},
                                  {"Message",
                                   "Function not found: "
                                   "arn:aws:lambda:us-east-1:123456789012:function:nope"}}));
  EXPECT_EQ(e.retry_after, "");
}

TEST(ToApiErrorTest, NamedNotFoundKeepsItsExceptionName) {
  ApiError e = ToApiError(Status(StatusCode::kNotFound,
                                 "No Provisioned Concurrency Config found for this function",
                                 "ProvisionedConcurrencyConfigNotFoundException"));
  EXPECT_EQ(e.http_status, 404);
  EXPECT_EQ(e.type, "ProvisionedConcurrencyConfigNotFoundException");
  EXPECT_EQ(e.body, (json::object{{"Type", "User"},
                                  {"message",
                                   "No Provisioned Concurrency Config found for this function"}}));
}

TEST(ToApiErrorTest, TooManyRequestsCarriesReasonAndRetryAfter) {
  ApiError e = ToApiError(Status::ResourceExhausted(
      "Rate Exceeded.", "ReservedFunctionConcurrentInvocationLimitExceeded"));
  EXPECT_EQ(e.http_status, 429);
  EXPECT_EQ(e.type, "TooManyRequestsException");
  EXPECT_EQ(e.body, (json::object{{"Reason", "ReservedFunctionConcurrentInvocationLimitExceeded"},
                                  {"Type", "User"},
                                  {"message", "Rate Exceeded."}}));
  EXPECT_EQ(e.retry_after, "1");
}

TEST(ToApiErrorTest, OkStatusIsAServiceError) {
  ApiError e = ToApiError(Status::Ok());
  EXPECT_EQ(e.http_status, 500);
  EXPECT_EQ(e.type, "ServiceException");
  EXPECT_EQ(Str(e.body, "Type"), "Service");
}

}  // namespace
}  // namespace hearth::api

#include "api/paging.h"

namespace hearth::api {
namespace {

TEST(PagingTest, MaxItemsAndMarker) {
  int max = 0;
  std::string after = "stale";
  ASSERT_TRUE(ParsePaging("", "", &max, &after).ok());
  EXPECT_EQ(max, kPageMax);
  EXPECT_EQ(after, "");
  ASSERT_TRUE(ParsePaging("7", "Zm9v", &max, &after).ok());  // base64("foo")
  EXPECT_EQ(max, 7);
  EXPECT_EQ(after, "foo");
  ASSERT_TRUE(ParsePaging("10000", "", &max, &after).ok());
  EXPECT_EQ(max, kPageMax);  // a page never holds more than 50
  EXPECT_EQ(ParsePaging("0", "", &max, &after).code(), StatusCode::kValidation);
  EXPECT_EQ(ParsePaging("10001", "", &max, &after).code(), StatusCode::kValidation);
  EXPECT_EQ(ParsePaging("5x", "", &max, &after).code(), StatusCode::kValidation);
  Status bad = ParsePaging("5", "!!", &max, &after);
  EXPECT_EQ(bad.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.message(), "Invalid Marker: !!");
}

}  // namespace
}  // namespace hearth::api
