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
#include <string_view>
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
  // A pre-start (a runtime started ahead of need, see sandbox_launcher.h): `mounts` attach the
  // runtime only, and the program is started as the sandbox user with seccomp, the init staying
  // root to take the function's claim later. That later claim to a pre-started sandbox attaches
  // its mounts and hands `env` to the waiting runtime (exec_path is then not executed).
  bool prestart = false;
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
  size_t n_env = 0;
  bool prestart = false;
};

// Child side (async-signal-safe): decodes `buf` (len bytes; the result points into it). `fds` are
// the descriptors received with it, in order (kAttachMount ops get theirs). False with *why set
// when the message is malformed.
bool DecodeClaim(char* buf, size_t len, const int* fds, int nfds, DecodedClaim* out, const char** why);

// The variable that tells a pre-started runtime which descriptor its function arrives on (the
// environment, NUL-separated KEY=VALUE, to the end of the stream).
inline constexpr const char* kPrestartFdVariable = "_HEARTH_PRESTART_FD";

// Variables read while a runtime starts (before the function is known): the dynamic loader's and
// glibc's (LD_*, GLIBC_TUNABLES, MALLOC_*), the locale and time zone (LANG, LANGUAGE, LC_*, TZ),
// PATH and HOME, the interpreters' own (PYTHON*, NODE_*, UV_*, OPENSSL_*, SSL_CERT_*).
bool IsStartupVariable(std::string_view key);

// Whether a runtime pre-started with `prestart_env` can serve a function whose environment is
// `function_env` (both KEY=VALUE): every startup variable must have the same value in both (or be
// absent from both), and the function may not set kPrestartFdVariable.
bool PrestartCompatible(const std::vector<std::string>& prestart_env, const std::vector<std::string>& function_env);

}  // namespace hearth::sandbox
