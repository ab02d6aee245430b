#include "daemon/malloc_tuning.h"

#include <gtest/gtest.h>

namespace hearth::daemon {
namespace {

TEST(MallocTuningTest, AddsTheCacheSizeAndKeepsOtherTunables) {
  EXPECT_EQ(TunablesWithTcache(nullptr), "glibc.malloc.tcache_count=256");
  EXPECT_EQ(TunablesWithTcache(""), "glibc.malloc.tcache_count=256");
  EXPECT_EQ(TunablesWithTcache("glibc.malloc.arena_max=2"),
            "glibc.malloc.arena_max=2:glibc.malloc.tcache_count=256");
}

TEST(MallocTuningTest, LeavesAnExistingCacheSizeAlone) {
  // The operator's own value, and our own after the re-exec (no loop).
  EXPECT_EQ(TunablesWithTcache("glibc.malloc.tcache_count=16"), std::nullopt);
  EXPECT_EQ(TunablesWithTcache("glibc.malloc.arena_max=2:glibc.malloc.tcache_count=256"), std::nullopt);
}

}  // namespace
}  // namespace hearth::daemon
