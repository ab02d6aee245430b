"""Unit tests of the Python runtime interface client against an in-process fake Runtime API."""
import json
import os
import sys
import tempfile
import threading
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RIC_DIR = os.environ.get("HEARTH_PY_RIC_DIR",
                         os.path.join(os.path.dirname(__file__), "..", "python3.11"))
sys.path.insert(0, os.path.abspath(RIC_DIR))
import hearth_ric  # noqa: E402


class FakeRuntimeApi:
    """Serves the queued events, records what the runtime posts, then goes away."""

    def __init__(self, events):
        self.events = list(events)
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


class PythonRicTest(unittest.TestCase):
    def run_ric(self, files, handler, events):
        root = tempfile.mkdtemp()
        for name, text in files.items():
            os.makedirs(os.path.dirname(os.path.join(root, name)), exist_ok=True)
            with open(os.path.join(root, name), "w") as f:
                f.write(text)
        api = FakeRuntimeApi(events)
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


if __name__ == "__main__":
    unittest.main()
