#!/usr/bin/env python3
"""Attack: mount, umount, and a user namespace to get a namespace-root that could mount."""
import ctypes
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from attack_runtime import attempt, ccall, libc, serve  # noqa: E402

CLONE_NEWNS, CLONE_NEWUSER = 0x00020000, 0x10000000
MNT_DETACH = 2


def handler(event):
    c = libc()
    c.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]
    c.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
    c.unshare.argtypes = [ctypes.c_int]
    os.makedirs("/tmp/mnt", exist_ok=True)
    out = {
        "mount_tmpfs": attempt(ccall, c.mount, b"none", b"/tmp/mnt", b"tmpfs", 0, None),
        "bind_root": attempt(ccall, c.mount, b"/", b"/tmp/mnt", None, 0x1000 | 0x4000, None),
        "remount_var_task_rw": attempt(ccall, c.mount, None, b"/var/task", None, 0x20 | 0x1000, None),
        "umount_tmp": attempt(ccall, c.umount2, b"/tmp", MNT_DETACH),
        "umount_proc": attempt(ccall, c.umount2, b"/proc", MNT_DETACH),
        "unshare_user_ns": attempt(ccall, c.unshare, CLONE_NEWUSER | CLONE_NEWNS),
        "unshare_mount_ns": attempt(ccall, c.unshare, CLONE_NEWNS),
    }
    out["mount_binary"] = attempt(lambda: __import__("subprocess").run(
        ["/usr/bin/mount", "-t", "tmpfs", "none", "/tmp/mnt"], capture_output=True, text=True,
        timeout=10).stderr.strip()[:200])
    with open("/proc/self/mountinfo") as f:
        out["mounts"] = len(f.readlines())
    return out


serve(handler)
