#include "sandbox/seccomp_policy.h"

#include <errno.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <seccomp.h>

#include <fmt/format.h>

#include "common/unique_fd.h"

namespace hearth::sandbox {

namespace {

struct CtxDeleter {
  void operator()(scmp_filter_ctx c) const { seccomp_release(c); }
};

}  // namespace

Result<SeccompPolicy> CompileSeccompPolicy() {
  std::unique_ptr<void, CtxDeleter> ctx(seccomp_init(SCMP_ACT_ALLOW));
  if (!ctx) return std::unexpected(Status::Internal("seccomp_init failed"));
  auto rule = [&](uint32_t action, const char* name, unsigned n = 0,
                  const scmp_arg_cmp* args = nullptr) -> Status {
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) return Status::Ok();  // not on this architecture
    int rc = seccomp_rule_add_array(ctx.get(), action, nr, n, args);
    if (rc < 0) return PosixError(fmt::format("seccomp rule for {}", name), -rc);
    return Status::Ok();
  };
  const uint32_t eperm = SCMP_ACT_ERRNO(EPERM);
  for (const char* name :
       {"mount", "umount", "umount2", "pivot_root", "move_mount", "open_tree", "fsopen", "fsconfig", "fsmount",
        "fspick", "mount_setattr", "kexec_load", "kexec_file_load", "bpf", "perf_event_open", "keyctl",
        "add_key", "request_key", "userfaultfd", "ptrace", "process_vm_readv", "process_vm_writev",
        "init_module", "finit_module", "delete_module", "clock_settime", "clock_adjtime", "settimeofday",
        "adjtimex", "stime", "reboot", "swapon", "swapoff", "acct", "unshare", "setns", "open_by_handle_at",
        "name_to_handle_at", "quotactl", "quotactl_fd", "lookup_dcookie", "iopl", "ioperm", "syslog",
        "vhangup", "nfsservctl", "uselib"}) {
    HEARTH_RETURN_IF_ERROR(rule(eperm, name));
  }
  // Runtimes fall back to what they can use.
  HEARTH_RETURN_IF_ERROR(rule(SCMP_ACT_ERRNO(ENOSYS), "clone3"));
  HEARTH_RETURN_IF_ERROR(rule(SCMP_ACT_ERRNO(ENOSYS), "io_uring_setup"));
  // clone(flags, ...) with any namespace flag.
  for (uint64_t flag : std::initializer_list<uint64_t>{CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID,
                             CLONE_NEWNET, CLONE_NEWCGROUP, 0x00000080UL /* CLONE_NEWTIME */}) {
    scmp_arg_cmp a = SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag);
    HEARTH_RETURN_IF_ERROR(rule(eperm, "clone", 1, &a));
  }
  // Raw and packet sockets.
  {
    scmp_arg_cmp a = SCMP_A0(SCMP_CMP_EQ, AF_PACKET);
    HEARTH_RETURN_IF_ERROR(rule(eperm, "socket", 1, &a));
    scmp_arg_cmp t = SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, SOCK_RAW);
    HEARTH_RETURN_IF_ERROR(rule(eperm, "socket", 1, &t));
    scmp_arg_cmp p = SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, SOCK_PACKET);
    HEARTH_RETURN_IF_ERROR(rule(eperm, "socket", 1, &p));
  }
  HEARTH_RETURN_IF_ERROR(rule(SCMP_ACT_ERRNO(EACCES), "listen"));
  // seccomp_export_bpf writes to an fd: a memfd, read back whole.
  UniqueFd mem(static_cast<int>(::syscall(SYS_memfd_create, "hearth-seccomp", MFD_CLOEXEC)));
  if (!mem.valid()) return std::unexpected(PosixError("memfd_create", errno));
  if (int rc = seccomp_export_bpf(ctx.get(), mem.get()); rc < 0)
    return std::unexpected(PosixError("seccomp_export_bpf", -rc));
  off_t size = ::lseek(mem.get(), 0, SEEK_END);
  if (size <= 0 || size % sizeof(sock_filter) != 0)
    return std::unexpected(Status::Internal(fmt::format("seccomp program has a bad size {}", size)));
  SeccompPolicy policy;
  policy.program.resize(size / sizeof(sock_filter));
  if (::pread(mem.get(), policy.program.data(), size, 0) != size)
    return std::unexpected(PosixError("read seccomp program", errno));
  return policy;
}

int LoadSeccompPolicy(const sock_fprog* prog) {
  if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, prog) != 0) return errno;
  return 0;
}

}  // namespace hearth::sandbox
