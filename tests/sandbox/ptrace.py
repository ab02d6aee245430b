#!/usr/bin/env python3
"""Attack: ptrace (attach to pid 1, to an own child, TRACEME) and process_vm_readv."""
import ctypes
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from attack_runtime import attempt, ccall, libc, serve  # noqa: E402

PTRACE_TRACEME, PTRACE_ATTACH, PTRACE_SEIZE = 0, 16, 0x4206


def handler(event):
    c = libc()
    c.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    c.ptrace.restype = ctypes.c_long
    out = {"attach_pid1": attempt(ccall, c.ptrace, PTRACE_ATTACH, 1, None, None),
           "seize_pid1": attempt(ccall, c.ptrace, PTRACE_SEIZE, 1, None, None)}
    child = os.fork()
    if child == 0:
        time.sleep(5)
        os._exit(0)
    try:
        out["attach_own_child"] = attempt(ccall, c.ptrace, PTRACE_ATTACH, child, None, None)
    finally:
        os.kill(child, 9)
        os.waitpid(child, 0)
    r, w = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(r)
        try:
            ccall(c.ptrace, PTRACE_TRACEME, 0, None, None)
            os.write(w, b"ok")
        except OSError as e:
            os.write(w, str(e.errno).encode())
        os._exit(0)
    os.close(w)
    res = os.read(r, 64).decode()
    os.close(r)
    os.waitpid(child, 0)
    out["traceme"] = {"ok": res == "ok", "value": res}

    class IoVec(ctypes.Structure):
        _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
    buf = ctypes.create_string_buffer(64)
    local = IoVec(ctypes.cast(buf, ctypes.c_void_p), 64)
    remote = IoVec(0x400000, 64)
    c.process_vm_readv.restype = ctypes.c_ssize_t
    out["process_vm_readv_pid1"] = attempt(ccall, c.process_vm_readv, 1, ctypes.byref(local), 1,
                                           ctypes.byref(remote), 1, 0)
    out["read_proc_1_mem"] = attempt(lambda: open("/proc/1/mem", "rb").read(1))
    return out


serve(handler)
