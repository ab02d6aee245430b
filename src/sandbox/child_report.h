#pragma once
// The parent/child handshake of the sandbox (nsjail style). The child writes fixed-size records on
// a SOCK_SEQPACKET socketpair; the parent reads them in Launch() and, after exit, in TryReap().
//
// Everything here is async-signal-safe: the child of clone() in a multi-threaded daemon may not
// allocate, lock or throw. Strings are copied by hand into fixed buffers.

#include <errno.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>

namespace hearth::sandbox {

enum class ChildStep : int32_t {
  kReady = 0,        // the bootstrap was executed; value = its pid inside the sandbox
  kExited = 1,       // the bootstrap exited; value = its wait status
  kListener = 2,     // carries the Runtime API listening socket (SCM_RIGHTS)
  kBlank = 3,        // a blank sandbox is made and waits for its claim
  kPrestarted = 4,   // a pre-started runtime runs in it (value = its pid) and waits for its function
  kCgroup = 10,
  kSignals,
  kFds,
  kNetwork,
  kMount,
  kPivotRoot,
  kHostname,
  kRlimit,
  kIdentity,
  kSeccomp,
  kFork,
  kExec,
  kClaim,            // receiving or decoding the claim
};

const char* ChildStepName(ChildStep step);

struct ChildRecord {
  ChildStep step = ChildStep::kReady;
  int32_t err = 0;     // errno of the failing call (0 on success records)
  int32_t value = 0;   // pid or wait status
  char message[244] = {};  // the failing call and path, e.g. "mount proc /proc"
};
static_assert(sizeof(ChildRecord) == 256);

namespace child {

// Appends `s` to the NUL-terminated `buf` of `cap` bytes.
// Every signal back to its default disposition and none blocked: a child of clone() must not run
// the daemon's handlers, nor inherit the mask the parent held across the clone.
inline void ResetSignals() {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) ::sigaction(sig, &dfl, nullptr);
  }
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
}

inline void Append(char* buf, size_t cap, const char* s) {
  size_t n = 0;
  while (n < cap && buf[n]) ++n;
  while (s && *s && n + 1 < cap) buf[n++] = *s++;
  if (n < cap) buf[n] = '\0';
}

inline void Report(int fd, ChildStep step, int err, const char* what, const char* path = nullptr,
                   int value = 0) {
  ChildRecord r;
  r.step = step;
  r.err = err;
  r.value = value;
  Append(r.message, sizeof r.message, what);
  if (path) {
    Append(r.message, sizeof r.message, " ");
    Append(r.message, sizeof r.message, path);
  }
  ssize_t ignored = ::send(fd, &r, sizeof r, MSG_NOSIGNAL);
  (void)ignored;
}

// Writes decimal `v` into buf (cap >= 12); returns buf.
inline char* Itoa(long v, char* buf, size_t cap) {
  char tmp[24];
  int n = 0;
  bool neg = v < 0;
  unsigned long u = neg ? static_cast<unsigned long>(-v) : static_cast<unsigned long>(v);
  do {
    tmp[n++] = static_cast<char>('0' + u % 10);
    u /= 10;
  } while (u && n < 22);
  size_t i = 0;
  if (neg && i + 1 < cap) buf[i++] = '-';
  while (n > 0 && i + 1 < cap) buf[i++] = tmp[--n];
  buf[i] = '\0';
  return buf;
}

}  // namespace child
}  // namespace hearth::sandbox
