#include "sandbox/mounts.h"

#include <gtest/gtest.h>

namespace hearth::sandbox {
namespace {

RootfsInputs Inputs() {
  RootfsInputs in;
  in.etc_dir = "/etc";
  in.code_dir = "/usr/share";
  in.tmp_tmpfs_options = "size=1m";
  return in;
}

TEST(MountSpec, StandardRootIsValid) {
  MountSpec spec = BuildRootfsSpec(Inputs());
  Status st = ValidateMountSpec(spec);
  EXPECT_TRUE(st.ok()) << st.ToString();
  auto has = [&](MountKind k, const std::string& t) {
    for (const auto& op : spec)
      if (op.kind == k && op.target == t) return true;
    return false;
  };
  EXPECT_TRUE(has(MountKind::kBindRo, "/usr"));
  EXPECT_TRUE(has(MountKind::kBindRo, "/var/task"));
  EXPECT_TRUE(has(MountKind::kProc, "/proc"));
  EXPECT_TRUE(has(MountKind::kTmpfs, "/tmp"));
  EXPECT_TRUE(has(MountKind::kCharDevice, "/dev/null"));
  EXPECT_TRUE(has(MountKind::kMkdir, "/opt"));
}

TEST(MountSpec, BlockDeviceTmp) {
  RootfsInputs in = Inputs();
  in.tmp_device = "/dev/null";  // any existing path: sources are checked for existence only
  Status st = ValidateMountSpec(BuildRootfsSpec(in));
  EXPECT_TRUE(st.ok()) << st.ToString();
}

struct BadCase {
  const char* name;
  MountSpec spec;
  const char* want;  // substring of the error
};

TEST(MountSpec, RejectsBadSpecs) {
  const MountOp root{.kind = MountKind::kTmpfs, .target = "/", .data = "size=1m"};
  const BadCase cases[] = {
      {"empty", {}, "empty"},
      {"root not first", {{.kind = MountKind::kMkdir, .target = "/a"}}, "first op"},
      {"relative", {root, {.kind = MountKind::kMkdir, .target = "a"}}, "absolute"},
      {"dotdot", {root, {.kind = MountKind::kMkdir, .target = "/a/../b"}}, "normalized"},
      {"trailing slash", {root, {.kind = MountKind::kMkdir, .target = "/a/"}}, "normalized"},
      {"no parent", {root, {.kind = MountKind::kMkdir, .target = "/a/b"}}, "parent '/a'"},
      {"twice", {root, {.kind = MountKind::kMkdir, .target = "/a"}, {.kind = MountKind::kMkdir, .target = "/a"}},
       "created twice"},
      {"no mount point", {root, {.kind = MountKind::kProc, .target = "/proc"}}, "mount point"},
      {"missing source",
       {root, {.kind = MountKind::kMkdir, .target = "/x"},
        {.kind = MountKind::kBindRo, .source = "/nonexistent/hearth", .target = "/x"}},
       "does not exist"},
      {"tmpfs without size",
       {root, {.kind = MountKind::kMkdir, .target = "/tmp"}, {.kind = MountKind::kTmpfs, .target = "/tmp"}},
       "size="},
      {"mounted twice",
       {root, {.kind = MountKind::kMkdir, .target = "/p"}, {.kind = MountKind::kProc, .target = "/p"},
        {.kind = MountKind::kProc, .target = "/p"}},
       "mounted twice"},
      {"remount non-mount", {root, {.kind = MountKind::kMkdir, .target = "/d"}, {.kind = MountKind::kRemountRo, .target = "/d"}},
       "not a mount point"},
  };
  for (const auto& c : cases) {
    Status st = ValidateMountSpec(c.spec);
    EXPECT_FALSE(st.ok()) << c.name;
    EXPECT_NE(st.message().find(c.want), std::string::npos) << c.name << ": " << st.message();
  }
}

TEST(MountSpec, ErrorNamesIndexKindAndPath) {
  MountSpec spec = {{.kind = MountKind::kTmpfs, .target = "/", .data = "size=1m"},
                    {.kind = MountKind::kSymlink, .source = "x", .target = "/a/b"}};
  Status st = ValidateMountSpec(spec);
  EXPECT_EQ(st.message(), "mount op #1 (symlink '/a/b'): parent '/a' is not created by an earlier op");
}

TEST(MountSpec, BindContentsAreValidParents) {
  MountSpec spec = {{.kind = MountKind::kTmpfs, .target = "/", .data = "size=1m"},
                    {.kind = MountKind::kMkdir, .target = "/etc"},
                    {.kind = MountKind::kBindRo, .source = "/etc", .target = "/etc"},
                    {.kind = MountKind::kBindRo, .source = "/etc", .target = "/etc/ssl"}};
  EXPECT_TRUE(ValidateMountSpec(spec).ok());
}

TEST(MountPlan, PrefixesTargetsWithTheNewRoot) {
  MountSpec spec = BuildRootfsSpec(Inputs());
  auto plan = PrepareMountPlan(spec, "/state/root");
  ASSERT_EQ(plan->ops.size(), spec.size());
  EXPECT_STREQ(plan->ops[0].target, "/state/root");
  EXPECT_STREQ(plan->ops[1].target, "/state/root/usr");
  EXPECT_STREQ(plan->ops[1].display, "/usr");
}

}  // namespace
}  // namespace hearth::sandbox
