"""The official Node.js runtime interface client (npm `aws-lambda-ric` 3.x) on Hearth.

An unmodified `index.handler` runs behind a `bootstrap` that starts the RIC, exactly as on Lambda
with a custom runtime. The RIC is installed once with npm into HEARTH_NPM_CACHE (reused when
present). Its install compiles native code (curl and aws-lambda-cpp) and needs
autoconf automake libtool cmake libcurl4-openssl-dev g++ make: when some are missing the test
installs them with apt-get if it runs as root, and skips (naming them) otherwise. Where npm cannot
reach its registry the test skips and says so.
"""

import base64
import fcntl
import json
import os
import re
import shutil
import subprocess
import unittest
import zipfile

import harness
from harness import DaemonTestCase, unique

RIC_SPEC = "aws-lambda-ric@3"
APT_PACKAGES = ["autoconf", "automake", "libtool", "cmake", "libcurl4-openssl-dev", "g++", "make"]
CACHE = os.environ.get("HEARTH_NPM_CACHE") or os.path.join(harness.REPO, "build", "npm-cache")
INSTALL_DIR = os.path.join(CACHE, "aws-lambda-ric-3")
MARKER = os.path.join(INSTALL_DIR, ".hearth-complete")

HANDLERS = {
    # The handler the issue names, unmodified.
    "index.js": "exports.handler = async (event) => ({hello: event.name})\n",
    "fail.js": ("exports.handler = async (event) => {\n"
                "  throw new TypeError(`bad input: ${event.name}`)\n"
                "}\n"),
    "ctx.js": ("exports.handler = async (event, context) => {\n"
               "  console.log('handling', event.name)\n"
               "  return {fn: context.functionName, version: context.functionVersion,\n"
               "          requestId: context.awsRequestId, arn: context.invokedFunctionArn,\n"
               "          memory: context.memoryLimitInMB, remaining: context.getRemainingTimeInMillis(),\n"
               "          logStream: context.logStreamName, clientContext: context.clientContext || null}\n"
               "}\n"),
}


def log(msg):
    print(f"[test_aws_lambda_ric] {msg}", flush=True)


def missing_apt_packages():
    missing = []
    for p in APT_PACKAGES:
        r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", p], capture_output=True, text=True)
        if r.returncode != 0 or "install ok installed" not in r.stdout:
            missing.append(p)
    return missing


def ensure_build_tools():
    if shutil.which("dpkg-query") is None:
        # Not Debian: trust the tools on PATH.
        tools = ["autoconf", "automake", "libtoolize", "cmake", "g++", "make", "curl-config"]
        absent = [t for t in tools if shutil.which(t) is None]
        if absent:
            raise unittest.SkipTest(f"aws-lambda-ric needs these tools to build: {absent}")
        return
    missing = missing_apt_packages()
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise unittest.SkipTest(
            "aws-lambda-ric's install compiles native code and these packages are missing: "
            f"{' '.join(missing)} (run: apt-get install -y {' '.join(missing)})")
    log(f"installing build packages: {' '.join(missing)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", *missing]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, capture_output=True, timeout=600)
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    still = missing_apt_packages()
    if still:
        raise unittest.SkipTest(f"could not install {' '.join(still)} with apt-get: "
                                f"{r.stderr.strip()[-500:]}")


def ensure_ric() -> str:
    """Returns the directory whose node_modules holds aws-lambda-ric, installing it if needed."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            raise unittest.SkipTest(f"`{tool}` is not on PATH: cannot run the Node.js RIC test")
    os.makedirs(CACHE, exist_ok=True)
    with open(os.path.join(CACHE, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(MARKER):
            return INSTALL_DIR
        ensure_build_tools()
        r = subprocess.run(["npm", "view", RIC_SPEC, "version", "--json"], capture_output=True,
                           text=True, timeout=120)
        if r.returncode != 0:
            raise unittest.SkipTest(
                f"npm cannot reach its registry ({RIC_SPEC}): {r.stderr.strip()[-300:]}")
        shutil.rmtree(INSTALL_DIR, ignore_errors=True)
        os.makedirs(INSTALL_DIR)
        with open(os.path.join(INSTALL_DIR, "package.json"), "w") as f:
            json.dump({"name": "hearth-ric-function", "version": "1.0.0", "private": True}, f)
        log(f"npm install {RIC_SPEC} into {INSTALL_DIR} (compiles native code; a few minutes "
            "the first time)")
        r = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--omit=dev", RIC_SPEC],
                           cwd=INSTALL_DIR, capture_output=True, text=True, timeout=1500)
        if r.returncode != 0:
            out = (r.stdout + r.stderr)
            if re.search(r"ENOTFOUND|ECONNREFUSED|ETIMEDOUT|EAI_AGAIN|network", out):
                raise unittest.SkipTest(f"npm cannot reach its registry: {out.strip()[-300:]}")
            raise AssertionError(f"npm install {RIC_SPEC} failed:\n{out[-4000:]}")
        with open(MARKER, "w") as f:
            f.write("ok\n")
        return INSTALL_DIR


def ric_entrypoint(install_dir: str) -> str:
    """The RIC's command as its package.json `bin` declares it, relative to the package."""
    with open(os.path.join(install_dir, "node_modules", "aws-lambda-ric", "package.json")) as f:
        pkg = json.load(f)
    b = pkg["bin"]
    path = b if isinstance(b, str) else (b.get("aws-lambda-ric") or next(iter(b.values())))
    return os.path.normpath(path), pkg["version"]


def build_function_zip(install_dir: str, dest: str) -> str:
    entry, _ = ric_entrypoint(install_dir)
    bootstrap = ("#!/bin/sh\n"
                 "cd $LAMBDA_TASK_ROOT\n"
                 f"exec node node_modules/aws-lambda-ric/{entry} \"$_HANDLER\"\n")
    pkg_dir = os.path.join(install_dir, "node_modules", "aws-lambda-ric")
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        def add(name, data, mode):
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = (0o100000 | mode) << 16
            zf.writestr(info, data)

        add("bootstrap", bootstrap, 0o755)
        for name, src in HANDLERS.items():
            add(name, src, 0o644)
        # The installed package as it runs: everything but the sources its install compiled
        # (deps/, 150 MB) and build leftovers. The addon it built is dist/rapid-client.node.
        for dirpath, dirnames, filenames in os.walk(pkg_dir):
            rel_dir = os.path.relpath(dirpath, pkg_dir)
            if rel_dir == ".":
                dirnames[:] = [d for d in dirnames if d not in ("deps", "build", "node_modules")]
            for fn in filenames:
                p = os.path.join(dirpath, fn)
                if os.path.islink(p) or not os.path.isfile(p):
                    continue
                with open(p, "rb") as f:
                    data = f.read()
                rel = os.path.normpath(os.path.join("node_modules", "aws-lambda-ric", rel_dir, fn))
                add(rel, data, os.stat(p).st_mode & 0o777)
    return dest


class AwsLambdaRicTest(DaemonTestCase):
    @classmethod
    def setUpClass(cls):
        cls.install_dir = ensure_ric()
        super().setUpClass()
        cls.entry, cls.version = ric_entrypoint(cls.install_dir)
        log(f"aws-lambda-ric {cls.version}, entrypoint {cls.entry}")
        path = build_function_zip(cls.install_dir, os.path.join(cls.daemon.tmp, "ric.zip"))
        with open(path, "rb") as f:
            cls.zip = f.read()
        cls.names = {}
        for handler in ("index.handler", "fail.handler", "ctx.handler"):
            name = unique("ric-" + handler.split(".")[0])
            cls.daemon.create(name, cls.zip, Runtime="provided.al2023", Handler=handler,
                              Timeout=30, MemorySize=512)
            cls.names[handler] = name

    def test_ric_version(self):
        self.assertTrue(self.version.startswith("3."), self.version)

    def test_unmodified_handler_answers(self):
        name = self.names["index.handler"]
        r, body = self.daemon.invoke(name, {"name": "hearth"}, LogType="Tail")
        self.assertNotIn("FunctionError", r, body)
        self.assertEqual(json.loads(body), {"hello": "hearth"})
        tail = harness.decode_tail(r)
        self.assertIn("Init Duration", tail)
        # Warm: the RIC loops on /next.
        for i in range(5):
            r, body = self.daemon.invoke(name, {"name": f"n{i}"}, LogType="Tail")
            self.assertEqual(json.loads(body), {"hello": f"n{i}"})
        self.assertNotIn("Init Duration", harness.decode_tail(r))

    def test_context_reaches_the_handler(self):
        name = self.names["ctx.handler"]
        cc = {"client": {"installation_id": "i"}, "custom": {"k": "v"}, "env": {}}
        r, body = self.daemon.invoke(
            name, {"name": "ctx"}, LogType="Tail",
            ClientContext=base64.b64encode(json.dumps(cc).encode()).decode())
        self.assertNotIn("FunctionError", r, body)
        out = json.loads(body)
        rid = r["ResponseMetadata"]["RequestId"]
        self.assertEqual(out["fn"], name)
        self.assertEqual(out["version"], "$LATEST")
        self.assertEqual(out["requestId"], rid)
        self.assertEqual(out["arn"], harness.function_arn(name))
        self.assertEqual(str(out["memory"]), "512")
        self.assertGreater(out["remaining"], 20000)
        self.assertLessEqual(out["remaining"], 30000)
        self.assertRegex(out["logStream"], r"^\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}$")
        self.assertEqual(out["clientContext"], cc)
        # console.log goes through the RIC's formatter into the invocation's log.
        self.assertRegex(harness.decode_tail(r), rf"{rid}\tINFO\thandling ctx")

    def test_thrown_error_is_a_function_error(self):
        name = self.names["fail.handler"]
        r, body = self.daemon.invoke(name, {"name": "zzz"})
        self.assertEqual(r["StatusCode"], 200)
        self.assertEqual(r.get("FunctionError"), "Unhandled")
        err = json.loads(body)
        self.assertEqual(err["errorType"], "TypeError")
        self.assertEqual(err["errorMessage"], "bad input: zzz")
        self.assertIsInstance(err.get("trace") or err.get("stackTrace"), list)
        # The environment survives a handled error.
        r, body = self.daemon.invoke(name, {"name": "again"})
        self.assertEqual(json.loads(body)["errorMessage"], "bad input: again")

    def test_missing_handler_module(self):
        name = unique("ric-missing")
        self.daemon.create(name, self.zip, Handler="nothere.handler", Timeout=30)
        r, body = self.daemon.invoke(name, {})
        self.assertEqual(r.get("FunctionError"), "Unhandled")
        self.assertEqual(json.loads(body)["errorType"], "Runtime.ImportModuleError")


if __name__ == "__main__":
    unittest.main()
