#pragma once
// The sandbox's seccomp policy: compiled ONCE in the parent with libseccomp (seccomp_export_bpf),
// loaded in the child as the last step before execve with the raw seccomp(2) call (32 µs instead
// of 81 µs for building it in every child, machine.md D).
//
// Default allow; denied: mount family, kexec, bpf, perf_event_open, keyctl/add_key/request_key,
// userfaultfd, ptrace/process_vm_*, module loading, clock and time setting, reboot, swap, acct,
// namespaces (unshare, setns, clone with CLONE_NEW*; clone3 answers ENOSYS so libc falls back to
// clone), open_by_handle_at, raw and packet sockets, listen() (EACCES: the runtime only connects;
// no inbound connections ever), io_uring (ENOSYS, runtimes fall back).
// Foreign architectures (i386 via int 0x80, x32) kill the process.

#include <linux/filter.h>

#include <vector>

#include "common/status.h"

namespace hearth::sandbox {

struct SeccompPolicy {
  std::vector<sock_filter> program;
  sock_fprog prog() const {
    return sock_fprog{static_cast<unsigned short>(program.size()), const_cast<sock_filter*>(program.data())};
  }
};

Result<SeccompPolicy> CompileSeccompPolicy();

// Child side (async-signal-safe). Requires no_new_privs (or CAP_SYS_ADMIN). Returns 0 or errno.
int LoadSeccompPolicy(const sock_fprog* prog);

}  // namespace hearth::sandbox
