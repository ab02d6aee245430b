"""Response streaming: InvokeWithResponseStream with boto3 (which decodes the event stream for
real) against the example `stream` function (hearth::runtime RunStreamingHandler) and the buffered
echo function; plain Invoke of a streaming function."""

import base64
import json
import os
import time
import unittest

from botocore.exceptions import ClientError

import harness
from harness import DaemonTestCase, unique


def stream_zip() -> bytes:
    path = os.path.join(harness.HEARTH_EXAMPLES, "stream.zip")
    if not os.path.exists(path):
        raise unittest.SkipTest(f"{path} is missing: build the stream_zip target")
    return harness.example_zip("stream.zip")


def lines(n: int) -> str:
    return "".join(f"chunk {i} of {n}\n" for i in range(n)) + "done\n"


class StreamingTest(DaemonTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.fn = unique("stream")
        cls.daemon.create(cls.fn, stream_zip(), Timeout=10)
        cls.echo = unique("echo")
        cls.daemon.create(cls.echo)

    def stream(self, name, payload, **kw):
        """InvokeWithResponseStream; returns (response, [(seconds since the call, event)])."""
        t0 = time.monotonic()
        r = self.daemon.client().invoke_with_response_stream(
            FunctionName=name, Payload=json.dumps(payload), **kw)
        events = [(time.monotonic() - t0, ev) for ev in r["EventStream"]]
        return r, events

    @staticmethod
    def payload_of(events) -> bytes:
        return b"".join(ev["PayloadChunk"]["Payload"] for _, ev in events if "PayloadChunk" in ev)

    @staticmethod
    def complete_of(events) -> dict:
        done = [ev["InvokeComplete"] for _, ev in events if "InvokeComplete" in ev]
        assert len(done) == 1, events
        return done[0]

    def test_chunks_arrive_while_the_function_runs(self):
        self.stream(self.fn, {"chunks": 1, "sleep_ms": 0})  # warm: the timing below is the stream's
        r, events = self.stream(self.fn, {"chunks": 4, "sleep_ms": 500})
        self.assertEqual(r["StatusCode"], 200)
        self.assertEqual(r["ExecutedVersion"], "$LATEST")
        self.assertEqual(r["ResponseStreamContentType"], "text/plain")
        self.assertEqual(self.payload_of(events).decode(), lines(4))
        chunks = [(t, ev) for t, ev in events if "PayloadChunk" in ev]
        self.assertGreaterEqual(len(chunks), 4, events)  # one event per write, not one blob
        first, last = chunks[0][0], events[-1][0]
        # The function sleeps 3 x 500 ms after its first write: that chunk is in hand long before.
        self.assertLess(first, 0.5, f"first chunk after {first:.3f} s")
        self.assertGreater(last - first, 1.2, f"first {first:.3f} s, complete {last:.3f} s")
        self.assertEqual(self.complete_of(events), {})
        self.assertIn("InvokeComplete", events[-1][1])

    def test_mid_stream_error_arrives_after_the_chunks_so_far(self):
        _, events = self.stream(self.fn, {"chunks": 5, "sleep_ms": 0, "fail_at": 1})
        self.assertEqual(self.payload_of(events).decode(), "chunk 0 of 5\nchunk 1 of 5\n")
        done = self.complete_of(events)
        self.assertEqual(done["ErrorCode"], "Stream.Failed")
        details = json.loads(done["ErrorDetails"])
        self.assertEqual(details["errorType"], "Stream.Failed")
        self.assertEqual(details["errorMessage"], "failed after chunk 1")
        # The environment stays usable.
        _, again = self.stream(self.fn, {"chunks": 2, "sleep_ms": 0})
        self.assertEqual(self.payload_of(again).decode(), lines(2))

    def test_tail_log_result_in_invoke_complete(self):
        _, events = self.stream(self.fn, {"chunks": 2, "sleep_ms": 0}, LogType="Tail")
        log = base64.b64decode(self.complete_of(events)["LogResult"]).decode()
        self.assertIn("wrote chunk 0", log)
        self.assertIn("wrote chunk 1", log)
        self.assertRegex(log, r"REPORT RequestId: [0-9a-f-]{36}\tDuration: ")
        _, quiet = self.stream(self.fn, {"chunks": 1, "sleep_ms": 0})
        self.assertNotIn("LogResult", self.complete_of(quiet))

    def test_timeout_mid_stream(self):
        name = unique("stream-timeout")
        self.daemon.create(name, stream_zip(), Timeout=1)
        _, events = self.stream(name, {"chunks": 10, "sleep_ms": 300})
        got = self.payload_of(events).decode()
        self.assertTrue(got.startswith("chunk 0 of 10\n"), got)
        self.assertNotIn("done", got)
        done = self.complete_of(events)
        self.assertEqual(done["ErrorCode"], "Sandbox.Timedout")
        self.assertIn("Task timed out after 1.00 seconds", done["ErrorDetails"])

    def test_unknown_function_is_a_plain_404(self):
        with self.assertRaises(ClientError) as ctx:
            self.daemon.client().invoke_with_response_stream(FunctionName="no-such-fn", Payload=b"{}")
        self.assertClientError(ctx, "ResourceNotFoundException", 404,
                               harness.not_found_message("no-such-fn"))

    def test_bad_payload_and_invocation_type_fail_before_the_stream(self):
        with self.assertRaises(ClientError) as ctx:
            self.daemon.client().invoke_with_response_stream(FunctionName=self.fn, Payload=b"{not json")
        self.assertClientError(ctx, "InvalidRequestContentException", 400)
        answer = self.daemon.request(
            "POST", f"/2021-11-15/functions/{self.fn}/response-streaming-invocations", b"{}",
            {"X-Amz-Invocation-Type": "Event"})
        self.assertEqual(answer.status, 400, answer)
        self.assertIn("[RequestResponse, DryRun]", answer.body.decode())

    def test_dry_run(self):
        r = self.daemon.client().invoke_with_response_stream(
            FunctionName=self.fn, Payload=b"{}", InvocationType="DryRun")
        self.assertEqual(r["StatusCode"], 204)
        self.assertEqual(r["ExecutedVersion"], "$LATEST")

    def test_plain_invoke_of_a_streaming_function_is_buffered(self):
        r, body = self.daemon.invoke(self.fn, {"chunks": 3, "sleep_ms": 10})
        self.assertEqual(r["StatusCode"], 200)
        self.assertNotIn("FunctionError", r)
        self.assertEqual(body.decode(), lines(3))
        self.assertEqual(r["ResponseMetadata"]["HTTPHeaders"]["content-type"], "text/plain")
        r, body = self.daemon.invoke(self.fn, {"chunks": 3, "sleep_ms": 0, "fail_at": 0})
        self.assertEqual(r["FunctionError"], "Unhandled")
        self.assertEqual(json.loads(body)["errorType"], "Stream.Failed")

    def test_buffered_function_through_the_stream_api(self):
        _, events = self.stream(self.echo, {"hello": "world"})
        chunks = [ev for _, ev in events if "PayloadChunk" in ev]
        self.assertEqual(len(chunks), 1)
        self.assertEqual(json.loads(self.payload_of(events)), {"hello": "world"})
        self.assertEqual(self.complete_of(events), {})
        _, failed = self.stream(self.echo, {"hearth_test": {"error": "nope"}})
        self.assertEqual(self.payload_of(failed), b"")
        done = self.complete_of(failed)
        self.assertEqual(done["ErrorCode"], "Custom.Error")
        self.assertEqual(json.loads(done["ErrorDetails"])["errorMessage"], "nope")

    def test_large_stream(self):
        # 8 x 1 MiB: beyond the 6 MB buffered limit, fine when streamed (the last 2 MiB are paced).
        _, events = self.stream(self.fn, {"chunks": 8, "sleep_ms": 0, "bytes": 1 << 20})
        # 6 MiB at full speed, the remaining 2 MiB at 2 MiB/s: about one second in all.
        self.assertGreater(events[-1][0], 0.9, "the stream beyond 6 MiB was not paced")
        data = self.payload_of(events)
        self.assertEqual(len(data), 8 * (1 << 20) + len("done\n"))
        self.assertEqual(self.complete_of(events), {})
        # The same through Invoke exceeds the buffered limit.
        r, body = self.daemon.invoke(self.fn, {"chunks": 8, "sleep_ms": 0, "bytes": 1 << 20})
        self.assertEqual(r["FunctionError"], "Unhandled")
        self.assertEqual(json.loads(body)["errorType"], "Function.ResponseSizeTooLarge")


class IoThreadsStreamingTest(StreamingTest):
    """The same with --io-threads 2: the streaming handler runs on the main loop and writes its
    chunks through a connection that lives on the io thread."""
    daemon_args = ("--io-threads", "2")


if __name__ == "__main__":
    unittest.main()
