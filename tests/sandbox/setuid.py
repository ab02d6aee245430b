#!/usr/bin/env python3
"""Attack: run the host's setuid-root binaries (/usr/bin/su, passwd, mount...) to gain root.

Each binary is started with a bad option and with stderr a pipe that is already full, so the
first thing it writes (its usage message) blocks it in write(2) with the credentials the kernel
gave it at execve: /proc/<pid>/status is read then. If nosuid or no_new_privs failed, Uid shows
an effective uid of 0 (as it does for these binaries outside the sandbox).
"""
import fcntl
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from attack_runtime import attempt, serve  # noqa: E402

CANDIDATES = ["/usr/bin/su", "/usr/bin/passwd", "/usr/bin/mount", "/usr/bin/chsh",
              "/usr/bin/newgrp", "/usr/bin/gpasswd", "/usr/bin/chfn", "/usr/bin/umount"]


def status_fields(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("Name", "Uid", "Gid", "CapEff", "CapPrm", "NoNewPrivs"):
                fields[k] = v.split() if k in ("Uid", "Gid") else v.strip()
    return fields


def probe(path):
    r, w = os.pipe()
    flags = fcntl.fcntl(w, fcntl.F_GETFL)
    fcntl.fcntl(w, fcntl.F_SETFL, flags | os.O_NONBLOCK)
    filled = 0
    try:
        while True:
            filled += os.write(w, b"x" * 4096)
    except BlockingIOError:
        pass
    fcntl.fcntl(w, fcntl.F_SETFL, flags)
    p = subprocess.Popen([path, "--hearth-no-such-option"], stdin=subprocess.DEVNULL, stdout=w,
                         stderr=w, close_fds=True)
    os.close(w)
    seen = None
    try:
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            try:
                f = status_fields(p.pid)
            except OSError:
                break
            if f.get("Name") == os.path.basename(path)[:15]:
                seen = f
                # Wait until it sits in write(2) (or has exited): the creds are final by then.
                with open(f"/proc/{p.pid}/stat") as st:
                    state = st.read().rsplit(")", 1)[1].split()[0]
                if state in ("S", "D", "Z"):
                    break
            time.sleep(0.002)
    finally:
        p.kill()
        p.wait()
        os.close(r)
    return {"observed": seen, "pipe_filled": filled, "exit": p.returncode}


def handler(event):
    with open("/proc/self/status") as f:
        nnp = [line.split()[1] for line in f if line.startswith("NoNewPrivs")][0]
    out = {"no_new_privs": nnp, "usr_nosuid": bool(os.statvfs("/usr/bin").f_flag & os.ST_NOSUID),
           "binaries": {}}
    for path in CANDIDATES:
        if os.path.exists(path):
            st = os.stat(path)
            out["binaries"][path] = {"setuid_bit": bool(st.st_mode & 0o4000), "owner": st.st_uid,
                                     **attempt(probe, path)}
    out["su_root_id"] = attempt(lambda: subprocess.run(
        ["/usr/bin/su", "root", "-c", "id -u"], capture_output=True, text=True, timeout=10,
        stdin=subprocess.DEVNULL).stdout.strip())
    return out


serve(handler)
