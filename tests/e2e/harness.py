"""End-to-end test harness: a real `hearth serve` on a free loopback port, real clients.

Each `Daemon` owns a fresh temporary data directory and one daemon process. It gives a boto3
Lambda client, a way to run the AWS CLI (v1) against it, raw HTTP access (for what SDKs refuse
to send), the `hearth` CLI, restart support (SIGTERM or SIGKILL, then start again on the same data
directory) and a teardown that checks no runtime process of the daemon is left running.

Paths come from the environment (set by CTest):
  HEARTH_BIN        the `hearth` binary          (default: <repo>/build/hearth)
  HEARTH_EXAMPLES   directory with echo.zip etc. (default: <repo>/build/examples)
  HEARTH_KEEP_DATA  if set, data directories are kept for post-mortems
  HEARTH_E2E_ISOLATION  if set, passed as `hearth serve --isolation`; else the daemon's default
                    when running as root, and `process` otherwise
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import zipfile

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
HEARTH_BIN = os.environ.get("HEARTH_BIN") or os.path.join(REPO, "build", "hearth")
HEARTH_EXAMPLES = os.environ.get("HEARTH_EXAMPLES") or os.path.join(REPO, "build", "examples")

REGION = "us-east-1"
ACCOUNT = "000000000000"
ROLE = "arn:aws:iam::000000000000:role/lambda-role"

# Dummy credentials: Hearth does not check signatures, but SDKs and the CLI insist on signing.
CLIENT_ENV = {
    "AWS_ACCESS_KEY_ID": "AKIDHEARTHTEST",
    "AWS_SECRET_ACCESS_KEY": "hearth-test-secret",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_PAGER": "",
    "AWS_MAX_ATTEMPTS": "1",
    "AWS_RETRY_MODE": "standard",
    # Never read the developer's own ~/.aws files.
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


def function_arn(name: str, qualifier: str | None = None) -> str:
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
    return f"{arn}:{qualifier}" if qualifier else arn


def not_found_message(name: str) -> str:
    return f"Function not found: {function_arn(name)}"


# --------------------------------------------------------------------------------------------
# Zips


def make_zip(files: dict) -> bytes:
    """files: {name: bytes|str|(bytes|str, mode)}; `bootstrap` defaults to 0755, others 0644."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, spec in files.items():
            if isinstance(spec, tuple):
                data, mode = spec
            else:
                data, mode = spec, (0o755 if os.path.basename(name) == "bootstrap" else 0o644)
            if isinstance(data, str):
                data = data.encode()
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix: external_attr carries the mode
            info.external_attr = ((0o100000 | mode) << 16)
            zf.writestr(info, data)
    return buf.getvalue()


def example_zip(name: str) -> bytes:
    path = os.path.join(HEARTH_EXAMPLES, name)
    with open(path, "rb") as f:
        return f.read()


def echo_zip() -> bytes:
    return example_zip("echo.zip")


def python_zip() -> bytes:
    return example_zip("python.zip")


def python_bootstrap_zip(script: str, extra: dict | None = None) -> bytes:
    """A zip whose bootstrap is the given Python 3 script (a shebang is added when missing)."""
    if not script.startswith("#!"):
        script = "#!/usr/bin/env python3\n" + script
    files = {"bootstrap": (script, 0o755)}
    files.update(extra or {})
    return make_zip(files)


def require_examples(testcase: unittest.TestCase | None = None) -> None:
    for f in (HEARTH_BIN, os.path.join(HEARTH_EXAMPLES, "echo.zip"),
              os.path.join(HEARTH_EXAMPLES, "python.zip")):
        if not os.path.exists(f):
            raise unittest.SkipTest(
                f"{f} is missing: build first (ninja -C build) or set HEARTH_BIN/HEARTH_EXAMPLES")


# --------------------------------------------------------------------------------------------
# Processes


def _proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, starttime) of a live process, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    rest = data[data.rfind(")") + 2:].split()
    return rest[0], int(rest[1]), int(rest[19])


def pid_alive(pid: int, starttime: int | None = None) -> bool:
    st = _proc_stat(pid)
    if st is None or st[0] in ("Z", "X"):
        return False
    return starttime is None or st[2] == starttime


def proc_starttime(pid: int) -> int | None:
    st = _proc_stat(pid)
    return st[2] if st else None


def proc_cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def _proc_comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def _unclaimed_sandbox(pid: int) -> bool:
    """A sandbox made ahead of need and not claimed yet (a blank one, or one with a pre-started
    runtime waiting for its function): its cgroup has no memory limit until a launch claims it."""
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return False
    for line in lines:
        _, ctrls, path = line.split(":", 2)
        if ctrls == "memory":
            limit_file = f"/sys/fs/cgroup/memory{path}/memory.limit_in_bytes"
            break
    else:
        path = next((l.split(":", 2)[2] for l in lines if l.split(":", 2)[1] == ""), None)
        if path is None:
            return False
        limit_file = f"/sys/fs/cgroup{path}/memory.max"
    if not path.rstrip("/").rsplit("/", 1)[-1].startswith("hearth-"):
        return False  # not in a sandbox's cgroup (e.g. --isolation process)
    try:
        with open(limit_file) as f:
            limit = f.read().strip()
    except OSError:
        return False
    return limit == "max" or (limit.isdigit() and int(limit) > 1 << 50)


def descendants(root: int) -> list[int]:
    """Live (non-zombie) descendants of `root`."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        st = _proc_stat(int(entry))
        if st is None or st[0] in ("Z", "X"):
            continue
        children.setdefault(st[1], []).append(int(entry))
    out, todo = [], [root]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def wait_until(pred, timeout: float, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if pred():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------------------------
# The daemon


class HttpAnswer:
    def __init__(self, status: int, headers: dict, body: bytes):
        self.status = status
        self.headers = headers  # lower-case names
        self.body = body

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"HttpAnswer({self.status}, {self.headers}, {self.body[:300]!r})"


class Daemon:
    def __init__(self, *extra_args: str, name: str = "hearth"):
        require_examples()
        self.extra_args = list(extra_args)
        isolation = os.environ.get("HEARTH_E2E_ISOLATION")
        if not isolation and os.geteuid() != 0:
            isolation = "process"  # the sandbox needs root; plain processes work for anyone
        if isolation and "--isolation" not in self.extra_args:
            self.extra_args += ["--isolation", isolation]
        self.tmp = tempfile.mkdtemp(prefix=f"hearth-e2e-{name}-")
        self.data_dir = os.path.join(self.tmp, "data")
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self._log = None
        self._starts = 0
        self._clients: dict = {}
        # Runtime processes seen while the daemon ran: pid -> starttime.
        self._seen: dict[int, int] = {}

    # -- process control --------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_path(self) -> str:
        return os.path.join(self.tmp, f"daemon-{self._starts}.log")

    def start(self, timeout: float = 15.0) -> "Daemon":
        assert self.proc is None or self.proc.poll() is not None, "already running"
        last_err = ""
        for _attempt in range(5):
            self._starts += 1
            self.port = free_port()
            self._log = open(self.log_path(), "wb")
            self.proc = subprocess.Popen(
                [HEARTH_BIN, "serve", "--listen", f"127.0.0.1:{self.port}",
                 "--data-dir", self.data_dir, "--log-level", "warn", *self.extra_args],
                stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                cwd=self.tmp)
            self._clients = {}
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    if self.health() is not None:
                        return self
                except OSError:
                    pass
                time.sleep(0.02)
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
                raise RuntimeError(f"hearth did not answer /hearth/v1/health within {timeout}s:\n"
                                   + self.daemon_log())
            last_err = self.daemon_log()
            if "in use" not in last_err.lower():
                break  # not a port race: no point trying again
        raise RuntimeError(f"hearth serve exited with {self.proc.returncode}:\n{last_err}")

    def daemon_log(self) -> str:
        try:
            with open(self.log_path(), "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def runtime_pids(self) -> list[int]:
        """Live runtime processes of this daemon (children, and pids from DATA/run/*.pid)."""
        pids = set()
        if self.proc is not None and self.proc.poll() is None:
            pids.update(descendants(self.proc.pid))
            # Not runtimes: the sandbox's spawner and its blank sandboxes made ahead of need (an
            # init without children: claimed ones have the bootstrap below them), and sandboxes
            # with a pre-started runtime not claimed yet (no memory limit yet).
            parents = {_proc_stat(p)[1] for p in pids if _proc_stat(p)}
            pids = {p for p in pids
                    if _proc_comm(p) != "hearth-spawner"
                    and not (_proc_comm(p) == "hearth-init" and p not in parents)
                    and not _unclaimed_sandbox(p)}
        run = os.path.join(self.data_dir, "run")
        if os.path.isdir(run):
            for f in os.listdir(run):
                if f.endswith(".pid"):
                    try:
                        with open(os.path.join(run, f)) as fh:
                            pids.add(int(fh.read().strip() or "0"))
                    except (OSError, ValueError):
                        pass
        out = [p for p in pids if p > 1 and pid_alive(p)]
        for p in out:
            self._seen.setdefault(p, proc_starttime(p) or 0)
        return sorted(out)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        """Stops the daemon with `sig`; returns its exit code. Remembers its runtime processes."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.runtime_pids()
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"hearth did not exit within {timeout}s of signal {sig}")
        if self._log:
            self._log.close()
            self._log = None
        return self.proc.returncode

    def restart(self, sig: int = signal.SIGTERM) -> "Daemon":
        self.stop(sig)
        return self.start()

    def leftover_processes(self, wait: float = 3.0) -> list[int]:
        """Runtime processes seen earlier that are still alive after `wait` seconds."""
        def alive():
            return [p for p, t in self._seen.items() if pid_alive(p, t or None)]
        wait_until(lambda: not alive(), wait)
        return alive()

    def close(self, check_children: bool = True) -> None:
        """Stops the daemon (SIGTERM) and checks that it left no runtime process behind."""
        leftovers = []
        try:
            if self.proc is not None and self.proc.poll() is None:
                code = self.stop(signal.SIGTERM)
                if code not in (0, -signal.SIGTERM) and check_children:
                    raise AssertionError(f"hearth exited with {code} on SIGTERM:\n"
                                         + self.daemon_log()[-3000:])
            leftovers = self.leftover_processes()
            for p in leftovers:  # clean up anyway, then fail
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        finally:
            if not os.environ.get("HEARTH_KEEP_DATA"):
                shutil.rmtree(self.tmp, ignore_errors=True)
        if leftovers and check_children:
            raise AssertionError(f"runtime processes left running after the daemon stopped: "
                                 f"{leftovers}")

    # -- HTTP -------------------------------------------------------------------------------

    def request(self, method: str, path: str, body: bytes | str | None = None,
                headers: dict | None = None, timeout: float = 60) -> HttpAnswer:
        if isinstance(body, str):
            body = body.encode()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read()
            return HttpAnswer(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
        finally:
            conn.close()

    def health(self) -> dict | None:
        try:
            r = self.request("GET", "/hearth/v1/health", timeout=2)
        except (OSError, http.client.HTTPException):
            return None
        return r.json() if r.status == 200 else None

    def logs(self, name: str) -> str:
        r = self.request("GET", f"/hearth/v1/functions/{name}/logs")
        if r.status != 200:
            raise AssertionError(f"logs of {name}: {r}")
        return r.body.decode(errors="replace")

    def invoke_raw(self, name: str, payload: bytes | str = b"{}", headers: dict | None = None,
                   qualifier: str | None = None, timeout: float = 60) -> HttpAnswer:
        path = f"/2015-03-31/functions/{name}/invocations"
        if qualifier is not None:
            path += f"?Qualifier={qualifier}"
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        return self.request("POST", path, payload, h, timeout=timeout)

    # -- clients ----------------------------------------------------------------------------

    def client(self, read_timeout: int = 60):
        """A boto3 Lambda client for this daemon (one per read timeout; reset on restart)."""
        import boto3
        from botocore.config import Config
        if read_timeout not in self._clients:
            self._clients[read_timeout] = boto3.client(
                "lambda", endpoint_url=self.endpoint, region_name=REGION,
                aws_access_key_id=CLIENT_ENV["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=CLIENT_ENV["AWS_SECRET_ACCESS_KEY"],
                config=Config(retries={"max_attempts": 1}, read_timeout=read_timeout,
                              connect_timeout=5, max_pool_connections=64))
        return self._clients[read_timeout]

    def aws(self, *args: str, check: bool = True, timeout: float = 120):
        """Runs `aws lambda ARGS --endpoint-url ...`; returns (CompletedProcess, parsed JSON|None)."""
        aws = shutil.which("aws")
        if aws is None:
            raise unittest.SkipTest("the AWS CLI (`aws`) is not on PATH")
        env = dict(os.environ)
        env.update(CLIENT_ENV)
        cmd = [aws, "lambda", *args, "--endpoint-url", self.endpoint,
               "--cli-read-timeout", "60", "--cli-connect-timeout", "5", "--output", "json"]
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout,
                           cwd=self.tmp)
        if check and p.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr}")
        out = None
        if p.stdout.strip():
            try:
                out = json.loads(p.stdout)
            except ValueError:
                out = None
        return p, out

    def cli(self, *args: str, env: dict | None = None, timeout: float = 60, endpoint=True,
            input: str | None = None) -> subprocess.CompletedProcess:
        """Runs the `hearth` CLI against this daemon."""
        e = dict(os.environ)
        e.pop("HEARTH_ENDPOINT", None)
        e.update(env or {})
        cmd = [HEARTH_BIN, *args]
        if endpoint:
            cmd = [HEARTH_BIN, "--endpoint", self.endpoint, *args]
        return subprocess.run(cmd, env=e, capture_output=True, text=True, timeout=timeout,
                              input=input, cwd=self.tmp)

    # -- conveniences -----------------------------------------------------------------------

    def create(self, name: str, zip_bytes: bytes | None = None, **kw) -> dict:
        args = dict(FunctionName=name, Runtime="provided.al2023", Role=ROLE,
                    Handler="bootstrap.handler", Code={"ZipFile": zip_bytes or echo_zip()})
        args.update(kw)
        return self.client().create_function(**args)

    def invoke(self, name: str, payload, **kw) -> tuple[dict, bytes]:
        """boto3 Invoke of `payload` (bytes as they are, anything else as JSON).

        Returns (the response dict, the payload bytes)."""
        if not isinstance(payload, bytes):
            payload = json.dumps(payload)
        r = self.client().invoke(FunctionName=name, Payload=payload, **kw)
        body = r["Payload"].read() if "Payload" in r else b""
        return r, body


def decode_tail(resp: dict) -> str:
    return base64.b64decode(resp["LogResult"]).decode(errors="replace")


class DaemonTestCase(unittest.TestCase):
    """One daemon for the whole class (started in setUpClass, checked and removed after)."""

    daemon_args: tuple = ()
    daemon: Daemon

    @classmethod
    def setUpClass(cls):
        cls.daemon = Daemon(*cls.daemon_args, name=cls.__name__).start()

    @classmethod
    def tearDownClass(cls):
        cls.daemon.close()

    def assertDaemonAlive(self):
        self.assertIsNone(self.daemon.proc.poll(), "the daemon died:\n" + self.daemon.daemon_log())
        self.assertIsNotNone(self.daemon.health(), "the daemon does not answer /hearth/v1/health")

    def assertClientError(self, ctx, code: str, status: int | None = None, message=None):
        """ctx: the assertRaises context of a botocore ClientError."""
        err = ctx.exception.response
        self.assertEqual(err["Error"]["Code"], code, err)
        if status is not None:
            self.assertEqual(err["ResponseMetadata"]["HTTPStatusCode"], status, err)
        if message is not None:
            if hasattr(message, "search"):
                self.assertRegex(err["Error"]["Message"], message)
            else:
                self.assertEqual(err["Error"]["Message"], message)
        return err


def unique(prefix: str) -> str:
    unique.n += 1
    return f"{prefix}-{os.getpid()}-{unique.n}"


unique.n = 0


if __name__ == "__main__":  # a quick manual check: start, print the endpoint, wait for Ctrl-C
    d = Daemon(*sys.argv[1:]).start()
    print(d.endpoint, d.data_dir, flush=True)
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    d.close()
