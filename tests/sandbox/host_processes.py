#!/usr/bin/env python3
"""Attack: see or signal host processes (the daemon's host pid arrives in the event)."""
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from attack_runtime import attempt, serve  # noqa: E402


def comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError as e:
        return f"?{e.errno}"


def handler(event):
    target = int(event["daemon_pid"])
    pids = sorted(int(x) for x in os.listdir("/proc") if x.isdigit())
    out = {
        "proc_pids": pids,
        "proc_comms": {str(p): comm(p) for p in pids},
        "kill0_daemon": attempt(os.kill, target, 0),
        "sigterm_daemon": attempt(os.kill, target, signal.SIGTERM),
        "read_daemon_cmdline": attempt(lambda: open(f"/proc/{target}/cmdline", "rb").read().decode()),
        "kill0_init": attempt(os.kill, 1, 0),
        "sigkill_init": attempt(os.kill, 1, signal.SIGKILL),
        "kill0_host_pid_range": [],
    }
    # Every pid up to the daemon's, in steps: does any answer kill -0 but sit outside /proc?
    visible = set(pids)
    for p in range(2, min(target + 1, 40000), 7):
        if p in visible:
            continue
        try:
            os.kill(p, 0)
            out["kill0_host_pid_range"].append(p)
        except OSError:
            pass
    out["pid_1_comm"] = comm(1)
    out["still_alive_after_sigkill_init"] = True
    return out


serve(handler)
