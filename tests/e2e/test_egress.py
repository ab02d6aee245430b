"""Network mode egress end to end: `hearth serve --network egress` against `--network none`.

The only peer is a TCP server this module runs on 10.203.<n>.2 in a network namespace it creates
itself (`hearth-e2e-egress-<pid>`, a veth pair to the host with 10.203.<n>.1/30): no packet leaves
the machine. A python3 bootstrap function connects to it and returns what it read (egress), or the
error it got (none). Everything the module creates (namespace, veth, server) is removed in
tearDownModule, also when a test fails.

Needs root, the sandbox, iproute2 and slirp4netns; otherwise it prints `SKIP test_egress: <why>`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import unittest

import harness
from harness import Daemon, unique

BANNER = "hearth-egress-banner"

# The function: a Runtime API loop (stdlib only) that connects to event["host"]:event["port"].
FUNCTION = r'''
import errno, json, os, socket, urllib.request
API = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"
def handle(event):
    out = {"resolv": open("/etc/resolv.conf").read().strip()}
    try:
        s = socket.create_connection((event["host"], event["port"]), timeout=5)
        out["banner"] = s.makefile().readline().strip()
        s.close()
        out["ok"] = True
    except OSError as e:
        out["ok"] = False
        out["error"] = errno.errorcode.get(e.errno, str(e.errno)) if e.errno else type(e).__name__
    return out
while True:
    with urllib.request.urlopen(API + "next") as r:
        rid = r.headers["Lambda-Runtime-Aws-Request-Id"]
        event = json.loads(r.read())
    body = json.dumps(handle(event)).encode()
    urllib.request.urlopen(urllib.request.Request(API + rid + "/response", data=body, method="POST")).read()
'''

SERVER = r'''
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 0)); s.listen(16)
print(s.getsockname()[1], flush=True)
while True:
    c, _ = s.accept()
    c.sendall(sys.argv[2].encode() + b"\n")
    c.close()
'''

PEER: dict = {}


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def _skip(reason: str):
    print(f"SKIP test_egress: {reason}", file=sys.stderr, flush=True)
    raise unittest.SkipTest(reason)


def _cleanup_peer():
    proc = PEER.pop("server", None)
    if proc is not None:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    if "ns" in PEER:
        _ip("netns", "del", PEER["ns"], check=False)
    if "host_if" in PEER:
        _ip("link", "del", PEER["host_if"], check=False)  # normally gone with the namespace


def setUpModule():
    if os.geteuid() != 0:
        _skip(f"egress needs the sandbox, which needs root; running as uid {os.geteuid()}")
    if os.environ.get("HEARTH_E2E_ISOLATION", "sandbox") != "sandbox":
        _skip("HEARTH_E2E_ISOLATION is not sandbox")
    if shutil.which("ip") is None:
        _skip("`ip` (iproute2) is not installed")
    if shutil.which("slirp4netns") is None:
        _skip("slirp4netns is not installed")
    pid = os.getpid()
    n = 1 + (pid + 101) % 250
    PEER.update(ns=f"hearth-e2e-egress-{pid}", host_if=f"hee{pid % 10000000}a", peer_if=f"hee{pid % 10000000}b",
                host_ip=f"10.203.{n}.1", ip=f"10.203.{n}.2")
    try:
        _ip("netns", "add", PEER["ns"])
        _ip("link", "add", PEER["host_if"], "type", "veth", "peer", "name", PEER["peer_if"], "netns", PEER["ns"])
        _ip("addr", "add", PEER["host_ip"] + "/30", "dev", PEER["host_if"])
        _ip("link", "set", PEER["host_if"], "up")
        _ip("-n", PEER["ns"], "addr", "add", PEER["ip"] + "/30", "dev", PEER["peer_if"])
        _ip("-n", PEER["ns"], "link", "set", PEER["peer_if"], "up")
        _ip("-n", PEER["ns"], "link", "set", "lo", "up")
        PEER["server"] = subprocess.Popen(
            ["ip", "netns", "exec", PEER["ns"], sys.executable, "-c", SERVER, PEER["ip"], BANNER],
            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        PEER["port"] = int(PEER["server"].stdout.readline())
    except BaseException:
        _cleanup_peer()
        raise


def tearDownModule():
    _cleanup_peer()


class EgressTest(unittest.TestCase):
    def run_function(self, network: str) -> dict:
        daemon = Daemon("--isolation", "sandbox", "--network", network, name=f"egress-{network}")
        try:
            daemon.start()
            name = unique(f"egress-{network}")
            daemon.create(name, harness.python_bootstrap_zip(FUNCTION), Timeout=15)
            r, body = daemon.invoke(name, {"host": PEER["ip"], "port": PEER["port"]})
            self.assertNotIn("FunctionError", r, body[:2000])
            return json.loads(body)
        finally:
            daemon.close()

    def test_egress_reaches_the_peer(self):
        out = self.run_function("egress")
        self.assertEqual(out, {"ok": True, "banner": BANNER, "resolv": "nameserver 10.0.2.3"})

    def test_none_reports_the_failure(self):
        out = self.run_function("none")
        self.assertFalse(out["ok"], out)
        self.assertEqual(out["error"], "ENETUNREACH", out)


if __name__ == "__main__":
    unittest.main()
