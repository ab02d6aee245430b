#pragma once
// One message with file descriptors attached (SCM_RIGHTS) over a Unix socket: the spawner's
// requests and replies, and the claims sent to blank sandboxes. System calls only, so cloned
// children and the spawner may use it.

#include <sys/types.h>

#include <cstddef>

namespace hearth::sandbox {

// The most descriptors one message carries.
inline constexpr int kMaxPassedFds = 8;

// Sends `data` with `fds` (at most kMaxPassedFds) attached. sendmsg's result (-1 and errno).
ssize_t SendWithFds(int sock, const void* data, size_t len, const int* fds, int nfds);

// Receives one message into `data` and its descriptors (CLOEXEC) into `fds` (*nfds set).
// Returns the bytes, 0 on EOF, or -errno; -EMSGSIZE when the message was cut short or carried
// more than `max_fds` (<= kMaxPassedFds) descriptors (the extra ones are closed).
ssize_t ReceiveWithFds(int sock, void* data, size_t len, int* fds, int max_fds, int* nfds);

}  // namespace hearth::sandbox
