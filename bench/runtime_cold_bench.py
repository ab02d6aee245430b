#!/usr/bin/env python3
"""Cold starts of the managed runtimes, end to end through the daemon (docs/benchmarks.md).

Starts its own `hearth serve` (tests/e2e/harness.py) and, for each runtime, creates N functions
and invokes each once: every invoke is a cold start (sandbox creation, runtime init, the
invoke). Reports the client-side latency (POST .../invocations to the answer, over a fresh
loopback connection) and the Init Duration the daemon logged, as p50/p90/min.

    python3 bench/runtime_cold_bench.py --hearth build/hearth --examples build/examples -n 30
    python3 bench/runtime_cold_bench.py --memory 1769 --isolation process
    python3 bench/runtime_cold_bench.py --runtimes-dir /tmp/old-runtimes   # other RICs, same daemon
    python3 bench/runtime_cold_bench.py --preinit python3.11=0   # no pre-started interpreters

Runtimes: python3.11 and nodejs20.x (a minimal handler each, unmodified Lambda style) and C++
(examples/echo.zip on provided.al2023). Interleaved: python, node, C++, python, ...
"""
import argparse
import json
import os
import re
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))

PY = "def lambda_handler(event, context):\n    return {'statusCode': 200, 'body': 'hello'}\n"
NODE = "export const handler = async (event) => ({ statusCode: 200, body: 'hello' });\n"


def pct(xs, p):
    xs = sorted(xs)
    k = (len(xs) - 1) * p
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hearth", default=os.path.join(HERE, "..", "build", "hearth"))
    ap.add_argument("--examples", default=None)
    ap.add_argument("-n", type=int, default=20, help="cold starts per runtime")
    ap.add_argument("--memory", type=int, default=128)
    ap.add_argument("--isolation", default=None, help="sandbox (default as root) or process")
    ap.add_argument("--json", default=None, help="write the results here")
    ap.add_argument("--runtimes-dir", default=None,
                    help="hearth serve --runtimes-dir (e.g. to compare runtime interface clients)")
    ap.add_argument("--preinit", action="append", default=[], metavar="RUNTIME=N",
                    help="daemon config preinit_runtimes (pre-started runtimes); repeatable; "
                         "default: the daemon's (python3.11=1)")
    ap.add_argument("--gap-ms", type=float, default=0,
                    help="pause before each cold start (lets the pools refill, as between real cold starts)")
    args = ap.parse_args()
    os.environ["HEARTH_BIN"] = os.path.abspath(args.hearth)
    os.environ["HEARTH_EXAMPLES"] = os.path.abspath(
        args.examples or os.path.join(os.path.dirname(args.hearth), "examples"))
    if args.isolation:
        os.environ["HEARTH_E2E_ISOLATION"] = args.isolation
    import harness

    codes = {
        "python3.11": ("python3.11", "lambda_function.lambda_handler",
                       harness.make_zip({"lambda_function.py": PY})),
        "nodejs20.x": ("nodejs20.x", "index.handler", harness.make_zip({"index.mjs": NODE})),
        "c++ (provided.al2023)": ("provided.al2023", "echo", harness.echo_zip()),
    }
    daemon_args = ["--max-environments", str(3 * args.n + 8)]
    if args.runtimes_dir:
        daemon_args += ["--runtimes-dir", os.path.abspath(args.runtimes_dir)]
    if args.preinit:
        import tempfile
        cfg = os.path.join(tempfile.mkdtemp(prefix="hearth-bench-"), "config.json")
        with open(cfg, "w") as f:
            json.dump({"preinit_runtimes": {k: int(v) for k, v in
                                            (p.split("=", 1) for p in args.preinit)}}, f)
        daemon_args += ["--config", cfg]
    d = harness.Daemon(*daemon_args).start()
    results = {k: {"latency_ms": [], "init_ms": []} for k in codes}
    try:
        c = d.client()
        for i in range(args.n):
            for label, (runtime, handler, zipb) in codes.items():
                name = re.sub(r"[^a-z0-9]", "", label.split()[0]) + f"-{i}"
                c.create_function(FunctionName=name, Runtime=runtime, Handler=handler,
                                  Role="arn:aws:iam::000000000000:role/bench", MemorySize=args.memory,
                                  Code={"ZipFile": zipb})
                if args.gap_ms:
                    time.sleep(args.gap_ms / 1000)
                t0 = time.perf_counter()
                r = d.invoke_raw(name, b'{"k":"v"}', headers={"X-Amz-Log-Type": "Tail"})
                dt = (time.perf_counter() - t0) * 1000
                if r.status != 200 or "x-amz-function-error" in r.headers:
                    raise SystemExit(f"{label}: invoke failed: {r}")
                import base64
                tail = base64.b64decode(r.headers.get("x-amz-log-result", "")).decode(errors="replace")
                m = re.search(r"Init Duration: ([0-9.]+) ms", tail)
                results[label]["latency_ms"].append(dt)
                if m:
                    results[label]["init_ms"].append(float(m.group(1)))
                c.delete_function(FunctionName=name)  # its environment goes away
    finally:
        d.close()
    print(f"cold starts, n={args.n} per runtime, MemorySize={args.memory}, "
          f"isolation={args.isolation or 'default'}, preinit={args.preinit or 'default'}, "
          f"gap={args.gap_ms} ms")
    print(f"{'runtime':24} {'p50 ms':>8} {'p90 ms':>8} {'min ms':>8} {'init p50':>9}")
    out = {}
    for label, r in results.items():
        lat, ini = r["latency_ms"], r["init_ms"]
        row = {"p50": pct(lat, 0.5), "p90": pct(lat, 0.9), "min": min(lat),
               "init_p50": pct(ini, 0.5) if ini else None}
        out[label] = row
        print(f"{label:24} {row['p50']:8.1f} {row['p90']:8.1f} {row['min']:8.1f} "
              f"{row['init_p50'] if row['init_p50'] is not None else float('nan'):9.1f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
