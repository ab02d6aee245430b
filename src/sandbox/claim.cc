#include "sandbox/claim.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include <fmt/format.h>

namespace hearth::sandbox {

namespace {

constexpr uint32_t kMagic = 0x434c4149;  // "CLAI"

// Layout: Header, WireOp[n_ops], uint32 env offsets[n_env], then NUL-terminated strings. Offsets
// are from the start of the message; 0 means "none" (the header is at 0, so no string is there).
struct Header {
  uint32_t magic;
  uint32_t total;
  uint32_t n_ops;
  uint32_t n_env;
  uint32_t exec_path;
  uint32_t flags;  // kFlagPrestart
};

constexpr uint32_t kFlagPrestart = 1;

struct WireOp {
  int32_t kind;
  uint32_t mode;
  uint64_t dev;
  uint32_t devices;
  int32_t fd_index;  // kAttachMount: index into the fds sent with the message; else -1
  uint32_t source, target, display, data, fstype, pad;
};

}  // namespace

Result<EncodedClaim> EncodeClaim(const Claim& claim, const std::string& new_root) {
  if (claim.mounts.size() > kClaimMaxOps)
    return std::unexpected(Status::InvalidArgument(fmt::format("{} mount ops (at most {})", claim.mounts.size(), kClaimMaxOps)));
  if (claim.env.size() > kClaimMaxEnv)
    return std::unexpected(Status::InvalidArgument(fmt::format("{} environment variables (at most {})", claim.env.size(), kClaimMaxEnv)));
  const size_t fixed = sizeof(Header) + claim.mounts.size() * sizeof(WireOp) + claim.env.size() * sizeof(uint32_t);
  std::string out(fixed, '\0');
  auto add = [&](const std::string& s) -> uint32_t {
    uint32_t off = static_cast<uint32_t>(out.size());
    out.append(s);
    out.push_back('\0');
    return off;
  };
  auto add_opt = [&](const std::string& s) -> uint32_t { return s.empty() ? 0 : add(s); };
  Header h{};
  h.magic = kMagic;
  h.n_ops = static_cast<uint32_t>(claim.mounts.size());
  h.n_env = static_cast<uint32_t>(claim.env.size());
  h.exec_path = add(claim.exec_path);
  h.flags = claim.prestart ? kFlagPrestart : 0;
  std::vector<WireOp> ops;
  std::vector<int> fds;
  for (const MountOp& op : claim.mounts) {
    WireOp w{};
    w.kind = static_cast<int32_t>(op.kind);
    w.mode = op.mode;
    w.dev = op.dev;
    w.devices = op.devices ? 1 : 0;
    w.fd_index = -1;
    if (op.kind == MountKind::kAttachMount) {
      if (op.fd < 0 || fds.size() >= static_cast<size_t>(kClaimMaxFds))
        return std::unexpected(Status::InvalidArgument(fmt::format("attach '{}': no fd, or too many", op.target)));
      w.fd_index = static_cast<int32_t>(fds.size());
      fds.push_back(op.fd);
    }
    w.source = add_opt(op.source);
    w.target = add(op.target == "/" ? new_root : new_root + op.target);
    w.display = add(op.target);
    w.data = add_opt(op.data);
    w.fstype = add_opt(op.fstype);
    ops.push_back(w);
  }
  std::vector<uint32_t> env;
  for (const auto& e : claim.env) env.push_back(add(e));
  if (out.size() > kClaimMaxBytes)
    return std::unexpected(Status::InvalidArgument(fmt::format("the launch spec takes {} bytes (at most {})", out.size(), kClaimMaxBytes)));
  h.total = static_cast<uint32_t>(out.size());
  std::memcpy(out.data(), &h, sizeof h);
  if (!ops.empty()) std::memcpy(out.data() + sizeof h, ops.data(), ops.size() * sizeof(WireOp));
  if (!env.empty())
    std::memcpy(out.data() + sizeof h + ops.size() * sizeof(WireOp), env.data(), env.size() * sizeof(uint32_t));
  return EncodedClaim{std::move(out), std::move(fds)};
}

bool DecodeClaim(char* buf, size_t len, const int* fds, int nfds, DecodedClaim* out, const char** why) {
  Header h;
  if (len < sizeof h) return *why = "claim shorter than its header", false;
  std::memcpy(&h, buf, sizeof h);
  if (h.magic != kMagic || h.total != len) return *why = "bad claim header", false;
  if (h.n_ops > kClaimMaxOps || h.n_env > kClaimMaxEnv) return *why = "claim too large", false;
  if ((h.flags & ~kFlagPrestart) != 0) return *why = "bad claim flags", false;
  out->prestart = (h.flags & kFlagPrestart) != 0;
  const size_t fixed = sizeof h + h.n_ops * sizeof(WireOp) + h.n_env * sizeof(uint32_t);
  if (fixed > len || buf[len - 1] != '\0') return *why = "claim truncated", false;
  // A string offset must point into the string area (which ends with a NUL, checked above).
  auto str = [&](uint32_t off, bool optional, const char** s) {
    if (off == 0 && optional) return *s = nullptr, true;
    if (off < fixed || off >= len) return false;
    *s = buf + off;
    return true;
  };
  const char* exec_path;
  if (!str(h.exec_path, false, &exec_path)) return *why = "bad exec path offset", false;
  out->exec_path = exec_path;
  out->argv[0] = const_cast<char*>(exec_path);
  out->argv[1] = nullptr;
  for (uint32_t i = 0; i < h.n_ops; ++i) {
    WireOp w;
    std::memcpy(&w, buf + sizeof h + i * sizeof(WireOp), sizeof w);
    MountPlan::Op& o = out->ops[i];
    o.kind = static_cast<MountKind>(w.kind);
    if (w.kind < static_cast<int32_t>(MountKind::kTmpfs) || w.kind > static_cast<int32_t>(MountKind::kRemountRo))
      return *why = "bad mount op kind", false;
    o.mode = w.mode;
    o.dev = w.dev;
    o.devices = w.devices != 0;
    o.fd = -1;
    if (w.fd_index >= 0) {
      if (w.fd_index >= nfds || fds[w.fd_index] < 0) return *why = "a mount fd is missing", false;
      o.fd = fds[w.fd_index];
    }
    if (!str(w.source, true, &o.source) || !str(w.target, false, &o.target) || !str(w.display, false, &o.display) ||
        !str(w.data, true, &o.data) || !str(w.fstype, true, &o.fstype))
      return *why = "bad mount op string offset", false;
  }
  out->n_ops = h.n_ops;
  for (uint32_t i = 0; i < h.n_env; ++i) {
    uint32_t off;
    std::memcpy(&off, buf + sizeof h + h.n_ops * sizeof(WireOp) + i * sizeof(uint32_t), sizeof off);
    const char* e;
    if (!str(off, false, &e)) return *why = "bad environment offset", false;
    out->envp[i] = const_cast<char*>(e);
  }
  out->envp[h.n_env] = nullptr;
  out->n_env = h.n_env;
  return true;
}

bool IsStartupVariable(std::string_view key) {
  for (std::string_view prefix : {"LD_", "LC_", "PYTHON", "NODE_", "UV_", "MALLOC_", "OPENSSL_", "SSL_CERT_"}) {
    if (key.starts_with(prefix)) return true;
  }
  for (std::string_view name : {"LANG", "LANGUAGE", "TZ", "PATH", "HOME", "GLIBC_TUNABLES"}) {
    if (key == name) return true;
  }
  return false;
}

bool PrestartCompatible(const std::vector<std::string>& prestart_env, const std::vector<std::string>& function_env) {
  auto startup_vars = [](const std::vector<std::string>& env) {
    std::vector<std::string_view> out;
    for (const auto& e : env) {
      std::string_view kv = e;
      if (IsStartupVariable(kv.substr(0, kv.find('=')))) out.push_back(kv);
    }
    std::sort(out.begin(), out.end());
    return out;
  };
  for (const auto& e : function_env) {
    if (std::string_view(e).substr(0, e.find('=')) == kPrestartFdVariable) return false;
  }
  return startup_vars(prestart_env) == startup_vars(function_env);
}

}  // namespace hearth::sandbox
