#!/usr/bin/env python3
"""Attack: write anywhere but /tmp (new files, overwriting the code, chmod, mknod, /proc/sys)."""
import os
import stat
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from attack_runtime import attempt, serve  # noqa: E402

DIRS = ["/", "/var/task", "/opt", "/etc", "/usr", "/usr/bin", "/var", "/dev", "/proc", "/root", "/home"]


def create(path):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, b"pwned\n")
    finally:
        os.close(fd)
    return "written"


def overwrite(path):
    with open(path, "r+b") as f:
        f.write(b"pwned")
    return "overwritten"


def handler(event):
    out = {"create": {}, "other": {}}
    for d in DIRS:
        out["create"][d] = attempt(create, os.path.join(d, "hearth-escape-probe"))
    out["other"]["overwrite /var/task/bootstrap"] = attempt(overwrite, "/var/task/bootstrap")
    out["other"]["overwrite /etc/passwd"] = attempt(overwrite, "/etc/passwd")
    out["other"]["chmod /var/task/bootstrap"] = attempt(os.chmod, "/var/task/bootstrap", 0o777)
    out["other"]["mkdir /opt/x"] = attempt(os.mkdir, "/opt/hearth-escape-probe")
    out["other"]["rename /etc/hosts"] = attempt(os.rename, "/etc/hosts", "/etc/hosts.bak")
    out["other"]["unlink /var/task/bootstrap"] = attempt(os.unlink, "/var/task/bootstrap")
    out["other"]["symlink /etc/x"] = attempt(os.symlink, "/tmp", "/etc/hearth-escape-probe")
    out["other"]["mknod /tmp/sda"] = attempt(os.mknod, "/tmp/hearth-sda", 0o600 | stat.S_IFBLK,
                                             os.makedev(8, 0))
    out["other"]["write /proc/sys/kernel/hostname"] = attempt(overwrite, "/proc/sys/kernel/hostname")
    out["other"]["write /proc/sysrq-trigger"] = attempt(overwrite, "/proc/sysrq-trigger")
    # The control: /tmp is writable.
    out["tmp"] = attempt(create, "/tmp/hearth-escape-probe")
    out["sys_visible"] = os.path.exists("/sys/kernel")
    return out


serve(handler)
