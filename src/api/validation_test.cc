#include "api/validation.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>

#include "common/encoding.h"

namespace hearth::api {
namespace {

namespace json = boost::json;

constexpr const char* kRole = "arn:aws:iam::123456789012:role/lambda-role";

json::object ValidCreateBody() {
  return json::object{
      {"FunctionName", "my-fn"},
      {"Role", kRole},
      {"Runtime", "provided.al2023"},
      {"Handler", "bootstrap"},
      {"Code", json::object{{"ZipFile", Base64Encode("PK\x03\x04zipbytes")}}},
  };
}

// Sets `path` ("A" or "A.B") in `body` to `value`; a null value removes the member.
void Set(json::object& body, std::string_view path, const json::value& value) {
  size_t dot = path.find('.');
  if (dot == std::string_view::npos) {
    if (value.is_null()) {
      body.erase(path);
    } else {
      body[path] = value;
    }
    return;
  }
  json::value& inner = body[path.substr(0, dot)];
  if (!inner.is_object()) inner = json::object{};
  Set(inner.as_object(), path.substr(dot + 1), value);
}

std::string EnvOfSize(size_t serialized_size) {
  // {"KEY":"<value>"} is 10 bytes around the value.
  return std::string(serialized_size - 10, 'v');
}

// ---- CreateFunction: defaults and accepted values ----

TEST(ParseCreateFunctionTest, MinimalBodyGetsDefaults) {
  Result<CreateFunctionRequest> req = ParseCreateFunction(ValidCreateBody());
  ASSERT_TRUE(req.has_value()) << req.error().ToString();
  const config::FunctionConfig& c = req->config;
  EXPECT_EQ(c.name, "my-fn");
  EXPECT_EQ(c.role, kRole);
  EXPECT_EQ(c.runtime, "provided.al2023");
  EXPECT_EQ(c.handler, "bootstrap");
  EXPECT_EQ(c.version, "$LATEST");
  EXPECT_EQ(c.description, "");
  EXPECT_EQ(c.memory_mb, 128);
  EXPECT_EQ(c.timeout_s, 3);
  EXPECT_EQ(c.ephemeral_storage_mb, 512);
  EXPECT_EQ(c.architecture, "x86_64");
  EXPECT_EQ(c.package_type, "Zip");
  EXPECT_EQ(c.tracing_mode, "PassThrough");
  EXPECT_TRUE(c.environment.empty());
  EXPECT_TRUE(c.layers.empty());
  EXPECT_EQ(req->zip_bytes, std::string("PK\x03\x04zipbytes"));
  EXPECT_FALSE(req->publish);
}

TEST(ParseCreateFunctionTest, FullBody) {
  json::object b = ValidCreateBody();
  b["FunctionName"] = "arn:aws:lambda:us-east-1:123456789012:function:my-fn";
  b["Description"] = "hello";
  b["Timeout"] = 900;
  b["MemorySize"] = 10240;
  b["Publish"] = true;
  b["PackageType"] = "Zip";
  b["Architectures"] = json::array{"arm64"};
  b["EphemeralStorage"] = json::object{{"Size", 10240}};
  b["TracingConfig"] = json::object{{"Mode", "Active"}};
  b["Environment"] = json::object{{"Variables", json::object{{"A1", "x"}, {"B_2", "y"}}}};
  b["Layers"] = json::array{"arn:aws:lambda:us-east-1:123456789012:layer:lib:1",
                            "arn:aws:lambda:us-east-1:123456789012:layer:other-lib:12"};
  b["Tags"] = json::object{{"team", "x"}};             // known, not modelled: ignored
  b["SomeFieldFromTheFuture"] = json::array{1, 2, 3};  // unknown: ignored
  Result<CreateFunctionRequest> req = ParseCreateFunction(b);
  ASSERT_TRUE(req.has_value()) << req.error().ToString();
  const config::FunctionConfig& c = req->config;
  EXPECT_EQ(c.name, "my-fn");
  EXPECT_EQ(c.description, "hello");
  EXPECT_EQ(c.timeout_s, 900);
  EXPECT_EQ(c.memory_mb, 10240);
  EXPECT_TRUE(req->publish);
  EXPECT_EQ(c.architecture, "arm64");
  EXPECT_EQ(c.ephemeral_storage_mb, 10240);
  EXPECT_EQ(c.tracing_mode, "Active");
  EXPECT_EQ(c.environment.size(), 2u);
  EXPECT_EQ(c.environment.at("B_2"), "y");
  ASSERT_EQ(c.layers.size(), 2u);
  EXPECT_EQ(c.layers[1], "arn:aws:lambda:us-east-1:123456789012:layer:other-lib:12");
}

TEST(ParseCreateFunctionTest, NullMeansAbsent) {
  json::object b = ValidCreateBody();
  b["Description"] = nullptr;
  b["MemorySize"] = nullptr;
  Result<CreateFunctionRequest> req = ParseCreateFunction(b);
  ASSERT_TRUE(req.has_value()) << req.error().ToString();
  EXPECT_EQ(req->config.memory_mb, 128);
}

TEST(ParseCreateFunctionTest, IntegralFloatAccepted) {
  json::object b = ValidCreateBody();
  b["MemorySize"] = 256.0;
  Result<CreateFunctionRequest> req = ParseCreateFunction(b);
  ASSERT_TRUE(req.has_value()) << req.error().ToString();
  EXPECT_EQ(req->config.memory_mb, 256);
}

// ---- CreateFunction: one rule per row ----

struct RuleCase {
  std::string name;        // test name
  std::string path;        // member to set ("A" or "A.B")
  std::string value_json;  // JSON text; "null" removes the member
  StatusCode code;         // kOk: accepted
  std::string fragment;
};

std::string RuleName(const ::testing::TestParamInfo<RuleCase>& info) { return info.param.name; }

class CreateRuleTest : public ::testing::TestWithParam<RuleCase> {};

TEST_P(CreateRuleTest, Applies) {
  const RuleCase& c = GetParam();
  json::object b = ValidCreateBody();
  Set(b, c.path, json::parse(c.value_json));
  Result<CreateFunctionRequest> req = ParseCreateFunction(b);
  if (c.code == StatusCode::kOk) {
    EXPECT_TRUE(req.has_value()) << req.error().ToString();
    return;
  }
  ASSERT_FALSE(req.has_value()) << c.path << "=" << c.value_json;
  EXPECT_EQ(req.error().code(), c.code) << req.error().ToString();
  EXPECT_NE(req.error().message().find(c.fragment), std::string::npos)
      << "message: " << req.error().message();
}

std::string Quoted(const std::string& s) { return json::serialize(json::value(s)); }

const std::string kEnvUnder = R"({"Variables":{"KEY":")" + EnvOfSize(4096) + R"("}})";
const std::string kEnvOver = R"({"Variables":{"KEY":")" + EnvOfSize(4097) + R"("}})";

INSTANTIATE_TEST_SUITE_P(
    Rules, CreateRuleTest,
    ::testing::Values(
        // Memory
        RuleCase{"Memory127", "MemorySize", "127", StatusCode::kValidation,
                 "1 validation error detected: Value '127' at 'memorySize' failed to satisfy "
                 "constraint: Member must have value greater than or equal to 128"},
        RuleCase{"Memory128", "MemorySize", "128", StatusCode::kOk, ""},
        RuleCase{"Memory10240", "MemorySize", "10240", StatusCode::kOk, ""},
        RuleCase{"Memory10241", "MemorySize", "10241", StatusCode::kValidation,
                 "1 validation error detected: Value '10241' at 'memorySize' failed to satisfy "
                 "constraint: Member must have value less than or equal to 10240"},
        RuleCase{"MemoryHuge", "MemorySize", "99999999999999999999", StatusCode::kValidation,
                 "at 'memorySize' failed to satisfy constraint: Member must have value less "
                 "than or equal to 10240"},
        RuleCase{"MemoryString", "MemorySize", R"("abc")", StatusCode::kInvalidContent,
                 "member 'MemorySize' must be an integer, got a string"},
        RuleCase{"MemoryFraction", "MemorySize", "128.5", StatusCode::kInvalidContent,
                 "member 'MemorySize' must be an integer"},
        // Timeout
        RuleCase{"Timeout0", "Timeout", "0", StatusCode::kValidation,
                 "1 validation error detected: Value '0' at 'timeout' failed to satisfy "
                 "constraint: Member must have value greater than or equal to 1"},
        RuleCase{"Timeout1", "Timeout", "1", StatusCode::kOk, ""},
        RuleCase{"Timeout900", "Timeout", "900", StatusCode::kOk, ""},
        RuleCase{"Timeout901", "Timeout", "901", StatusCode::kValidation,
                 "Value '901' at 'timeout' failed to satisfy constraint: Member must have value "
                 "less than or equal to 900"},
        RuleCase{"TimeoutNegative", "Timeout", "-5", StatusCode::kValidation,
                 "Value '-5' at 'timeout'"},
        RuleCase{"TimeoutBool", "Timeout", "true", StatusCode::kInvalidContent,
                 "member 'Timeout' must be an integer, got a boolean"},
        // Ephemeral storage
        RuleCase{"Storage511", "EphemeralStorage.Size", "511", StatusCode::kValidation,
                 "Value '511' at 'ephemeralStorage.size' failed to satisfy constraint: Member "
                 "must have value greater than or equal to 512"},
        RuleCase{"Storage512", "EphemeralStorage.Size", "512", StatusCode::kOk, ""},
        RuleCase{"Storage10241", "EphemeralStorage.Size", "10241", StatusCode::kValidation,
                 "less than or equal to 10240"},
        RuleCase{"StorageNoSize", "EphemeralStorage", "{}", StatusCode::kValidation,
                 "Value null at 'ephemeralStorage.size' failed to satisfy constraint: Member "
                 "must not be null"},
        RuleCase{"StorageNotObject", "EphemeralStorage", "512", StatusCode::kInvalidContent,
                 "member 'EphemeralStorage' must be an object, got a number"},
        // Description
        RuleCase{"Description256", "Description", Quoted(std::string(256, 'd')), StatusCode::kOk,
                 ""},
        RuleCase{"Description257", "Description", Quoted(std::string(257, 'd')),
                 StatusCode::kValidation,
                 "at 'description' failed to satisfy constraint: Member must have length less "
                 "than or equal to 256"},
        // Handler
        RuleCase{"Handler128", "Handler", Quoted(std::string(128, 'h')), StatusCode::kOk, ""},
        RuleCase{"Handler129", "Handler", Quoted(std::string(129, 'h')), StatusCode::kValidation,
                 "at 'handler' failed to satisfy constraint: Member must have length less than "
                 "or equal to 128"},
        RuleCase{
            "HandlerSpace", "Handler", R"("index handler")", StatusCode::kValidation,
            R"(Value 'index handler' at 'handler' failed to satisfy constraint: Member must satisfy regular expression pattern: [^\s]+)"},
        RuleCase{"HandlerEmpty", "Handler", R"("")", StatusCode::kValidation,
                 "at 'handler' failed to satisfy constraint"},
        RuleCase{"HandlerMissing", "Handler", "null", StatusCode::kInvalidArgument,
                 "Runtime and Handler are mandatory parameters for functions created with "
                 "deployment packages."},
        // Runtime
        RuleCase{"RuntimeMissing", "Runtime", "null", StatusCode::kInvalidArgument,
                 "Runtime and Handler are mandatory parameters"},
        RuleCase{"RuntimePython", "Runtime", R"("python3.12")", StatusCode::kOk, ""},
        RuleCase{"RuntimeNode", "Runtime", R"("nodejs22.x")", StatusCode::kOk, ""},
        RuleCase{"RuntimeAl2", "Runtime", R"("provided.al2")", StatusCode::kOk, ""},
        RuleCase{"RuntimeUnknown", "Runtime", R"("cobol85")", StatusCode::kValidation,
                 "1 validation error detected: Value 'cobol85' at 'runtime' failed to satisfy "
                 "constraint: Member must satisfy enum value set: [nodejs, nodejs4.3, "},
        RuleCase{"RuntimeProvided", "Runtime", R"("provided")", StatusCode::kInvalidArgument,
                 "The runtime parameter of provided is no longer supported for creating or "
                 "updating AWS Lambda functions. We recommend you use a supported runtime while "
                 "creating or updating functions."},
        RuleCase{"RuntimePython27", "Runtime", R"("python2.7")", StatusCode::kInvalidArgument,
                 "The runtime parameter of python2.7 is no longer supported"},
        RuleCase{"RuntimeNumber", "Runtime", "3", StatusCode::kInvalidContent,
                 "member 'Runtime' must be a string, got a number"},
        // Role
        RuleCase{"RoleMissing", "Role", "null", StatusCode::kValidation,
                 "Value null at 'role' failed to satisfy constraint: Member must not be null"},
        RuleCase{
            "RoleBad", "Role", R"("admin")", StatusCode::kValidation,
            R"(Value 'admin' at 'role' failed to satisfy constraint: Member must satisfy regular expression pattern: arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+)"},
        RuleCase{"RoleShortAccount", "Role", R"("arn:aws:iam::1234:role/r")",
                 StatusCode::kValidation, "at 'role'"},
        RuleCase{"RoleNoName", "Role", R"("arn:aws:iam::123456789012:role")",
                 StatusCode::kValidation, "at 'role'"},
        RuleCase{"RoleWithPath", "Role", R"("arn:aws-cn:iam::123456789012:role/svc/a+b=c,d.e@f")",
                 StatusCode::kOk, ""},
        // FunctionName
        RuleCase{"NameMissing", "FunctionName", "null", StatusCode::kValidation,
                 "Value null at 'functionName' failed to satisfy constraint: Member must not be "
                 "null"},
        RuleCase{"Name65", "FunctionName", Quoted(std::string(65, 'n')), StatusCode::kValidation,
                 "Member must have length less than or equal to 64"},
        RuleCase{"NameSpace", "FunctionName", R"("a b")", StatusCode::kValidation,
                 "Value 'a b' at 'functionName' failed to satisfy constraint: Member must "
                 "satisfy regular expression pattern"},
        RuleCase{"NamePartialArn", "FunctionName", R"("123456789012:function:my-fn")",
                 StatusCode::kOk, ""},
        RuleCase{"NameQualified", "FunctionName", R"("my-fn:1")", StatusCode::kInvalidArgument,
                 "must not include a qualifier"},
        // Code
        RuleCase{"CodeMissing", "Code", "null", StatusCode::kValidation,
                 "Value null at 'code' failed to satisfy constraint: Member must not be null"},
        RuleCase{"CodeEmpty", "Code", "{}", StatusCode::kInvalidArgument,
                 "Please provide a source for function code."},
        RuleCase{"CodeBadBase64", "Code.ZipFile", R"("not*base64!")", StatusCode::kInvalidContent,
                 "Could not decode ZipFile: invalid base64"},
        RuleCase{"CodeZipNumber", "Code.ZipFile", "12", StatusCode::kInvalidContent,
                 "member 'Code.ZipFile' must be a string"},
        RuleCase{"CodeS3", "Code.S3Bucket", R"("bucket")", StatusCode::kInvalidArgument,
                 "Hearth supports only ZipFile code uploads"},
        RuleCase{"CodeImage", "Code.ImageUri", R"("repo/img:1")", StatusCode::kInvalidArgument,
                 "Hearth supports only ZipFile code uploads"},
        RuleCase{"CodeNotObject", "Code", R"("zip")", StatusCode::kInvalidContent,
                 "member 'Code' must be an object"},
        // Environment
        RuleCase{"EnvOk", "Environment", R"({"Variables":{"Ab":"1","a_9":"2"}})", StatusCode::kOk,
                 ""},
        RuleCase{"EnvEmpty", "Environment", "{}", StatusCode::kOk, ""},
        RuleCase{"EnvDigitFirst", "Environment", R"({"Variables":{"1A":"x"}})",
                 StatusCode::kValidation,
                 "1 validation error detected: Value at 'environment.variables' failed to satisfy "
                 "constraint: Map keys must satisfy constraint: [Member must satisfy regular "
                 "expression pattern: [a-zA-Z]([a-zA-Z0-9_])+]"},
        RuleCase{"EnvDash", "Environment", R"({"Variables":{"A-B":"x"}})", StatusCode::kValidation,
                 "at 'environment.variables'"},
        RuleCase{"EnvOneChar", "Environment", R"({"Variables":{"A":"x"}})", StatusCode::kValidation,
                 "at 'environment.variables'"},
        RuleCase{"EnvReserved", "Environment",
                 R"({"Variables":{"OK_1":"x","AWS_REGION":"y","AWS_SESSION_TOKEN":"z"}})",
                 StatusCode::kInvalidArgument,
                 "Lambda was unable to configure your environment variables because the "
                 "environment variables you have provided contains reserved keys that are "
                 "currently not supported for modification. Reserved keys used in this request: "
                 "AWS_REGION, AWS_SESSION_TOKEN"},
        // _HANDLER is reserved too, but (as on AWS) the model's name pattern rejects it first.
        RuleCase{"EnvReservedUnderscore", "Environment", R"({"Variables":{"_HANDLER":"x"}})",
                 StatusCode::kValidation, "at 'environment.variables'"},
        RuleCase{"EnvReservedRuntimeApi", "Environment",
                 R"({"Variables":{"AWS_LAMBDA_RUNTIME_API":"x"}})", StatusCode::kInvalidArgument,
                 "Reserved keys used in this request: AWS_LAMBDA_RUNTIME_API"},
        RuleCase{"EnvUnreservedLang", "Environment", R"({"Variables":{"LANG":"C","TZ":"UTC"}})",
                 StatusCode::kOk, ""},
        RuleCase{"Env4096", "Environment", kEnvUnder, StatusCode::kOk, ""},
        RuleCase{"Env4097", "Environment", kEnvOver, StatusCode::kInvalidArgument,
                 "Lambda was unable to configure your environment variables because the "
                 "environment variables you have provided exceeded the 4KB limit. String "
                 R"(measured: {"KEY":"vvvv)"},
        RuleCase{"EnvValueNumber", "Environment", R"({"Variables":{"AB":1}})",
                 StatusCode::kInvalidContent, "member 'Environment.Variables.AB' must be a string"},
        RuleCase{"EnvVariablesArray", "Environment", R"({"Variables":[]})",
                 StatusCode::kInvalidContent, "member 'Environment.Variables' must be an object"},
        // Architectures
        RuleCase{"ArchX86", "Architectures", R"(["x86_64"])", StatusCode::kOk, ""},
        RuleCase{"ArchTwo", "Architectures", R"(["x86_64","arm64"])", StatusCode::kValidation,
                 "Value '[x86_64, arm64]' at 'architectures' failed to satisfy constraint: Member "
                 "must have length less than or equal to 1"},
        RuleCase{"ArchNone", "Architectures", "[]", StatusCode::kValidation,
                 "Member must have length greater than or equal to 1"},
        RuleCase{"ArchBad", "Architectures", R"(["sparc"])", StatusCode::kValidation,
                 "Member must satisfy enum value set: [x86_64, arm64]"},
        RuleCase{"ArchString", "Architectures", R"("arm64")", StatusCode::kInvalidContent,
                 "member 'Architectures' must be an array"},
        // PackageType
        RuleCase{"PackageImage", "PackageType", R"("Image")", StatusCode::kInvalidArgument,
                 "PackageType Image"},
        RuleCase{"PackageBad", "PackageType", R"("Tar")", StatusCode::kValidation,
                 "Value 'Tar' at 'packageType' failed to satisfy constraint: Member must satisfy "
                 "enum value set: [Zip, Image]"},
        // TracingConfig
        RuleCase{"TracingPassThrough", "TracingConfig.Mode", R"("PassThrough")", StatusCode::kOk,
                 ""},
        RuleCase{"TracingBad", "TracingConfig.Mode", R"("On")", StatusCode::kValidation,
                 "Value 'On' at 'tracingConfig.mode' failed to satisfy constraint: Member must "
                 "satisfy enum value set: [Active, PassThrough]"},
        // Layers
        RuleCase{"Layers5", "Layers",
                 R"(["arn:aws:lambda:us-east-1:123456789012:layer:a:1",
                     "arn:aws:lambda:us-east-1:123456789012:layer:b:1",
                     "arn:aws:lambda:us-east-1:123456789012:layer:c:1",
                     "arn:aws:lambda:us-east-1:123456789012:layer:d:1",
                     "arn:aws:lambda:us-east-1:123456789012:layer:e:1"])",
                 StatusCode::kOk, ""},
        RuleCase{"Layers6", "Layers",
                 R"(["arn:aws:lambda:us-east-1:123456789012:layer:a:1",
                     "arn:aws:lambda:us-east-1:123456789012:layer:b:1",
                     "arn:aws:lambda:us-east-1:123456789012:layer:c:1",
                     "arn:aws:lambda:us-east-1:123456789012:layer:d:1",
                     "arn:aws:lambda:us-east-1:123456789012:layer:e:1",
                     "arn:aws:lambda:us-east-1:123456789012:layer:f:1"])",
                 StatusCode::kInvalidArgument, "Cannot reference more than 5 layers."},
        RuleCase{"LayerNoVersion", "Layers", R"(["arn:aws:lambda:us-east-1:123456789012:layer:a"])",
                 StatusCode::kValidation,
                 "at 'layers' failed to satisfy constraint: Member must satisfy constraint: "},
        RuleCase{"LayerNotString", "Layers", "[1]", StatusCode::kInvalidContent,
                 "member 'Layers[]' must be a string"},
        // Publish
        RuleCase{"PublishString", "Publish", R"("yes")", StatusCode::kInvalidContent,
                 "member 'Publish' must be a boolean, got a string"}),
    RuleName);

TEST(ParseCreateFunctionTest, BodyMustBeObject) {
  Result<CreateFunctionRequest> req = ParseCreateFunction(json::array{});
  ASSERT_FALSE(req.has_value());
  EXPECT_EQ(req.error().code(), StatusCode::kInvalidContent);
  EXPECT_NE(req.error().message().find("Could not parse request body into json"),
            std::string::npos);
}

TEST(ParseCreateFunctionTest, ValidationWinsOverServiceChecks) {
  // Lambda validates against the model before its own rules, whatever the member order.
  json::object b = ValidCreateBody();
  b["Environment"] = json::object{{"Variables", json::object{{"AWS_REGION", "x"}}}};
  b["MemorySize"] = 1;
  Result<CreateFunctionRequest> req = ParseCreateFunction(b);
  ASSERT_FALSE(req.has_value());
  EXPECT_EQ(req.error().code(), StatusCode::kValidation);
  EXPECT_NE(req.error().message().find("'memorySize'"), std::string::npos);
}

TEST(ParseCreateFunctionTest, EnvLimitMeasuresTheJsonMap) {
  // {"AA":"<a>","BB":"<b>"} serialises to 17 + len(a) + len(b) bytes.
  auto body_with = [](size_t total) {
    json::object b = ValidCreateBody();
    std::string a(100, 'a');
    std::string bb(total - 17 - a.size(), 'b');
    b["Environment"] = json::object{{"Variables", json::object{{"AA", a}, {"BB", bb}}}};
    return b;
  };
  EXPECT_TRUE(ParseCreateFunction(body_with(4096)).has_value());
  Result<CreateFunctionRequest> over = ParseCreateFunction(body_with(4097));
  ASSERT_FALSE(over.has_value());
  EXPECT_EQ(over.error().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(over.error().message().find(R"(String measured: {"AA":"aaa)"), std::string::npos);
}

// ---- UpdateFunctionConfiguration ----

config::FunctionConfig ExistingConfig() {
  config::FunctionConfig c;
  c.name = "my-fn";
  c.runtime = "provided.al2023";
  c.handler = "bootstrap";
  c.role = kRole;
  c.memory_mb = 256;
  c.timeout_s = 10;
  c.environment = {{"KEEP", "1"}, {"OLD", "2"}};
  c.layers = {"arn:aws:lambda:us-east-1:123456789012:layer:a:1"};
  c.revision_id = "rev-1";
  return c;
}

TEST(ApplyConfigurationUpdateTest, AppliesOnlyGivenMembers) {
  config::FunctionConfig c = ExistingConfig();
  std::string rev = "stale";
  Status st =
      ApplyConfigurationUpdate(json::parse(R"({"MemorySize":512,"Description":"d"})"), &c, &rev);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(c.memory_mb, 512);
  EXPECT_EQ(c.description, "d");
  EXPECT_EQ(c.timeout_s, 10);
  EXPECT_EQ(c.handler, "bootstrap");
  EXPECT_EQ(c.environment.size(), 2u);
  EXPECT_EQ(c.layers.size(), 1u);
  EXPECT_EQ(rev, "");
}

TEST(ApplyConfigurationUpdateTest, EveryMember) {
  config::FunctionConfig c = ExistingConfig();
  std::string rev;
  Status st = ApplyConfigurationUpdate(json::parse(R"({
      "Role": "arn:aws:iam::123456789012:role/other",
      "Handler": "index.handler",
      "Description": "new",
      "Timeout": 60,
      "MemorySize": 1024,
      "Environment": {"Variables": {"NEW": "v"}},
      "Runtime": "python3.12",
      "EphemeralStorage": {"Size": 1024},
      "TracingConfig": {"Mode": "Active"},
      "Layers": ["arn:aws:lambda:us-east-1:123456789012:layer:b:2"],
      "RevisionId": "rev-1",
      "VpcConfig": {"SubnetIds": []}
  })"),
                                       &c, &rev);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(c.role, "arn:aws:iam::123456789012:role/other");
  EXPECT_EQ(c.handler, "index.handler");
  EXPECT_EQ(c.description, "new");
  EXPECT_EQ(c.timeout_s, 60);
  EXPECT_EQ(c.memory_mb, 1024);
  ASSERT_EQ(c.environment.size(), 1u);  // replaced, not merged
  EXPECT_EQ(c.environment.at("NEW"), "v");
  EXPECT_EQ(c.runtime, "python3.12");
  EXPECT_EQ(c.ephemeral_storage_mb, 1024);
  EXPECT_EQ(c.tracing_mode, "Active");
  ASSERT_EQ(c.layers.size(), 1u);  // replaced
  EXPECT_EQ(c.layers[0], "arn:aws:lambda:us-east-1:123456789012:layer:b:2");
  EXPECT_EQ(rev, "rev-1");
}

TEST(ApplyConfigurationUpdateTest, EnvironmentClears) {
  for (const char* body : {R"({"Environment":{}})", R"({"Environment":{"Variables":{}}})"}) {
    config::FunctionConfig c = ExistingConfig();
    ASSERT_TRUE(ApplyConfigurationUpdate(json::parse(body), &c, nullptr).ok()) << body;
    EXPECT_TRUE(c.environment.empty()) << body;
  }
}

TEST(ApplyConfigurationUpdateTest, LayersClear) {
  config::FunctionConfig c = ExistingConfig();
  ASSERT_TRUE(ApplyConfigurationUpdate(json::parse(R"({"Layers":[]})"), &c, nullptr).ok());
  EXPECT_TRUE(c.layers.empty());
}

class UpdateRuleTest : public ::testing::TestWithParam<RuleCase> {};

TEST_P(UpdateRuleTest, RejectsAndLeavesConfigUnchanged) {
  const RuleCase& c = GetParam();
  config::FunctionConfig cfg = ExistingConfig();
  json::object b{{"Description", "changed"}};  // a valid member that must not be applied
  Set(b, c.path, json::parse(c.value_json));
  std::string rev = "untouched";
  Status st = ApplyConfigurationUpdate(b, &cfg, &rev);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), c.code) << st.ToString();
  EXPECT_NE(st.message().find(c.fragment), std::string::npos) << st.message();
  EXPECT_EQ(cfg.description, "");
  EXPECT_EQ(cfg.memory_mb, 256);
  EXPECT_EQ(cfg.environment.size(), 2u);
  EXPECT_EQ(rev, "untouched");
}

INSTANTIATE_TEST_SUITE_P(
    Rules, UpdateRuleTest,
    ::testing::Values(
        RuleCase{"Memory127", "MemorySize", "127", StatusCode::kValidation,
                 "Value '127' at 'memorySize'"},
        RuleCase{"Memory10241", "MemorySize", "10241", StatusCode::kValidation,
                 "Value '10241' at 'memorySize'"},
        RuleCase{"Timeout901", "Timeout", "901", StatusCode::kValidation,
                 "Value '901' at 'timeout'"},
        RuleCase{"EnvReserved", "Environment", R"({"Variables":{"LAMBDA_TASK_ROOT":"/x"}})",
                 StatusCode::kInvalidArgument,
                 "Reserved keys used in this request: "
                 "LAMBDA_TASK_ROOT"},
        RuleCase{"Env4097", "Environment", kEnvOver, StatusCode::kInvalidArgument,
                 "exceeded the 4KB limit"},
        RuleCase{"RuntimeProvided", "Runtime", R"("provided")", StatusCode::kInvalidArgument,
                 "The runtime parameter of provided is no longer supported"},
        RuleCase{"RoleBad", "Role", R"("x")", StatusCode::kValidation, "at 'role'"},
        RuleCase{"HandlerSpace", "Handler", R"("a b")", StatusCode::kValidation, "at 'handler'"},
        RuleCase{"StorageBig", "EphemeralStorage.Size", "99999", StatusCode::kValidation,
                 "at 'ephemeralStorage.size'"},
        RuleCase{"TracingBad", "TracingConfig.Mode", R"("x")", StatusCode::kValidation,
                 "at 'tracingConfig.mode'"},
        RuleCase{"Layers6", "Layers",
                 R"(["arn:aws:lambda:us-east-1:123456789012:layer:a:1",
                     "arn:aws:lambda:us-east-1:123456789012:layer:b:1",
                     "arn:aws:lambda:us-east-1:123456789012:layer:c:1",
                     "arn:aws:lambda:us-east-1:123456789012:layer:d:1",
                     "arn:aws:lambda:us-east-1:123456789012:layer:e:1",
                     "arn:aws:lambda:us-east-1:123456789012:layer:f:1"])",
                 StatusCode::kInvalidArgument, "Cannot reference more than 5 layers."},
        RuleCase{"MemoryString", "MemorySize", R"("abc")", StatusCode::kInvalidContent,
                 "member 'MemorySize' must be an integer"},
        RuleCase{"RevisionNumber", "RevisionId", "5", StatusCode::kInvalidContent,
                 "member 'RevisionId' must be a string"}),
    RuleName);

// ---- UpdateFunctionCode ----

TEST(ParseUpdateFunctionCodeTest, Parses) {
  json::object b{{"ZipFile", Base64Encode("zipdata")},
                 {"Publish", true},
                 {"DryRun", true},
                 {"RevisionId", "r1"},
                 {"Architectures", json::array{"arm64"}}};
  Result<UpdateCodeRequest> req = ParseUpdateFunctionCode(b);
  ASSERT_TRUE(req.has_value()) << req.error().ToString();
  EXPECT_EQ(req->zip_bytes, "zipdata");
  EXPECT_TRUE(req->publish);
  EXPECT_TRUE(req->dry_run);
  EXPECT_EQ(req->revision_id, "r1");
  EXPECT_EQ(req->architecture, "arm64");
}

TEST(ParseUpdateFunctionCodeTest, Defaults) {
  Result<UpdateCodeRequest> req =
      ParseUpdateFunctionCode(json::object{{"ZipFile", Base64Encode("z")}});
  ASSERT_TRUE(req.has_value()) << req.error().ToString();
  EXPECT_FALSE(req->publish);
  EXPECT_FALSE(req->dry_run);
  EXPECT_EQ(req->revision_id, "");
  EXPECT_EQ(req->architecture, "");
}

struct CodeCase {
  std::string name;
  std::string body;
  StatusCode code;
  std::string fragment;
};

class UpdateCodeRuleTest : public ::testing::TestWithParam<CodeCase> {};

TEST_P(UpdateCodeRuleTest, Rejects) {
  const CodeCase& c = GetParam();
  Result<UpdateCodeRequest> req = ParseUpdateFunctionCode(json::parse(c.body));
  ASSERT_FALSE(req.has_value()) << c.body;
  EXPECT_EQ(req.error().code(), c.code) << req.error().ToString();
  EXPECT_NE(req.error().message().find(c.fragment), std::string::npos) << req.error().message();
}

INSTANTIATE_TEST_SUITE_P(
    Rules, UpdateCodeRuleTest,
    ::testing::Values(CodeCase{"NoZip", R"({"Publish":true})", StatusCode::kInvalidArgument,
                               "Please provide a source for function code."},
                      CodeCase{"S3", R"({"S3Bucket":"b","S3Key":"k"})",
                               StatusCode::kInvalidArgument,
                               "Hearth supports only ZipFile code uploads"},
                      CodeCase{"Image", R"({"ImageUri":"x"})", StatusCode::kInvalidArgument,
                               "Hearth supports only ZipFile code uploads"},
                      CodeCase{"BadBase64", R"({"ZipFile":"@@@"})", StatusCode::kInvalidContent,
                               "Could not decode ZipFile: invalid base64"},
                      CodeCase{"PublishString", R"({"ZipFile":"eg==","Publish":"true"})",
                               StatusCode::kInvalidContent, "member 'Publish' must be a boolean"},
                      CodeCase{"DryRunNumber", R"({"ZipFile":"eg==","DryRun":1})",
                               StatusCode::kInvalidContent, "member 'DryRun' must be a boolean"},
                      CodeCase{"ArchBad", R"({"ZipFile":"eg==","Architectures":["mips"]})",
                               StatusCode::kValidation, "at 'architectures'"},
                      CodeCase{"NotObject", R"("zip")", StatusCode::kInvalidContent,
                               "Could not parse request body into json"}),
    [](const ::testing::TestParamInfo<CodeCase>& info) { return info.param.name; });

TEST(RuntimeTest, KnownRuntimes) {
  EXPECT_TRUE(IsKnownRuntime("provided.al2023"));
  EXPECT_TRUE(IsKnownRuntime("python3.13"));
  EXPECT_TRUE(IsKnownRuntime("java21"));
  EXPECT_TRUE(IsKnownRuntime("dotnet8"));
  EXPECT_TRUE(IsKnownRuntime("ruby3.3"));
  EXPECT_FALSE(IsKnownRuntime("python4"));
  EXPECT_FALSE(IsKnownRuntime(""));
}

}  // namespace
}  // namespace hearth::api
