#!/usr/bin/env python3
"""Attack: a fork bomb. Every process forks as fast as it can (each child forks too) until the
kernel refuses; the children then sit for `linger_s` seconds and exit (bounded, so the test
leaves nothing behind even if the limit failed)."""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from attack_runtime import err_name, serve  # noqa: E402


def handler(event):
    linger = float(event.get("linger_s", 5))
    r, w = os.pipe()
    t0 = time.monotonic()
    forks, refused = 0, None
    for _ in range(100000):
        try:
            pid = os.fork()
        except OSError as e:
            refused = err_name(e)
            break
        if pid == 0:
            # A child: fork more until refused, then wait and go.
            os.close(r)
            signal.alarm(int(linger) + 2)
            for _ in range(4):
                try:
                    if os.fork() == 0:
                        break
                except OSError:
                    break
            time.sleep(linger)
            os._exit(0)
        forks += 1
    os.close(w)
    elapsed = time.monotonic() - t0
    procs = sum(1 for x in os.listdir("/proc") if x.isdigit())
    # Can this process still do work (it cannot fork now)?
    with open("/tmp/after-bomb", "w") as f:
        f.write("ok")
    os.close(r)
    return {"forks": forks, "refused_with": refused, "procs_visible": procs,
            "seconds": round(elapsed, 3)}


serve(handler)
