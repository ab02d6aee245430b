#include "sandbox/claim.h"

#include <cstring>
#include <memory>

#include <gtest/gtest.h>

namespace hearth::sandbox {
namespace {

Claim Sample() {
  RootfsInputs in;
  in.code_dir = "/data/code/unpacked/abc";
  in.runtime_dir = "/srv/runtimes/python3.11";
  in.opt_dir = "/data/opt/xyz";
  in.tmp_mount_fd = 42;
  in.code_mount_fd = 43;
  Claim c;
  c.exec_path = "/var/runtime/bootstrap";
  c.env = {"A=1", "_HANDLER=app.handler", "EMPTY="};
  c.mounts = BuildFunctionRootfsSpec(in);
  return c;
}

// The child decodes into an aligned buffer it owns.
struct Buffer {
  alignas(8) char bytes[kClaimMaxBytes];
};

TEST(Claim, RoundTripsMountsProgramAndEnvironment) {
  Claim c = Sample();
  auto enc = EncodeClaim(c, "/state/root");
  ASSERT_TRUE(enc.has_value()) << enc.error().ToString();
  // Sent beside the message in the order of the ops: /var/task, then /tmp.
  EXPECT_EQ(enc->fds, (std::vector<int>{43, 42}));
  auto buf = std::make_unique<Buffer>();
  std::memcpy(buf->bytes, enc->bytes.data(), enc->bytes.size());
  auto out = std::make_unique<DecodedClaim>();
  const char* why = "";
  const int received[] = {8, 7};  // what the child got, in the same order
  ASSERT_TRUE(DecodeClaim(buf->bytes, enc->bytes.size(), received, 2, out.get(), &why)) << why;
  EXPECT_STREQ(out->exec_path, "/var/runtime/bootstrap");
  EXPECT_STREQ(out->argv[0], "/var/runtime/bootstrap");
  EXPECT_EQ(out->argv[1], nullptr);
  ASSERT_STREQ(out->envp[0], "A=1");
  EXPECT_STREQ(out->envp[1], "_HANDLER=app.handler");
  EXPECT_STREQ(out->envp[2], "EMPTY=");
  EXPECT_EQ(out->envp[3], nullptr);
  ASSERT_EQ(out->n_ops, c.mounts.size());
  bool saw_tmp = false, saw_task = false;
  for (size_t i = 0; i < out->n_ops; ++i) {
    const auto& o = out->ops[i];
    EXPECT_EQ(o.kind, c.mounts[i].kind);
    EXPECT_EQ(std::string(o.display), c.mounts[i].target);
    EXPECT_EQ(std::string(o.target), "/state/root" + c.mounts[i].target);
    if (o.kind == MountKind::kAttachMount && std::string(o.display) == "/tmp") {
      saw_tmp = true;
      EXPECT_EQ(o.fd, 7);  // the fd the child received, not the sender's 42
    } else if (o.kind == MountKind::kAttachMount && std::string(o.display) == "/var/task") {
      saw_task = true;
      EXPECT_EQ(o.fd, 8);
    } else {
      EXPECT_EQ(o.fd, -1);
    }
    if (o.kind == MountKind::kBindRo) {
      EXPECT_TRUE(o.source != nullptr);
    }
  }
  EXPECT_TRUE(saw_tmp);
  EXPECT_TRUE(saw_task);
}

TEST(Claim, RejectsDamagedMessages) {
  auto enc = EncodeClaim(Sample(), "/r");
  ASSERT_TRUE(enc.has_value());
  const std::string* msg = &enc->bytes;
  const int fds[] = {5, 6};
  auto buf = std::make_unique<Buffer>();
  auto out = std::make_unique<DecodedClaim>();
  const char* why = "";
  // Truncated (the declared total no longer matches).
  std::memcpy(buf->bytes, msg->data(), msg->size());
  EXPECT_FALSE(DecodeClaim(buf->bytes, msg->size() - 1, fds, 2, out.get(), &why));
  EXPECT_STRNE(why, "");
  // Too short for a header.
  EXPECT_FALSE(DecodeClaim(buf->bytes, 3, fds, 2, out.get(), &why));
  // A string offset pointing outside the message.
  std::memcpy(buf->bytes, msg->data(), msg->size());
  uint32_t bad = 0xfffffff0;
  std::memcpy(buf->bytes + 16, &bad, sizeof bad);  // Header::exec_path
  EXPECT_FALSE(DecodeClaim(buf->bytes, msg->size(), fds, 2, out.get(), &why));
  EXPECT_STREQ(why, "bad exec path offset");
  // Fewer fds than the ops refer to.
  std::memcpy(buf->bytes, msg->data(), msg->size());
  EXPECT_FALSE(DecodeClaim(buf->bytes, msg->size(), fds, 1, out.get(), &why));
  EXPECT_STREQ(why, "a mount fd is missing");
  // Wrong magic.
  std::memcpy(buf->bytes, msg->data(), msg->size());
  buf->bytes[0] ^= 1;
  EXPECT_FALSE(DecodeClaim(buf->bytes, msg->size(), fds, 2, out.get(), &why));
}

TEST(Claim, RefusesWhatDoesNotFit) {
  Claim c = Sample();
  c.env.assign(kClaimMaxEnv + 1, "X=1");
  EXPECT_FALSE(EncodeClaim(c, "/r").has_value());
  c = Sample();
  c.env = {std::string(kClaimMaxBytes, 'x')};
  auto r = EncodeClaim(c, "/r");
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("bytes"), std::string::npos);
}

TEST(Claim, CarriesThePrestartFlag) {
  for (bool prestart : {false, true}) {
    Claim c = Sample();
    c.prestart = prestart;
    auto enc = EncodeClaim(c, "");
    ASSERT_TRUE(enc.has_value()) << enc.error().ToString();
    auto buf = std::make_unique<Buffer>();
    std::memcpy(buf->bytes, enc->bytes.data(), enc->bytes.size());
    auto out = std::make_unique<DecodedClaim>();
    const char* why = "";
    const int received[] = {8, 7};
    ASSERT_TRUE(DecodeClaim(buf->bytes, enc->bytes.size(), received, 2, out.get(), &why)) << why;
    EXPECT_EQ(out->prestart, prestart);
    EXPECT_EQ(out->n_env, 3u);
  }
}

TEST(Claim, PrestartServesOnlyFunctionsThatAgreeOnStartupVariables) {
  const std::vector<std::string> pre = {"LANG=en_US.UTF-8", "TZ=:UTC", "PATH=/usr/bin"};
  // Other variables do not matter; order does not either.
  EXPECT_TRUE(PrestartCompatible(pre, {"PATH=/usr/bin", "_HANDLER=a.b", "LANG=en_US.UTF-8", "FOO=1", "TZ=:UTC"}));
  // A different value, a missing one, or one the interpreter reads at start that it did not have.
  EXPECT_FALSE(PrestartCompatible(pre, {"LANG=C", "TZ=:UTC", "PATH=/usr/bin"}));
  EXPECT_FALSE(PrestartCompatible(pre, {"TZ=:UTC", "PATH=/usr/bin"}));
  for (const char* extra : {"PYTHONPATH=/x", "PYTHONDONTWRITEBYTECODE=1", "NODE_OPTIONS=--x", "LD_PRELOAD=/x.so",
                            "LC_ALL=C", "MALLOC_ARENA_MAX=2", "HOME=/tmp", "_HEARTH_PRESTART_FD=3"}) {
    std::vector<std::string> env = pre;
    env.push_back(extra);
    EXPECT_FALSE(PrestartCompatible(pre, env)) << extra;
  }
  EXPECT_TRUE(IsStartupVariable("PYTHONHASHSEED"));
  EXPECT_FALSE(IsStartupVariable("AWS_REGION"));
}

}  // namespace
}  // namespace hearth::sandbox
