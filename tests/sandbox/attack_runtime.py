"""Shared Runtime API loop for the escape battery's attack functions (stdlib only).

Each attack is a `bootstrap` that calls `serve(handler)`. The handler gets the event (a dict)
and returns a JSON-serialisable dict saying what the attack found. Every answer also carries
`env` (a random id chosen when this execution environment started: a new one means a fresh
environment), `pid`, `uid` and `euid`, so the test can see where the attack ran.
"""

import errno
import json
import os
import sys
import traceback
import urllib.request

ENV_ID = os.urandom(8).hex()
API = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"


def err_name(e: BaseException) -> str:
    """'EPERM', 'EACCES'... for an OSError, else the exception's class name."""
    if isinstance(e, OSError) and e.errno is not None:
        return errno.errorcode.get(e.errno, str(e.errno))
    return type(e).__name__


def attempt(fn, *args, **kw):
    """Runs fn; returns {"ok": True, "value": ...} or {"ok": False, "error": "EPERM", ...}."""
    try:
        v = fn(*args, **kw)
        return {"ok": True, "value": v if isinstance(v, (str, int, float, bool, list, dict, type(None)))
                else repr(v)}
    except BaseException as e:  # noqa: BLE001 -- the report is the point
        return {"ok": False, "error": err_name(e), "detail": str(e)[:200]}


def libc():
    import ctypes
    import ctypes.util
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def ccall(fn, *args):
    """Calls a libc function through ctypes; raises OSError on -1."""
    import ctypes
    ctypes.set_errno(0)
    rc = fn(*args)
    if rc == -1:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return rc


def _post(url: str, body: bytes, headers=None):
    req = urllib.request.Request(url, data=body, method="POST", headers=headers or {})
    with urllib.request.urlopen(req) as r:
        r.read()


def serve(handler):
    while True:
        with urllib.request.urlopen(API + "next") as r:
            rid = r.headers["Lambda-Runtime-Aws-Request-Id"]
            raw = r.read()
        try:
            event = json.loads(raw or b"{}")
            out = handler(event if isinstance(event, dict) else {})
            out = dict(out or {})
            out.update({"env": ENV_ID, "pid": os.getpid(), "uid": os.getuid(), "euid": os.geteuid()})
            _post(API + rid + "/response", json.dumps(out).encode())
        except BaseException as e:  # noqa: BLE001
            body = json.dumps({"errorType": "Attack." + type(e).__name__, "errorMessage": str(e)[:500],
                               "stackTrace": traceback.format_exc().splitlines()[-10:]}).encode()
            try:
                _post(API + rid + "/error", body,
                      {"Lambda-Runtime-Function-Error-Type": "Attack." + type(e).__name__})
            except OSError:
                sys.exit(1)
