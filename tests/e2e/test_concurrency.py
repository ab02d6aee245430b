"""Concurrency at scale, with a real daemon: reserved and provisioned concurrency (boto3 and the
AWS CLI), throttling with Lambda's reasons, the scaling rate, memory-aware admission, idle
reaping, 500 parallel cold invokes, and a control plane that stays responsive during a flood.

Counters come from Hearth's own GET /hearth/v1/stats."""

import concurrent.futures
import http.client
import json
import os
import threading
import time
import unittest

from botocore.exceptions import ClientError

import harness
from harness import DaemonTestCase, Daemon, unique

MIN_UNRESERVED_MESSAGE = ("Specified ReservedConcurrentExecutions for function decreases account's "
                          "UnreservedConcurrentExecution below its minimum value of [100].")


def sleep_payload(ms: int, **extra) -> str:
    body = {"hearth_test": {"sleep_ms": ms}}
    body.update(extra)
    return json.dumps(body)


def raw_invoke(port: int, name: str, payload: str, qualifier: str | None = None,
               headers: dict | None = None, timeout: float = 120):
    """One invoke on its own connection: (status, lower-case headers, body bytes)."""
    path = f"/2015-03-31/functions/{name}/invocations"
    if qualifier:
        path += f"?Qualifier={qualifier}"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        conn.request("POST", path, body=payload.encode(), headers=h)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def parallel(n: int, fn):
    """Runs fn(i) for i in range(n) on n threads released together; returns the results."""
    barrier = threading.Barrier(n)

    def one(i):
        barrier.wait()
        return fn(i)

    with concurrent.futures.ThreadPoolExecutor(n) as ex:
        return list(ex.map(one, range(n)))


class StatsMixin:
    def stats(self) -> dict:
        r = self.daemon.request("GET", "/hearth/v1/stats")
        self.assertEqual(r.status, 200, r)
        return r.json()

    def throttles(self, reason: str) -> int:
        return self.stats()["throttles"]["by_reason"].get(reason, 0)

    def assertThrottled(self, result, reason: str):
        status, headers, body = result
        self.assertEqual(status, 429, result)
        self.assertEqual(headers.get("x-amzn-errortype"), "TooManyRequestsException", result)
        self.assertTrue(headers.get("retry-after"), f"no Retry-After: {result}")
        self.assertEqual(json.loads(body),
                         {"Reason": reason, "Type": "User", "message": json.loads(body)["message"]})
        self.assertTrue(json.loads(body)["message"].startswith("Rate Exceeded."), body)


class ReservedConcurrencyTest(StatsMixin, DaemonTestCase):
    def test_put_get_delete_and_get_function(self):
        client = self.daemon.client()
        name = unique("rc")
        self.daemon.create(name)
        self.assertNotIn("ReservedConcurrentExecutions", client.get_function_concurrency(FunctionName=name))
        self.assertNotIn("Concurrency", client.get_function(FunctionName=name))
        before = client.get_account_settings()["AccountLimit"]
        self.assertEqual(before["ConcurrentExecutions"], 1000)
        r = client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=25)
        self.assertEqual(r["ResponseMetadata"]["HTTPStatusCode"], 200)
        self.assertEqual(r["ReservedConcurrentExecutions"], 25)
        self.assertEqual(client.get_function_concurrency(FunctionName=name)["ReservedConcurrentExecutions"], 25)
        self.assertEqual(client.get_function(FunctionName=name)["Concurrency"],
                         {"ReservedConcurrentExecutions": 25})
        after = client.get_account_settings()["AccountLimit"]
        self.assertEqual(after["UnreservedConcurrentExecutions"],
                         before["UnreservedConcurrentExecutions"] - 25)
        # A full ARN works as the name too.
        client.put_function_concurrency(FunctionName=harness.function_arn(name),
                                        ReservedConcurrentExecutions=30)
        self.assertEqual(client.get_function_concurrency(FunctionName=name)["ReservedConcurrentExecutions"], 30)
        r = client.delete_function_concurrency(FunctionName=name)
        self.assertEqual(r["ResponseMetadata"]["HTTPStatusCode"], 204)
        self.assertNotIn("ReservedConcurrentExecutions", client.get_function_concurrency(FunctionName=name))
        self.assertNotIn("Concurrency", client.get_function(FunctionName=name))
        self.assertEqual(client.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"],
                         before["UnreservedConcurrentExecutions"])

    def test_aws_cli(self):
        name = unique("rc-cli")
        self.daemon.create(name)
        _, out = self.daemon.aws("put-function-concurrency", "--function-name", name,
                                 "--reserved-concurrent-executions", "7")
        self.assertEqual(out, {"ReservedConcurrentExecutions": 7})
        _, out = self.daemon.aws("get-function-concurrency", "--function-name", name)
        self.assertEqual(out, {"ReservedConcurrentExecutions": 7})
        self.daemon.aws("delete-function-concurrency", "--function-name", name)
        p, out = self.daemon.aws("get-function-concurrency", "--function-name", name)
        self.assertFalse(out)  # {} or nothing printed

    def test_validation(self):
        client = self.daemon.client()
        name = unique("rc-val")
        self.daemon.create(name)
        # Other tests of the class may hold reservations: the most this one can take is what
        # leaves exactly 100 unreserved.
        most = client.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] - 100
        with self.assertRaises(ClientError) as ctx:
            client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=most + 1)
        self.assertClientError(ctx, "InvalidParameterValueException", 400, MIN_UNRESERVED_MESSAGE)
        client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=most)
        self.assertEqual(client.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"], 100)
        other = unique("rc-val2")
        self.daemon.create(other)
        with self.assertRaises(ClientError) as ctx:
            client.put_function_concurrency(FunctionName=other, ReservedConcurrentExecutions=1)
        self.assertClientError(ctx, "InvalidParameterValueException", 400, MIN_UNRESERVED_MESSAGE)
        client.delete_function_concurrency(FunctionName=name)
        with self.assertRaises(ClientError) as ctx:
            client.put_function_concurrency(FunctionName=unique("absent"), ReservedConcurrentExecutions=1)
        self.assertClientError(ctx, "ResourceNotFoundException", 404)
        with self.assertRaises(ClientError) as ctx:
            client.get_function_concurrency(FunctionName=unique("absent"))
        self.assertClientError(ctx, "ResourceNotFoundException", 404)
        # What SDKs refuse to send.
        path = f"/2017-10-31/functions/{name}/concurrency"
        r = self.daemon.request("PUT", path, json.dumps({"ReservedConcurrentExecutions": -1}))
        self.assertEqual((r.status, r.headers.get("x-amzn-errortype")), (400, "ValidationException"), r)
        self.assertIn("reservedConcurrentExecutions", r.json()["message"])
        r = self.daemon.request("PUT", path, "{}")
        self.assertEqual((r.status, r.headers.get("x-amzn-errortype")), (400, "ValidationException"), r)
        self.assertIn("Member must not be null", r.json()["message"])
        r = self.daemon.request("PUT", path, "not json")
        self.assertEqual(r.status, 400, r)

    def test_dropped_with_the_function(self):
        client = self.daemon.client()
        name = unique("rc-del")
        self.daemon.create(name)
        client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=50)
        unreserved = client.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"]
        client.delete_function(FunctionName=name)
        self.assertEqual(client.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"],
                         unreserved + 50)
        self.daemon.create(name)
        self.assertNotIn("ReservedConcurrentExecutions", client.get_function_concurrency(FunctionName=name))

    def test_reserved_n_with_n_plus_k_callers_exactly_k_throttled(self):
        client = self.daemon.client()
        name = unique("rc-429")
        self.daemon.create(name, Timeout=30)
        n, k = 4, 3
        client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=n)
        before = self.throttles("ReservedFunctionConcurrentInvocationLimitExceeded")
        results = parallel(n + k, lambda i: raw_invoke(self.daemon.port, name, sleep_payload(2500, i=i)))
        ok = [r for r in results if r[0] == 200]
        throttled = [r for r in results if r[0] != 200]
        self.assertEqual(len(ok), n, [r[:2] for r in results])
        self.assertEqual(len(throttled), k, [r[:2] for r in results])
        for r in ok:
            self.assertNotIn("x-amz-function-error", r[1], r)
        for r in throttled:
            self.assertThrottled(r, "ReservedFunctionConcurrentInvocationLimitExceeded")
        self.assertEqual(self.throttles("ReservedFunctionConcurrentInvocationLimitExceeded"), before + k)
        s = self.stats()
        self.assertGreaterEqual(s["concurrency"]["peak"], n)
        self.assertEqual(s["concurrency"]["executions"], 0)
        # boto3 sees the same: the error code and the Reason.
        results = parallel(n + 1, lambda i: self._boto_invoke(name, sleep_payload(2000)))
        codes = sorted(r[0] for r in results)
        self.assertEqual(codes, ["TooManyRequestsException"] + ["ok"] * n, results)
        self.assertIn("ReservedFunctionConcurrentInvocationLimitExceeded",
                      [r[1] for r in results if r[0] != "ok"])

    def _boto_invoke(self, name, payload):
        try:
            self.daemon.client().invoke(FunctionName=name, Payload=payload)
            return ("ok", None)
        except ClientError as e:
            return (e.response["Error"]["Code"], e.response.get("Reason"))

    def test_reserved_zero_throttles_everything(self):
        client = self.daemon.client()
        name = unique("rc-zero")
        self.daemon.create(name)
        client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
        for r in parallel(5, lambda i: raw_invoke(self.daemon.port, name, "{}")):
            self.assertThrottled(r, "ReservedFunctionConcurrentInvocationLimitExceeded")
        # Async: accepted, then dropped (ZeroReservedConcurrency), never run.
        dropped = self.stats()["async"]["dropped"]
        r = self.daemon.invoke_raw(name, "{}", headers={"X-Amz-Invocation-Type": "Event"})
        self.assertEqual(r.status, 202, r)
        self.assertTrue(harness.wait_until(lambda: self.stats()["async"]["dropped"] == dropped + 1, 5))
        self.assertEqual(self.stats()["invocations"]["cold_starts"] >= 0, True)
        client.delete_function_concurrency(FunctionName=name)
        _, body = self.daemon.invoke(name, {"back": 1})
        self.assertEqual(json.loads(body), {"back": 1})

    def test_reserved_is_a_guarantee_and_covers_all_versions(self):
        client = self.daemon.client()
        name = unique("rc-ver")
        self.daemon.create(name, Timeout=30)
        client.publish_version(FunctionName=name)
        client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=2)
        # $LATEST and version 1 share the two.
        results = parallel(3, lambda i: raw_invoke(self.daemon.port, name, sleep_payload(2000),
                                                    qualifier=["1", "$LATEST", "1"][i]))
        self.assertEqual(sorted(r[0] for r in results), [200, 200, 429], [r[:2] for r in results])


class AccountLimitTest(StatsMixin, DaemonTestCase):
    daemon_args = ("--account-concurrency", "3")

    def test_account_limit_and_settings(self):
        client = self.daemon.client()
        limit = client.get_account_settings()["AccountLimit"]
        self.assertEqual((limit["ConcurrentExecutions"], limit["UnreservedConcurrentExecutions"]), (3, 3))
        name = unique("acct")
        self.daemon.create(name, Timeout=30)
        # Fewer than 100 would stay unreserved: nothing can be reserved at all.
        with self.assertRaises(ClientError) as ctx:
            client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
        self.assertClientError(ctx, "InvalidParameterValueException", 400, MIN_UNRESERVED_MESSAGE)
        results = parallel(5, lambda i: raw_invoke(self.daemon.port, name, sleep_payload(2000)))
        self.assertEqual(sorted(r[0] for r in results), [200, 200, 200, 429, 429])
        for r in results:
            if r[0] == 429:
                self.assertThrottled(r, "ConcurrentInvocationLimitExceeded")

    def test_async_event_throttled_is_retried_not_lost(self):
        name, busy = unique("acct-async"), unique("acct-busy")
        self.daemon.create(name)
        self.daemon.create(busy, Timeout=30)
        retries = self.stats()["async"]["throttle_retries"]
        marker = f"async-marker-{os.getpid()}-{time.time_ns()}"
        pool = concurrent.futures.ThreadPoolExecutor(3)
        try:
            blockers = [pool.submit(raw_invoke, self.daemon.port, busy, sleep_payload(2500))
                        for _ in range(3)]
            self.assertTrue(harness.wait_until(
                lambda: self.stats()["concurrency"]["executions"] == 3, 10), self.stats())
            r = self.daemon.invoke_raw(name, json.dumps({"hearth_test": {"log": marker}}),
                                       headers={"X-Amz-Invocation-Type": "Event"})
            self.assertEqual(r.status, 202, r)
            self.assertTrue(harness.wait_until(
                lambda: self.stats()["async"]["throttle_retries"] > retries, 5),
                "the throttled event was not queued for a retry")
            self.assertNotIn(marker, self.daemon.logs(name))
            for b in blockers:
                self.assertEqual(b.result()[0], 200)
        finally:
            pool.shutdown()
        self.assertTrue(harness.wait_until(lambda: marker in self.daemon.logs(name), 15),
                        "the event was lost")


class ProvisionedConcurrencyTest(StatsMixin, DaemonTestCase):
    def wait_ready(self, name, qualifier, timeout=30):
        client = self.daemon.client()
        last = {}

        def ready():
            nonlocal last
            last = client.get_provisioned_concurrency_config(FunctionName=name, Qualifier=qualifier)
            return last["Status"] != "IN_PROGRESS"

        self.assertTrue(harness.wait_until(ready, timeout, 0.1), last)
        return last

    def test_lifecycle_warm_first_invoke_and_spillover(self):
        client = self.daemon.client()
        name = unique("pc")
        self.daemon.create(name, Timeout=30)
        v1 = client.publish_version(FunctionName=name)["Version"]
        client.create_alias(FunctionName=name, Name="live", FunctionVersion=v1)
        r = client.put_provisioned_concurrency_config(FunctionName=name, Qualifier="live",
                                                      ProvisionedConcurrentExecutions=2)
        self.assertEqual(r["ResponseMetadata"]["HTTPStatusCode"], 202)
        self.assertEqual(r["RequestedProvisionedConcurrentExecutions"], 2)
        self.assertIn(r["Status"], ("IN_PROGRESS", "READY"))
        self.assertIn("LastModified", r)
        got = self.wait_ready(name, "live")
        self.assertEqual(got["Status"], "READY", got)
        self.assertEqual((got["AllocatedProvisionedConcurrentExecutions"],
                          got["AvailableProvisionedConcurrentExecutions"]), (2, 2))
        self.assertEqual(self.stats()["environments"]["provisioned"]["idle"], 2)
        # Provisioned concurrency counts against the account.
        self.assertEqual(client.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"], 998)
        listed = client.list_provisioned_concurrency_configs(FunctionName=name)["ProvisionedConcurrencyConfigs"]
        self.assertEqual([c["FunctionArn"] for c in listed], [harness.function_arn(name, "live")])

        # First invoke is warm: no Init Duration; the environment says how it was initialized.
        r, body = self.daemon.invoke(name, {"hearth_test": {"env": True}}, Qualifier="live", LogType="Tail")
        tail = harness.decode_tail(r)
        self.assertIn("REPORT RequestId", tail)
        self.assertNotIn("Init Duration", tail)
        self.assertEqual(json.loads(body)["AWS_LAMBDA_INITIALIZATION_TYPE"], "provisioned-concurrency")
        _, body = self.daemon.invoke(name, {"hearth_test": {"env": True}})  # $LATEST, on demand
        self.assertEqual(json.loads(body)["AWS_LAMBDA_INITIALIZATION_TYPE"], "on-demand")

        # Three at once: two on provisioned environments, one spills over to an on-demand one.
        before_all = self.stats()
        before = before_all["invocations"]
        results = parallel(3, lambda i: raw_invoke(self.daemon.port, name, sleep_payload(1500),
                                                   qualifier="live"))
        self.assertEqual([r[0] for r in results], [200, 200, 200])
        after_all = self.stats()
        after = after_all["invocations"]
        self.assertEqual(after["provisioned"] - before["provisioned"], 2)
        self.assertEqual(after["spillover"] - before["spillover"], 1)
        # The spill-over started exactly one process (the launcher's counters).
        self.assertEqual(after_all["launches"]["launched"] - before_all["launches"]["launched"], 1,
                         after_all["launches"])
        self.assertEqual(after_all["launches"]["failed"], 0, after_all["launches"])
        # Provisioned environments are not reaped and stay two.
        self.assertEqual(self.stats()["environments"]["provisioned"]["idle"], 2)

        # The alias moves to version 2: its provisioned environments are replaced.
        client.update_function_configuration(FunctionName=name, Description="v2")
        v2 = client.publish_version(FunctionName=name)["Version"]
        client.update_alias(FunctionName=name, Name="live", FunctionVersion=v2)
        self.assertEqual(self.wait_ready(name, "live")["Status"], "READY")
        r, _ = self.daemon.invoke(name, {"v": 2}, Qualifier="live", LogType="Tail")
        self.assertEqual(r["ExecutedVersion"], v2)
        self.assertNotIn("Init Duration", harness.decode_tail(r))
        self.assertEqual(self.stats()["environments"]["provisioned"]["idle"], 2)

        # Deleting the alias releases them and drops the config.
        client.delete_alias(FunctionName=name, Name="live")
        self.assertTrue(harness.wait_until(
            lambda: sum(self.stats()["environments"]["provisioned"].values()) == 0, 5))
        with self.assertRaises(ClientError) as ctx:
            client.get_provisioned_concurrency_config(FunctionName=name, Qualifier="live")
        self.assertClientError(ctx, "ProvisionedConcurrencyConfigNotFoundException", 404)

    def test_on_a_version_then_delete_config(self):
        client = self.daemon.client()
        name = unique("pc-ver")
        self.daemon.create(name)
        v = client.publish_version(FunctionName=name)["Version"]
        client.put_provisioned_concurrency_config(FunctionName=name, Qualifier=v,
                                                  ProvisionedConcurrentExecutions=1)
        self.assertEqual(self.wait_ready(name, v)["Status"], "READY")
        r, _ = self.daemon.invoke(name, {"x": 1}, Qualifier=v, LogType="Tail")
        self.assertNotIn("Init Duration", harness.decode_tail(r))
        r = client.delete_provisioned_concurrency_config(FunctionName=name, Qualifier=v)
        self.assertEqual(r["ResponseMetadata"]["HTTPStatusCode"], 204)
        self.assertTrue(harness.wait_until(
            lambda: sum(self.stats()["environments"]["provisioned"].values()) == 0, 5))
        with self.assertRaises(ClientError) as ctx:
            client.delete_provisioned_concurrency_config(FunctionName=name, Qualifier=v)
        self.assertClientError(ctx, "ProvisionedConcurrencyConfigNotFoundException", 404)
        self.assertEqual(client.list_provisioned_concurrency_configs(FunctionName=name)
                         ["ProvisionedConcurrencyConfigs"], [])

    def test_deleting_the_version_releases_them(self):
        client = self.daemon.client()
        name = unique("pc-delver")
        self.daemon.create(name)
        v = client.publish_version(FunctionName=name)["Version"]
        client.put_provisioned_concurrency_config(FunctionName=name, Qualifier=v,
                                                  ProvisionedConcurrentExecutions=2)
        self.assertEqual(self.wait_ready(name, v)["Status"], "READY")
        unreserved = client.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"]
        client.delete_function(FunctionName=name, Qualifier=v)
        self.assertTrue(harness.wait_until(
            lambda: sum(self.stats()["environments"]["provisioned"].values()) == 0, 5), self.stats())
        self.assertEqual(client.list_provisioned_concurrency_configs(FunctionName=name)
                         ["ProvisionedConcurrencyConfigs"], [])
        self.assertEqual(client.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"],
                         unreserved + 2)

    def test_validation(self):
        client = self.daemon.client()
        name = unique("pc-val")
        self.daemon.create(name)
        v = client.publish_version(FunctionName=name)["Version"]
        client.create_alias(FunctionName=name, Name="head", FunctionVersion="$LATEST")
        for q in ("$LATEST", "head"):
            with self.assertRaises(ClientError) as ctx:
                client.put_provisioned_concurrency_config(FunctionName=name, Qualifier=q,
                                                          ProvisionedConcurrentExecutions=1)
            self.assertClientError(ctx, "InvalidParameterValueException", 400,
                                   "Provisioned Concurrency Configs cannot be applied to unpublished "
                                   "function versions.")
        with self.assertRaises(ClientError) as ctx:
            client.put_provisioned_concurrency_config(FunctionName=name, Qualifier="42",
                                                      ProvisionedConcurrentExecutions=1)
        self.assertClientError(ctx, "ResourceNotFoundException", 404)
        client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=2)
        with self.assertRaises(ClientError) as ctx:
            client.put_provisioned_concurrency_config(FunctionName=name, Qualifier=v,
                                                      ProvisionedConcurrentExecutions=3)
        self.assertClientError(ctx, "InvalidParameterValueException", 400)
        with self.assertRaises(ClientError) as ctx:
            client.get_provisioned_concurrency_config(FunctionName=name, Qualifier=v)
        self.assertClientError(ctx, "ProvisionedConcurrencyConfigNotFoundException", 404)
        r = self.daemon.request("PUT", f"/2019-09-30/functions/{name}/provisioned-concurrency?Qualifier={v}",
                                json.dumps({"ProvisionedConcurrentExecutions": 0}))
        self.assertEqual((r.status, r.headers.get("x-amzn-errortype")), (400, "ValidationException"), r)
        client.delete_function_concurrency(FunctionName=name)

    def test_init_failure_is_reported(self):
        client = self.daemon.client()
        name = unique("pc-fail")
        self.daemon.create(name, harness.python_bootstrap_zip("import sys\nsys.exit(3)\n"))
        v = client.publish_version(FunctionName=name)["Version"]
        client.put_provisioned_concurrency_config(FunctionName=name, Qualifier=v,
                                                  ProvisionedConcurrentExecutions=1)
        got = self.wait_ready(name, v)
        self.assertEqual(got["Status"], "FAILED", got)
        self.assertIn("FUNCTION_ERROR_INIT_FAILURE", got.get("StatusReason", ""))
        client.delete_provisioned_concurrency_config(FunctionName=name, Qualifier=v)


class PersistenceTest(StatsMixin, unittest.TestCase):
    def test_settings_survive_a_restart_and_are_provisioned_again(self):
        self.daemon = Daemon(name="conc-restart").start()
        try:
            client = self.daemon.client()
            name = unique("persist")
            self.daemon.create(name)
            v = client.publish_version(FunctionName=name)["Version"]
            client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=5)
            client.put_provisioned_concurrency_config(FunctionName=name, Qualifier=v,
                                                      ProvisionedConcurrentExecutions=2)
            self.daemon.restart()
            client = self.daemon.client()
            self.assertEqual(client.get_function_concurrency(FunctionName=name)["ReservedConcurrentExecutions"], 5)
            self.assertTrue(harness.wait_until(
                lambda: client.get_provisioned_concurrency_config(FunctionName=name, Qualifier=v)
                ["Status"] == "READY", 30))
            self.assertEqual(self.stats()["environments"]["provisioned"]["idle"], 2)
            r, _ = self.daemon.invoke(name, {"after": "restart"}, Qualifier=v, LogType="Tail")
            self.assertNotIn("Init Duration", harness.decode_tail(r))
        finally:
            self.daemon.close()


class ScalingRateTest(StatsMixin, DaemonTestCase):
    daemon_args = ("--scaling-rate", "2")

    def test_new_environments_beyond_the_rate_get_429(self):
        name = unique("rate")
        self.daemon.create(name, Timeout=30)
        results = parallel(4, lambda i: raw_invoke(self.daemon.port, name, sleep_payload(1500)))
        self.assertEqual(sorted(r[0] for r in results), [200, 200, 429, 429])
        for r in results:
            if r[0] == 429:
                self.assertThrottled(r, "FunctionInvocationRateLimitExceeded")
        # Warm environments need no new ones: two at a time always pass.
        for _ in range(3):
            results = parallel(2, lambda i: raw_invoke(self.daemon.port, name, "{}"))
            self.assertEqual([r[0] for r in results], [200, 200])


class MemoryAdmissionTest(StatsMixin, unittest.TestCase):
    def test_short_of_memory_waits_then_429(self):
        # A reserve larger than the machine: no environment ever fits.
        tmp = harness.tempfile.mkdtemp(prefix="hearth-conc-cfg-")
        cfg = os.path.join(tmp, "config.json")
        with open(cfg, "w") as f:
            json.dump({"memory_reserve_mb": 1 << 30, "admission_wait_ms": 400}, f)
        self.daemon = Daemon("--config", cfg, name="conc-memory").start()
        try:
            name = unique("mem")
            self.daemon.create(name)
            t0 = time.monotonic()
            result = raw_invoke(self.daemon.port, name, "{}")
            waited = time.monotonic() - t0
            self.assertThrottled(result, "HostMemoryExhausted")
            self.assertIn("memory", json.loads(result[2])["message"])
            self.assertGreaterEqual(waited, 0.35, "the invoke did not wait for memory")
            self.assertLess(waited, 5)
            s = self.stats()
            self.assertEqual(s["environments"]["live"], 0)
            self.assertGreaterEqual(s["admission"]["waits"], 1)
        finally:
            self.daemon.close()
            harness.shutil.rmtree(tmp, ignore_errors=True)


class IdleReapingStatsTest(StatsMixin, DaemonTestCase):
    daemon_args = ("--idle-timeout-ms", "400")

    def test_idle_environments_are_reaped_on_time(self):
        name = unique("reap")
        self.daemon.create(name, Timeout=30)
        parallel(3, lambda i: raw_invoke(self.daemon.port, name, sleep_payload(300)))
        s = self.stats()["environments"]
        self.assertEqual((s["idle"], s["busy"]), (3, 0), s)
        t0 = time.monotonic()
        self.assertTrue(harness.wait_until(lambda: self.stats()["environments"]["live"] == 0, 5),
                        self.stats())
        self.assertLess(time.monotonic() - t0, 2.0)
        r, _ = self.daemon.invoke(name, {}, LogType="Tail")
        self.assertIn("Init Duration", harness.decode_tail(r))


class BurstTest(StatsMixin, DaemonTestCase):
    """The default configuration on this machine."""

    def test_500_parallel_cold_invokes_succeed_and_control_plane_stays_responsive(self):
        client = self.daemon.client()
        name = unique("burst")
        self.daemon.create(name, Timeout=60)
        for i in range(5):
            self.daemon.create(f"{name}-other{i}")
        cold_before = self.stats()["invocations"]["cold_starts"]
        n = 500
        stop = threading.Event()
        latencies = []

        def control_plane():
            c = self.daemon.client()
            while not stop.is_set():
                t = time.monotonic()
                fns = c.list_functions(MaxItems=50)["Functions"]
                c.get_function(FunctionName=name)
                latencies.append(time.monotonic() - t)
                assert len(fns) >= 6
                time.sleep(0.05)

        watcher = threading.Thread(target=control_plane)
        watcher.start()
        t0 = time.monotonic()
        try:
            # Each invoke holds its environment for 300 ms, so they all overlap: 500 environments.
            results = parallel(n, lambda i: raw_invoke(self.daemon.port, name,
                                                       sleep_payload(300, i=i), timeout=180))
        finally:
            stop.set()
            watcher.join()
        elapsed = time.monotonic() - t0
        failures = [(i, r[0], r[2][:200]) for i, r in enumerate(results)
                    if r[0] != 200 or "x-amz-function-error" in r[1]]
        self.assertEqual(failures, [], f"{len(failures)} of {n} failed")
        for i, r in enumerate(results):
            self.assertEqual(json.loads(r[2])["i"], i)
        s = self.stats()
        cold = s["invocations"]["cold_starts"] - cold_before
        self.assertGreaterEqual(cold, n // 2, s)  # a late request may find an environment free
        self.assertGreaterEqual(s["concurrency"]["peak"], n // 2, s)
        self.assertTrue(latencies, "no control-plane call completed during the burst")
        print(f"\n500 cold invokes in {elapsed:.2f} s; control plane during the burst: "
              f"{len(latencies)} calls, max {max(latencies) * 1000:.0f} ms, "
              f"median {sorted(latencies)[len(latencies) // 2] * 1000:.0f} ms; {cold} cold starts; "
              f"stats {s['environments']}")
        self.assertLess(max(latencies), 2.0, "the control plane stalled during the burst")


if __name__ == "__main__":
    unittest.main()
