#!/usr/bin/env python3
"""Attack: read another function's code or /tmp.

Two roles. "victim": leaves a secret in its /tmp and answers the marker baked into its code.
"snoop": looks for the victim's code and /tmp by every path it can think of: the host paths of
the code store (passed in the event), every visible /proc/<pid>/root and /cwd, a bounded walk of
the whole visible filesystem for the markers, its own /tmp.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from attack_runtime import attempt, serve  # noqa: E402

MAX_FILES = 20000


def read(path):
    with open(path, "rb") as f:
        return f.read(4096).decode(errors="replace")


def walk_for(markers, roots):
    """Bounded walk: files whose name or first 4 KB contain a marker."""
    hits, seen = [], 0
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            # /usr is the host's public /usr (read-only, shared by all): not where secrets go.
            if dirpath.startswith(("/proc", "/sys", "/dev", "/usr")):
                dirnames[:] = []
                continue
            for name in filenames:
                seen += 1
                if seen > MAX_FILES:
                    return hits, seen
                p = os.path.join(dirpath, name)
                if any(m in name for m in markers):
                    hits.append(p)
                    continue
                try:
                    with open(p, "rb") as f:
                        head = f.read(4096).decode(errors="replace")
                    if any(m in head for m in markers):
                        hits.append(p)
                except OSError:
                    pass
    return hits, seen


def handler(event):
    role = event.get("role")
    if role == "victim":
        with open("/tmp/victim-secret", "w") as f:
            f.write(event["tmp_secret"])
        return {"code_marker": read("/var/task/marker.txt").strip(),
                "tmp_secret": read("/tmp/victim-secret")}
    markers = [event["code_marker"], event["tmp_secret"]]
    out = {"paths": {}}
    for p in event.get("host_paths", []):
        out["paths"][p] = attempt(lambda: os.listdir(p)[:20] if os.path.isdir(p) else read(p))
    proc = {}
    for pid in sorted(x for x in os.listdir("/proc") if x.isdigit()):
        for what in ("root/tmp", "cwd"):
            r = attempt(os.listdir, f"/proc/{pid}/{what}")
            proc[f"/proc/{pid}/{what}"] = r
    out["proc"] = proc
    hits, seen = walk_for(markers, ["/"])
    out["walk_hits"] = hits
    out["walk_files"] = seen
    out["own_tmp"] = sorted(os.listdir("/tmp"))
    out["found"] = [p for p, r in out["paths"].items() if r["ok"]] + hits + [
        p for p, r in proc.items() if r["ok"] and any(m in " ".join(r["value"]) for m in ["victim-secret"])]
    return out


serve(handler)
