"""End to end: an idle environment is frozen (`freeze_idle_ms`), as Lambda freezes one between
invocations: work a function leaves running in the background after answering stops until its
next invoke, and that invoke thaws it and answers as usual. With freezing off it keeps running.

Needs the sandbox (root); otherwise prints "SKIP test_freeze: <why>" (the plain process launcher
cannot freeze)."""

import json
import os
import tempfile
import time
import unittest

import harness

# A background thread ticks every 10 ms from the first invoke on; each invoke returns the count.
TICKER = '''import threading
import time

ticks = 0
started = False


def tick():
    global ticks
    while True:
        time.sleep(0.01)
        ticks += 1


def lambda_handler(event, context):
    global started
    if not started:
        started = True
        threading.Thread(target=tick, daemon=True).start()
    return {"ticks": ticks}
'''


def config_file(freeze_idle_ms: int) -> str:
    fd, path = tempfile.mkstemp(prefix="hearth-freeze-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump({"freeze_idle_ms": freeze_idle_ms}, f)
    return path


def skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "the sandbox (and its freezer) needs root"
    if os.environ.get("HEARTH_E2E_ISOLATION") == "process":
        return "HEARTH_E2E_ISOLATION=process: plain processes are not frozen"
    return None


class FreezeTestBase(harness.DaemonTestCase):
    freeze_idle_ms = 0

    @classmethod
    def setUpClass(cls):
        why = skip_reason()
        if why:
            print(f"SKIP test_freeze: {why}", flush=True)
            raise unittest.SkipTest(why)
        cls.config = config_file(cls.freeze_idle_ms)
        cls.daemon_args = ("--config", cls.config)
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        os.unlink(cls.config)

    def ticks_over_an_idle_second(self) -> tuple[int, int]:
        name = harness.unique("ticker")
        self.daemon.create(name, harness.make_zip({"lambda_function.py": TICKER}),
                           Runtime="python3.11", Handler="lambda_function.lambda_handler", MemorySize=1769)
        _, body = self.daemon.invoke(name, {})
        first = json.loads(body)["ticks"]
        time.sleep(1.5)
        r, body = self.daemon.invoke(name, {})
        self.assertNotIn("FunctionError", r, body)
        return first, json.loads(body)["ticks"]


class FrozenWhenIdleTest(FreezeTestBase):
    freeze_idle_ms = 100

    def test_background_work_stops_while_idle_and_the_next_invoke_thaws(self):
        first, second = self.ticks_over_an_idle_second()
        # 1.5 s idle, frozen after 0.1 s: at most ~10 ticks (plus scheduling slack), not ~150.
        self.assertLess(second - first, 40, (first, second))
        # Thawed: it ticks again while it runs.
        self.assertGreaterEqual(second, first)


class NotFrozenTest(FreezeTestBase):
    freeze_idle_ms = 0

    def test_without_freezing_background_work_continues(self):
        first, second = self.ticks_over_an_idle_second()
        self.assertGreater(second - first, 80, (first, second))


if __name__ == "__main__":
    unittest.main()
