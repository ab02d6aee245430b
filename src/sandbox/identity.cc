#include "sandbox/identity.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace hearth::sandbox {

int ApplyRlimits(const char** what) {
  // Lowering works; raising a hard limit would need CAP_SYS_RESOURCE (missing on these machines).
  rlimit cur{};
  *what = "getrlimit NOFILE";
  if (::getrlimit(RLIMIT_NOFILE, &cur) != 0) return errno;
  rlim_t n = kOpenFilesLimit;
  if (cur.rlim_max != RLIM_INFINITY && cur.rlim_max < n) n = cur.rlim_max;
  rlimit nofile{n, n};
  *what = "setrlimit NOFILE 1024";
  if (::setrlimit(RLIMIT_NOFILE, &nofile) != 0) return errno;
  rlimit core{0, 0};
  *what = "setrlimit CORE 0";
  if (::setrlimit(RLIMIT_CORE, &core) != 0) return errno;
  return 0;
}

int DropIdentity(uid_t uid, gid_t gid, const char** what) {
  // The bounding set first: dropping it needs CAP_SETPCAP, which goes away with the uid.
  *what = "PR_CAPBSET_DROP";
  for (int cap = 0; cap <= 63; ++cap) {
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) return errno;
  }
  // Raw system calls, not glibc's wrappers: in a multi-threaded process those broadcast the change
  // to every thread (nptl's setxid) and wait on a futex for each, and this child is a clone3() copy
  // with one thread whose memory still lists the daemon's threads; one that was being created at
  // the time of the clone never answers and the child hangs (seen: sandbox setup timed out after
  // 10 s while a test started a thread). The kernel call changes exactly this thread: all there is.
  *what = "setgroups(0)";
  if (::syscall(SYS_setgroups, 0, nullptr) != 0) return errno;
  *what = "setresgid";
  if (::syscall(SYS_setresgid, gid, gid, gid) != 0) return errno;
  *what = "setresuid";
  if (::syscall(SYS_setresuid, uid, uid, uid) != 0) return errno;
  // setresuid away from 0 clears the permitted and effective sets; clear inheritable and ambient too.
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  *what = "capset(0)";
  if (::syscall(SYS_capset, &hdr, data) != 0) return errno;
  *what = "PR_CAP_AMBIENT_CLEAR_ALL";
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) return errno;
  *what = "PR_SET_NO_NEW_PRIVS";
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return errno;
  return 0;
}

}  // namespace hearth::sandbox
