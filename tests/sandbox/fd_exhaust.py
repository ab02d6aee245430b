#!/usr/bin/env python3
"""Attack: open files until the kernel refuses; try to raise RLIMIT_NOFILE past its hard limit."""
import os
import resource
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from attack_runtime import attempt, err_name, serve  # noqa: E402


def handler(event):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    out = {"rlimit": [soft, hard],
           "raise_hard": attempt(resource.setrlimit, resource.RLIMIT_NOFILE, (hard * 64, hard * 64))}
    fds, error = [], None
    for _ in range(100000):
        try:
            fds.append(os.open("/dev/null", os.O_RDONLY))
        except OSError as e:
            error = err_name(e)
            break
    socks_error = None
    try:
        socket.socket()
    except OSError as e:
        socks_error = err_name(e)
    for fd in fds:
        os.close(fd)
    out.update({"opened": len(fds), "error": error, "socket_when_full": socks_error})
    return out


serve(handler)
