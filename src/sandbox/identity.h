#pragma once
// Identity and resource limits of the sandboxed processes. The daemon runs as real root and uses
// no user namespace: the sandbox runs as a dedicated unprivileged host uid/gid (993, named
// sbx_user1051 in the sandbox's /etc/passwd), with an empty bounding set, no capabilities in any
// set, no supplementary groups and no_new_privs. (A user namespace would only add the uid-map
// pitfalls of machine.md and give the function a namespace-root it does not need; unshare and
// clone(CLONE_NEW*) are denied by seccomp, so it cannot make one itself.)

#include <sys/types.h>

namespace hearth::sandbox {

inline constexpr uid_t kSandboxUid = 993;
inline constexpr gid_t kSandboxGid = 993;
inline constexpr const char* kSandboxUser = "sbx_user1051";
inline constexpr int kOpenFilesLimit = 1024;

// Child side (async-signal-safe). Return 0 or errno; *what names the failing call.
int ApplyRlimits(const char** what);
int DropIdentity(uid_t uid, gid_t gid, const char** what);

}  // namespace hearth::sandbox
