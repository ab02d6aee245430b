"""Restart safety, leftovers of a killed daemon, idle reaping and shutdown, with a real daemon."""

import concurrent.futures
import json
import signal
import threading
import time
import unittest

import harness
from harness import Daemon, unique

# A runtime that outlives its daemon: it ignores SIGTERM and, when the Runtime API goes away,
# sleeps forever instead of exiting. Only a SIGKILL (the daemon's shutdown or start-up sweep)
# gets rid of it.
STUBBORN_BOOTSTRAP = r'''
import json, os, signal, time, urllib.request
signal.signal(signal.SIGTERM, signal.SIG_IGN)
api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"
try:
    while True:
        with urllib.request.urlopen(api + "next") as r:
            rid = r.headers["Lambda-Runtime-Aws-Request-Id"]
            event = json.loads(r.read())
        time.sleep(event.get("sleep", 0))
        out = json.dumps({"pid": os.getpid(), "event": event,
                          "stream": os.environ["AWS_LAMBDA_LOG_STREAM_NAME"]}).encode()
        urllib.request.urlopen(urllib.request.Request(api + rid + "/response", data=out,
                                                      method="POST")).read()
except Exception:
    while True:
        time.sleep(1)
'''


def stubborn_zip():
    return harness.python_bootstrap_zip(STUBBORN_BOOTSTRAP)


class RestartTest(unittest.TestCase):
    def setUp(self):
        self.daemon = Daemon(name="restart").start()

    def tearDown(self):
        self.daemon.close()

    def snapshot(self):
        client = self.daemon.client()
        out = {}
        for page in client.get_paginator("list_functions").paginate():
            for f in page["Functions"]:
                out[f["FunctionName"]] = {k: f.get(k) for k in (
                    "FunctionArn", "CodeSha256", "CodeSize", "RevisionId", "LastModified",
                    "MemorySize", "Timeout", "Environment", "Description", "Handler")}
        return out

    def make_functions(self):
        names = [unique("keep") for _ in range(3)]
        self.daemon.create(names[0], Environment={"Variables": {"COLOR": "green"}})
        self.daemon.create(names[1], harness.python_zip(), Handler="handler.handler",
                           MemorySize=256, Timeout=7)
        self.daemon.create(names[2], Description="updated below")
        self.daemon.client().update_function_configuration(FunctionName=names[2], Timeout=9)
        doomed = unique("doomed")
        self.daemon.create(doomed)
        self.daemon.client().delete_function(FunctionName=doomed)
        return names, doomed

    def check_functions_work(self, names):
        _, body = self.daemon.invoke(names[0], {"hearth_test": {"env": 1}})
        self.assertEqual(json.loads(body)["COLOR"], "green")
        _, body = self.daemon.invoke(names[1], {"name": "again"})
        self.assertEqual(json.loads(body), {"hello": "again"})
        r, body = self.daemon.invoke(names[2], {"n": 3}, LogType="Tail")
        self.assertEqual(json.loads(body), {"n": 3})
        self.assertIn("Init Duration", harness.decode_tail(r), "first invoke after a restart is cold")

    def test_functions_survive_sigterm(self):
        names, doomed = self.make_functions()
        for n in names:
            self.daemon.invoke(n, {"warm": True})
        before = self.snapshot()
        code = self.daemon.stop(signal.SIGTERM)
        self.assertIn(code, (0, -signal.SIGTERM))
        self.assertEqual(self.daemon.leftover_processes(), [],
                         "runtime processes outlived a SIGTERMed daemon")
        self.daemon.start()
        self.assertEqual(self.snapshot(), before)
        self.assertNotIn(doomed, self.snapshot())
        self.check_functions_work(names)
        self.assertEqual(self.daemon.client().get_account_settings()["AccountUsage"]
                         ["FunctionCount"], 3)

    def test_functions_survive_sigkill_and_leftovers_are_cleaned(self):
        names, doomed = self.make_functions()
        stubborn = unique("stubborn")
        self.daemon.create(stubborn, stubborn_zip())
        for n in names:
            self.daemon.invoke(n, {"warm": True})
        others = set(self.daemon.runtime_pids())
        _, body = self.daemon.invoke(stubborn, {"n": 1})
        first = json.loads(body)
        stubborn_pids = set(self.daemon.runtime_pids()) - others
        self.assertTrue(stubborn_pids)
        before = self.snapshot()

        self.daemon.stop(signal.SIGKILL)
        time.sleep(0.3)
        survivors = [p for p in stubborn_pids if harness.pid_alive(p)]
        if first["pid"] in stubborn_pids:
            # Plain child processes (no PID namespace): nothing cleaned up after the SIGKILLed
            # daemon, so the stubborn runtime is still there, an orphan. (A sandbox may take its
            # processes down with the daemon, which is fine too.)
            self.assertTrue(survivors, "the stubborn runtime should outlive a SIGKILLed daemon")

        self.daemon.start()
        self.assertTrue(
            harness.wait_until(lambda: not any(harness.pid_alive(p) for p in survivors), 3),
            "the runtime left by the killed daemon is still running after the next start")
        self.assertEqual(self.daemon.leftover_processes(wait=3), [],
                         "processes of the killed daemon's environments survived its restart")
        self.assertEqual(self.snapshot(), before)
        self.check_functions_work(names)
        _, body = self.daemon.invoke(stubborn, {"n": 2})
        self.assertNotEqual(json.loads(body)["stream"], first["stream"])

    def test_shared_code_survives_delete_update_and_restart(self):
        # The code store is content-addressed: functions with the same zip share it. Deleting or
        # re-coding one of them, then restarting (which drops unreferenced code), must not take
        # the code away from the others.
        a, b, c = unique("share-a"), unique("share-b"), unique("share-c")
        for n in (a, b, c):
            self.daemon.create(n)  # the same echo.zip
        self.daemon.client().delete_function(FunctionName=a)
        self.daemon.client().update_function_code(
            FunctionName=c, ZipFile=harness.python_zip())
        self.daemon.client().update_function_configuration(FunctionName=c,
                                                           Handler="handler.handler")
        r, _ = self.daemon.invoke(b, {"before": 1})
        rid = r["ResponseMetadata"]["RequestId"]
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with self.subTest(signal=sig):
                self.daemon.restart(sig)
                _, body = self.daemon.invoke(b, {"after": sig})
                self.assertEqual(json.loads(body), {"after": sig})
                _, body = self.daemon.invoke(c, {"name": "c"})
                self.assertEqual(json.loads(body), {"hello": "c"})
                # And a new function with that same zip again.
                d = unique("share-d")
                self.daemon.create(d)
                _, body = self.daemon.invoke(d, {"d": 1})
                self.assertEqual(json.loads(body), {"d": 1})
                # Logs written before the restart are still there.
                self.assertIn(f"REPORT RequestId: {rid}", self.daemon.logs(b))

    def test_sigterm_during_an_invoke(self):
        name = unique("busy")
        self.daemon.create(name, stubborn_zip(), Timeout=60)
        client = self.daemon.client()
        with concurrent.futures.ThreadPoolExecutor(1) as ex:
            fut = ex.submit(lambda: client.invoke(FunctionName=name, Payload=b'{"sleep": 30}'))
            self.assertTrue(harness.wait_until(lambda: self.daemon.runtime_pids(), 5))
            time.sleep(0.5)  # the invoke is in flight
            t0 = time.monotonic()
            self.daemon.stop(signal.SIGTERM, timeout=10)
            self.assertLess(time.monotonic() - t0, 5, "shutdown waited for the running function")
            # The caller is answered or disconnected; it does not hang.
            try:
                fut.result(timeout=10)
            except concurrent.futures.TimeoutError:
                self.fail("the in-flight invoke hangs after the daemon stopped")
            except Exception:  # noqa: BLE001 - a dropped connection is fine
                pass
        self.assertEqual(self.daemon.leftover_processes(), [])


# Starts a grandchild (`sleep`) during Init, then serves like the echo would.
FORKING_BOOTSTRAP = r'''
import json, os, subprocess, urllib.request
child = subprocess.Popen(["sleep", "1000"])
api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"
while True:
    with urllib.request.urlopen(api + "next") as r:
        rid = r.headers["Lambda-Runtime-Aws-Request-Id"]
        event = json.loads(r.read())
    urllib.request.urlopen(urllib.request.Request(
        api + rid + "/response", data=json.dumps(event).encode(), method="POST")).read()
'''


class MallocTuningTest(harness.DaemonTestCase):
    """`hearth serve` re-executes itself once with glibc's per-thread malloc cache enlarged
    (src/daemon/malloc_tuning.h); functions never see the variable."""

    def test_daemon_runs_with_the_tunable_and_functions_do_not_inherit_it(self):
        # The re-exec keeps the pid: the process started is the daemon answering.
        with open(f"/proc/{self.daemon.proc.pid}/environ", "rb") as f:
            env = f.read().split(b"\0")
        self.assertIn(b"GLIBC_TUNABLES=glibc.malloc.tcache_count=256", env)
        with open(f"/proc/{self.daemon.proc.pid}/cmdline", "rb") as f:
            self.assertEqual(f.read().split(b"\0")[1], b"serve")
        name = unique("tun")
        self.daemon.create(name)
        _, body = self.daemon.invoke(name, {"hearth_test": {"env": 1}})
        self.assertNotIn("GLIBC_TUNABLES", json.loads(body))


class RetirementTest(harness.DaemonTestCase):
    """Environments of a deleted or updated function go away, with everything they started."""

    def test_delete_kills_the_environment_and_its_children(self):
        name = unique("forker")
        self.daemon.create(name, harness.python_bootstrap_zip(FORKING_BOOTSTRAP))
        before = set(self.daemon.runtime_pids())
        _, body = self.daemon.invoke(name, {"k": 1})
        self.assertEqual(json.loads(body), {"k": 1})
        mine = set(self.daemon.runtime_pids()) - before
        sleepers = [p for p in mine if harness.proc_cmdline(p).startswith("sleep")]
        self.assertTrue(sleepers, f"the runtime's child is not among {mine}")
        self.daemon.client().delete_function(FunctionName=name)
        self.assertTrue(harness.wait_until(lambda: not any(harness.pid_alive(p) for p in mine), 5),
                        "processes of a deleted function's environment are still running: "
                        f"{[p for p in mine if harness.pid_alive(p)]}")

    def test_delete_during_an_invoke(self):
        name = unique("del-busy")
        self.daemon.create(name, Timeout=10)
        client = self.daemon.client()
        with concurrent.futures.ThreadPoolExecutor(1) as ex:
            fut = ex.submit(lambda: client.invoke(
                FunctionName=name, Payload=json.dumps({"hearth_test": {"sleep_ms": 1500}})))
            time.sleep(0.5)
            client.delete_function(FunctionName=name)
            try:
                r = fut.result(timeout=15)  # answered one way or another, never hanging
                r["Payload"].read()
            except concurrent.futures.TimeoutError:
                self.fail("an invoke in flight during DeleteFunction hangs")
            except Exception:  # noqa: BLE001 - an error answer is acceptable
                pass
        with self.assertRaises(Exception):
            client.invoke(FunctionName=name, Payload=b"{}")
        self.assertIsNotNone(self.daemon.health())

    def test_update_code_during_an_invoke(self):
        name = unique("upd-busy")
        self.daemon.create(name, Timeout=10)
        client = self.daemon.client()
        new_code = harness.python_bootstrap_zip(FORKING_BOOTSTRAP.replace(
            "data=json.dumps(event)", "data=json.dumps({'new': event})"))
        with concurrent.futures.ThreadPoolExecutor(1) as ex:
            fut = ex.submit(lambda: client.invoke(
                FunctionName=name, Payload=json.dumps({"hearth_test": {"sleep_ms": 1000}})))
            time.sleep(0.3)
            client.update_function_code(FunctionName=name, ZipFile=new_code)
            r = fut.result(timeout=15)
            # The invoke that started on the old code finishes on it.
            self.assertNotIn("FunctionError", r)
            self.assertEqual(json.loads(r["Payload"].read()), {"hearth_test": {"sleep_ms": 1000}})
        _, body = self.daemon.invoke(name, {"v": 2})
        self.assertEqual(json.loads(body), {"new": {"v": 2}})


class IdleReapingTest(harness.DaemonTestCase):
    daemon_args = ("--idle-timeout-ms", "300")

    def test_idle_environment_is_reaped_then_cold_again(self):
        for label, zip_bytes in (("echo", None), ("stubborn", stubborn_zip())):
            with self.subTest(label):
                name = unique(f"idle-{label}")
                self.daemon.create(name, zip_bytes)
                r1, b1 = self.daemon.invoke(name, {"hearth_test": {"env": 1}}, LogType="Tail")
                self.assertIn("Init Duration", harness.decode_tail(r1))
                pids = self.daemon.runtime_pids()
                self.assertTrue(pids, "no runtime process while the environment is warm")
                self.assertTrue(
                    harness.wait_until(lambda: not any(harness.pid_alive(p) for p in pids), 3),
                    "the idle environment was not shut down")
                self.assertEqual(self.daemon.health()["environments"]["live"], 0)
                r2, _ = self.daemon.invoke(name, {"again": 1}, LogType="Tail")
                self.assertIn("Init Duration", harness.decode_tail(r2),
                              "the invoke after reaping must be a cold start")

    def test_busy_environment_is_not_reaped(self):
        name = unique("idle-busy")
        self.daemon.create(name, Timeout=5)
        r, body = self.daemon.invoke(name, {"hearth_test": {"sleep_ms": 1200}})
        self.assertNotIn("FunctionError", r)
        self.assertEqual(json.loads(body), {"hearth_test": {"sleep_ms": 1200}})

    def test_silent_long_invoke_shows_its_start_line_while_it_runs(self):
        # START waits for the function's first output line (one log write per silent invoke), but
        # never longer than a reaper tick: a long silent invoke shows START while it runs.
        name = unique("idle-silent")
        self.daemon.create(name, Timeout=5)
        done = threading.Event()

        def call():
            try:
                self.daemon.invoke(name, {"hearth_test": {"sleep_ms": 2000}})
            finally:
                done.set()

        t = threading.Thread(target=call, daemon=True)
        t.start()
        self.assertTrue(harness.wait_until(lambda: "START RequestId:" in self.daemon.logs(name), 1.5),
                        "no START line while the silent invoke runs")
        self.assertFalse(done.is_set(), "the invoke ended before START was checked")
        self.assertNotIn("REPORT RequestId:", self.daemon.logs(name))
        t.join(10)
        log = self.daemon.logs(name)
        self.assertEqual(log.count("START RequestId:"), 1, log)
        self.assertLess(log.index("START RequestId:"), log.index("END RequestId:"))
        self.assertIn("REPORT RequestId:", log)


if __name__ == "__main__":
    unittest.main()
