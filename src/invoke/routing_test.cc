#include "invoke/routing.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "invoke/registry.h"

namespace hearth::invoke {
namespace {

config::AliasConfig Alias(std::string primary, std::string extra, double w) {
  config::AliasConfig a;
  a.function_name = "f";
  a.name = "live";
  a.function_version = std::move(primary);
  a.additional_version = std::move(extra);
  a.additional_weight = w;
  return a;
}

TEST(RoutingTest, Boundaries) {
  auto a = Alias("1", "2", 0.1);
  EXPECT_EQ(PickVersion(a, 0.0), "2");
  EXPECT_EQ(PickVersion(a, 0.0999), "2");
  EXPECT_EQ(PickVersion(a, 0.1), "1");
  EXPECT_EQ(PickVersion(a, 0.9999), "1");
  EXPECT_EQ(PickVersion(Alias("1", "2", 0.0), 0.0), "1");     // weight 0: never
  EXPECT_EQ(PickVersion(Alias("1", "2", 1.0), 0.99999), "2");  // weight 1: always
  EXPECT_EQ(PickVersion(Alias("1", "", 0.5), 0.0), "1");       // no routing
}

// With an injected, seeded generator the split lands within 4 sigma of the weight.
TEST(RoutingTest, DistributionFollowsWeight) {
  std::mt19937_64 gen(12345);
  std::uniform_real_distribution<double> dist(0.0, 1.0);
  for (double w : {0.1, 0.5, 0.9}) {
    auto a = Alias("1", "2", w);
    const int n = 100000;
    int extra = 0;
    for (int i = 0; i < n; ++i) extra += PickVersion(a, dist(gen)) == "2";
    double sigma = std::sqrt(n * w * (1 - w));
    EXPECT_NEAR(extra, n * w, 4 * sigma) << "weight " << w;
  }
}

TEST(RoutingTest, DefaultSourceIsUniform) {
  UniformSource u = DefaultUniformSource();
  const int n = 20000;
  double sum = 0;
  for (int i = 0; i < n; ++i) {
    double x = u();
    ASSERT_GE(x, 0.0);
    ASSERT_LT(x, 1.0);
    sum += x;
  }
  EXPECT_NEAR(sum / n, 0.5, 4 * std::sqrt(1.0 / 12 / n));
}

TEST(RegistryTest, VersionsAndAliasesSurviveLatestUpdates) {
  FunctionRegistry r;
  config::FunctionConfig latest;
  latest.name = "f";
  r.Put(FunctionEntry{latest, "/code/a"});
  config::FunctionConfig v1 = latest;
  v1.version = "1";
  r.PutVersion(VersionEntry{v1, "/code/a"});
  r.PutAlias(Alias("1", "", 0));
  latest.description = "changed";
  r.Put(FunctionEntry{latest, "/code/b"});
  const FunctionEntry* e = r.Find("f");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->latest.description, "changed");
  EXPECT_EQ(e->code_dir, "/code/b");
  ASSERT_NE(e->FindVersion("1"), nullptr);
  EXPECT_EQ(e->FindVersion("1")->code_dir, "/code/a");
  EXPECT_EQ(e->FindVersion("2"), nullptr);
  EXPECT_EQ(e->FindVersion("x"), nullptr);
  EXPECT_NE(e->FindAlias("live"), nullptr);
  r.EraseVersion("f", "1");
  r.EraseAlias("f", "live");
  EXPECT_EQ(e->FindVersion("1"), nullptr);
  EXPECT_EQ(e->FindAlias("live"), nullptr);
}

TEST(RegistryTest, SharedSnapshotsAreReusedUntilLatestChanges) {
  FunctionRegistry r;
  config::FunctionConfig latest;
  latest.name = "f";
  latest.description = "one";
  r.Put(FunctionEntry{latest, "/code/a"});
  config::FunctionConfig v1 = latest;
  v1.version = "1";
  r.PutVersion(VersionEntry{v1, "/code/a"});
  const FunctionEntry* e = r.Find("f");
  auto a = e->LatestShared();
  EXPECT_EQ(a, e->LatestShared());  // one snapshot for every invoke of the same $LATEST
  EXPECT_EQ(a->description, "one");
  auto v = e->FindVersion("1")->Shared();
  EXPECT_EQ(v, e->FindVersion("1")->Shared());
  latest.description = "two";
  r.Put(FunctionEntry{latest, "/code/b"});
  auto b = e->LatestShared();
  EXPECT_NE(a, b);
  EXPECT_EQ(b->description, "two");
  EXPECT_EQ(a->description, "one");  // an invocation holding the old snapshot keeps it
  EXPECT_EQ(e->FindVersion("1")->Shared(), v);  // published versions are untouched
}

}  // namespace
}  // namespace hearth::invoke
