#pragma once
// The claim: what turns a blank sandbox (namespaces, cgroup, network and the common part of the
// root made ahead of need) into one function's environment: the function's mounts (/var/task,
// /var/runtime, /opt, /tmp), the program and its environment. The daemon encodes it into one
// SOCK_SEQPACKET message (the detached mounts of kAttachMount ops travel beside it, SCM_RIGHTS,
// referred to by their index); the blank sandbox's
// init decodes it IN PLACE, without allocating (it is a clone() child and stays async-signal-safe),
// into arrays of fixed size.

#include <cstddef>
#include <string>
#include <vector>

#include "common/status.h"
#include "sandbox/mounts.h"

namespace hearth::sandbox {

inline constexpr size_t kClaimMaxBytes = 64 << 10;
inline constexpr size_t kClaimMaxOps = 16;
inline constexpr size_t kClaimMaxEnv = 4096;
inline constexpr int kClaimMaxFds = 4;

struct Claim {
  std::string exec_path;          // as the sandbox sees it, e.g. /var/task/bootstrap
  std::vector<std::string> env;   // KEY=VALUE
  MountSpec mounts;               // BuildFunctionRootfsSpec(); kAttachMount fds are sent beside
};

struct EncodedClaim {
  std::string bytes;
  std::vector<int> fds;  // to send with it (SCM_RIGHTS), in this order
};

// `new_root`: where the sandbox's root was built (targets are prefixed with it, as PrepareMountPlan
// does). InvalidArgument when the claim does not fit (too many ops, fds, variables or bytes).
Result<EncodedClaim> EncodeClaim(const Claim& claim, const std::string& new_root);

// What the child gets: pointers into the message buffer.
struct DecodedClaim {
  const char* exec_path = nullptr;
  char* argv[2] = {nullptr, nullptr};
  char* envp[kClaimMaxEnv + 1] = {};
  MountPlan::Op ops[kClaimMaxOps] = {};
  size_t n_ops = 0;
};

// Child side (async-signal-safe): decodes `buf` (len bytes; the result points into it). `fds` are
// the descriptors received with it, in order (kAttachMount ops get theirs). False with *why set
// when the message is malformed.
bool DecodeClaim(char* buf, size_t len, const int* fds, int nfds, DecodedClaim* out, const char** why);

}  // namespace hearth::sandbox
