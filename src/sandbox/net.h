#pragma once
// Network namespace, "none" mode: the sandbox has only `lo`. The CHILD brings lo up and creates the
// Runtime API listener on 127.0.0.1:9001 inside its own namespace, then passes it to the parent
// (SCM_RIGHTS on the handshake socket); the daemon accepts on it from the host namespace. Nothing
// outside can connect in, and the host's loopback is a different one (ECONNREFUSED from inside).

#include "common/unique_fd.h"
#include "sandbox/child_report.h"

namespace hearth::sandbox {

inline constexpr int kRuntimeApiPort = 9001;
inline constexpr const char* kRuntimeApiAddress = "127.0.0.1:9001";

// Child side (async-signal-safe). Return 0 or errno; *what names the failing call.
int BringLoopbackUp(const char** what);
// Creates, binds and listens; returns the fd or -errno.
int ListenRuntimeApi(const char** what);
// Sends `record` with `fd` attached. Returns 0 or errno.
int SendRecordWithFd(int sock, const ChildRecord& record, int fd);

// Parent side: receives one record (and an fd if attached, else *fd stays invalid).
// Returns bytes read (0 = EOF) or -errno.
ssize_t ReceiveRecord(int sock, ChildRecord* record, UniqueFd* fd, int flags = 0);

}  // namespace hearth::sandbox
