"""Hearth's runtime interface client for Python: the Lambda Runtime API (2018-06-01) loop.

Standard library only, and as little of it as possible: every module imported here is paid for
in each cold start. HTTP is spoken directly over `_socket` (the `socket` and `http.client`
modules pull in enum, selectors, email...); JSON goes through the `_json` accelerator that
`json` itself uses (the `json` package imports `re`, and through it enum and functools: ~3 ms),
falling back to `json` only to report a malformed document exactly as `json.loads` does;
`os` is not imported either (~1.5 ms: it brings `_collections_abc`): the environment is read
from `posix.environ` until the function imports `os`, and from `os.environ` after, so the two
never disagree; `logging` is configured only when the function imports it; `traceback` is
imported only when an error has to be reported.

Behaviour follows AWS Lambda's own Python runtime (awslambdaric): the handler string, the
context object, error bodies ({"errorMessage", "errorType", "requestId", "stackTrace"}), the
Runtime.* init errors posted to /runtime/init/error, and the log format of the logging module
("[LEVEL]\\t<time>Z\\t<request id>\\t<message>").
"""

import posix
import sys
import time

import _json
import _socket

# --------------------------------------------------------------------------------------------
# The environment, without importing os.


def getenv(key, default=None):
    """os.environ.get(key, default)."""
    os = sys.modules.get("os")
    if os is not None:
        return os.environ.get(key, default)
    value = posix.environ.get(key.encode("utf-8", "surrogateescape"))
    return default if value is None else value.decode("utf-8", "surrogateescape")


def setenv(key, value):
    """os.environ[key] = value, or os.environ.pop(key, None) when value is None. Before `os` is
    imported, posix.environ is what os.environ will be built from."""
    os = sys.modules.get("os")
    if os is not None:
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
        return
    k = key.encode("utf-8", "surrogateescape")
    if value is None:
        if k in posix.environ:
            del posix.environ[k]
            posix.unsetenv(k)
    else:
        v = value.encode("utf-8", "surrogateescape")
        posix.environ[k] = v
        posix.putenv(k, v)


_API_PREFIX = "/2018-06-01/runtime/"
_ERROR_CT = "application/vnd.aws.lambda.error+json"

# The request id of the invocation in flight ("" outside one), read by the logging filter.
_current_request_id = ""


# --------------------------------------------------------------------------------------------
# JSON: json.loads / json.dumps results, without importing the json package.


class _ScanContext(object):
    # The attributes _json.make_scanner reads from a json.JSONDecoder, with their defaults.
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {"-Infinity": float("-inf"), "Infinity": float("inf"),
                      "NaN": float("nan")}.__getitem__


_scan_once = _json.make_scanner(_ScanContext())
_JSON_WS = " \t\n\r"


def json_loads(data):
    """json.loads(data) for bytes or str; anything unusual is handed to json.loads itself."""
    try:
        if isinstance(data, bytes):
            # json.loads detects UTF-16/32 (a NUL in the first bytes) and BOMs: leave those to it.
            if data[:1] == b"\0" or data[1:2] == b"\0" or data[:3] == b"\xef\xbb\xbf":
                raise ValueError
            s = data.decode("utf-8", "surrogatepass")
        else:
            s = data
            if s[:1] == "\ufeff":
                raise ValueError
        start = len(s) - len(s.lstrip(_JSON_WS))
        obj, end = _scan_once(s, start)
        if end != len(s) and s[end:].strip(_JSON_WS):
            raise ValueError
        return obj
    except BaseException:
        # Not the common case: let json produce its result or its exact error.
        import json
        return json.loads(data)


def _no_default(o):
    raise TypeError("Object of type %s is not JSON serializable" % type(o).__name__)


def json_dumps(obj, default=_no_default):
    """json.dumps(obj, default=default) with json's defaults (ensure_ascii, ", " and ": ")."""
    if isinstance(obj, str):
        return _json.encode_basestring_ascii(obj)
    encode = _json.make_encoder({}, default, _json.encode_basestring_ascii, None, ": ", ", ",
                                False, False, True)
    return "".join(encode(obj, 0))


# --------------------------------------------------------------------------------------------
# HTTP/1.1 over one kept-alive connection.


class RuntimeApiError(Exception):
    pass


class RuntimeClient:
    def __init__(self, endpoint):
        if endpoint.startswith("http://"):
            endpoint = endpoint[len("http://"):]
        host, _, port = endpoint.rpartition(":")
        if not host or not port.isdigit():
            raise RuntimeApiError("bad AWS_LAMBDA_RUNTIME_API %r" % endpoint)
        self.host = host.strip("[]")
        self.port = int(port)
        self.hostport = endpoint
        self.sock = None
        self.buf = b""
        # Reads land here: a fresh 256 KiB bytes object per recv() costs an mmap, an mremap and
        # a munmap each time.
        self.rbuf = bytearray(262144)
        self.rview = memoryview(self.rbuf)
        # A GET next already written on this connection, its answer not read yet (pipelined
        # behind a response/error POST).
        self.next_sent = False
        self.next_request = self._head("GET", _API_PREFIX + "invocation/next", None, ())

    def _connect(self):
        family = _socket.AF_INET6 if ":" in self.host else _socket.AF_INET
        s = _socket.socket(family, _socket.SOCK_STREAM)
        s.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
        s.connect((self.host, self.port))
        self.sock = s
        self.buf = b""
        self.next_sent = False

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None
        self.next_sent = False

    def _read_more(self):
        n = self.sock.recv_into(self.rbuf)
        if not n:
            raise ConnectionResetError("connection closed by the Runtime API")
        self.buf += self.rview[:n]

    def _read_until(self, sep):
        while True:
            i = self.buf.find(sep)
            if i >= 0:
                out = self.buf[:i]
                self.buf = self.buf[i + len(sep):]
                return out
            self._read_more()

    def _read_exact(self, n):
        if len(self.buf) < n:
            parts = [self.buf]
            have = len(self.buf)
            while have < n:
                chunk = self.sock.recv(max(262144, n - have))
                if not chunk:
                    raise ConnectionResetError("connection closed by the Runtime API")
                parts.append(chunk)
                have += len(chunk)
            self.buf = b"".join(parts)
        out = self.buf[:n]
        self.buf = self.buf[n:]
        return out

    def _head(self, method, path, body, headers):
        head = "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: hearth-python-ric/1.0\r\n" % (
            method, path, self.hostport)
        for k, v in headers:
            head += "%s: %s\r\n" % (k, v)
        if body is not None:
            head += "Content-Length: %d\r\n" % len(body)
        return (head + "\r\n").encode("latin-1")

    def _send(self, parts):
        """Writes the buffers in one system call (a gather write, no copy)."""
        sent = self.sock.sendmsg(parts)
        total = 0
        for p in parts:
            total += len(p)
        if sent < total:  # a signal cut a large write short
            self.sock.sendall(memoryview(b"".join(parts))[sent:])

    def _read_response(self):
        lines = self._read_until(b"\r\n\r\n").decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        hdrs = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        if hdrs.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int(self._read_until(b"\r\n").split(b";")[0], 16)
                if size == 0:
                    self._read_until(b"\r\n")
                    break
                parts.append(self._read_exact(size))
                self._read_until(b"\r\n")
            payload = b"".join(parts)
        elif "content-length" in hdrs or status in (204, 304) or status < 200:
            payload = self._read_exact(int(hdrs.get("content-length", "0")))
        else:
            # Neither a length nor chunks: the body runs to the end of the connection.
            parts = [self.buf]
            while True:
                chunk = self.sock.recv(262144)
                if not chunk:
                    break
                parts.append(chunk)
            payload = b"".join(parts)
            self.buf = b""
            hdrs["connection"] = "close"
        if hdrs.get("connection", "").lower() == "close":
            self.close()
        return status, hdrs, payload

    def _roundtrip(self, method, path, body, headers, then_next):
        data = self._head(method, path, body, headers)
        if then_next:
            # HTTP/1.1 pipelining: GET next goes out in the same write as the POST, and its
            # answer is read by next() after the POST's (the Runtime API may hold the POST's
            # answer until it sends the next invocation with it).
            self._send((data, body, self.next_request) if body else (data, self.next_request))
            self.next_sent = True
        elif body:
            if len(body) < 65536:
                self.sock.sendall(data + body)
            else:
                self.sock.sendall(data)
                self.sock.sendall(body)
        else:
            self.sock.sendall(data)
        return self._read_response()

    def request(self, method, path, body=None, headers=(), then_next=False):
        # A lost connection is reconnected and the request resent, a few times with backoff.
        delay = 0.01
        for attempt in range(6):
            fresh = self.sock is None
            try:
                if fresh:
                    self._connect()
                return self._roundtrip(method, path, body, headers, then_next)
            except (ConnectionError, OSError) as e:
                self.close()
                if attempt == 5 or (fresh and isinstance(e, ConnectionRefusedError) and attempt >= 3):
                    raise
                if fresh:
                    time.sleep(delay)
                    delay *= 2

    def next(self):
        res = None
        if self.next_sent:
            # Asked for already, pipelined behind the last POST: its answer follows the POST's.
            # A connection closed before it (the POST refused with Connection: close, a reset)
            # did not give it: ask again on a new one.
            self.next_sent = False
            try:
                res = self._read_response()
            except (ConnectionError, OSError):
                self.close()
        if res is None:
            res = self.request("GET", _API_PREFIX + "invocation/next")
        status, hdrs, body = res
        if status != 200:
            raise RuntimeApiError("next: HTTP %d: %r" % (status, body[:200]))
        return hdrs, body

    # post_response and post_error ask for the next invocation in the same write (pipelined):
    # the caller's next call must be next().

    def post_response(self, request_id, body, content_type="application/json"):
        status, _, rbody = self.request(
            "POST", _API_PREFIX + "invocation/%s/response" % request_id, body,
            (("Content-Type", content_type),), True)
        return status, rbody

    def post_error(self, request_id, error, error_type):
        body = json_dumps(error).encode("utf-8")
        return self.request(
            "POST", _API_PREFIX + "invocation/%s/error" % request_id, body,
            (("Content-Type", _ERROR_CT), ("Lambda-Runtime-Function-Error-Type", error_type)),
            True)[0]

    def post_init_error(self, error, error_type):
        body = json_dumps(error).encode("utf-8")
        return self.request(
            "POST", _API_PREFIX + "init/error", body,
            (("Content-Type", _ERROR_CT), ("Lambda-Runtime-Function-Error-Type", error_type)))[0]


# --------------------------------------------------------------------------------------------
# The context object (same fields and methods as awslambdaric's LambdaContext).


class CognitoIdentity(object):
    __slots__ = ["cognito_identity_id", "cognito_identity_pool_id"]


class Client(object):
    __slots__ = ["installation_id", "app_title", "app_version_name", "app_version_code",
                 "app_package_name"]


class ClientContext(object):
    __slots__ = ["custom", "env", "client"]


def _obj_from_dict(cls, d):
    if d is None:
        return None
    obj = cls()
    for field in cls.__slots__:
        setattr(obj, field, d.get(field) if isinstance(d, dict) else None)
    return obj


class LambdaContext(object):
    def __init__(self, invoke_id, client_context, cognito_identity, epoch_deadline_time_in_ms,
                 invoked_function_arn=None, tenant_id=None):
        self.aws_request_id = invoke_id
        self.log_group_name = getenv("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = getenv("AWS_LAMBDA_LOG_STREAM_NAME")
        self.function_name = getenv("AWS_LAMBDA_FUNCTION_NAME")
        self.memory_limit_in_mb = getenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.function_version = getenv("AWS_LAMBDA_FUNCTION_VERSION")
        self.invoked_function_arn = invoked_function_arn
        self.tenant_id = tenant_id
        self.client_context = _obj_from_dict(ClientContext, client_context)
        if self.client_context is not None:
            self.client_context.client = _obj_from_dict(Client, self.client_context.client)
        self.identity = _obj_from_dict(CognitoIdentity, {})
        if isinstance(cognito_identity, dict):
            self.identity.cognito_identity_id = cognito_identity.get("cognitoIdentityId")
            self.identity.cognito_identity_pool_id = cognito_identity.get("cognitoIdentityPoolId")
        self._epoch_deadline_time_in_ms = epoch_deadline_time_in_ms

    def get_remaining_time_in_millis(self):
        delta = self._epoch_deadline_time_in_ms - int(time.time() * 1000)
        return delta if delta > 0 else 0

    def log(self, msg):
        sys.stdout.write(str(msg))

    def __repr__(self):
        return (
            "LambdaContext([aws_request_id={},log_group_name={},log_stream_name={},"
            "function_name={},memory_limit_in_mb={},function_version={},"
            "invoked_function_arn={},client_context={},identity={}])".format(
                self.aws_request_id, self.log_group_name, self.log_stream_name,
                self.function_name, self.memory_limit_in_mb, self.function_version,
                self.invoked_function_arn, self.client_context, self.identity))


# --------------------------------------------------------------------------------------------
# Errors, shaped as awslambdaric shapes them.


class FaultException(Exception):
    MARSHAL_ERROR = "Runtime.MarshalError"
    IMPORT_MODULE_ERROR = "Runtime.ImportModuleError"
    BAD_HANDLER = "Runtime.MalformedHandlerName"
    USER_CODE_SYNTAX_ERROR = "Runtime.UserCodeSyntaxError"
    HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"

    def __init__(self, exception_type, msg, trace=None):
        Exception.__init__(self, msg)
        self.msg = msg
        self.exception_type = exception_type
        self.trace = trace


def make_error(error_message, error_type, stack_trace, invoke_id=None):
    return {
        "errorMessage": error_message if error_message else "",
        "errorType": error_type if error_type else "",
        "requestId": invoke_id if invoke_id is not None else "",
        "stackTrace": stack_trace if stack_trace else [],
    }


def _user_frames(tb):
    import traceback
    frames = traceback.extract_tb(tb)
    here = __file__
    # Drop the runtime's own frames at the top (the handler call).
    i = 0
    while i < len(frames) and frames[i].filename == here:
        i += 1
    return traceback.format_list(frames[i:])


def build_fault_result(exc_info, invoke_id, msg=None):
    etype, value, tb = exc_info
    return make_error(msg if msg else str(value), etype.__name__, _user_frames(tb), invoke_id)


def log_error(error):
    text = "[ERROR]"
    if error.get("errorType"):
        text += " " + error["errorType"]
    if error.get("errorMessage"):
        if error.get("errorType"):
            text += ":"
        text += " " + error["errorMessage"]
    lines = [text]
    stack = error.get("stackTrace")
    if stack is not None:
        lines.append("Traceback (most recent call last):")
        for element in stack:
            lines.extend(element.splitlines() if element else [""])
    # One log event: Lambda's log sink frames the whole error; in a line-based log "\r" keeps it
    # on one line (the way it appears in CloudWatch).
    sys.stdout.write("\r".join(lines) + "\n")


# --------------------------------------------------------------------------------------------
# Handler loading.


def get_handler(handler):
    try:
        modname, fname = handler.rsplit(".", 1)
    except ValueError as e:
        raise FaultException(FaultException.BAD_HANDLER, "Bad handler '{}': {}".format(handler, e))
    try:
        if modname.split(".")[0] in sys.builtin_module_names:
            raise FaultException(
                FaultException.BAD_HANDLER,
                "Cannot use built-in module {} as a handler module".format(modname))
        # importlib.import_module, without importing importlib (its package is not preloaded).
        dotted = modname.replace("/", ".")
        __import__(dotted)
        m = sys.modules[dotted]
    except FaultException:
        raise
    except ImportError as e:
        raise FaultException(FaultException.IMPORT_MODULE_ERROR,
                             "Unable to import module '{}': {}".format(modname, e))
    except SyntaxError as e:
        trace = ['  File "%s" Line %s\n    %s' % (e.filename, e.lineno, e.text)]
        raise FaultException(FaultException.USER_CODE_SYNTAX_ERROR,
                             "Syntax error in module '{}': {}".format(modname, e), trace)
    try:
        request_handler = getattr(m, fname)
    except AttributeError:
        raise FaultException(FaultException.HANDLER_NOT_FOUND,
                             "Handler '{}' missing on module '{}'".format(fname, modname))
    return request_handler


# --------------------------------------------------------------------------------------------
# Logging: the logging module is configured (Lambda's format, request id filter) when the
# function first imports it, so functions that do not log do not pay for it.


def _configure_logging(logging):
    class _RequestIdFilter(logging.Filter):
        def filter(self, record):
            record.aws_request_id = _current_request_id
            return True

    class _LambdaLoggerHandler(logging.Handler):
        def emit(self, record):
            try:
                msg = self.format(record)
            except Exception:
                self.handleError(record)
                return
            sys.stdout.write(msg.replace("\n", "\r") + "\n")

    fmt = logging.Formatter(
        "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s",
        "%Y-%m-%dT%H:%M:%S")
    fmt.converter = time.gmtime
    handler = _LambdaLoggerHandler()
    handler.setFormatter(fmt)
    handler.addFilter(_RequestIdFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    level = getenv("AWS_LAMBDA_LOG_LEVEL", "").upper()
    if level in ("DEBUG", "INFO", "WARN", "WARNING", "ERROR", "CRITICAL", "FATAL"):
        root.setLevel("WARNING" if level == "WARN" else level)


class _LoggingImportHook:
    """A meta path finder that configures `logging` right after its first import."""

    def find_spec(self, name, path=None, target=None):
        if name != "logging":
            return None
        sys.meta_path.remove(self)
        spec = None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if find is None:
                continue
            spec = find(name, path, target)
            if spec is not None:
                break
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        original = loader.exec_module

        def exec_module(module):
            original(module)
            _configure_logging(module)

        loader.exec_module = exec_module
        return spec

    def find_module(self, name, path=None):  # pragma: no cover (pre-3.4 protocol)
        return None


def install_logging():
    if "logging" in sys.modules:
        _configure_logging(sys.modules["logging"])
    else:
        sys.meta_path.insert(0, _LoggingImportHook())


# --------------------------------------------------------------------------------------------
# The loop.


def setup_sys_path(task_root):
    runtime_dir = __file__.rpartition("/")[0] or "."  # imported from the bootstrap's directory
    # awslambdaric's order: task root, layer site-packages, layer root, then the runtime.
    wanted = [task_root, "/opt/python/lib/python3.11/site-packages", "/opt/python"]
    rest = [p for p in sys.path if p not in wanted and p != runtime_dir and p != ""]
    sys.path[:] = wanted + [runtime_dir] + rest


def _json_default(o):
    # awslambdaric serializes Decimal as a number; anything else is a marshal error.
    if type(o).__name__ == "Decimal":
        return float(o) if o % 1 else int(o)
    raise TypeError("Object of type %s is not JSON serializable" % type(o).__name__)


def handle_invocation(client, request_handler, hdrs, body):
    global _current_request_id
    invoke_id = hdrs.get("lambda-runtime-aws-request-id", "")
    _current_request_id = invoke_id
    trace_id = hdrs.get("lambda-runtime-trace-id")
    setenv("_X_AMZN_TRACE_ID", trace_id or None)
    error = None
    try:
        client_context = hdrs.get("lambda-runtime-client-context")
        cognito = hdrs.get("lambda-runtime-cognito-identity")
        context = LambdaContext(
            invoke_id,
            json_loads(client_context) if client_context else None,
            json_loads(cognito) if cognito else None,
            int(hdrs.get("lambda-runtime-deadline-ms", "0") or 0),
            hdrs.get("lambda-runtime-invoked-function-arn"),
            hdrs.get("lambda-runtime-aws-tenant-id"),
        )
        try:
            event = json_loads(body) if body else {}
        except ValueError as e:
            raise FaultException("Runtime.UnmarshalError",
                                 "Unable to unmarshal input: {}".format(e))
        result = request_handler(event, context)
        try:
            payload = json_dumps(result, _json_default).encode("utf-8")
        except Exception as e:
            raise FaultException(FaultException.MARSHAL_ERROR,
                                 "Unable to marshal response: {}".format(e))
    except FaultException as e:
        error = make_error(e.msg, e.exception_type, e.trace, invoke_id)
    except Exception:
        error = build_fault_result(sys.exc_info(), invoke_id)
    if error is not None:
        log_error(error)
        client.post_error(invoke_id, error, error["errorType"] or "Unhandled")
    else:
        status, rbody = client.post_response(invoke_id, payload)
        if status == 413:
            sys.stderr.write("hearth-python-ric: response rejected: %s\n" % rbody.decode(
                "utf-8", "replace"))
    _current_request_id = ""


def await_function():
    """A pre-started runtime (the daemon's pool, see docs/architecture.md): the interpreter was
    started before its function was known, with only the variables read at start-up, and the
    function's whole environment arrives on the descriptor named by _HEARTH_PRESTART_FD
    (NUL-terminated KEY=VALUE entries, to the end of the stream) once the sandbox holds the
    function's code, /opt and /tmp. The environment becomes exactly that, in that order, as if
    the interpreter had been started with it; variables the interpreter added to its own
    environment at start (the C locale coercion's LC_CTYPE) are kept after it, as they would be.
    Returns False when the sandbox went away before a function came."""
    key = b"_HEARTH_PRESTART_FD"
    fd = posix.environ.get(key)
    if fd is None:
        return True
    fd = int(fd)
    chunks = []
    while True:
        try:
            chunk = posix.read(fd, 262144)
        except InterruptedError:
            continue
        if not chunk:
            break
        chunks.append(chunk)
    posix.close(fd)
    data = b"".join(chunks)
    if not data:
        return False
    env = []
    for item in data.split(b"\0"):
        if item:
            k, _, v = item.partition(b"=")
            env.append((k, v))
    given = dict(env)
    started_with = list(posix.environ.items())
    added = [(k, v) for k, v in started_with if k != key and k not in given]
    for k, _ in started_with:
        del posix.environ[k]
        posix.unsetenv(k)
    for k, v in env + added:
        posix.environ[k] = v
        posix.putenv(k, v)
    return True


def main():
    if not await_function():
        return 0
    endpoint = getenv("AWS_LAMBDA_RUNTIME_API", "")
    try:
        client = RuntimeClient(endpoint)
    except RuntimeApiError as e:
        sys.stderr.write("hearth-python-ric: %s\n" % e)
        return 1
    task_root = getenv("LAMBDA_TASK_ROOT", "/var/task")
    setup_sys_path(task_root)
    # Debian's dist-packages stay importable after the function's own paths (no `site`).
    for p in ("/usr/local/lib/python3.11/dist-packages", "/usr/lib/python3/dist-packages"):
        if p not in sys.path:
            sys.path.append(p)
    install_logging()
    handler = getenv("_HANDLER", "")
    try:
        try:
            posix.chdir(task_root)
        except OSError:
            pass
        request_handler = get_handler(handler)
    except FaultException as e:
        error = make_error(e.msg, e.exception_type, e.trace)
    except Exception:
        error = build_fault_result(sys.exc_info(), None)
    else:
        error = None
    try:
        if error is not None:
            log_error(error)
            client.post_init_error(error, error["errorType"])
            return 1
        while True:
            hdrs, body = client.next()
            handle_invocation(client, request_handler, hdrs, body)
    except (ConnectionError, OSError):
        # The Runtime API is gone: the environment is being shut down.
        return 0
    except RuntimeApiError as e:
        sys.stderr.write("hearth-python-ric: %s\n" % e)
        return 1
