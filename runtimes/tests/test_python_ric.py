"""Unit tests of the Python runtime interface client against an in-process fake Runtime API."""
import json
import os
import sys
import tempfile
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RIC_DIR = os.environ.get("HEARTH_PY_RIC_DIR",
                         os.path.join(os.path.dirname(__file__), "..", "python3.11"))
sys.path.insert(0, os.path.abspath(RIC_DIR))
import hearth_ric  # noqa: E402


class FakeRuntimeApi:
    """Serves the queued events, records what the runtime posts, then goes away."""

    def __init__(self, events, close_each=False):
        self.events = list(events)
        self.close_each = close_each
        self.posts = []
        self.done = threading.Event()
        api = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                if not api.events:
                    api.done.set()
                    self.send_response(500)
                    body = b'{"errorType":"Runtime.Shutdown"}'
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                rid, payload, headers = api.events.pop(0)
                self.send_response(200)
                self.send_header("Lambda-Runtime-Aws-Request-Id", rid)
                self.send_header("Lambda-Runtime-Deadline-Ms", "99999999999999")
                self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:000000000000:function:f")
                for k, v in headers.items():
                    self.send_header(k, v)
                if api.close_each:
                    # No length: the body ends with the connection.
                    self.send_header("Connection", "close")
                    self.close_connection = True
                else:
                    self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                api.posts.append((self.path, self.headers.get("Lambda-Runtime-Function-Error-Type"),
                                  json.loads(body)))
                self.send_response(202)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.endpoint = "127.0.0.1:%d" % self.server.server_address[1]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class RawRuntimeApi:
    """A Runtime API over plain sockets, for what http.server hides: which bytes each read brought,
    which answers went out in one write, answers held or refused as a test asks.

    events: [(request id, payload)], served in order to GET next (an exhausted queue answers 500).
    refuse: {request id: how that invocation's POST is answered instead of 202}: "413close" (413 with
    Connection: close, then a lingering close as the daemon does), "400" (kept alive), "202reset"
    (202, then the connection is reset without answering anything pipelined behind it).
    hold: like the daemon, an answer to a POST with GET next already read behind it is held and
    sent in the same write as the next invocation, which becomes ready `hold` seconds after it."""

    NEXT = b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\n"

    def __init__(self, events, refuse=None, hold=None):
        import socket
        self.events = list(events)
        self.refuse = dict(refuse or {})
        self.hold = hold
        self.posts = []       # (path, error type, body, GET next already read when it was parsed)
        self.writes = []      # the statuses of each write, in order
        self.connections = 0
        self.lock = threading.Lock()
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.endpoint = "127.0.0.1:%d" % self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self):
        self.listener.close()

    def _accept(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    @staticmethod
    def _parse(buf):
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return None
        lines = buf[:end].decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        n = int(headers.get("content-length", "0"))
        if len(buf) < end + 4 + n:
            return None
        return method, path, headers, buf[end + 4:end + 4 + n], buf[end + 4 + n:]

    @staticmethod
    def _answer(status, body, headers=()):
        head = "HTTP/1.1 %d X\r\nContent-Length: %d\r\n" % (status, len(body))
        for k, v in headers:
            head += "%s: %s\r\n" % (k, v)
        return (head + "\r\n").encode() + body

    def _send(self, conn, statuses, data):
        with self.lock:
            self.writes.append(statuses)
        conn.sendall(data)

    def _serve(self, conn):
        import socket
        import struct
        buf = b""
        held = None  # (status, bytes) of an answer held for the pipelined next
        try:
            while True:
                req = self._parse(buf)
                if req is None:
                    chunk = conn.recv(1 << 20)
                    if not chunk:
                        return
                    buf += chunk
                    continue
                method, path, headers, body, buf = req
                if method == "POST":
                    rid = path.split("/")[4]
                    pipelined = buf.startswith(self.NEXT) and self._parse(buf) is not None
                    with self.lock:
                        self.posts.append((path, headers.get("lambda-runtime-function-error-type"),
                                           json.loads(body), pipelined))
                    how = self.refuse.pop(rid, None)
                    if how == "413close":
                        self._send(conn, [413], self._answer(
                            413, b'{"errorType":"RequestEntityTooLarge"}', [("Connection", "close")]))
                        conn.shutdown(socket.SHUT_WR)
                        while conn.recv(65536):
                            pass
                        return
                    if how == "400":
                        self._send(conn, [400], self._answer(400, b'{"errorType":"InvalidRequestID"}'))
                        continue
                    answer = self._answer(202, b'{"status":"OK"}')
                    if how == "202reset":
                        self._send(conn, [202], answer)
                        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                        return
                    if self.hold is not None and pipelined:
                        held = (202, answer)
                        continue
                    self._send(conn, [202], answer)
                elif method == "GET" and path.endswith("/invocation/next"):
                    if held is not None:
                        time.sleep(self.hold)
                    with self.lock:
                        ev = self.events.pop(0) if self.events else None
                    if ev is None:
                        answer = self._answer(500, b'{"errorType":"Runtime.Shutdown"}')
                    else:
                        answer = self._answer(200, ev[1], [
                            ("Lambda-Runtime-Aws-Request-Id", ev[0]),
                            ("Lambda-Runtime-Deadline-Ms", "99999999999999"),
                            ("Lambda-Runtime-Trace-Id", "Root=1-" + ev[0])])
                    statuses = [answer[9:12]]
                    if held is not None:
                        statuses = [held[0], int(statuses[0])]
                        answer = held[1] + answer
                        held = None
                    else:
                        statuses = [int(statuses[0])]
                    self._send(conn, statuses, answer)
                else:
                    self._send(conn, [404], self._answer(404, b"{}"))
        except OSError:
            pass
        finally:
            conn.close()


class PythonRicTest(unittest.TestCase):
    def run_ric(self, files, handler, events, close_each=False, api=None):
        root = tempfile.mkdtemp()
        for name, text in files.items():
            os.makedirs(os.path.dirname(os.path.join(root, name)), exist_ok=True)
            with open(os.path.join(root, name), "w") as f:
                f.write(text)
        if api is None:
            api = FakeRuntimeApi(events, close_each)
        saved_env, saved_path, saved_cwd = dict(os.environ), list(sys.path), os.getcwd()
        os.environ.update({"AWS_LAMBDA_RUNTIME_API": api.endpoint, "LAMBDA_TASK_ROOT": root,
                           "_HANDLER": handler, "AWS_LAMBDA_FUNCTION_NAME": "f",
                           "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
                           "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST"})
        try:
            rc = hearth_ric.main()
        finally:
            os.environ.clear()
            os.environ.update(saved_env)
            sys.path[:] = saved_path
            os.chdir(saved_cwd)
            api.close()
        return rc, api.posts

    def test_success_and_context(self):
        rc, posts = self.run_ric(
            {"app.py": "def h(e, c):\n    return {'e': e, 'id': c.aws_request_id, 'fn': c.function_name,"
                       " 'mem': c.memory_limit_in_mb, 'id2': c.identity.cognito_identity_id,"
                       " 'cc': c.client_context.custom}\n"},
            "app.h",
            [("r1", b'{"a": 1}', {"Lambda-Runtime-Cognito-Identity": '{"cognitoIdentityId": "cid"}',
                                  "Lambda-Runtime-Client-Context": '{"custom": {"x": 1}}'})])
        self.assertEqual(rc, 1)  # the fake answers 500 once the events are served
        self.assertEqual(posts, [("/2018-06-01/runtime/invocation/r1/response", None,
                                  {"e": {"a": 1}, "id": "r1", "fn": "f", "mem": "128", "id2": "cid",
                                   "cc": {"x": 1}})])

    def test_handler_error(self):
        _, posts = self.run_ric({"m1.py": "def h(e, c):\n    raise KeyError('k')\n"}, "m1.h",
                                [("r2", b"{}", {})])
        path, etype, body = posts[0]
        self.assertEqual(path, "/2018-06-01/runtime/invocation/r2/error")
        self.assertEqual(etype, "KeyError")
        self.assertEqual(body["errorMessage"], "'k'")
        self.assertEqual(body["requestId"], "r2")
        self.assertIn("in h", body["stackTrace"][0])

    def test_init_errors(self):
        for files, handler, etype in [
                ({"m2.py": "x = 1\n"}, "m2.h", "Runtime.HandlerNotFound"),
                ({}, "nope.h", "Runtime.ImportModuleError"),
                ({}, "nodot", "Runtime.MalformedHandlerName"),
                ({"m3.py": "def (:\n"}, "m3.h", "Runtime.UserCodeSyntaxError")]:
            rc, posts = self.run_ric(files, handler, [])
            self.assertEqual(rc, 1)
            self.assertEqual(posts[0][0], "/2018-06-01/runtime/init/error")
            self.assertEqual(posts[0][1], etype)
            self.assertEqual(posts[0][2]["errorType"], etype)

    def test_marshal_error_and_nested_handler(self):
        _, posts = self.run_ric({"pkg/sub/m4.py": "def h(e, c):\n    return {1, 2}\n"}, "pkg/sub/m4.h",
                                [("r3", b"{}", {})])
        self.assertEqual(posts[0][1], "Runtime.MarshalError")

    def test_large_events_on_connections_closed_after_every_answer(self):
        big = json.dumps({"data": "x" * (3 * 1024 * 1024)}).encode()
        _, posts = self.run_ric({"m5.py": "def h(e, c):\n    return {'n': len(e['data'])}\n"}, "m5.h",
                                [("r5", big, {}), ("r6", b'{"data": ""}', {})], close_each=True)
        self.assertEqual(posts, [("/2018-06-01/runtime/invocation/r5/response", None, {"n": 3 * 1024 * 1024}),
                                 ("/2018-06-01/runtime/invocation/r6/response", None, {"n": 0})])

    # HTTP/1.1 pipelining: the answer's POST and the following GET next go out in one write.

    ECHO = {"pipe.py": "import os\n"
                       "def h(e, c):\n"
                       "    if e.get('fail'):\n"
                       "        raise ValueError('bad ' + c.aws_request_id)\n"
                       "    return {'id': c.aws_request_id, 'e': e, 'trace': os.environ.get('_X_AMZN_TRACE_ID')}\n"}

    def ok(self, rid, pipelined=True):
        return ("/2018-06-01/runtime/invocation/%s/response" % rid, None,
                {"id": rid, "e": {"n": rid}, "trace": "Root=1-" + rid}, pipelined)

    def events(self, *rids):
        return [(rid, json.dumps({"n": rid}).encode()) for rid in rids]

    def test_post_and_next_pipelined_in_one_write(self):
        api = RawRuntimeApi(self.events("r1", "r2", "r3"))
        rc, posts = self.run_ric(self.ECHO, "pipe.h", None, api=api)
        self.assertEqual(rc, 1)  # 500 once the events are served
        # Each POST arrived with GET next already behind it, before the server answered it.
        self.assertEqual(posts, [self.ok("r1"), self.ok("r2"), self.ok("r3")])
        self.assertEqual(api.connections, 1)

    def test_errors_are_pipelined_too(self):
        api = RawRuntimeApi([("e1", b'{"fail": true}'), ("e2", b'{"n": "e2"}')])
        _, posts = self.run_ric(self.ECHO, "pipe.h", None, api=api)
        self.assertEqual(len(posts), 2)
        path, etype, body, pipelined = posts[0]
        self.assertEqual((path, etype, body["errorMessage"], pipelined),
                         ("/2018-06-01/runtime/invocation/e1/error", "ValueError", "bad e1", True))
        self.assertEqual(posts[1][:2], ("/2018-06-01/runtime/invocation/e2/response", None))
        self.assertTrue(posts[1][3])

    def test_server_holding_the_answer_until_the_next_invocation(self):
        # As the daemon does: the 202 goes out only with the next invocation, in one write.
        api = RawRuntimeApi(self.events("r1", "r2", "r3"), hold=0.05)
        rc, posts = self.run_ric(self.ECHO, "pipe.h", None, api=api)
        self.assertEqual(rc, 1)
        self.assertEqual(posts, [self.ok("r1"), self.ok("r2"), self.ok("r3")])
        self.assertEqual(api.writes, [[200], [202, 200], [202, 200], [202, 500]])

    def test_refused_posts_still_get_the_next_invocation_once(self):
        # r1's answer is refused with 413 and Connection: close (the pipelined GET next is never
        # answered: asked again on a new connection), r2's with a kept-alive 400 (next follows on
        # the same connection), r3's 202 is followed by a reset (asked again). No invocation is
        # lost or repeated.
        import contextlib
        import io
        api = RawRuntimeApi(self.events("r1", "r2", "r3", "r4"),
                            refuse={"r1": "413close", "r2": "400", "r3": "202reset"})
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            rc, posts = self.run_ric(self.ECHO, "pipe.h", None, api=api)
        self.assertEqual(rc, 1)
        self.assertEqual(posts, [self.ok("r1"), self.ok("r2"), self.ok("r3"), self.ok("r4")])
        self.assertEqual(api.connections, 3)
        self.assertIn("hearth-python-ric: response rejected: {\"errorType\":\"RequestEntityTooLarge\"}",
                      err.getvalue())

    def test_refused_post_with_a_holding_server(self):
        api = RawRuntimeApi(self.events("r1", "r2", "r3"), refuse={"r2": "413close"}, hold=0.02)
        rc, posts = self.run_ric(self.ECHO, "pipe.h", None, api=api)
        self.assertEqual(rc, 1)
        self.assertEqual(posts, [self.ok("r1"), self.ok("r2"), self.ok("r3")])
        self.assertEqual(api.writes, [[200], [202, 200], [413], [200], [202, 500]])


    def test_environment_without_os_then_with_os(self):
        # The real bootstrap in a child process (no `os` imported by anyone until the handler
        # does): _X_AMZN_TRACE_ID set before and after `os` arrives, and removed.
        import subprocess
        root = tempfile.mkdtemp()
        with open(os.path.join(root, "envh.py"), "w") as f:
            f.write("import sys\n"
                    "def h(e, c):\n"
                    "    had_os = 'os' in sys.modules\n"
                    "    import os\n"
                    "    return {'had_os': had_os, 'trace': os.environ.get('_X_AMZN_TRACE_ID'),\n"
                    "            'getenv': os.getenv('_X_AMZN_TRACE_ID'), 'fn': c.function_name,\n"
                    "            'mine': os.environ.get('MY_VAR'), 'cwd': os.getcwd()}\n")
        api = FakeRuntimeApi([("r1", b"{}", {"Lambda-Runtime-Trace-Id": "Root=1-a"}),
                              ("r2", b"{}", {"Lambda-Runtime-Trace-Id": "Root=1-b"}),
                              ("r3", b"{}", {})])
        env = {"AWS_LAMBDA_RUNTIME_API": api.endpoint, "LAMBDA_TASK_ROOT": root,
               "_HANDLER": "envh.h", "AWS_LAMBDA_FUNCTION_NAME": "f\u00e9", "MY_VAR": "v\u00e9",
               "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONDONTWRITEBYTECODE": "1"}
        try:
            p = subprocess.run([os.path.join(RIC_DIR, "bootstrap")], env=env, timeout=60,
                               capture_output=True)
        finally:
            api.close()
        self.assertEqual(p.returncode, 1, p.stderr)  # the fake answers 500 once the events are served
        bodies = [b for _, _, b in api.posts]
        base = {"fn": "f\u00e9", "mine": "v\u00e9", "cwd": root}
        self.assertEqual(bodies, [dict(base, had_os=False, trace="Root=1-a", getenv="Root=1-a"),
                                  dict(base, had_os=True, trace="Root=1-b", getenv="Root=1-b"),
                                  dict(base, had_os=True, trace=None, getenv=None)])

    def test_prestarted_takes_the_environment_sent_on_its_descriptor(self):
        # A pre-started runtime: started with only _HEARTH_PRESTART_FD and a start-up variable,
        # its function's environment arrives on that descriptor; it becomes the environment
        # (order kept, the fd variable gone), and the handler runs in the task root.
        import subprocess
        root = tempfile.mkdtemp()
        with open(os.path.join(root, "pre.py"), "w") as f:
            f.write("import os\n"
                    "def h(e, c):\n"
                    "    return {'env': [k for k in os.environ if k != '_X_AMZN_TRACE_ID'],\n"
                    "            'mine': os.environ.get('MY_VAR'), 'fn': c.function_name,\n"
                    "            'cwd': os.getcwd(), 'path0': __import__('sys').path[0]}\n")
        api = FakeRuntimeApi([("r1", b"{}", {})])
        r, w = os.pipe()
        p = subprocess.Popen([os.path.join(RIC_DIR, "bootstrap")], pass_fds=(r,), cwd="/",
                             env={"_HEARTH_PRESTART_FD": str(r), "PATH": "/usr/bin:/bin"},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        os.close(r)
        env = [("PATH", "/usr/bin:/bin"), ("MY_VAR", "v\u00e9"), ("AWS_LAMBDA_FUNCTION_NAME", "f"),
               ("_HANDLER", "pre.h"), ("LAMBDA_TASK_ROOT", root), ("AWS_LAMBDA_RUNTIME_API", api.endpoint)]
        os.write(w, b"".join(("%s=%s" % kv).encode() + b"\0" for kv in env))
        os.close(w)
        try:
            _, err = p.communicate(timeout=60)
        finally:
            api.close()
        self.assertEqual(p.returncode, 1, err)  # the fake answers 500 once the events are served
        # What the interpreter adds to its own environment at start (the C locale coercion's
        # LC_CTYPE, with no LANG) stays after the function's variables, as in a normal start.
        added = subprocess.run(["/usr/bin/python3", "-S", "-c",
                                "import posix; print(' '.join(k.decode() for k in posix.environ))"],
                               env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True).stdout.split()
        added.remove("PATH")
        self.assertEqual(api.posts[0][2], {"env": [k for k, _ in env] + added, "mine": "v\u00e9", "fn": "f",
                                           "cwd": root, "path0": root})

    def test_prestarted_exits_quietly_when_no_function_comes(self):
        import subprocess
        r, w = os.pipe()
        p = subprocess.Popen([os.path.join(RIC_DIR, "bootstrap")], pass_fds=(r,),
                             env={"_HEARTH_PRESTART_FD": str(r)}, stderr=subprocess.PIPE)
        os.close(r)
        os.close(w)
        _, err = p.communicate(timeout=60)
        self.assertEqual((p.returncode, err), (0, b""))


class JsonTest(unittest.TestCase):
    """The RIC's json_loads/json_dumps (no `json` import) give exactly json.loads/json.dumps."""

    DOCS = [b'{"a": 1}', b'  {"a": [1, 2.5, -3e10, true, false, null]}  \n', b'"text"', b"42",
            b"-0.0", b"1e400", b"12345678901234567890123456789", b"NaN", b"[Infinity, -Infinity]",
            '{"\u00e9t\u00e9": "\u65e5\u672c", "emoji": "\U0001f600"}'.encode("utf-8"),
            b'"\\ud83d\\ude00 \\ud800"', b'{"dup": 1, "dup": 2}', b"[]", b"{}", b"\t[ ]\r\n",
            b'{"deep": ' + b"[" * 500 + b"]" * 500 + b"}"]
    BAD = [b"", b"   ", b"{", b'{"a": 1} x', b"[1,]", b"\xff\xfe", b'"\xc3"', b"nul",
           b'{"a": "\x01"}']
    OTHER_ENCODINGS = ['{"x": "\u00e9"}'.encode(e) for e in ("utf-16", "utf-16-le", "utf-32-be",
                                                              "utf-8-sig")]

    def test_loads_matches_json(self):
        for doc in self.DOCS + self.OTHER_ENCODINGS:
            with self.subTest(doc=doc[:40]):
                want = json.loads(doc)
                got = hearth_ric.json_loads(doc)
                self.assertEqual(repr(got), repr(want))
        for doc in self.DOCS:
            with self.subTest(text=doc[:40]):
                text = doc.decode("utf-8")
                self.assertEqual(repr(hearth_ric.json_loads(text)), repr(json.loads(text)))

    def test_loads_errors_match_json(self):
        for doc in self.BAD + [b"\xef\xbb\xbf{}".decode("utf-8")]:
            with self.subTest(doc=doc):
                with self.assertRaises(Exception) as want:
                    json.loads(doc)
                with self.assertRaises(Exception) as got:
                    hearth_ric.json_loads(doc)
                self.assertIs(type(got.exception), type(want.exception))
                self.assertEqual(str(got.exception), str(want.exception))

    def test_dumps_matches_json(self):
        import decimal
        values = [None, True, 0, -1, 2 ** 70, 1.5, float("nan"), float("-inf"), "s\u00e9\n\"",
                  [1, [2, {"k": (3, 4)}]], {"b": 1, "a": None, 3: "int key", 2.5: "float key",
                                            None: "none key", False: "bool key"},
                  {"statusCode": 200, "body": "hello"}, "\ud800", []]
        for v in values:
            with self.subTest(v=v):
                self.assertEqual(hearth_ric.json_dumps(v), json.dumps(v))
        d = {"price": decimal.Decimal("1.50"), "n": decimal.Decimal("3")}
        self.assertEqual(hearth_ric.json_dumps(d, hearth_ric._json_default),
                         json.dumps(d, default=hearth_ric._json_default))
        for bad in ({1, 2}, {"x": object()}, {(1, 2): 3}):
            with self.subTest(bad=bad):
                with self.assertRaises(Exception) as want:
                    json.dumps(bad, default=hearth_ric._json_default)
                with self.assertRaises(Exception) as got:
                    hearth_ric.json_dumps(bad, hearth_ric._json_default)
                self.assertIs(type(got.exception), type(want.exception))
                self.assertEqual(str(got.exception), str(want.exception))
        circular = []
        circular.append(circular)
        with self.assertRaisesRegex(ValueError, "Circular reference"):
            hearth_ric.json_dumps(circular)


if __name__ == "__main__":
    unittest.main()
