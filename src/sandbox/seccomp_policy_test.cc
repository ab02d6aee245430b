#include "sandbox/seccomp_policy.h"

#include <gtest/gtest.h>

namespace hearth::sandbox {
namespace {

TEST(SeccompPolicy, Compiles) {
  auto p = CompileSeccompPolicy();
  ASSERT_TRUE(p.has_value()) << p.error().ToString();
  EXPECT_GT(p->program.size(), 20u);
  EXPECT_LT(p->program.size(), 4096u);  // BPF_MAXINSNS
  sock_fprog prog = p->prog();
  EXPECT_EQ(prog.len, p->program.size());
}

}  // namespace
}  // namespace hearth::sandbox
