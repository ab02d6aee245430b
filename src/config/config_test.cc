#include <cstdio>
#include <fstream>
#include <map>

#include <boost/json.hpp>

#include <gtest/gtest.h>

#include "config/daemon_config.h"
#include "config/function_config.h"

namespace hearth::config {
namespace {

TEST(FunctionConfigTest, JsonRoundTripKeepsEveryField) {
  FunctionConfig c;
  c.name = "f";
  c.runtime = "provided.al2023";
  c.handler = "bootstrap";
  c.memory_mb = 256;
  c.timeout_s = 30;
  c.environment = {{"A", "1"}, {"B", "two"}};
  c.code_sha256_hex = "abc";
  c.code_size = 42;
  c.layers = {"arn:x:1"};
  auto back = FromJson(ToJson(c));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->name, "f");
  EXPECT_EQ(back->memory_mb, 256);
  EXPECT_EQ(back->timeout_s, 30);
  EXPECT_EQ(back->environment.at("B"), "two");
  EXPECT_EQ(back->code_size, 42);
  EXPECT_EQ(back->layers.size(), 1u);
}

TEST(FunctionConfigTest, RejectsNameless) {
  EXPECT_FALSE(FromJson(boost::json::object{{"runtime", "x"}}).has_value());
}

TEST(DaemonConfigTest, ListenAddress) {
  DaemonConfig c;
  EXPECT_TRUE(ParseListenAddress("127.0.0.1:8080", &c).ok());
  EXPECT_EQ(c.listen_host, "127.0.0.1");
  EXPECT_EQ(c.listen_port, 8080);
  EXPECT_FALSE(ParseListenAddress("nope", &c).ok());
  EXPECT_FALSE(ParseListenAddress("h:99999", &c).ok());
  EXPECT_FALSE(ParseListenAddress("h:12x", &c).ok());
}

TEST(DaemonConfigTest, FileRejectsUnknownKeys) {
  std::string path = ::testing::TempDir() + "/hearth_cfg.json";
  {
    std::ofstream(path) << R"({"listen":"127.0.0.1:7000","max_environments":3,"idle_timeout_ms":50})";
  }
  DaemonConfig c;
  ASSERT_TRUE(LoadDaemonConfigFile(path, &c).ok());
  EXPECT_EQ(c.listen_port, 7000);
  EXPECT_EQ(c.max_environments, 3);
  EXPECT_EQ(c.idle_timeout.count(), 50);
  {
    std::ofstream(path) << R"({"listne":"x"})";
  }
  Status st = LoadDaemonConfigFile(path, &c);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("listne"), std::string::npos);
  std::remove(path.c_str());
}

TEST(DaemonConfigTest, ValidateCatchesBadValues) {
  DaemonConfig c;
  EXPECT_TRUE(c.Validate().ok());
  c.isolation = "vm";
  EXPECT_FALSE(c.Validate().ok());
}

TEST(DaemonConfigTest, NetworkDefaultsToNoneAndTakesEgress) {
  DaemonConfig c;
  EXPECT_EQ(c.network, "none");
  const std::string path = ::testing::TempDir() + "/hearth_network_config.json";
  {
    std::ofstream(path) << R"({"network":"egress"})";
  }
  ASSERT_TRUE(LoadDaemonConfigFile(path, &c).ok());
  EXPECT_EQ(c.network, "egress");
  EXPECT_TRUE(c.Validate().ok());
  std::remove(path.c_str());
  c.network = "bridge";
  Status st = c.Validate();
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("unknown network 'bridge'"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace hearth::config

namespace hearth::config {
namespace {

TEST(DaemonConfigTest, LoopSpinIsBounded) {
  DaemonConfig c;
  EXPECT_EQ(c.loop_spin_us, 0);
  c.loop_spin_us = 100;
  EXPECT_TRUE(c.Validate().ok());
  c.loop_spin_us = -1;
  EXPECT_FALSE(c.Validate().ok());
  c.loop_spin_us = 10001;
  EXPECT_FALSE(c.Validate().ok());
}

TEST(DaemonConfigTest, PreinitRuntimesDefaultFileAndBounds) {
  DaemonConfig c;
  EXPECT_EQ(c.preinit_runtimes, (std::map<std::string, int>{{"nodejs20.x", 1}, {"python3.11", 1}}));
  const std::string path = ::testing::TempDir() + "/hearth_preinit_config.json";
  std::ofstream(path) << R"({"preinit_runtimes":{"python3.11":2}})";
  ASSERT_TRUE(LoadDaemonConfigFile(path, &c).ok());
  EXPECT_EQ(c.preinit_runtimes, (std::map<std::string, int>{{"python3.11", 2}}));  // replaces the default
  EXPECT_TRUE(c.Validate().ok());
  c.preinit_runtimes["python3.11"] = 9;
  EXPECT_FALSE(c.Validate().ok());
  std::ofstream(path) << R"({"preinit_runtimes":{"python3.11":"one"}})";
  EXPECT_FALSE(LoadDaemonConfigFile(path, &c).ok());
  std::ofstream(path) << R"({"preinit_runtimes":1})";
  EXPECT_FALSE(LoadDaemonConfigFile(path, &c).ok());
  std::remove(path.c_str());
}

}  // namespace
}  // namespace hearth::config

namespace hearth::config {
namespace {

TEST(DaemonConfigTest, ConcurrencySettingsDefaultsFileKeysAndBounds) {
  DaemonConfig c;
  EXPECT_EQ(c.account_concurrency, 1000);
  EXPECT_EQ(c.max_environments, 0);  // derived from the host
  EXPECT_EQ(c.scaling_rate, 1000);
  EXPECT_EQ(c.scaling_period.count(), 10000);
  EXPECT_EQ(c.admission_wait.count(), 1000);
  const std::string path = ::testing::TempDir() + "/hearth_concurrency_config.json";
  {
    std::ofstream(path) << R"({"account_concurrency":250,"scaling_rate":5,"scaling_period_ms":2000,
                               "memory_reserve_mb":64,"environment_memory_estimate_mb":8,
                               "admission_wait_ms":200})";
  }
  ASSERT_TRUE(LoadDaemonConfigFile(path, &c).ok());
  std::remove(path.c_str());
  EXPECT_EQ(c.account_concurrency, 250);
  EXPECT_EQ(c.scaling_rate, 5);
  EXPECT_EQ(c.scaling_period.count(), 2000);
  EXPECT_EQ(c.memory_reserve_mb, 64);
  EXPECT_EQ(c.environment_memory_estimate_mb, 8);
  EXPECT_EQ(c.admission_wait.count(), 200);
  EXPECT_TRUE(c.Validate().ok());
  c.account_concurrency = 0;
  EXPECT_FALSE(c.Validate().ok());
  c.account_concurrency = 1;
  c.scaling_rate = 0;
  EXPECT_FALSE(c.Validate().ok());
  c.scaling_rate = 1;
  c.max_environments = -1;
  EXPECT_FALSE(c.Validate().ok());
}

}  // namespace
}  // namespace hearth::config
