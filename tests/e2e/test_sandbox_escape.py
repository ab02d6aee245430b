"""The escape and abuse battery: real attack functions (tests/sandbox/*.py) run by a real daemon.

Every attack is a function zip whose `bootstrap` tries something a tenant must not be able to do
and answers, as JSON, what happened (tests/sandbox/attack_runtime.py). Each test asserts that the
attack failed for the function, and after each test that the host and the daemon are unharmed: the
daemon answers, a bystander function still works, a canary file on the host is untouched and none
of the files the attacks try to create exists on the host.

Needs root (the sandbox launcher does); skipped otherwise. HEARTH_ESCAPE_REPORT=<file> writes
every attack's answer to <file> as JSON (docs/security.md quotes these).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import unittest

try:
    from botocore.exceptions import ClientError
except ImportError:  # reported by the harness when a test runs; the root check comes first
    ClientError = Exception

import harness
from harness import DaemonTestCase, unique

ATTACKS = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "sandbox"))
SANDBOX_UID = 993
REPORT: dict = {}


def attack_zip(name: str, extra: dict | None = None) -> bytes:
    with open(os.path.join(ATTACKS, name + ".py"), "rb") as f:
        script = f.read()
    with open(os.path.join(ATTACKS, "attack_runtime.py"), "rb") as f:
        runtime = f.read()
    files = {"bootstrap": (script, 0o755), "attack_runtime.py": (runtime, 0o644)}
    files.update(extra or {})
    return harness.make_zip(files)


def setUpModule():
    if os.geteuid() != 0:
        reason = (f"the sandbox escape battery needs root (the sandbox launcher does); running as "
                  f"uid {os.geteuid()}")
        print(f"SKIP test_sandbox_escape: {reason}", file=sys.stderr, flush=True)
        raise unittest.SkipTest(reason)
    if os.environ.get("HEARTH_E2E_ISOLATION", "sandbox") != "sandbox":
        reason = "HEARTH_E2E_ISOLATION is not sandbox"
        print(f"SKIP test_sandbox_escape: {reason}", file=sys.stderr, flush=True)
        raise unittest.SkipTest(reason)


def tearDownModule():
    path = os.environ.get("HEARTH_ESCAPE_REPORT")
    if path and REPORT:
        with open(path, "w") as f:
            json.dump(REPORT, f, indent=1, sort_keys=True)


# Files the attacks try to create; none may appear on the host.
PROBE_PATHS = ["/hearth-escape-probe", "/opt/hearth-escape-probe", "/etc/hearth-escape-probe",
               "/usr/hearth-escape-probe", "/usr/bin/hearth-escape-probe", "/var/hearth-escape-probe",
               "/root/hearth-escape-probe", "/home/hearth-escape-probe", "/tmp/hearth-escape-probe"]


class SandboxEscapeTest(DaemonTestCase):
    daemon_args = ("--isolation", "sandbox")

    @classmethod
    def setUpClass(cls):
        for p in PROBE_PATHS:
            if os.path.lexists(p):
                raise unittest.SkipTest(f"{p} exists on the host before the battery ran: remove it")
        super().setUpClass()
        cls.bystander = unique("bystander")
        cls.daemon.create(cls.bystander)
        # A host file the attacks look for (by path) and must neither read nor change.
        cls.canary_dir = os.path.join(cls.daemon.tmp, "canary")
        os.makedirs(cls.canary_dir)
        cls.canary = os.path.join(cls.canary_dir, "host-canary.txt")
        with open(cls.canary, "w") as f:
            f.write(f"host canary {os.urandom(8).hex()}\n")
        cls.canary_state = cls._canary_state()

    @classmethod
    def _canary_state(cls):
        st = os.stat(cls.canary)
        with open(cls.canary, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest(), st.st_mtime_ns, st.st_mode

    def tearDown(self):
        self.assertDaemonAlive()
        _, body = self.daemon.invoke(self.bystander, {"bystander": self.id()})
        self.assertEqual(json.loads(body), {"bystander": self.id()}, "the bystander function broke")
        self.assertEqual(self._canary_state(), self.canary_state, "the host canary file changed")
        for p in PROBE_PATHS:
            self.assertFalse(os.path.lexists(p), f"an attack created {p} on the host")

    # -- helpers --------------------------------------------------------------------------------

    def create_attack(self, attack: str, extra: dict | None = None, **kw) -> str:
        name = unique(attack.replace("_", "-"))
        kw.setdefault("Timeout", 30)
        self.daemon.create(name, attack_zip(attack, extra), **kw)
        return name

    def run_attack(self, name: str, payload: dict | None = None, key: str | None = None) -> dict:
        r, body = self.daemon.invoke(name, payload or {})
        self.assertNotIn("FunctionError", r, body[:2000])
        out = json.loads(body)
        REPORT.setdefault(key or name.rsplit("-", 2)[0], []).append(out)
        # Whatever it did, it did it as the sandbox user.
        self.assertEqual((out["uid"], out["euid"]), (SANDBOX_UID, SANDBOX_UID), out)
        return out

    def attack(self, attack: str, payload: dict | None = None, **kw) -> dict:
        return self.run_attack(self.create_attack(attack, **kw), payload, key=attack)

    def assertFailed(self, result: dict, errors=None, what=""):
        self.assertFalse(result["ok"], f"{what}: the attack succeeded: {result}")
        if errors is not None:
            if isinstance(errors, str):
                errors = (errors,)
            self.assertIn(result["error"], errors, f"{what}: {result}")

    def assertFunctionError(self, r, body, error_type, message_re=None):
        self.assertEqual(r.get("FunctionError"), "Unhandled", body)
        err = json.loads(body)
        self.assertEqual(err["errorType"], error_type, err)
        if message_re:
            self.assertRegex(err["errorMessage"], message_re)
        return err

    # -- the battery ------------------------------------------------------------------------------

    def test_01_write_outside_tmp(self):
        out = self.attack("write_outside_tmp")
        for d, res in out["create"].items():
            self.assertFailed(res, ("EROFS", "EACCES", "EPERM", "ENOENT"), f"create in {d}")
        for what, res in out["other"].items():
            self.assertFailed(res, ("EROFS", "EACCES", "EPERM", "ENOENT"), what)
        self.assertTrue(out["tmp"]["ok"], f"/tmp must be writable: {out['tmp']}")
        self.assertFalse(out["sys_visible"], "/sys must not be visible")

    def test_02_read_another_functions_code_and_tmp(self):
        code_marker = f"code-marker-{os.urandom(8).hex()}"
        tmp_secret = f"tmp-secret-{os.urandom(8).hex()}"
        victim = self.create_attack("read_other_function", {"marker.txt": code_marker})
        snoop = self.create_attack("read_other_function", {"marker.txt": "not the victim"},
                                   MemorySize=256)
        v = self.run_attack(victim, {"role": "victim", "tmp_secret": tmp_secret},
                            key="read_other_function.victim")
        self.assertEqual((v["code_marker"], v["tmp_secret"]), (code_marker, tmp_secret))
        sha = self.daemon.client().get_function(FunctionName=victim)["Configuration"]["CodeSha256"]
        import base64
        hexsha = base64.b64decode(sha).hex()
        data = self.daemon.data_dir
        code_dir = os.path.join(data, "code", "unpacked", hexsha)
        self.assertTrue(os.path.isdir(code_dir), f"expected the victim's code at {code_dir}")
        host_paths = [code_dir, os.path.join(code_dir, "marker.txt"), os.path.join(data, "code"),
                      data, os.path.join(data, "sandbox"), os.path.join(data, "hearth.db"),
                      os.path.join(data, "sandbox", "tmp-images"), "/var/lib", "/root",
                      os.path.dirname(data)]
        out = self.run_attack(snoop, {"role": "snoop", "code_marker": code_marker,
                                      "tmp_secret": tmp_secret, "host_paths": host_paths},
                              key="read_other_function.snoop")
        self.assertEqual(out["found"], [], out)
        self.assertEqual(out["walk_hits"], [])
        for p, res in out["paths"].items():
            self.assertFailed(res, ("ENOENT",), p)
        self.assertNotIn("victim-secret", out["own_tmp"])
        self.assertGreater(out["walk_files"], 100, "the walk saw the sandbox's own files")
        # The victim's secret is still there for the victim (same environment, warm).
        v2 = self.run_attack(victim, {"role": "victim", "tmp_secret": tmp_secret},
                             key="read_other_function.victim")
        self.assertEqual(v2["env"], v["env"])

    def test_03_see_or_signal_host_processes(self):
        name = self.create_attack("host_processes")
        out = self.run_attack(name, {"daemon_pid": self.daemon.pid}, key="host_processes")
        self.assertFailed(out["kill0_daemon"], "ESRCH", "kill -0 daemon")
        self.assertFailed(out["sigterm_daemon"], "ESRCH", "SIGTERM daemon")
        self.assertFailed(out["read_daemon_cmdline"], "ENOENT", "/proc/<daemon>/cmdline")
        self.assertEqual(out["kill0_host_pid_range"], [], "pids outside the sandbox answered kill -0")
        self.assertLessEqual(len(out["proc_pids"]), 6, out["proc_comms"])
        self.assertNotIn(self.daemon.pid, out["proc_pids"])
        self.assertIn(1, out["proc_pids"])
        # Pid 1 is the sandbox's init, not the host's; a SIGKILL to it from inside is ignored.
        self.assertTrue(out["kill0_init"]["ok"])
        self.assertTrue(out["sigkill_init"]["ok"])  # delivered (the kernel drops it for an init)
        # ...and the environment survived it: the next invoke is warm in the same environment.
        again = self.run_attack(name, {"daemon_pid": self.daemon.pid}, key="host_processes.again")
        self.assertEqual(again["env"], out["env"])

    def test_04_ptrace(self):
        out = self.attack("ptrace")
        for k in ("attach_pid1", "seize_pid1", "attach_own_child", "process_vm_readv_pid1"):
            self.assertFailed(out[k], "EPERM", k)
        self.assertFalse(out["traceme"]["ok"], out["traceme"])
        self.assertFailed(out["read_proc_1_mem"], ("EACCES", "EPERM"), "/proc/1/mem")

    def test_05_mount(self):
        out = self.attack("mount")
        for k in ("mount_tmpfs", "bind_root", "remount_var_task_rw", "umount_tmp", "umount_proc",
                  "unshare_user_ns", "unshare_mount_ns"):
            self.assertFailed(out[k], "EPERM", k)
        # mount(8) is setuid root on the host; here it runs without privileges.
        self.assertTrue(out["mount_binary"]["ok"])
        self.assertRegex(out["mount_binary"]["value"], "superuser|permission denied|Operation not permitted")

    def test_06_setuid_binaries(self):
        out = self.attack("setuid")
        self.assertEqual(out["no_new_privs"], "1")
        self.assertTrue(out["usr_nosuid"])
        self.assertGreaterEqual(len(out["binaries"]), 3, out)
        for path, res in out["binaries"].items():
            self.assertTrue(res["setuid_bit"], f"{path} should be setuid root (the test's premise)")
            self.assertTrue(res["ok"], res)
            seen = res["value"]["observed"]
            self.assertIsNotNone(seen, f"{path} was never observed running: {res}")
            self.assertEqual(seen["Uid"], [str(SANDBOX_UID)] * 4, f"{path} gained a uid: {seen}")
            self.assertEqual(seen["CapEff"], "0000000000000000", f"{path} gained capabilities")
        self.assertNotEqual(out["su_root_id"].get("value"), "0")

    def test_06b_setuid_probe_sees_escalation_outside(self):
        """The setuid probe is sound: outside the sandbox (as nobody) it sees euid 0."""
        setpriv = shutil.which("setpriv")
        if not setpriv or not os.path.exists("/usr/bin/python3"):
            self.skipTest("setpriv or /usr/bin/python3 missing")
        script = os.path.join(self.daemon.tmp, "probe_outside.py")
        with open(script, "w") as f:
            f.write("import json, os, sys\n"
                    f"sys.path.insert(0, {ATTACKS!r})\n"
                    "os.environ['AWS_LAMBDA_RUNTIME_API'] = 'unused:1'\n"
                    f"src = open({os.path.join(ATTACKS, 'setuid.py')!r}).read()\n"
                    "exec(compile(src.replace('serve(handler)\\n', ''), 'setuid', 'exec'))\n"
                    "print(json.dumps(handler({})))\n")
        os.chmod(script, 0o644)
        os.chmod(self.daemon.tmp, 0o755)
        p = subprocess.run([setpriv, "--reuid=65534", "--regid=65534", "--clear-groups",
                            "/usr/bin/python3", script], capture_output=True, text=True, timeout=60,
                           cwd="/")
        self.assertEqual(p.returncode, 0, p.stderr)
        out = json.loads(p.stdout)
        su = out["binaries"]["/usr/bin/su"]["value"]["observed"]
        self.assertEqual(su["Uid"][1], "0", su)

    def test_07_raw_and_packet_sockets(self):
        out = self.attack("sockets")
        for k in ("packet_raw", "packet_dgram", "inet_raw_icmp", "inet_raw_tcp", "inet6_raw",
                  "inet_packet", "inet_raw_nonblock"):
            self.assertFailed(out[k], "EPERM", k)
        self.assertFailed(out["netlink_route"], "EPERM", "netlink (a SOCK_RAW socket)")
        self.assertEqual(out["interfaces"], ["lo"])
        self.assertFailed(out["udp_connect_out"], "ENETUNREACH", "a route out")

    def test_08_listen_and_accept_from_host(self):
        port = harness.free_port()
        name = self.create_attack("listen")
        import threading
        knocks = []

        def knock():  # the host tries to connect while the function tries to accept
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline:
                for host in ("127.0.0.1",):
                    for p in (port, port + 1):
                        try:
                            socket.create_connection((host, p), timeout=0.2).close()
                            knocks.append((host, p))
                        except OSError:
                            pass
                time.sleep(0.05)
        t = threading.Thread(target=knock)
        t.start()
        try:
            out = self.run_attack(name, {"port": port}, key="listen")
        finally:
            t.join()
        for k in ("listen_any", "listen_loopback", "listen_any6"):
            self.assertFailed(out[k], "EACCES", k)
        self.assertEqual(knocks, [], "the host connected to something")

    def test_09_daemon_api_on_host_loopback(self):
        out = self.attack("daemon_api", {"daemon_port": self.daemon.port, "other": self.bystander})
        for k in ("connect_127_0_0_1", "connect_localhost", "connect_0_0_0_0", "list_functions_direct"):
            self.assertFailed(out[k], ("ECONNREFUSED",), k)
        self.assertFailed(out["connect_ipv6_loopback"], ("ECONNREFUSED", "EADDRNOTAVAIL", "ENETUNREACH"),
                          "::1")
        # The Runtime API listener serves the Runtime API only.
        for k in ("via_runtime_api_list", "via_runtime_api_delete", "via_runtime_api_health",
                  "via_runtime_api_create"):
            self.assertTrue(out[k]["ok"], out[k])
            self.assertIn(out[k]["value"]["status"], (400, 403, 404, 405), (k, out[k]))
        # The bystander still exists (tearDown invokes it) and nothing named "pwned" appeared.
        with self.assertRaises(ClientError):
            self.daemon.client().get_function(FunctionName="pwned")

    def test_10_escape_through_proc(self):
        out = self.attack("proc_escape", {"host_files": [self.canary, "/etc/machine-id",
                                                         self.daemon.log_path()]})
        self.assertEqual(out["found"], [k for k, v in out["reads"].items() if v["ok"]])
        hostish = {"home", "root", "boot", "srv", "mnt", "media", "run", "sys", "work"}
        self.assertEqual(hostish & set(out["root"]), set(), out["root"])
        for pre, res in out["listings"].items():
            if pre.startswith("/proc/1/"):  # the init runs as root: its root and cwd are closed
                self.assertFailed(res, "EACCES", pre)
            else:
                self.assertTrue(res["ok"], (pre, res))
                self.assertEqual(res["value"], out["root"], f"{pre} is not the sandbox root")
        self.assertEqual(out["found"], [], "a host file was read through /proc")
        self.assertTrue(out["climb"]["ok"])
        self.assertEqual(out["climb"]["value"], out["root"])
        for fd, res in out["fds"].items():
            if res["ok"]:
                self.assertNotIn(self.daemon.tmp, res["value"], f"fd {fd} points at the host: {res}")

    def test_11_symlinks_in_the_zip_are_refused(self):
        for label, target in (("escaping", "../../../../../../etc/shadow"),
                              ("absolute", "/etc/shadow"),
                              ("absolute-dir", "/"),
                              ("escaping-dir", "..")):
            with self.subTest(label):
                z = attack_zip("proc_escape", {"leak": (target.encode(), 0o120777)})
                name = unique("symlink-" + label)
                with self.assertRaises(ClientError) as ctx:
                    self.daemon.create(name, z)
                err = self.assertClientError(ctx, "InvalidParameterValueException", 400)
                REPORT.setdefault("zip_symlink", []).append({label: err["Error"]["Message"]})
                with self.assertRaises(ClientError):
                    self.daemon.client().get_function(FunctionName=name)
        # A symlink that stays inside the package is fine, and the code is unchanged after it.
        ok = unique("symlink-inside")
        self.daemon.create(ok, attack_zip("proc_escape", {"alias.py": (b"attack_runtime.py", 0o120777)}))
        self.run_attack(ok, {"host_files": []}, key="zip_symlink_inside")

    def test_12_fork_bomb(self):
        name = self.create_attack("fork_bomb", MemorySize=1024)
        t0 = time.monotonic()
        out = self.run_attack(name, {"linger_s": 4}, key="fork_bomb")
        REPORT["fork_bomb"][-1]["invoke_seconds"] = round(time.monotonic() - t0, 2)
        self.assertEqual(out["refused_with"], "EAGAIN", out)
        self.assertLess(out["procs_visible"], 1030, out)
        self.assertGreater(out["forks"], 10, out)
        # The host can still fork (the limit is the sandbox's, not the host's).
        self.assertEqual(subprocess.run(["true"]).returncode, 0)
        # The next invoke works (same environment, bomb children still lingering or gone).
        out2 = self.run_attack(name, {"linger_s": 0}, key="fork_bomb.after")
        self.assertIn(out2["refused_with"], ("EAGAIN", None))

    def test_13_memory_bomb(self):
        name = self.create_attack("memory_bomb", MemorySize=128)
        before = self.run_attack(name, {}, key="memory_bomb.before")
        t0 = time.monotonic()
        r, body = self.daemon.invoke(name, {"bomb": True, "mb": 1024})
        elapsed = time.monotonic() - t0
        err = self.assertFunctionError(r, body, "Runtime.ExitError", r"signal: killed")
        REPORT.setdefault("memory_bomb", []).append({"error": err, "seconds": round(elapsed, 2)})
        after = self.run_attack(name, {}, key="memory_bomb.after")
        self.assertNotEqual(after["env"], before["env"], "the OOMed environment was reused")

    def test_14_fill_tmp(self):
        name = self.create_attack("fill_tmp", MemorySize=128, Timeout=60,
                                  EphemeralStorage={"Size": 512})
        t0 = time.monotonic()
        out = self.run_attack(name, {}, key="fill_tmp")
        REPORT["fill_tmp"][-1]["invoke_seconds"] = round(time.monotonic() - t0, 2)
        self.assertEqual(out["error"], "ENOSPC", out)
        # ENOSPC at the configured size: the ext4 image is sized by measuring its usable space
        # (src/sandbox/tmp_storage.h), so all of the 512 MiB fits and at most 0.5 % more
        # (measured: exactly 512 MiB written, 432 KiB left unusable when full).
        self.assertGreaterEqual(out["written"], 512 << 20, out)
        self.assertLessEqual(out["written"], (512 << 20) * 1005 // 1000, out)
        self.assertLess(out["seconds"], 20, out)
        # Not an OOM: the 128 MB function is still the same environment and works.
        again = self.run_attack(name, {}, key="fill_tmp.again")
        self.assertEqual(again["env"], out["env"])
        self.assertEqual(again["error"], "ENOSPC")

    def test_15_exhaust_file_descriptors(self):
        out = self.attack("fd_exhaust")
        self.assertEqual(out["rlimit"], [1024, 1024])
        self.assertFailed(out["raise_hard"], ("ValueError", "EPERM"), "raise RLIMIT_NOFILE")
        self.assertEqual(out["error"], "EMFILE", out)
        self.assertLessEqual(out["opened"], 1024)
        self.assertGreater(out["opened"], 1000)
        self.assertEqual(out["socket_when_full"], "EMFILE")

    def test_16_cpu_spin_past_the_timeout(self):
        name = self.create_attack("cpu_spin", Timeout=1)
        before = self.run_attack(name, {}, key="cpu_spin.before")
        t0 = time.monotonic()
        r, body = self.daemon.invoke(name, {"spin": True, "fork": True})
        elapsed = time.monotonic() - t0
        err = self.assertFunctionError(r, body, "Sandbox.Timedout", r"Task timed out after 1\.00 seconds")
        REPORT.setdefault("cpu_spin", []).append({"error": err, "seconds": round(elapsed, 2)})
        self.assertLess(elapsed, 3)
        after = self.run_attack(name, {}, key="cpu_spin.after")
        self.assertNotEqual(after["env"], before["env"], "the timed-out environment was reused")
        # No spinning process of the old environment is left on the host.
        def spinners():
            return [p for p in self.daemon.runtime_pids()
                    if harness._proc_stat(p) and harness._proc_stat(p)[0] == "R"]
        self.assertTrue(harness.wait_until(lambda: len(spinners()) == 0, 5), spinners())


if __name__ == "__main__":
    unittest.main(verbosity=2)
