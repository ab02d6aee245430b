#!/usr/bin/env python3
"""Attack: fill /tmp until the kernel refuses, in 1 MB writes (fsync at the end)."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from attack_runtime import err_name, serve  # noqa: E402


def handler(event):
    block = b"\xa5" * (1 << 20)
    t0 = time.monotonic()
    written, error = 0, None
    fd = os.open("/tmp/fill", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for _ in range(20000):  # 20 GB: beyond the largest EphemeralStorage
            try:
                n = os.write(fd, block)
            except OSError as e:
                error = err_name(e)
                break
            written += n
            if n < len(block):
                continue
        try:
            os.fsync(fd)
        except OSError as e:
            error = error or err_name(e)
    finally:
        os.close(fd)
    st = os.statvfs("/tmp")
    elapsed = time.monotonic() - t0
    os.unlink("/tmp/fill")
    return {"written": written, "error": error, "seconds": round(elapsed, 2),
            "fs_size": st.f_blocks * st.f_frsize, "fs_free_when_full": st.f_bavail * st.f_frsize}


serve(handler)
