#!/usr/bin/env python3
"""Scale benchmarks of issue 5 (docs/benchmarks.md, "Scale (issue 5)").

One command per part; every part starts its own daemons (`hearth serve` from --build, scratch
--data-dir under /tmp, 127.0.0.1 only) and stops them; load comes from bench/load_gen (C++, raw
epoll, keep-alive, every answer checked):

    make build && ninja -C build load_gen                # or: cmake --build build --target load_gen
    python3 bench/scale_bench.py --build build                   # throughput + burst + density
    python3 bench/scale_bench.py --build build --only throughput # 1 / 8 / 64 connections
    python3 bench/scale_bench.py --build build --only burst      # 500 simultaneous cold invokes
    python3 bench/scale_bench.py --build build --only density    # idle warm environments per host
    npm ci --prefix bench/peers                                  # once: serverless(-offline), lambda-local
    python3 bench/scale_bench.py --build build --only peers      # the npm peers, same handler

  throughput  for each --isolation (default: sandbox, then process): a fresh daemon, the C++ echo
              (examples/echo.zip, provided.al2023, --memory-mb, default 1769 = one vCPU of quota)
              and invokes/s with p50/p99 at 1, 8 and 64 keep-alive connections (C connections make
              C environments); each invoke figure is the median of --repeat runs (default 3; every
              run's figure is kept), with the share of CPU time the hypervisor stole meanwhile. Same run baselines: load_gen's own echo server (the floor: what two
              processes exchanging the same HTTP bytes cost) and the daemon's cheapest endpoint
              (GET /hearth/v1/health: Hearth's HTTP server without an invoke). During each measured
              window the CPU time of the daemon, of its runtimes and of load_gen is read from /proc
              (per invoke), with the daemon's context switches and the whole machine's idle share.
  burst       a fresh daemon and a function never invoked; --burst-count (500) connections are
              opened, then one invoke is written on each back to back: time until all answered,
              every answer checked; then the same burst again (now warm).
  density     a fresh daemon (--max-environments above the largest step), the C++ echo at 128 MB;
              for each step N (100, 200, ... --density-max 2000) a burst of N simultaneous invokes
              (each holds its environment --density-hold-ms) makes N environments, then, idle: the
              daemon's RSS, the runtimes' summed PSS, the host's used
              memory (MemTotal - MemAvailable from /proc/meminfo) against the value before the
              daemon started, the daemon's fds and threads, loop devices, pids. Stops at the first
              failed step (what failed is printed) or when MemAvailable would drop below
              --keep-free-gib.
  peers       in a private network namespace (`unshare -n`; lambda-local listens on every
              interface): serverless-offline 13 (+ serverless 3; its Lambda Invoke endpoint) and
              lambda-local 2 (`--watch`), then Hearth with the same Node.js handler file
              (bench/peers/echo/index.js on nodejs20.x) and with the C++ echo, each at 1 and 8
              connections, plus the first invoke after start and a burst of --peer-burst (100).

Output: human lines as it goes, a summary table at the end, and every figure as JSON (--json,
default /tmp/scale_bench-<time>.json). It prints `uptime` and the machine before and after, so a
figure can be read with the load it was taken under.
"""
import argparse
import base64
import http.client
import io
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PEERS = os.path.join(HERE, "peers")
PAYLOAD = '{"bench":"scale","pad":"0123456789abcdef0123456789abcdef01234"}'
CLK = os.sysconf("SC_CLK_TCK")


def log(*a):
    print(*a, flush=True)


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def meminfo() -> dict:
    out = {}
    with open("/proc/meminfo") as f:
        for line in f:
            k, v = line.split(":", 1)
            out[k] = int(v.split()[0])  # kB
    return out


def cpu_times_machine():
    """(busy, total, steal) jiffies of the whole machine; steal: time the hypervisor ran something
    else on our vCPUs (a figure taken while it is high is not comparable)."""
    with open("/proc/stat") as f:
        parts = f.readline().split()[1:]
    vals = [int(x) for x in parts]
    idle = vals[3] + vals[4]
    total = sum(vals[:8])
    return total - idle, total, vals[7]


def proc_stat(pid: int):
    """(ppid, utime+stime in seconds) of a live process, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    rest = s[s.rindex(")") + 2:].split()
    return int(rest[1]), (int(rest[11]) + int(rest[12])) / CLK


def all_ppids() -> dict:
    m = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = proc_stat(int(d))
            if st:
                m[int(d)] = st[0]
    return m


def descendants(root: int) -> list:
    pp = all_ppids()
    kids = {}
    for p, q in pp.items():
        kids.setdefault(q, []).append(p)
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        for c in kids.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def ctx_switches(pid: int) -> int:
    n = 0
    try:
        for t in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{t}/status") as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        n += int(line.split()[1])
    except OSError:
        pass
    return n


def status_field(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def count_loop_devices() -> int:
    try:
        out = subprocess.run(["losetup", "-a"], capture_output=True, text=True, timeout=30).stdout
        return len([l for l in out.splitlines() if l.strip()])
    except Exception:
        return -1


def make_zip(files: dict) -> bytes:
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o755 if name == "bootstrap" else 0o644) << 16
            z.writestr(info, data)
    return b.getvalue()


class Daemon:
    """`hearth serve` on a free loopback port with a scratch data dir under /tmp."""

    def __init__(self, build: str, isolation: str, max_envs: int, extra=()):
        self.build = build
        self.isolation = isolation
        self.max_envs = max_envs
        self.extra = list(extra)
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="hearth-scale-", dir="/tmp")
        self.proc = None

    def start(self):
        try:
            return self._start()
        except BaseException:
            self.stop()  # also removes the scratch dir
            raise

    def _start(self):
        logf = open(os.path.join(self.dir, "daemon.log"), "w")
        args = [os.path.join(self.build, "hearth"), "serve", "--listen", f"127.0.0.1:{self.port}",
                "--data-dir", os.path.join(self.dir, "data"),
                "--isolation", self.isolation, "--max-environments", str(self.max_envs),
                "--idle-timeout-ms", "3600000", *(["--io-threads", os.environ["HEARTH_IO_THREADS"]] if os.environ.get("HEARTH_IO_THREADS") else []), *(self.extra or ["--log-level", "warn"])]
        self.args = args
        self.proc = subprocess.Popen(args, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("daemon exited at start:\n" + self.log_tail())
            try:
                if self.request("GET", "/hearth/v1/health")[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("daemon did not answer within 30 s:\n" + self.log_tail())

    def log_tail(self, n=4000) -> str:
        try:
            with open(os.path.join(self.dir, "daemon.log")) as f:
                return f.read()[-n:]
        except OSError:
            return ""

    @property
    def pid(self):
        return self.proc.pid

    def request(self, method, path, body=None, timeout=120):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            hdrs = {"Content-Type": "application/json"} if body is not None else {}
            c.request(method, path, body=body, headers=hdrs)
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def health(self) -> dict:
        st, b = self.request("GET", "/hearth/v1/health")
        return json.loads(b) if st == 200 else {}

    def stats(self) -> dict | None:
        """GET /hearth/v1/stats where the daemon has it (issue 5's counters), else None."""
        try:
            st, b = self.request("GET", "/hearth/v1/stats")
            return json.loads(b) if st == 200 else None
        except (OSError, ValueError):
            return None

    def create(self, name, zip_bytes, runtime="provided.al2023", handler="echo", memory=1769):
        body = json.dumps({"FunctionName": name, "Runtime": runtime, "Handler": handler,
                           "Role": "arn:aws:iam::000000000000:role/bench", "MemorySize": memory,
                           "Timeout": 60, "Code": {"ZipFile": base64.b64encode(zip_bytes).decode()}})
        st, b = self.request("POST", "/2015-03-31/functions", body)
        if st != 201:
            raise RuntimeError(f"CreateFunction {name}: {st} {b[:300]!r}")

    def invoke_path(self, name):
        return f"/2015-03-31/functions/{name}/invocations"

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                log(f"  daemon {self.proc.pid} ignored SIGTERM for 60 s: SIGKILL")
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class LoadGen:
    def __init__(self, path):
        self.bin = path

    def run(self, port, path, conns, warmup, duration, body=PAYLOAD, expect=None, method="POST",
            label="", sample_pids=None, host="127.0.0.1", netns_cmd=None):
        """One closed-loop run; returns load_gen's JSON, plus /proc samples of the measured window
        when sample_pids() is given (a callable returning {"daemon": pid})."""
        args = [self.bin, "run", "--host", host, "--port", str(port), "--path", path, "--method", method,
                "--body", body, "--connections", str(conns), "--warmup-s", str(warmup),
                "--duration-s", str(duration), "--label", label]
        if expect == "echo":
            args.append("--expect-echo")
        elif expect is not None:
            args += ["--expect-body", expect]
        p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        before = after = None
        err_lines = []
        for line in p.stderr:
            if line.startswith("# measuring"):
                if sample_pids:
                    before = sample(sample_pids(), p.pid)
            elif line.startswith("# measured"):
                if sample_pids:
                    after = sample(sample_pids(), p.pid)
            else:
                err_lines.append(line)
        out = p.stdout.read()
        p.wait()
        res = None
        for line in out.splitlines():
            if line.startswith('{"load_gen"'):
                res = json.loads(line)
        if res is None:
            raise RuntimeError(f"load_gen failed ({p.returncode}): {''.join(err_lines)[-2000:]}")
        if before and after and res["ok"]:
            res["cpu"] = cpu_delta(before, after, res["ok"])
        log("  " + "".join(err_lines).strip())
        if res.get("cpu"):
            c = res["cpu"]
            log(f"    CPU per invoke: daemon {c['daemon_us']:.1f} us, runtimes {c['runtimes_us']:.1f} us, "
                f"load_gen {c['load_gen_us']:.1f} us, other {c['other_us']:.1f} us; machine busy "
                f"{100 * c['machine_busy']:.0f} %, stolen {100 * c['steal_share']:.1f} %; daemon context switches "
                f"{c['daemon_ctxsw_per_invoke']:.2f} per invoke")
        return res

    def burst(self, port, path, count, body=PAYLOAD, expect="echo", label="", timeout=180):
        args = [self.bin, "burst", "--port", str(port), "--path", path, "--body", body, "--count", str(count),
                "--timeout-s", str(timeout), "--label", label]
        if expect == "echo":
            args.append("--expect-echo")
        elif expect is not None:
            args += ["--expect-body", expect]
        p = subprocess.run(args, capture_output=True, text=True, timeout=timeout + 60)
        res = None
        for line in p.stdout.splitlines():
            if line.startswith('{"load_gen"'):
                res = json.loads(line)
        if res is None:
            raise RuntimeError(f"load_gen burst failed ({p.returncode}): {p.stderr[-2000:]}")
        log("  " + p.stderr.strip())
        return res


def sample(pids: dict, lg_pid: int) -> dict:
    d = pids["daemon"]
    ds = proc_stat(d)
    rts = descendants(d)
    rt_cpu = 0.0
    for r in rts:
        st = proc_stat(r)
        if st:
            rt_cpu += st[1]
    lg = proc_stat(lg_pid)
    busy, total, steal = cpu_times_machine()
    return {"t": time.monotonic(), "daemon": ds[1] if ds else 0.0, "runtimes": rt_cpu, "n_runtimes": len(rts),
            "load_gen": lg[1] if lg else 0.0, "busy": busy, "total": total, "steal": steal,
            "ctxsw": ctx_switches(d)}


def cpu_delta(a: dict, b: dict, n: int) -> dict:
    secs = b["t"] - a["t"]
    ncpu = os.cpu_count() or 1
    busy_s = (b["busy"] - a["busy"]) / CLK
    dd = b["daemon"] - a["daemon"]
    dr = b["runtimes"] - a["runtimes"]
    dl = b["load_gen"] - a["load_gen"]
    return {"window_s": round(secs, 3), "daemon_us": dd / n * 1e6, "runtimes_us": dr / n * 1e6,
            "load_gen_us": dl / n * 1e6, "other_us": max(0.0, busy_s - dd - dr - dl) / n * 1e6,
            "daemon_cpu_share": dd / secs, "machine_busy": (b["busy"] - a["busy"]) / max(1, b["total"] - a["total"]),
            "n_runtimes": b["n_runtimes"], "daemon_ctxsw_per_invoke": (b["ctxsw"] - a["ctxsw"]) / n,
            "steal_share": (b["steal"] - a["steal"]) / max(1, b["total"] - a["total"]),
            "ncpu": ncpu}


# ----------------------------------------------------------------------------------------------

def part_throughput(a, lg, echo_zip, results):
    conns = [int(x) for x in a.conns.split(",")]
    res = results.setdefault("throughput", {})
    # The floor: load_gen's own echo server, a separate process like the daemon is.
    floor = subprocess.Popen([lg.bin, "serve", "--port", "0", "--max-seconds", "3600"], stdout=subprocess.PIPE,
                             text=True)
    try:
        port = int(floor.stdout.readline().split()[1])
        log(f"floor: load_gen serve (trivial HTTP/1.1 echo server, one thread) on 127.0.0.1:{port}")
        res["floor"] = {}
        for c in conns:
            res["floor"][str(c)] = lg.run(port, "/", c, a.warmup, a.duration, expect="echo", label=f"floor c={c}",
                                          sample_pids=lambda: {"daemon": floor.pid})
    finally:
        floor.terminate()
        floor.wait()
    for iso in a.isolation.split(","):
        log(f"\n[{iso}] fresh daemon, echo {a.memory_mb} MB; {uptime()}")
        d = Daemon(a.build, iso, max(conns) + 16).start()
        r = res.setdefault(iso, {})
        try:
            pids = lambda: {"daemon": d.pid}
            r["health"] = {}
            for c in conns:
                r["health"][str(c)] = lg.run(d.port, "/hearth/v1/health", c, a.warmup, a.duration, body="",
                                             method="GET", label=f"{iso} GET /hearth/v1/health c={c}",
                                             sample_pids=pids)
            d.create("scale-echo", echo_zip, memory=a.memory_mb)
            r["invoke"] = {}
            for c in conns:
                h0 = d.health()
                # --repeat runs on the same daemon: the median is kept (with every run's figure),
                # as these VMs' neighbours move single runs by tens of per cent.
                runs = [lg.run(d.port, d.invoke_path("scale-echo"), c, a.warmup, a.duration, expect="echo",
                               label=f"{iso} invoke c={c} (run {i + 1}/{a.repeat})", sample_pids=pids)
                        for i in range(a.repeat)]
                x = dict(sorted(runs, key=lambda y: y["rps"])[len(runs) // 2])
                x["runs_rps"] = [round(y["rps"]) for y in runs]
                h1 = d.health()
                x["environments_live"] = h1.get("environments", {}).get("live")
                x["cold_starts_during"] = h1.get("cold_starts", 0) - h0.get("cold_starts", 0)
                r["invoke"][str(c)] = x
            if a.memory_mb != 128 and max(conns) >= 8:
                d.create("scale-echo-128", echo_zip, memory=128)
                c = max(conns)
                runs = [lg.run(d.port, d.invoke_path("scale-echo-128"), c, a.warmup, a.duration,
                               expect="echo", label=f"{iso} invoke 128 MB c={c} (run {i + 1}/{a.repeat})",
                               sample_pids=pids)
                        for i in range(a.repeat)]
                r["invoke_128mb"] = dict(sorted(runs, key=lambda y: y["rps"])[len(runs) // 2])
                r["invoke_128mb"]["runs_rps"] = [round(y["rps"]) for y in runs]
            r["stats"] = d.stats()
        finally:
            d.stop()


def part_burst(a, lg, echo_zip, results):
    res = results.setdefault("burst", {})
    n = a.burst_count
    for iso in a.isolation.split(","):
        log(f"\n[{iso}] burst of {n} simultaneous invokes of a cold function (128 MB); {uptime()}")
        d = Daemon(a.build, iso, max(a.burst_max_envs, n + 16)).start()
        try:
            d.create("burst-echo", echo_zip, memory=128)
            h0 = d.health()
            cold = lg.burst(d.port, d.invoke_path("burst-echo"), n, label=f"{iso} cold burst")
            h1 = d.health()
            cold["cold_starts"] = h1.get("cold_starts", 0) - h0.get("cold_starts", 0)
            cold["environments_live"] = h1.get("environments", {}).get("live")
            warm = lg.burst(d.port, d.invoke_path("burst-echo"), n, label=f"{iso} warm burst (same envs)")
            h2 = d.health()
            warm["cold_starts"] = h2.get("cold_starts", 0) - h1.get("cold_starts", 0)
            res[iso] = {"cold": cold, "warm": warm, "max_environments": d.max_envs, "stats": d.stats()}
            log(f"  cold starts counted: {cold['cold_starts']} (cold burst), {warm['cold_starts']} (warm burst); "
                f"environments live {cold['environments_live']}")
        finally:
            d.stop()


def part_density(a, lg, echo_zip, results):
    # Grow by --density-step new environments at a time (a burst of N invokes, N-step of them
    # re-using idle environments): a step must make its new environments within the 10 s init
    # limit, so that this measures how many the host holds, not how fast a burst is launched.
    steps = list(range(a.density_step, a.density_max + 1, a.density_step))
    res = results.setdefault("density", {})
    for iso in a.density_isolation.split(","):
        log(f"\n[{iso}] density: idle warm C++ echo environments at 128 MB, {a.density_step} more per step up to "
            f"{a.density_max}; {uptime()}")
        m0 = meminfo()
        loops0 = count_loop_devices()
        used0 = m0["MemTotal"] - m0["MemAvailable"]
        # Each step is a burst of N concurrent invokes: the account concurrency limit (default
        # 1,000) must not be what stops it.
        cap = max(steps) + 16
        d = Daemon(a.build, iso, cap, extra=["--account-concurrency", str(cap), "--log-level", "warn"]).start()
        rows = []
        res[iso] = {"steps": rows, "used_before_kb": used0, "loop_devices_before": loops0}
        try:
            d.create("dense-echo", echo_zip, memory=128)
            for n in steps:
                m = meminfo()
                need_kb = (n - (rows[-1]["live"] if rows else 0)) * a.guess_env_kb
                if m["MemAvailable"] - need_kb < a.keep_free_gib * 1024 * 1024:
                    log(f"  stop before {n}: MemAvailable {m['MemAvailable'] // 1024} MiB would drop below "
                        f"--keep-free-gib {a.keep_free_gib}")
                    res[iso]["stopped"] = f"memory guard before {n}"
                    break
                t0 = time.monotonic()
                # Each invoke sleeps (echo's test hook), so that all N overlap and N environments
                # exist even when the daemon reads the burst more slowly than warm ones answer.
                hold = json.dumps({"hearth_test": {"sleep_ms": a.density_hold_ms}}, separators=(",", ":"))
                b = lg.burst(d.port, d.invoke_path("dense-echo"), n, body=hold,
                             label=f"{iso} make {n} environments", timeout=600)
                make_s = time.monotonic() - t0
                time.sleep(a.settle)
                h = d.health()
                live = h.get("environments", {}).get("live", -1)
                rts = descendants(d.pid)
                pss = sum(pss_kb(p) for p in rts)
                mi = meminfo()
                used = mi["MemTotal"] - mi["MemAvailable"]
                drss = status_field(d.pid, "VmRSS")
                try:
                    fds = len(os.listdir(f"/proc/{d.pid}/fd"))
                except OSError:
                    fds = -1
                row = {"target": n, "ok": b["ok"], "errors": b["errors"], "burst_ms": b["total_ms"],
                       "make_s": round(make_s, 2), "live": live, "cold_starts": h.get("cold_starts"),
                       "runtime_processes": len(rts), "runtimes_pss_kb": pss, "daemon_rss_kb": drss,
                       "daemon_threads": status_field(d.pid, "Threads"), "daemon_fds": fds,
                       "host_used_kb": used, "host_used_delta_kb": used - used0,
                       "host_used_per_env_kb": (used - used0) / live if live > 0 else None,
                       "daemon_rss_per_env_kb": drss / live if live > 0 else None,
                       "loop_devices": count_loop_devices(), "MemAvailable_kb": mi["MemAvailable"],
                       "Shmem_kb": mi.get("Shmem"), "Slab_kb": mi.get("Slab"),
                       "pids_total": len([x for x in os.listdir("/proc") if x.isdigit()])}
                rows.append(row)
                log(f"  {n}: {b['ok']} ok, live {live}, runtime processes {len(rts)}; daemon RSS {drss // 1024} MiB "
                    f"({row['daemon_rss_per_env_kb'] or 0:.0f} kB/env), fds {fds}, threads {row['daemon_threads']}; "
                    f"host used +{(used - used0) // 1024} MiB ({row['host_used_per_env_kb'] or 0:.0f} kB/env), "
                    f"runtimes PSS {pss // 1024} MiB, loop devices {row['loop_devices']}, burst {b['total_ms']:.0f} ms")
                if b["ok"] != n or live < n:
                    res[iso]["stopped"] = f"step {n} failed: {b['errors'].get('first_error')}"
                    log(f"  step {n} FAILED: {b['errors']}; daemon log tail:\n{d.log_tail(1500)}")
                    break
            # Are the idle environments still warm? One more burst of the largest step that passed.
            if rows and rows[-1]["ok"] == rows[-1]["target"]:
                h0 = d.health()
                w = lg.burst(d.port, d.invoke_path("dense-echo"), rows[-1]["target"], label=f"{iso} re-invoke all",
                             timeout=600)
                h1 = d.health()
                res[iso]["reinvoke"] = {"ok": w["ok"], "total_ms": w["total_ms"],
                                        "cold_starts": h1.get("cold_starts", 0) - h0.get("cold_starts", 0)}
            res[iso]["stats"] = d.stats()
        finally:
            t0 = time.monotonic()
            d.stop()
            res[iso]["stop_s"] = round(time.monotonic() - t0, 2)
            log(f"  daemon stopped in {res[iso]['stop_s']} s")


# ---- peers ---------------------------------------------------------------------------------------

SERVERLESS_YML = """service: hearthbench
frameworkVersion: '3'
provider:
  name: aws
  runtime: nodejs20.x
  region: us-east-1
  stage: dev
functions:
  echo:
    handler: echo/index.handler
    timeout: 60
plugins:
  - serverless-offline
custom:
  serverless-offline:
    host: 127.0.0.1
    httpPort: 3000
    lambdaPort: 3002
    websocketPort: 3001
    noPrependStageInUrl: true
"""


def wait_port(port, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


def first_invoke_ms(port, path, body):
    t0 = time.perf_counter()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    c.request("POST", path, body=body, headers={"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    c.close()
    return (time.perf_counter() - t0) * 1000, r.status, data


def peers_inner(a, lg):
    """Runs inside `unshare -n` (private loopback): the npm peers, one after the other."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    out = {}
    env = dict(os.environ, SLS_TELEMETRY_DISABLED="1", SLS_NOTIFICATIONS_MODE="off", SLS_DEPRECATION_DISABLE="*",
               AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_REGION="us-east-1")
    conns = [int(x) for x in a.peer_conns.split(",")]
    nm = os.path.join(PEERS, "node_modules", ".bin")

    def run_peer(name, cmd, port, path, body, expect, cwd):
        log(f"\n[peer {name}] {' '.join(cmd)}")
        logf = open(f"/tmp/scale-peer-{name}.log", "w")
        t_start = time.perf_counter()
        p = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
        r = {}
        try:
            if not wait_port(port, 120):
                raise RuntimeError(f"{name} did not listen on {port}; see /tmp/scale-peer-{name}.log")
            r["listen_s"] = time.perf_counter() - t_start
            ms, st, data = first_invoke_ms(port, path, body)
            r["first_invoke_ms"] = ms
            r["first_status"] = st
            log(f"  listening after {r['listen_s']:.2f} s; first invoke {ms:.1f} ms (status {st}, {data[:80]!r})")
            for c in conns:
                r[f"c{c}"] = lg.run(port, path, c, a.warmup, a.duration, body=body, expect=expect,
                                    label=f"{name} c={c}", sample_pids=lambda: {"daemon": p.pid})
            r["burst"] = lg.burst(port, path, a.peer_burst, body=body, expect=expect, label=f"{name} burst",
                                  timeout=300)
        except Exception as e:  # a peer that fails is reported, not fatal
            r["error"] = str(e)
            log(f"  {name}: {e}")
        finally:
            os.killpg(p.pid, signal.SIGTERM)
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        return r

    work = tempfile.mkdtemp(prefix="scale-peers-", dir="/tmp")
    shutil.copytree(os.path.join(PEERS, "echo"), os.path.join(work, "echo"))
    with open(os.path.join(work, "serverless.yml"), "w") as f:
        f.write(SERVERLESS_YML)
    os.symlink(os.path.join(PEERS, "node_modules"), os.path.join(work, "node_modules"))
    out["serverless-offline"] = run_peer(
        "serverless-offline", [os.path.join(nm, "serverless"), "offline", "start"], 3002,
        "/2015-03-31/functions/hearthbench-dev-echo/invocations", PAYLOAD, "echo", work)
    out["lambda-local"] = run_peer(
        "lambda-local", [os.path.join(nm, "lambda-local"), "-l", "echo/index.js", "-h", "handler", "--watch", "8008",
                         "-t", "60"], 8008, "/", json.dumps({"event": json.loads(PAYLOAD)}),
        json.dumps(json.loads(PAYLOAD), separators=(",", ":")), work)
    shutil.rmtree(work, ignore_errors=True)
    print("PEERS_JSON " + json.dumps(out), flush=True)


def part_peers(a, lg, echo_zip, results):
    res = results.setdefault("peers", {})
    if not os.path.exists(os.path.join(PEERS, "node_modules", ".bin", "serverless")):
        log("peers: bench/peers/node_modules is missing: run `npm ci --prefix bench/peers` first")
        res["error"] = "not installed"
        return
    log(f"\npeers (in a private network namespace); {uptime()}")
    cmd = ["unshare", "-n", sys.executable, os.path.abspath(__file__), "--peers-inner", "--build", a.build,
           "--warmup", str(a.warmup), "--duration", str(a.duration), "--peer-conns", a.peer_conns,
           "--peer-burst", str(a.peer_burst)]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, timeout=3600)
    for line in p.stdout.splitlines():
        if line.startswith("PEERS_JSON "):
            res.update(json.loads(line[len("PEERS_JSON "):]))
        else:
            print(line, flush=True)
    # Hearth with the same handler file (nodejs20.x) and with the C++ echo, same conns, same burst.
    with open(os.path.join(PEERS, "echo", "index.js"), "rb") as f:
        node_zip = make_zip({"index.js": f.read()})
    conns = [int(x) for x in a.peer_conns.split(",")]
    for iso in a.peer_isolation.split(","):
        log(f"\n[{iso}] Hearth, same handler; {uptime()}")
        d = Daemon(a.build, iso, a.peer_burst + 64).start()
        try:
            for label, zipb, runtime, handler in (("node", node_zip, "nodejs20.x", "index.handler"),
                                                 ("cpp", echo_zip, "provided.al2023", "echo")):
                name = f"peer-{label}"
                d.create(name, zipb, runtime=runtime, handler=handler, memory=a.memory_mb)
                r = res.setdefault(f"hearth-{iso}-{label}", {})
                ms, st, data = first_invoke_ms(d.port, d.invoke_path(name), PAYLOAD)
                r["first_invoke_ms"] = ms
                r["first_status"] = st
                log(f"  {label}: first (cold) invoke {ms:.1f} ms (status {st})")
                for c in conns:
                    r[f"c{c}"] = lg.run(d.port, d.invoke_path(name), c, a.warmup, a.duration, expect="echo",
                                        label=f"hearth {iso} {label} c={c}", sample_pids=lambda: {"daemon": d.pid})
                bname = f"peer-{label}-burst"
                d.create(bname, zipb, runtime=runtime, handler=handler, memory=a.memory_mb)
                r["burst"] = lg.burst(d.port, d.invoke_path(bname), a.peer_burst, label=f"hearth {iso} {label} burst",
                                      timeout=300)
        finally:
            d.stop()


# ---- summary -------------------------------------------------------------------------------------

def summarize(results):
    lines = []
    t = results.get("throughput")
    if t:
        lines.append("\nTHROUGHPUT (invokes/s, p50 / p99 µs; CPU per invoke in µs: daemon / runtimes / load_gen)")
        for key, rows in (("floor", t.get("floor")),):
            if rows:
                for c, x in rows.items():
                    lines.append(f"  floor echo server   c={c:>3}: {x['rps']:>9,.0f}/s  {x['p50_us']:>8.1f} / {x['p99_us']:>8.1f}")
        for iso, r in t.items():
            if iso == "floor":
                continue
            for kind in ("health", "invoke"):
                for c, x in (r.get(kind) or {}).items():
                    cpu = x.get("cpu") or {}
                    fl = (t.get("floor") or {}).get(c)
                    ratio = f"  floor/this {fl['rps'] / x['rps']:.1f}x" if fl and x["rps"] else ""
                    lines.append(
                        f"  {iso:8} {kind:7} c={c:>3}: {x['rps']:>9,.0f}/s  {x['p50_us']:>8.1f} / {x['p99_us']:>8.1f}"
                        f"  cpu {cpu.get('daemon_us', 0):5.1f} / {cpu.get('runtimes_us', 0):5.1f} / "
                        f"{cpu.get('load_gen_us', 0):4.1f}  busy {100 * cpu.get('machine_busy', 0):3.0f}%"
                        f"  stolen {100 * cpu.get('steal_share', 0):.1f}%  errors {x['errors']['total']}{ratio}"
                        + (f"  runs {' / '.join(f'{v:,}' for v in x['runs_rps'])}" if len(x.get('runs_rps', [])) > 1
                           else ""))
            x = r.get("invoke_128mb")
            if x:
                cpu = x.get("cpu") or {}
                lines.append(f"  {iso:8} invoke 128 MB c={x['connections']}: {x['rps']:,.0f}/s  {x['p50_us']:.1f} / "
                             f"{x['p99_us']:.1f}  cpu {cpu.get('daemon_us', 0):5.1f} / {cpu.get('runtimes_us', 0):5.1f}"
                             f" / {cpu.get('load_gen_us', 0):4.1f}  stolen {100 * cpu.get('steal_share', 0):.1f}%"
                             + (f"  runs {' / '.join(f'{v:,}' for v in x['runs_rps'])}"
                                if len(x.get('runs_rps', [])) > 1 else ""))
    b = results.get("burst")
    if b:
        lines.append("\nBURST")
        for iso, r in b.items():
            for k in ("cold", "warm"):
                x = r[k]
                lines.append(f"  {iso:8} {k}: {x['ok']}/{x['count']} ok, all answered in {x['total_ms']:.1f} ms "
                             f"(p50 {x['p50_ms']:.1f}, p99 {x['p99_ms']:.1f} ms), cold starts {x.get('cold_starts')}")
    dd = results.get("density")
    if dd:
        lines.append("\nDENSITY (idle warm C++ echo environments, 128 MB)")
        for iso, r in dd.items():
            for x in r["steps"]:
                lines.append(f"  {iso:8} {x['target']:>5}: live {x['live']:>5}  daemon RSS {x['daemon_rss_kb'] / 1024:7.1f} MiB"
                             f" ({(x['daemon_rss_per_env_kb'] or 0):6.1f} kB/env)  host used/env "
                             f"{(x['host_used_per_env_kb'] or 0) / 1024:5.2f} MiB  fds {x['daemon_fds']}  loops {x['loop_devices']}")
            if r.get("stopped"):
                lines.append(f"  {iso:8} stopped: {r['stopped']}")
            if r.get("reinvoke"):
                lines.append(f"  {iso:8} re-invoke all: {r['reinvoke']}")
    p = results.get("peers")
    if p and "error" not in p:
        lines.append("\nPEERS (invokes/s, p50 / p99 µs; first invoke after start; burst)")
        for name, r in p.items():
            if not isinstance(r, dict):
                continue
            if r.get("error"):
                lines.append(f"  {name}: error {r['error']}")
                continue
            for k, x in r.items():
                if k.startswith("c") and isinstance(x, dict) and "rps" in x:
                    lines.append(f"  {name:26} {k:>4}: {x['rps']:>8,.0f}/s  {x['p50_us']:>8.1f} / {x['p99_us']:>8.1f}"
                                 f"  errors {x['errors']['total']}")
            if "first_invoke_ms" in r:
                lines.append(f"  {name:26} first invoke {r['first_invoke_ms']:.1f} ms")
            if r.get("burst"):
                x = r["burst"]
                lines.append(f"  {name:26} burst {x['count']}: {x['ok']} ok in {x['total_ms']:.1f} ms")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(REPO, "build"), help="build dir (hearth, examples/, bench/)")
    ap.add_argument("--only", default="throughput,burst,density",
                    help="comma list of parts: throughput, burst, density, peers")
    ap.add_argument("--peers", action="store_true", help="add the peers part")
    ap.add_argument("--isolation", default="sandbox,process")
    ap.add_argument("--conns", default="1,8,64")
    ap.add_argument("--warmup", type=float, default=2.0, help="seconds not recorded before each run")
    ap.add_argument("--duration", type=float, default=10.0, help="measured seconds per run")
    ap.add_argument("--repeat", type=int, default=3,
                    help="measured runs per invoke figure (same daemon); the median is reported")
    ap.add_argument("--memory-mb", type=int, default=1769, help="MemorySize for the throughput functions")
    ap.add_argument("--burst-count", type=int, default=500)
    ap.add_argument("--burst-max-envs", type=int, default=0, help="--max-environments for the burst daemon")
    ap.add_argument("--density-step", type=int, default=100, help="new environments per density step")
    ap.add_argument("--density-max", type=int, default=2000, help="density stops after this many")
    ap.add_argument("--density-isolation", default="sandbox")
    ap.add_argument("--density-hold-ms", type=int, default=1500,
                    help="each density invoke sleeps this long in the function, so all overlap")
    ap.add_argument("--settle", type=float, default=1.0, help="seconds idle before a density sample")
    ap.add_argument("--keep-free-gib", type=float, default=3.0, help="density stops before MemAvailable goes below")
    ap.add_argument("--guess-env-kb", type=int, default=8192, help="assumed memory per new env for the guard")
    ap.add_argument("--peer-conns", default="1,8")
    ap.add_argument("--peer-burst", type=int, default=100)
    ap.add_argument("--peer-isolation", default="sandbox")
    ap.add_argument("--json", default=None)
    ap.add_argument("--peers-inner", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    a.build = os.path.abspath(a.build)
    lg = LoadGen(os.path.join(a.build, "bench", "load_gen"))
    if a.peers_inner:
        return peers_inner(a, lg)
    for f in (lg.bin, os.path.join(a.build, "hearth"), os.path.join(a.build, "examples", "echo.zip")):
        if not os.path.exists(f):
            sys.exit(f"{f} is missing: build first (ninja -C {a.build} hearth echo_zip load_gen hearth_runtimes)")
    parts = [p for p in a.only.split(",") if p]
    if a.peers and "peers" not in parts:
        parts.append("peers")
    with open(os.path.join(a.build, "examples", "echo.zip"), "rb") as f:
        echo_zip = f.read()
    # What was measured: the source tree the build dir was configured from (it may be a snapshot
    # of a commit, e.g. `git archive HEAD`, holding a COMMIT file), and whether it had local changes.
    src = REPO
    try:
        with open(os.path.join(a.build, "CMakeCache.txt")) as f:
            for line in f:
                if line.startswith("CMAKE_HOME_DIRECTORY:"):
                    src = line.split("=", 1)[1].strip()
    except OSError:
        pass
    commit = subprocess.run(["git", "-C", src, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    dirty = ""
    if commit:
        dirty = subprocess.run(["git", "-C", src, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
    elif os.path.exists(os.path.join(src, "COMMIT")):
        with open(os.path.join(src, "COMMIT")) as f:
            commit = f.read().strip()[:7] + f" (snapshot in {src})"
    mi = meminfo()
    results = {"bench": "scale", "commit": commit, "source": src, "dirty_tree": bool(dirty), "parts": parts,
               "machine": {"nproc": os.cpu_count(), "mem_gib": round(mi["MemTotal"] / 1048576, 1),
                           "kernel": platform.release()},
               "uptime_before": uptime(), "args": vars(a)}
    log(f"scale_bench: commit {commit}{' (+ uncommitted changes)' if dirty else ''}; {os.cpu_count()} CPUs, "
        f"{results['machine']['mem_gib']} GiB; {results['uptime_before']}")
    fns = {"throughput": part_throughput, "burst": part_burst, "density": part_density, "peers": part_peers}
    try:
        for p in parts:
            if p not in fns:
                sys.exit(f"unknown part {p}")
            fns[p](a, lg, echo_zip, results)
    finally:
        results["uptime_after"] = uptime()
        path = a.json or f"/tmp/scale_bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
        with open(path, "w") as f:
            json.dump(results, f, indent=1)
        log(summarize(results))
        log(f"\n{results['uptime_after']}\nall figures: {path}")


if __name__ == "__main__":
    main()
