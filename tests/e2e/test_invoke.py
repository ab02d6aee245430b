"""Invoke against a real daemon: answers, logs, the runtime's environment, failures, concurrency."""

import base64
import concurrent.futures
import datetime
import json
import math
import os
import re
import threading
import time
import unittest

from botocore.exceptions import ClientError

import harness
from harness import DaemonTestCase, function_arn, not_found_message, unique

REPORT_RE = re.compile(
    r"^REPORT RequestId: (?P<id>[0-9a-f-]{36})\tDuration: (?P<dur>\d+\.\d{2}) ms\t"
    r"Billed Duration: (?P<billed>\d+) ms ?\tMemory Size: (?P<mem>\d+) MB\t"
    r"Max Memory Used: (?P<used>\d+) MB\t(?:Init Duration: (?P<init>\d+\.\d{2}) ms\t)?$")

# Posts /runtime/init/error and exits, as a runtime whose handler cannot load does.
INIT_ERROR_BOOTSTRAP = r'''
import json, os, sys, urllib.request
api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/init/error"
body = json.dumps({"errorMessage": "cannot load config", "errorType": "Custom.InitFailed",
                   "stackTrace": ["init.py:1"]}).encode()
print("init is failing", flush=True)
req = urllib.request.Request(api, data=body, method="POST",
                             headers={"Lambda-Runtime-Function-Error-Type": "Custom.InitFailed"})
with urllib.request.urlopen(req) as r:
    print("init/error answered", r.status, flush=True)
sys.exit(1)
'''

# Reports its working directory and whether it sees its own files there.
CWD_BOOTSTRAP = r'''
import json, os, urllib.request
api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"
while True:
    with urllib.request.urlopen(api + "next") as r:
        rid = r.headers["Lambda-Runtime-Aws-Request-Id"]
        r.read()
    out = {"cwd": os.getcwd(), "task_root": os.environ.get("LAMBDA_TASK_ROOT"),
           "data": open("data.txt").read()}
    urllib.request.urlopen(urllib.request.Request(
        api + rid + "/response", data=json.dumps(out).encode(), method="POST")).read()
'''


# Exercises the Runtime API (section 1) from inside and answers with what it saw. The result of
# posting a second answer for an invocation can only be reported by the next invocation.
RUNTIME_API_BOOTSTRAP = r'''
import http.client, json, os
host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
conn = http.client.HTTPConnection(host, int(port))
def call(method, path, body=None, headers=None):
    conn.request(method, "/2018-06-01/runtime/" + path, body=body, headers=headers or {})
    r = conn.getresponse()
    data = r.read()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, data
previous_second_post = None
while True:
    status, headers, body = call("GET", "invocation/next")
    rid = headers["lambda-runtime-aws-request-id"]
    wrong = call("POST", "invocation/not-the-request-id/response", b"{}")
    again = call("GET", "invocation/next")  # a second next while one is in flight
    out = {
        "next_status": status, "next_headers": headers, "event": json.loads(body),
        "wrong_id": [wrong[0], json.loads(wrong[2] or b"null")],
        "second_next": [again[0], again[1].get("lambda-runtime-aws-request-id")],
        "previous_second_post": previous_second_post,
    }
    ok = call("POST", f"invocation/{rid}/response", json.dumps(out).encode(),
              {"Content-Type": "application/json"})
    second = call("POST", f"invocation/{rid}/response", b"{}")
    previous_second_post = [ok[0], second[0], json.loads(second[2] or b"null")]
'''


def parse_log(text):
    """-> list of (kind, line) for the platform lines START/END/REPORT."""
    out = []
    for line in text.splitlines():
        for kind in ("START", "END", "REPORT"):
            if line.startswith(kind + " RequestId: "):
                out.append((kind, line))
    return out


class InvokeTest(DaemonTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.echo = unique("echo")
        cls.daemon.create(cls.echo)

    def tearDown(self):
        # Whatever the function did, the daemon is still there and still serves.
        self.assertDaemonAlive()

    def fresh(self, prefix="fn", zip_bytes=None, **kw):
        name = unique(prefix)
        self.daemon.create(name, zip_bytes, **kw)
        return name

    def assertFunctionError(self, resp, body, error_type, message=None, message_re=None):
        self.assertEqual(resp["StatusCode"], 200)
        self.assertEqual(resp.get("FunctionError"), "Unhandled", body)
        self.assertEqual(resp.get("ExecutedVersion"), "$LATEST")
        err = json.loads(body)
        self.assertEqual(err["errorType"], error_type, err)
        if message is not None:
            self.assertEqual(err["errorMessage"], message)
        if message_re is not None:
            self.assertRegex(err["errorMessage"], message_re)
        return err

    # -- plain answers --------------------------------------------------------------------------

    def test_answer_equals_payload(self):
        for payload in ({"a": 1, "nested": {"list": [1, 2.5, None, True]}}, [1, 2, 3], "text",
                        42, None, {"unicode": "h\u00e9llo \u2603"}):
            with self.subTest(payload=payload):
                r, body = self.daemon.invoke(self.echo, payload)
                self.assertEqual(r["StatusCode"], 200)
                self.assertEqual(r["ExecutedVersion"], "$LATEST")
                self.assertNotIn("FunctionError", r)
                self.assertEqual(json.loads(body), payload)
        # A large (but allowed) payload comes back byte for byte.
        big = json.dumps({"blob": "x" * (3 << 20)}).encode()
        _, body = self.daemon.invoke(self.echo, big)
        self.assertEqual(body, big)

    def test_empty_payload_is_an_empty_object(self):
        r = self.daemon.invoke_raw(self.echo, b"")
        self.assertEqual(r.status, 200)
        self.assertEqual(json.loads(r.body), {})

    def test_dry_run_and_event(self):
        r = self.daemon.client().invoke(FunctionName=self.echo, InvocationType="DryRun",
                                        Payload=b"{}")
        self.assertEqual(r["StatusCode"], 204)
        raw = self.daemon.invoke_raw(self.echo, "{}", {"X-Amz-Invocation-Type": "DryRun"})
        self.assertEqual((raw.status, raw.body), (204, b""))

        marker = f"event-marker-{os.getpid()}-{time.time_ns()}"
        t0 = time.monotonic()
        r = self.daemon.client().invoke(
            FunctionName=self.echo, InvocationType="Event",
            Payload=json.dumps({"hearth_test": {"log": marker, "sleep_ms": 300}}))
        self.assertEqual(r["StatusCode"], 202)
        self.assertLess(time.monotonic() - t0, 0.3 + 0.25, "Event must not wait for the function")
        self.assertTrue(harness.wait_until(lambda: marker in self.daemon.logs(self.echo), 10),
                        "the Event invocation never ran")
        # DryRun of an unknown function is still a 404.
        with self.assertRaises(ClientError) as ctx:
            self.daemon.client().invoke(FunctionName="no-such-fn", InvocationType="DryRun")
        self.assertClientError(ctx, "ResourceNotFoundException", 404)

    # -- request errors -------------------------------------------------------------------------

    def test_invalid_json_is_400(self):
        for payload in (b"{not json", b"[1,2", b"\xff\xfe", b"{} trailing"):
            with self.subTest(payload=payload):
                r = self.daemon.invoke_raw(self.echo, payload)
                self.assertEqual(r.status, 400, r)
                self.assertEqual(r.headers.get("x-amzn-errortype"),
                                 "InvalidRequestContentException")
                self.assertTrue(r.headers.get("x-amzn-requestid"))
                self.assertIn("Could not parse request body into json", r.json()["message"])
        with self.assertRaises(ClientError) as ctx:
            self.daemon.client().invoke(FunctionName=self.echo, Payload=b"{oops")
        self.assertClientError(ctx, "InvalidRequestContentException", 400)

    def test_oversize_payload_is_413(self):
        limit = 6 * 1024 * 1024
        ok = b'"' + b"a" * (limit - 2) + b'"'
        r = self.daemon.invoke_raw(self.echo, ok)
        self.assertEqual(r.status, 200)
        self.assertEqual(len(r.body), limit)
        for size in (limit + 1, 7 * 1024 * 1024):
            with self.subTest(size=size):
                r = self.daemon.invoke_raw(self.echo, b'"' + b"a" * (size - 2) + b'"')
                self.assertEqual(r.status, 413, r)
                self.assertEqual(r.headers.get("x-amzn-errortype"), "RequestTooLargeException")
                self.assertTrue(r.headers.get("x-amzn-requestid"))
        with self.assertRaises(ClientError) as ctx:
            self.daemon.client().invoke(FunctionName=self.echo, Payload=b"[" + b"1," * (4 << 20) + b"1]")
        self.assertClientError(ctx, "RequestTooLargeException", 413)
        # Event (async) payloads are capped at 1 MB.
        r = self.daemon.invoke_raw(self.echo, b'"' + b"a" * (2 << 20) + b'"',
                                   {"X-Amz-Invocation-Type": "Event"})
        self.assertEqual(r.status, 413, r)

    def test_unknown_function_and_bad_qualifiers(self):
        client = self.daemon.client()
        with self.assertRaises(ClientError) as ctx:
            client.invoke(FunctionName="does-not-exist", Payload=b"{}")
        self.assertClientError(ctx, "ResourceNotFoundException", 404,
                               not_found_message("does-not-exist"))
        r = self.daemon.invoke_raw("does-not-exist")
        self.assertEqual(r.json(), {"Type": "User", "Message": not_found_message("does-not-exist")})

        r, body = self.daemon.invoke(self.echo, {"q": 1}, Qualifier="$LATEST")
        self.assertEqual((r["ExecutedVersion"], json.loads(body)), ("$LATEST", {"q": 1}))
        _, body = self.daemon.invoke(f"{self.echo}:$LATEST", {"q": 2})
        self.assertEqual(json.loads(body), {"q": 2})

        for q in ("1", "prod"):
            with self.subTest(qualifier=q), self.assertRaises(ClientError) as ctx:
                client.invoke(FunctionName=self.echo, Qualifier=q, Payload=b"{}")
            self.assertClientError(ctx, "ResourceNotFoundException", 404,
                                   f"Function not found: {function_arn(self.echo, q)}")
        r = self.daemon.invoke_raw(self.echo, qualifier="bad%20qual!")
        self.assertEqual(r.status, 400, r)
        # A qualifier in the name that contradicts the Qualifier parameter.
        r = self.daemon.invoke_raw(f"{self.echo}:$LATEST", qualifier="prod")
        self.assertEqual(r.status, 400, r)
        r = self.daemon.invoke_raw(self.echo, headers={"X-Amz-Invocation-Type": "Sometimes"})
        self.assertEqual(r.status, 400, r)

    # -- logs -----------------------------------------------------------------------------------

    def test_log_tail_format_cold_then_warm(self):
        name = self.fresh("tail", MemorySize=192)
        marker = f"hello-from-the-function-{time.time_ns()}"
        r1, _ = self.daemon.invoke(name, {"hearth_test": {"log": marker}}, LogType="Tail")
        r2, _ = self.daemon.invoke(name, {"n": 2}, LogType="Tail")
        for i, (r, cold) in enumerate(((r1, True), (r2, False))):
            with self.subTest(invoke=i + 1):
                rid = r["ResponseMetadata"]["RequestId"]
                tail = harness.decode_tail(r)
                lines = tail.splitlines()
                self.assertEqual(lines[0], f"START RequestId: {rid} Version: $LATEST")
                self.assertIn(f"END RequestId: {rid}", lines)
                self.assertTrue(tail.endswith("\t\n") or tail.endswith("\t"), repr(tail[-50:]))
                m = REPORT_RE.match(lines[-1])
                self.assertIsNotNone(m, f"REPORT line not in Lambda's format: {lines[-1]!r}")
                self.assertEqual(m["id"], rid)
                self.assertEqual(int(m["billed"]), max(1, math.ceil(float(m["dur"]))))
                self.assertEqual(int(m["mem"]), 192)
                used = int(m["used"])
                self.assertGreater(used, 0, "Max Memory Used must be measured")
                self.assertNotEqual(used, 192, "Max Memory Used must not be the configured size")
                if cold:
                    self.assertIsNotNone(m["init"], "cold start without Init Duration")
                    self.assertGreater(float(m["init"]), 0)
                    # The function's own output (stdout and stderr) sits between START and END.
                    self.assertEqual(lines.count(marker), 2, tail)
                    self.assertLess(lines.index(marker), lines.index(f"END RequestId: {rid}"))
                else:
                    self.assertIsNone(m["init"], "warm start with Init Duration")
                    self.assertNotIn(marker, tail)

        # The same lines are in the function's log stream, in order.
        log = self.daemon.logs(name)
        kinds = [k for k, _ in parse_log(log)]
        self.assertEqual(kinds, ["START", "END", "REPORT", "START", "END", "REPORT"])
        self.assertIn(marker, log)
        out = self.daemon.cli("logs", name)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn(r2["ResponseMetadata"]["RequestId"], out.stdout)

    def test_log_tail_is_the_last_4kb(self):
        name = self.fresh("bigtail")
        lines = "\n".join(f"line-{i:05d}-" + "x" * 80 for i in range(200))
        r, _ = self.daemon.invoke(name, {"hearth_test": {"log": lines}}, LogType="Tail")
        raw = base64.b64decode(r["LogResult"])
        self.assertLessEqual(len(raw), 4096)
        self.assertGreater(len(raw), 3000)
        tail = raw.decode(errors="replace")
        self.assertRegex(tail.splitlines()[-1], REPORT_RE)
        self.assertIn("line-00199-", tail)
        self.assertNotIn("line-00000-", tail)
        # Without Tail there is no log result.
        r, _ = self.daemon.invoke(name, {})
        self.assertNotIn("LogResult", r)

    # -- what the runtime sees ------------------------------------------------------------------

    def test_environment_variables(self):
        name = self.fresh("env", MemorySize=256, Handler="my.handler",
                          Environment={"Variables": {"MY_VAR": "mine", "LANG": "C.UTF-8"}})
        _, body = self.daemon.invoke(name, {"hearth_test": {"env": 1}})
        env = json.loads(body)
        self.assertEqual(env["AWS_LAMBDA_FUNCTION_NAME"], name)
        self.assertEqual(env["AWS_LAMBDA_FUNCTION_VERSION"], "$LATEST")
        self.assertEqual(env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "256")
        self.assertEqual(env["AWS_REGION"], harness.REGION)
        self.assertEqual(env["AWS_DEFAULT_REGION"], harness.REGION)
        self.assertEqual(env["AWS_LAMBDA_LOG_GROUP_NAME"], f"/aws/lambda/{name}")
        stream = env["AWS_LAMBDA_LOG_STREAM_NAME"]
        m = re.fullmatch(r"(\d{4})/(\d{2})/(\d{2})/\[\$LATEST\]([0-9a-f]{32})", stream)
        self.assertIsNotNone(m, stream)
        day = datetime.date(int(m[1]), int(m[2]), int(m[3]))
        today = datetime.datetime.now(datetime.timezone.utc).date()
        self.assertLessEqual(abs((day - today).days), 1)
        self.assertEqual(env["_HANDLER"], "my.handler")
        self.assertRegex(env["AWS_LAMBDA_RUNTIME_API"], r"^127\.0\.0\.1:\d+$")
        self.assertEqual(env["AWS_LAMBDA_INITIALIZATION_TYPE"], "on-demand")
        self.assertTrue(env["LAMBDA_TASK_ROOT"])
        self.assertTrue(env["AWS_ACCESS_KEY_ID"])
        self.assertTrue(env["AWS_SECRET_ACCESS_KEY"])
        self.assertNotIn("AWS_EXECUTION_ENV", env, "not set for provided.* runtimes")
        self.assertEqual(env["MY_VAR"], "mine")
        self.assertEqual(env["LANG"], "C.UTF-8", "LANG is not reserved: the function's wins")
        self.assertIn("PATH", env)
        # The daemon's own environment does not leak into functions.
        for leaked in ("HEARTH_BIN", "HEARTH_EXAMPLES"):
            self.assertNotIn(leaked, env)

    def test_working_directory_is_the_code(self):
        name = self.fresh("cwd", harness.python_bootstrap_zip(
            CWD_BOOTSTRAP, {"data.txt": "shipped with the code"}))
        _, body = self.daemon.invoke(name, {})
        out = json.loads(body)
        self.assertEqual(out["data"], "shipped with the code")
        self.assertEqual(os.path.realpath(out["cwd"]), os.path.realpath(out["task_root"]))

    def test_context_client_context_arn_deadline(self):
        cc = {"client": {"installation_id": "i-1", "app_title": "Hearth test",
                         "app_version_code": "1", "app_package_name": "p"},
              "custom": {"k": "v"}, "env": {"locale": "en"}}
        before = time.time() * 1000
        r, body = self.daemon.invoke(self.echo, {"hearth_test": {"context": 1}},
                                     ClientContext=base64.b64encode(json.dumps(cc).encode()).decode())
        ctx = json.loads(body)
        self.assertEqual(json.loads(ctx["client_context"]), cc)
        self.assertEqual(ctx["request_id"], r["ResponseMetadata"]["RequestId"])
        self.assertEqual(ctx["invoked_function_arn"], function_arn(self.echo))
        # Default timeout 3 s: the deadline is in the future and at most 3 s away.
        self.assertGreater(ctx["deadline_ms"], before)
        self.assertLessEqual(ctx["deadline_ms"], time.time() * 1000 + 3000 + 50)
        self.assertGreater(ctx["remaining_ms"], 2000)
        self.assertLessEqual(ctx["remaining_ms"], 3000)
        self.assertTrue(ctx["trace_id"].startswith("Root=1-"), ctx["trace_id"])
        self.assertEqual(ctx["env_trace_id"], ctx["trace_id"])
        self.assertEqual(ctx["cognito_identity"], "")

        # The ARN as the caller addressed it.
        _, body = self.daemon.invoke(function_arn(self.echo), {"hearth_test": {"context": 1}})
        self.assertEqual(json.loads(body)["invoked_function_arn"], function_arn(self.echo))
        _, body = self.daemon.invoke(self.echo, {"hearth_test": {"context": 1}},
                                     Qualifier="$LATEST")
        self.assertEqual(json.loads(body)["invoked_function_arn"],
                         function_arn(self.echo, "$LATEST"))

        # A caller's trace header reaches the runtime.
        trace = "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1"
        raw = self.daemon.invoke_raw(self.echo, json.dumps({"hearth_test": {"context": 1}}),
                                     {"X-Amzn-Trace-Id": trace})
        self.assertEqual(raw.json()["trace_id"], trace)

        # No client context: empty. A bad one: 400.
        _, body = self.daemon.invoke(self.echo, {"hearth_test": {"context": 1}})
        self.assertEqual(json.loads(body)["client_context"], "")
        raw = self.daemon.invoke_raw(self.echo, "{}", {"X-Amz-Client-Context": "!!not base64!!"})
        self.assertEqual(raw.status, 400, raw)
        raw = self.daemon.invoke_raw(self.echo, "{}", {
            "X-Amz-Client-Context": base64.b64encode(b"not json").decode()})
        self.assertEqual(raw.status, 400, raw)

    def test_warm_start_reuses_the_environment(self):
        name = self.fresh("warm")
        r1, b1 = self.daemon.invoke(name, {"hearth_test": {"env": 1}}, LogType="Tail")
        r2, b2 = self.daemon.invoke(name, {"hearth_test": {"env": 1}}, LogType="Tail")
        s1 = json.loads(b1)["AWS_LAMBDA_LOG_STREAM_NAME"]
        s2 = json.loads(b2)["AWS_LAMBDA_LOG_STREAM_NAME"]
        self.assertEqual(s1, s2, "the second invoke should reuse the first environment")
        self.assertIn("Init Duration", harness.decode_tail(r1))
        self.assertNotIn("Init Duration", harness.decode_tail(r2))
        # A configuration change retires the environment: the next invoke is cold.
        self.daemon.client().update_function_configuration(FunctionName=name, Description="x")
        r3, b3 = self.daemon.invoke(name, {"hearth_test": {"env": 1}}, LogType="Tail")
        self.assertNotEqual(json.loads(b3)["AWS_LAMBDA_LOG_STREAM_NAME"], s1)
        self.assertIn("Init Duration", harness.decode_tail(r3))

    def test_runtime_api_contract(self):
        name = self.fresh("rapi", harness.python_bootstrap_zip(RUNTIME_API_BOOTSTRAP), Timeout=5)
        r1, b1 = self.daemon.invoke(name, {"first": 1})
        self.assertNotIn("FunctionError", r1, b1)
        out = json.loads(b1)
        rid = r1["ResponseMetadata"]["RequestId"]
        h = out["next_headers"]
        self.assertEqual(out["next_status"], 200)
        self.assertEqual(out["event"], {"first": 1})
        self.assertEqual(h["lambda-runtime-aws-request-id"], rid)
        self.assertEqual(h["lambda-runtime-invoked-function-arn"], function_arn(name))
        deadline = int(h["lambda-runtime-deadline-ms"])
        now_ms = time.time() * 1000
        self.assertTrue(now_ms < deadline <= now_ms + 5000 + 50, (deadline, now_ms))
        self.assertTrue(h["lambda-runtime-trace-id"].startswith("Root=1-"))
        self.assertIn("application/json", h.get("content-type", ""))
        self.assertNotIn("lambda-runtime-client-context", h, "optional headers are omitted")
        self.assertNotIn("lambda-runtime-cognito-identity", h)
        self.assertEqual(out["wrong_id"][0], 400)
        self.assertEqual(out["wrong_id"][1]["errorType"], "InvalidRequestID")
        self.assertEqual(out["second_next"], [200, rid])
        self.assertIsNone(out["previous_second_post"])

        r2, b2 = self.daemon.invoke(name, {"second": 2})
        out2 = json.loads(b2)
        self.assertEqual(out2["event"], {"second": 2})
        # For the first invocation: response accepted with 202, a second answer refused with 403.
        accepted, refused, refusal = out2["previous_second_post"]
        self.assertEqual(accepted, 202)
        self.assertEqual(refused, 403)
        self.assertEqual(refusal["errorType"], "InvalidStateTransition")

    def test_output_flood_does_not_hurt(self):
        name = self.fresh("flood", Timeout=10)
        flood = "z" * (2 << 20)  # one 2 MB line, to stdout and to stderr
        r, body = self.daemon.invoke(name, {"hearth_test": {"log": flood}}, LogType="Tail")
        self.assertNotIn("FunctionError", r)
        self.assertLessEqual(len(base64.b64decode(r["LogResult"])), 4096)
        self.assertRegex(harness.decode_tail(r).splitlines()[-1], REPORT_RE)
        many = "\n".join(f"flood-line-{i}" for i in range(50000))
        r, body = self.daemon.invoke(name, {"hearth_test": {"log": many}}, LogType="Tail")
        self.assertNotIn("FunctionError", r)
        self.assertIn("flood-line-49999", harness.decode_tail(r))
        _, body = self.daemon.invoke(name, {"after": "flood"})
        self.assertEqual(json.loads(body), {"after": "flood"})

    # -- failures -------------------------------------------------------------------------------

    def test_timeout(self):
        name = self.fresh("timeout", Timeout=1)
        _, b0 = self.daemon.invoke(name, {"hearth_test": {"env": 1}})
        stream = json.loads(b0)["AWS_LAMBDA_LOG_STREAM_NAME"]
        t0 = time.monotonic()
        r, body = self.daemon.invoke(name, {"hearth_test": {"sleep_ms": 3000}}, LogType="Tail")
        elapsed = time.monotonic() - t0
        rid = r["ResponseMetadata"]["RequestId"]
        err = self.assertFunctionError(r, body, "Sandbox.Timedout")
        self.assertTrue(err["errorMessage"].endswith("Task timed out after 1.00 seconds"), err)
        self.assertGreaterEqual(elapsed, 0.95)
        self.assertLess(elapsed, 2.5, "the caller must not wait for the sleeping function")
        self.assertIn(f"{rid} Task timed out after 1.00 seconds", harness.decode_tail(r))
        # The environment was reset; the next invoke works, in a new environment.
        r, body = self.daemon.invoke(name, {"hearth_test": {"env": 1}})
        self.assertNotIn("FunctionError", r)
        self.assertNotEqual(json.loads(body)["AWS_LAMBDA_LOG_STREAM_NAME"], stream)
        _, body = self.daemon.invoke(name, {"after": "timeout"})
        self.assertEqual(json.loads(body), {"after": "timeout"})

    def test_crash_and_exit(self):
        name = self.fresh("crash")
        for payload, message in (({"hearth_test": {"crash": 1}}, "signal: segmentation fault"),
                                 ({"hearth_test": {"exit": 3}}, "exit status 3")):
            with self.subTest(message):
                r, body = self.daemon.invoke(name, payload, LogType="Tail")
                self.assertFunctionError(r, body, "Runtime.ExitError",
                                         message_re=rf"Runtime exited with error: {message}$")
                # A runtime that died (here on its first, cold invoke) still used memory.
                used = re.search(r"\tMax Memory Used: (\d+) MB\t", harness.decode_tail(r))
                self.assertIsNotNone(used, harness.decode_tail(r))
                self.assertGreater(int(used[1]), 0, "Max Memory Used of a crashed runtime")
        r, body = self.daemon.invoke(name, {"after": "crash"})
        self.assertNotIn("FunctionError", r)
        self.assertEqual(json.loads(body), {"after": "crash"})

    def test_function_error_body_passes_through(self):
        r, body = self.daemon.invoke(self.echo, {"hearth_test": {"error": "it broke"}})
        err = self.assertFunctionError(r, body, "Custom.Error", "it broke")
        raw = self.daemon.invoke_raw(self.echo, json.dumps({"hearth_test": {"error": "again"}}))
        self.assertEqual(raw.status, 200)
        self.assertEqual(raw.headers.get("x-amz-function-error"), "Unhandled")
        self.assertEqual(raw.headers.get("x-amz-executed-version"), "$LATEST")
        self.assertEqual(raw.json()["errorMessage"], "again")
        self.assertEqual(set(err) - {"stackTrace"}, {"errorMessage", "errorType"})
        # A function error does not break the environment.
        _, body = self.daemon.invoke(self.echo, {"after": "error"})
        self.assertEqual(json.loads(body), {"after": "error"})

    def test_missing_or_unusable_bootstrap(self):
        for label, files in (("none", {"main.sh": "#!/bin/sh\n"}),
                             ("not-executable", {"bootstrap": ("#!/bin/sh\n", 0o644)}),
                             ("directory", {"bootstrap/x": "#!/bin/sh\n"})):
            with self.subTest(label):
                name = self.fresh("noboot", harness.make_zip(files))
                r, body = self.daemon.invoke(name, {})
                self.assertFunctionError(r, body, "Runtime.InvalidEntrypoint")

    def test_runtime_exits_during_init(self):
        name = self.fresh("initexit", harness.python_bootstrap_zip("import sys\nsys.exit(7)\n"))
        r, body = self.daemon.invoke(name, {})
        self.assertFunctionError(r, body, "Runtime.ExitError",
                                 message_re=r"Runtime exited with error: exit status 7$")

    def test_init_that_never_finishes(self):
        # The runtime never calls `next`: Init is cut at its 10 s limit; the caller gets an
        # answer (not a hang) and the runtime process goes away.
        name = self.fresh("inithang", harness.python_bootstrap_zip(
            "import time\nprint('stuck in init', flush=True)\ntime.sleep(1000)\n"), Timeout=2)
        before = set(self.daemon.runtime_pids())
        t0 = time.monotonic()
        r, body = self.daemon.invoke(name, {})
        elapsed = time.monotonic() - t0
        self.assertFunctionError(r, body, "Sandbox.Timedout")
        self.assertLess(elapsed, 14)
        self.assertTrue(harness.wait_until(
            lambda: not (set(self.daemon.runtime_pids()) - before), 5),
            "the runtime stuck in Init is still running")
        self.assertIn("stuck in init", self.daemon.logs(name))

    def test_init_error_is_served_to_the_caller(self):
        name = self.fresh("initerr", harness.python_bootstrap_zip(INIT_ERROR_BOOTSTRAP))
        r, body = self.daemon.invoke(name, {}, LogType="Tail")
        self.assertEqual(r.get("FunctionError"), "Unhandled")
        self.assertEqual(json.loads(body), {"errorMessage": "cannot load config",
                                            "errorType": "Custom.InitFailed",
                                            "stackTrace": ["init.py:1"]})
        # The runtime's output during Init reaches the function's log.
        self.assertTrue(harness.wait_until(
            lambda: "init is failing" in self.daemon.logs(name), 5), self.daemon.logs(name))
        # Every later invoke tries Init again, and fails the same way.
        r, body = self.daemon.invoke(name, {})
        self.assertEqual(r.get("FunctionError"), "Unhandled")
        self.assertEqual(json.loads(body)["errorType"], "Custom.InitFailed")

    def test_huge_response(self):
        name = self.fresh("huge")
        limit = 6291556
        r, body = self.daemon.invoke(name, {"hearth_test": {"big": limit}})
        self.assertNotIn("FunctionError", r)
        self.assertEqual(len(body), limit)
        for size in (limit + 1, 7 * 1024 * 1024):
            with self.subTest(size=size):
                r, body = self.daemon.invoke(name, {"hearth_test": {"big": size}})
                self.assertFunctionError(
                    r, body, "Function.ResponseSizeTooLarge",
                    "Response payload size exceeded maximum allowed payload size (6291556 bytes).")
        _, body = self.daemon.invoke(name, {"after": "huge"})
        self.assertEqual(json.loads(body), {"after": "huge"})

    # -- concurrency ----------------------------------------------------------------------------

    def test_50_parallel_invokes(self):
        name = self.fresh("par")
        client = self.daemon.client()
        start = threading.Barrier(50)

        def one(i):
            start.wait()
            r = client.invoke(FunctionName=name, Payload=json.dumps({"i": i, "pad": "p" * i}))
            return r["StatusCode"], r.get("FunctionError"), json.loads(r["Payload"].read())

        with concurrent.futures.ThreadPoolExecutor(50) as ex:
            results = list(ex.map(one, range(50)))
        for i, (status, ferr, body) in enumerate(results):
            self.assertEqual((status, ferr), (200, None))
            self.assertEqual(body, {"i": i, "pad": "p" * i})
        # And again, now that environments are warm.
        with concurrent.futures.ThreadPoolExecutor(50) as ex:
            results = list(ex.map(one, range(50)))
        self.assertEqual([b["i"] for _, _, b in results], list(range(50)))
        self.assertTrue(all(f is None for _, f, _ in results))


class HostCapTest(DaemonTestCase):
    daemon_args = ("--max-environments", "2")

    def test_excess_concurrent_invokes_get_429(self):
        name = unique("cap")
        self.daemon.create(name, Timeout=10)
        client = self.daemon.client()
        start = threading.Barrier(3)

        def one(_):
            start.wait()
            try:
                r = client.invoke(FunctionName=name,
                                  Payload=json.dumps({"hearth_test": {"sleep_ms": 2000}}))
                return ("ok", r.get("FunctionError"), None)
            except ClientError as e:
                return ("error", e.response["Error"]["Code"], e.response)

        with concurrent.futures.ThreadPoolExecutor(3) as ex:
            results = list(ex.map(one, range(3)))
        oks = [r for r in results if r[0] == "ok"]
        errors = [r for r in results if r[0] == "error"]
        self.assertEqual(len(oks), 2, results)
        self.assertTrue(all(r[1] is None for r in oks), results)
        self.assertEqual(len(errors), 1, results)
        code, resp = errors[0][1], errors[0][2]
        self.assertEqual(code, "TooManyRequestsException")
        self.assertEqual(resp["ResponseMetadata"]["HTTPStatusCode"], 429)
        self.assertEqual(resp.get("Reason"), "ConcurrentInvocationLimitExceeded", resp)
        self.assertIn("retry-after", resp["ResponseMetadata"]["HTTPHeaders"])

        # Once they are done, the function answers again; the daemon is healthy.
        _, body = self.daemon.invoke(name, {"after": "429"})
        self.assertEqual(json.loads(body), {"after": "429"})
        health = self.daemon.health()
        self.assertLessEqual(health["environments"]["live"], 2)
        self.assertGreaterEqual(health["throttles"], 1)

    def test_idle_environment_of_another_function_makes_room(self):
        a, b, c = unique("capa"), unique("capb"), unique("capc")
        for n in (a, b, c):
            self.daemon.create(n)
        procs = []
        for n in (a, b, c):  # the third one needs an idle environment of another to be evicted
            _, body = self.daemon.invoke(n, {"fn": n})
            self.assertEqual(json.loads(body), {"fn": n})
            procs.append(len(self.daemon.runtime_pids()))
        self.assertLessEqual(self.daemon.health()["environments"]["live"], 2)
        # The evicted environment's processes are gone (the launcher may run helpers, so count
        # processes relative to two live environments rather than absolutely).
        self.assertTrue(harness.wait_until(lambda: len(self.daemon.runtime_pids()) <= procs[1], 5),
                        f"processes after each invoke: {procs}, now {self.daemon.runtime_pids()}")


class IoThreadsInvokeTest(InvokeTest):
    """Every invoke test again with the Lambda API's connections on a loop thread of their own
    (--io-threads 2): reading, parsing and answering happen there, each handler on the main loop."""
    daemon_args = ("--io-threads", "2")


if __name__ == "__main__":
    unittest.main()
