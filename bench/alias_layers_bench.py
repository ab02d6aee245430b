#!/usr/bin/env python3
"""Issue 4's two figures, against a fresh daemon on a free loopback port:

1. Warm invokes through an alias vs. the same version addressed directly (interleaved rounds on
   one keep-alive connection each; prints p50s and the ratio; target: within 5 %).
2. What 5 layers cost: CreateFunction time with 5 layers (this is where /opt is assembled, once
   per combination) vs. none, and cold invoke time of a function with 5 layers vs. none.

Usage: bench/alias_layers_bench.py [--hearth build/hearth] [--zip build/examples/echo.zip]
         [--rounds 5] [--n 4000] [--cold 20] [--isolation sandbox|process]
"""
import argparse, base64, http.client, io, json, os, shutil, signal, socket, statistics, subprocess
import sys, tempfile, time, zipfile

ROLE = "arn:aws:iam::000000000000:role/bench"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Api:
    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port)

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
        self.conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
        r = self.conn.getresponse()
        out = r.read()
        if r.status >= 300:
            raise RuntimeError(f"{method} {path}: {r.status} {out[:300]!r}")
        return out


def layer_zip(i):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for j in range(200):  # 200 small files of its own per layer
            z.writestr(f"lib/layer{i}/file{j}.txt", "x" * 512)
        for j in range(20):  # and 20 paths every layer has (later layers win)
            z.writestr(f"share/common{j}.txt", f"layer {i}")
    return buf.getvalue()


def timed_invokes(api, path, n):
    lat = []
    for _ in range(n):
        t = time.perf_counter()
        api.call("POST", path, b'{"hello":"bench"}')
        lat.append((time.perf_counter() - t) * 1e6)
    return lat


def main():
    ap = argparse.ArgumentParser()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--hearth", default=os.path.join(root, "build", "hearth"))
    ap.add_argument("--zip", default=os.path.join(root, "build", "examples", "echo.zip"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--n", type=int, default=4000)
    ap.add_argument("--cold", type=int, default=20)
    ap.add_argument("--isolation", default="sandbox" if os.geteuid() == 0 else "process")
    a = ap.parse_args()
    data = tempfile.mkdtemp(prefix="hearth-bench-")
    port = free_port()
    daemon = subprocess.Popen([a.hearth, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", data,
                               "--isolation", a.isolation, "--log-level", "warn"])
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), 0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        api = Api(port)
        code = base64.b64encode(open(a.zip, "rb").read()).decode()
        fn = {"Runtime": "provided.al2023", "Handler": "bootstrap", "Role": ROLE,
              "MemorySize": 1769, "Code": {"ZipFile": code}}
        api.call("POST", "/2015-03-31/functions", dict(fn, FunctionName="aliased"))
        api.call("POST", "/2015-03-31/functions/aliased/versions", {})
        api.call("POST", "/2015-03-31/functions/aliased/aliases", {"Name": "live", "FunctionVersion": "1"})
        direct, alias = Api(port), Api(port)
        timed_invokes(direct, "/2015-03-31/functions/aliased:1/invocations", 500)
        timed_invokes(alias, "/2015-03-31/functions/aliased:live/invocations", 500)
        p_direct, p_alias = [], []
        for _ in range(a.rounds):
            p_direct.append(statistics.median(timed_invokes(direct, "/2015-03-31/functions/aliased:1/invocations", a.n)))
            p_alias.append(statistics.median(timed_invokes(alias, "/2015-03-31/functions/aliased:live/invocations", a.n)))
        d, al = statistics.median(p_direct), statistics.median(p_alias)
        print(f"warm invoke p50, version directly: {d:.1f} µs (rounds: {', '.join(f'{x:.1f}' for x in p_direct)})")
        print(f"warm invoke p50, through alias:    {al:.1f} µs (rounds: {', '.join(f'{x:.1f}' for x in p_alias)})")
        print(f"alias / version = {al / d:.3f} (target <= 1.05); client-side timing, python http.client")

        arns = []
        for i in range(5):
            out = json.loads(api.call("POST", f"/2018-10-31/layers/benchlayer{i}/versions",
                                      {"Content": {"ZipFile": base64.b64encode(layer_zip(i)).decode()}}))
            arns.append(out["LayerVersionArn"])
        create_plain, create_layers, cold_plain, cold_layers = [], [], [], []
        for k in range(a.cold):
            for with_layers in (False, True):
                name = f"{'l' if with_layers else 'p'}{k}"
                body = dict(fn, FunctionName=name, **({"Layers": arns} if with_layers else {}))
                t = time.perf_counter()
                api.call("POST", "/2015-03-31/functions", body)
                (create_layers if with_layers else create_plain).append((time.perf_counter() - t) * 1e3)
                t = time.perf_counter()
                api.call("POST", f"/2015-03-31/functions/{name}/invocations", b"{}")
                (cold_layers if with_layers else cold_plain).append((time.perf_counter() - t) * 1e3)
        med = statistics.median
        print(f"CreateFunction p50: no layers {med(create_plain):.2f} ms, 5 layers {med(create_layers):.2f} ms "
              f"(first with 5 layers, which assembles /opt: {create_layers[0]:.2f} ms; the rest reuse it)")
        print(f"cold invoke p50:    no layers {med(cold_plain):.2f} ms, 5 layers {med(cold_layers):.2f} ms "
              f"(n={a.cold} each, isolation {a.isolation})")
        with open("/proc/loadavg") as f:
            print("load average:", f.read().split()[:3])
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(10)
        except subprocess.TimeoutExpired:
            daemon.kill()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
