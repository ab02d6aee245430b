"""The `hearth` CLI (invoke, functions, logs, package, --help) against a real daemon."""

import json
import os
import re
import shutil
import subprocess
import threading
import time
import unittest

import harness
from harness import DaemonTestCase, unique


class CliTest(DaemonTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.echo = unique("cli-echo")
        cls.daemon.create(cls.echo)

    def test_help(self):
        p = self.daemon.cli("--help", endpoint=False)
        self.assertEqual(p.returncode, 0, p.stderr)
        for word in ("serve", "invoke", "functions", "logs", "package", "--endpoint",
                     "HEARTH_ENDPOINT"):
            self.assertIn(word, p.stdout)
        p = self.daemon.cli("serve", "--help", endpoint=False)
        self.assertEqual(p.returncode, 0)
        for flag in ("--listen", "--data-dir", "--max-environments", "--idle-timeout-ms"):
            self.assertIn(flag, p.stdout)
        p = self.daemon.cli("invoke", "--help", endpoint=False)
        self.assertIn("--payload", p.stdout)
        # No subcommand, or an unknown one: an error, not silence.
        p = self.daemon.cli(endpoint=False)
        self.assertNotEqual(p.returncode, 0)
        p = self.daemon.cli("frobnicate", endpoint=False)
        self.assertNotEqual(p.returncode, 0)

    def test_invoke_prints_the_answer(self):
        p = self.daemon.cli("invoke", self.echo, "--payload", '{"from": "cli", "n": [1, 2]}')
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout), {"from": "cli", "n": [1, 2]})
        # Default payload {}.
        p = self.daemon.cli("invoke", self.echo)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout), {})
        # By ARN.
        p = self.daemon.cli("invoke", harness.function_arn(self.echo), "-p", '{"arn": true}')
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout), {"arn": True})

    def test_invoke_payload_from_file(self):
        path = os.path.join(self.daemon.tmp, "payload.json")
        payload = {"file": True, "text": "x" * 100000}
        with open(path, "w") as f:
            json.dump(payload, f)
        p = self.daemon.cli("invoke", self.echo, "--payload", f"@{path}")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout), payload)
        p = self.daemon.cli("invoke", self.echo, "--payload", "@/no/such/file.json")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("/no/such/file.json", p.stderr)

    def test_invoke_with_logs_and_errors(self):
        p = self.daemon.cli("invoke", self.echo, "--logs", "--payload", '{"x": 1}')
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout), {"x": 1})
        self.assertRegex(p.stderr, r"START RequestId: [0-9a-f-]{36} Version: \$LATEST")
        self.assertIn("REPORT RequestId:", p.stderr)
        # A function error: the error JSON is printed, the exit code says it failed.
        p = self.daemon.cli("invoke", self.echo, "--payload", '{"hearth_test": {"error": "nope"}}')
        self.assertNotEqual(p.returncode, 0)
        self.assertEqual(json.loads(p.stdout)["errorMessage"], "nope")
        self.assertIn("Unhandled", p.stderr)
        # Unknown function and bad JSON: the API's error, non-zero.
        p = self.daemon.cli("invoke", "no-such-function")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("ResourceNotFoundException", p.stderr)
        self.assertIn("Function not found", p.stderr)
        p = self.daemon.cli("invoke", self.echo, "--payload", "{not json")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("InvalidRequestContentException", p.stderr)

    def test_functions_lists(self):
        names = [unique("cli-list") for _ in range(3)]
        for n in names:
            self.daemon.create(n, MemorySize=512)
        p = self.daemon.cli("functions")
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.splitlines()
        self.assertIn("NAME", lines[0])
        for n in names + [self.echo]:
            row = [ln for ln in lines if ln.split() and ln.split()[0] == n]
            self.assertEqual(len(row), 1, p.stdout)
        row = [ln for ln in lines if ln.startswith(names[0] + " ")][0]
        self.assertIn("provided.al2023", row)
        self.assertIn("512", row)
        p = self.daemon.cli("functions", "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        listed = {f["FunctionName"] for f in json.loads(p.stdout)["Functions"]}
        self.assertTrue(set(names) <= listed)

    def test_functions_lists_more_than_a_page(self):
        names = [f"cli-many-{i:03d}" for i in range(60)]
        for n in names:
            self.daemon.create(n)
        p = self.daemon.cli("functions", "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        listed = [f["FunctionName"] for f in json.loads(p.stdout)["Functions"]]
        self.assertEqual(len(listed), len(set(listed)))
        self.assertTrue(set(names) <= set(listed))

    def test_logs(self):
        name = unique("cli-logs")
        self.daemon.create(name)
        marker = f"cli-log-marker-{os.getpid()}"
        r, _ = self.daemon.invoke(name, {"hearth_test": {"log": marker}})
        rid = r["ResponseMetadata"]["RequestId"]
        p = self.daemon.cli("logs", name)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(f"START RequestId: {rid} Version: $LATEST", p.stdout)
        self.assertIn(f"END RequestId: {rid}", p.stdout)
        self.assertRegex(p.stdout, rf"REPORT RequestId: {rid}\tDuration: [\d.]+ ms\t")
        self.assertIn(marker, p.stdout)
        p = self.daemon.cli("logs", "no-such-function")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("not found", p.stderr.lower())

    def test_logs_follow(self):
        name = unique("cli-follow")
        self.daemon.create(name)
        marker = f"followed-{os.getpid()}"
        proc = subprocess.Popen([harness.HEARTH_BIN, "--endpoint", self.daemon.endpoint,
                                 "logs", name, "--follow"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        seen = bytearray()

        def reader():
            while chunk := os.read(proc.stdout.fileno(), 65536):
                seen.extend(chunk)

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        try:
            time.sleep(0.5)
            self.assertIsNone(proc.poll(), "logs --follow exited")
            self.daemon.invoke(name, {"hearth_test": {"log": marker}})
            self.assertTrue(harness.wait_until(lambda: marker.encode() in seen, 10),
                            "logs --follow did not print the new lines")
            self.assertTrue(harness.wait_until(lambda: b"REPORT RequestId:" in seen, 10),
                            "logs --follow did not print the REPORT line")
        finally:
            proc.kill()
            proc.wait()
            t.join(5)
            proc.stdout.close()

    def test_hearth_endpoint_env(self):
        p = self.daemon.cli("invoke", self.echo, "--payload", '{"via": "env"}',
                            env={"HEARTH_ENDPOINT": self.daemon.endpoint}, endpoint=False)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout), {"via": "env"})
        p = self.daemon.cli("functions", env={"HEARTH_ENDPOINT": self.daemon.endpoint},
                            endpoint=False)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(self.echo, p.stdout)
        # --endpoint wins over the environment.
        p = self.daemon.cli("--endpoint", self.daemon.endpoint, "invoke", self.echo,
                            env={"HEARTH_ENDPOINT": "http://127.0.0.1:1"}, endpoint=False)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_unreachable_endpoint(self):
        dead = f"http://127.0.0.1:{harness.free_port()}"
        for args in (("invoke", self.echo), ("functions",), ("logs", self.echo)):
            with self.subTest(args=args):
                p = self.daemon.cli(*args, env={"HEARTH_ENDPOINT": dead}, endpoint=False,
                                    timeout=30)
                self.assertNotEqual(p.returncode, 0)
                self.assertEqual(p.stdout, "")
                self.assertIn(dead, p.stderr)
                self.assertRegex(p.stderr.lower(), r"cannot reach|refused")
                self.assertNotRegex(p.stderr, re.compile(r"terminate called|Segmentation|what\(\)"))

    def test_package_a_directory_and_deploy_it(self):
        # A custom runtime as a user writes one: a script `bootstrap`, the handler in a
        # subdirectory, data reached through a symlink inside the tree.
        src = os.path.join(self.daemon.tmp, "pkg-src")
        os.makedirs(os.path.join(src, "lib", "data"))
        shutil.copy(os.path.join(harness.REPO, "examples", "python", "bootstrap"),
                    os.path.join(src, "bootstrap"))
        os.chmod(os.path.join(src, "bootstrap"), 0o755)
        with open(os.path.join(src, "lib", "data", "greeting.txt"), "w") as f:
            f.write("packaged by hearth")
        with open(os.path.join(src, "lib", "app.py"), "w") as f:
            f.write("import os\n"
                    "def handler(event, context):\n"
                    "    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))\n"
                    "    with open(os.path.join(here, 'greeting')) as f:\n"
                    "        return {'greeting': f.read(), 'event': event,\n"
                    "                'exec': os.access(os.path.join(here, 'bootstrap'), os.X_OK)}\n")
        os.symlink("lib/data/greeting.txt", os.path.join(src, "greeting"))
        out = os.path.join(self.daemon.tmp, "function.zip")
        p = self.daemon.cli("package", src, "-o", out, endpoint=False)
        self.assertEqual(p.returncode, 0, p.stderr)
        m = re.search(r"CodeSha256: (\S+)", p.stdout)
        self.assertIsNotNone(m, p.stdout)
        self.assertIn("3 files", p.stdout)
        self.assertIn("1 symlinks", p.stdout)
        with open(out, "rb") as f:
            zip_bytes = f.read()

        name = unique("cli-packaged")
        fn = self.daemon.client().create_function(
            FunctionName=name, Runtime="provided.al2023", Role=harness.ROLE,
            Handler="lib/app.handler", Code={"ZipFile": zip_bytes})
        self.assertEqual(fn["CodeSha256"], m.group(1))
        r, body = self.daemon.invoke(name, {"n": 1})
        self.assertNotIn("FunctionError", r, body)
        self.assertEqual(json.loads(body), {"greeting": "packaged by hearth", "event": {"n": 1},
                                            "exec": True})

        # Deterministic: packaging again (later, other mtimes) gives the same CodeSha256, and
        # the zip written inside the directory itself is left out of it.
        os.utime(os.path.join(src, "lib", "app.py"), (1, 1))
        inside = os.path.join(src, "function.zip")
        p = self.daemon.cli("package", src, "-o", inside, endpoint=False)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(f"CodeSha256: {m.group(1)}", p.stdout)
        p = self.daemon.cli("package", src, "--output", inside, endpoint=False)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(f"CodeSha256: {m.group(1)}", p.stdout)
        self.assertIn("left out 'function.zip'", p.stderr)

    def test_package_refusals(self):
        src = os.path.join(self.daemon.tmp, "pkg-bad")
        os.makedirs(os.path.join(src, "sub"))
        with open(os.path.join(src, "bootstrap"), "w") as f:
            f.write("#!/bin/sh\n")
        os.chmod(os.path.join(src, "bootstrap"), 0o755)
        os.symlink("../../../etc/passwd", os.path.join(src, "sub", "secrets"))
        out = os.path.join(self.daemon.tmp, "bad.zip")
        p = self.daemon.cli("package", src, "-o", out, endpoint=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("'sub/secrets'", p.stderr)
        self.assertIn("outside", p.stderr)
        self.assertFalse(os.path.exists(out))
        p = self.daemon.cli("package", os.path.join(self.daemon.tmp, "no-such-dir"), "-o", out,
                            endpoint=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("no such directory", p.stderr)
        self.assertIn("no-such-dir", p.stderr)
        p = self.daemon.cli("package", src, endpoint=False)  # -o is required
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("--output", p.stderr)


if __name__ == "__main__":
    unittest.main()
