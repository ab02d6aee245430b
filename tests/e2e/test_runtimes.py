"""End to end: the managed runtimes python3.11 and nodejs20.x with handler files written for AWS
Lambda, unmodified (hello world, async and callback handlers, thrown errors, init errors, a
timeout watched through the remaining time, layers, environment variables, 5 MB payloads)."""

import base64
import json
import os
import tempfile
import time
import unittest

import botocore.exceptions

import harness

ROLE = "arn:aws:iam::000000000000:role/lambda-role"

PY_HELLO = '''import json
import logging
import os

logger = logging.getLogger()
logger.setLevel(logging.INFO)


def lambda_handler(event, context):
    print("hello from print")
    logger.info("hello from logging")
    return {
        "statusCode": 200,
        "body": json.dumps("Hello from Lambda!"),
        "event": event,
        "aws_request_id": context.aws_request_id,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "invoked_function_arn": context.invoked_function_arn,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "remaining": context.get_remaining_time_in_millis(),
        "client_context": context.client_context and context.client_context.custom,
        "identity": context.identity.cognito_identity_id,
        "execution_env": os.environ.get("AWS_EXECUTION_ENV"),
        "greeting": os.environ.get("GREETING"),
        "trace": os.environ.get("_X_AMZN_TRACE_ID"),
    }
'''

PY_ERROR = '''def lambda_handler(event, context):
    raise ValueError("something went wrong")
'''

PY_IMPORT_ERROR = '''import not_a_module_anywhere


def lambda_handler(event, context):
    return 1
'''

PY_TIMEOUT = '''import time


def lambda_handler(event, context):
    ticks = 0
    while context.get_remaining_time_in_millis() > 300:
        time.sleep(0.05)
        ticks += 1
    return {"ticks": ticks, "remaining": context.get_remaining_time_in_millis()}
'''

PY_ECHO = '''def lambda_handler(event, context):
    return event
'''

PY_NESTED = '''def handle(event, context):
    return {"nested": True}
'''

PY_LAYER = '''import hearth_layer_mod


def lambda_handler(event, context):
    return {"layer": hearth_layer_mod.VALUE}
'''

NODE_HELLO = '''export const handler = async (event, context) => {
  console.log('hello from console.log', { n: 1 });
  return {
    statusCode: 200,
    body: JSON.stringify('Hello from Lambda!'),
    event,
    awsRequestId: context.awsRequestId,
    functionName: context.functionName,
    functionVersion: context.functionVersion,
    invokedFunctionArn: context.invokedFunctionArn,
    memoryLimitInMB: context.memoryLimitInMB,
    logGroupName: context.logGroupName,
    logStreamName: context.logStreamName,
    remaining: context.getRemainingTimeInMillis(),
    callbackWaitsForEmptyEventLoop: context.callbackWaitsForEmptyEventLoop,
    executionEnv: process.env.AWS_EXECUTION_ENV,
    greeting: process.env.GREETING,
  };
};
'''

NODE_CALLBACK = '''exports.handler = function (event, context, callback) {
  setTimeout(() => callback(null, { style: 'callback', got: event.x }), 10);
};
'''

NODE_PROMISE = '''exports.handler = (event) => new Promise((resolve) => {
  setTimeout(() => resolve({ style: 'promise' }), 10);
});
'''

NODE_THROW = '''export const handler = async () => {
  throw new TypeError('bad things');
};
'''

NODE_REJECTION = '''exports.handler = async () => {
  Promise.reject(new Error('nobody caught me'));
  await new Promise((r) => setTimeout(r, 200));
  return 'unreachable';
};
'''

NODE_TIMEOUT = '''exports.handler = async (event, context) => {
  let ticks = 0;
  while (context.getRemainingTimeInMillis() > 300) {
    await new Promise((r) => setTimeout(r, 50));
    ticks++;
  }
  return { ticks, remaining: context.getRemainingTimeInMillis() };
};
'''

NODE_ECHO = "export const handler = async (event) => event;\n"

NODE_LAYER = '''const mod = require('hearth-layer-mod');
exports.handler = async () => ({ layer: mod.VALUE });
'''


# One warm environment through answers, errors and a refused (413) answer: the runtime clients
# pipeline GET next behind every response/error POST; a count kept across invocations shows each
# event was delivered once.
PY_SEQUENCE = '''count = 0


def lambda_handler(event, context):
    global count
    count += 1
    if event.get("big"):
        return "z" * (7 * 1024 * 1024)
    if event.get("fail"):
        raise ValueError("failed at %d" % count)
    return {"count": count, "n": event.get("n"), "id": context.aws_request_id}
'''

NODE_SEQUENCE = '''let count = 0;
exports.handler = async (event, context) => {
  count++;
  if (event.big) return 'z'.repeat(7 * 1024 * 1024);
  if (event.fail) throw new Error(`failed at ${count}`);
  return { count, n: event.n, id: context.awsRequestId };
};
'''

class RuntimesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        harness.require_examples()
        cls.d = harness.Daemon().start()
        cls.c = cls.d.client(read_timeout=120)

    @classmethod
    def tearDownClass(cls):
        cls.d.close()

    def create(self, name, runtime, handler, files, **kw):
        self.c.create_function(FunctionName=name, Runtime=runtime, Role=ROLE, Handler=handler,
                               Code={"ZipFile": harness.make_zip(files)}, **kw)

    def invoke(self, name, payload=b"{}", **kw):
        r = self.c.invoke(FunctionName=name, Payload=payload, LogType="Tail", **kw)
        body = r["Payload"].read()
        log = base64.b64decode(r.get("LogResult", "")).decode(errors="replace")
        return r, json.loads(body), log

    # -- Python -------------------------------------------------------------------------------

    def test_python_hello_world(self):
        self.create("py-hello", "python3.11", "lambda_function.lambda_handler",
                    {"lambda_function.py": PY_HELLO}, Environment={"Variables": {"GREETING": "hi"}},
                    MemorySize=256)
        ctx = base64.b64encode(json.dumps({"custom": {"k": "v"}}).encode()).decode()
        r, out, log = self.invoke("py-hello", b'{"key1": "value1"}', ClientContext=ctx)
        self.assertNotIn("FunctionError", r)
        self.assertEqual(out["statusCode"], 200)
        self.assertEqual(out["body"], '"Hello from Lambda!"')
        self.assertEqual(out["event"], {"key1": "value1"})
        self.assertEqual(out["function_name"], "py-hello")
        self.assertEqual(out["function_version"], "$LATEST")
        self.assertEqual(out["invoked_function_arn"], harness.function_arn("py-hello"))
        self.assertEqual(out["memory_limit_in_mb"], "256")
        self.assertEqual(out["log_group_name"], "/aws/lambda/py-hello")
        self.assertIn("[$LATEST]", out["log_stream_name"])
        self.assertTrue(0 < out["remaining"] <= 3000, out["remaining"])
        self.assertEqual(out["client_context"], {"k": "v"})
        self.assertIsNone(out["identity"])
        self.assertEqual(out["execution_env"], "AWS_Lambda_python3.11")
        self.assertEqual(out["greeting"], "hi")
        rid = r["ResponseMetadata"]["RequestId"]
        self.assertEqual(out["aws_request_id"], rid)
        self.assertIn("hello from print\n", log)
        self.assertRegex(log, r"\[INFO\]\t\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\t" + rid +
                         r"\thello from logging\n")

    def test_python_error(self):
        self.create("py-error", "python3.11", "lambda_function.lambda_handler",
                    {"lambda_function.py": PY_ERROR})
        r, out, log = self.invoke("py-error")
        self.assertEqual(r["FunctionError"], "Unhandled")
        self.assertEqual(out["errorType"], "ValueError")
        self.assertEqual(out["errorMessage"], "something went wrong")
        self.assertEqual(len(out["stackTrace"]), 1)
        self.assertIn('lambda_function.py", line 2, in lambda_handler', out["stackTrace"][0])
        self.assertIn("[ERROR] ValueError: something went wrong", log)

    def test_python_import_error_is_an_init_error(self):
        self.create("py-import", "python3.11", "lambda_function.lambda_handler",
                    {"lambda_function.py": PY_IMPORT_ERROR})
        r, out, _ = self.invoke("py-import")
        self.assertEqual(r["FunctionError"], "Unhandled")
        self.assertEqual(out["errorType"], "Runtime.ImportModuleError")
        self.assertEqual(out["errorMessage"], "Unable to import module 'lambda_function': "
                                              "No module named 'not_a_module_anywhere'")

    def test_python_handler_not_found(self):
        self.create("py-nohandler", "python3.11", "lambda_function.missing",
                    {"lambda_function.py": PY_ECHO})
        _, out, _ = self.invoke("py-nohandler")
        self.assertEqual(out["errorType"], "Runtime.HandlerNotFound")
        self.assertEqual(out["errorMessage"], "Handler 'missing' missing on module 'lambda_function'")

    def test_python_nested_handler_path(self):
        self.create("py-nested", "python3.11", "src/handlers/api.handle",
                    {"src/handlers/api.py": PY_NESTED})
        r, out, _ = self.invoke("py-nested")
        self.assertNotIn("FunctionError", r)
        self.assertEqual(out, {"nested": True})

    def test_python_timeout_watched_through_remaining_time(self):
        self.create("py-timeout", "python3.11", "lambda_function.lambda_handler",
                    {"lambda_function.py": PY_TIMEOUT}, Timeout=2)
        r, out, _ = self.invoke("py-timeout")
        self.assertNotIn("FunctionError", r)
        self.assertGreater(out["ticks"], 10)
        self.assertTrue(0 < out["remaining"] <= 300, out)

    def test_python_large_payload(self):
        self.create("py-large", "python3.11", "lambda_function.lambda_handler",
                    {"lambda_function.py": PY_ECHO}, MemorySize=512)
        event = {"data": "x" * (5 * 1024 * 1024)}
        r, out, _ = self.invoke("py-large", json.dumps(event).encode())
        self.assertNotIn("FunctionError", r)
        self.assertEqual(len(out["data"]), 5 * 1024 * 1024)

    # -- Node.js ------------------------------------------------------------------------------

    def test_node_hello_world(self):
        self.create("node-hello", "nodejs20.x", "index.handler", {"index.mjs": NODE_HELLO},
                    Environment={"Variables": {"GREETING": "hej"}})
        r, out, log = self.invoke("node-hello", b'{"key1": "value1"}')
        self.assertNotIn("FunctionError", r)
        rid = r["ResponseMetadata"]["RequestId"]
        self.assertEqual(out["statusCode"], 200)
        self.assertEqual(out["event"], {"key1": "value1"})
        self.assertEqual(out["awsRequestId"], rid)
        self.assertEqual(out["functionName"], "node-hello")
        self.assertEqual(out["functionVersion"], "$LATEST")
        self.assertEqual(out["invokedFunctionArn"], harness.function_arn("node-hello"))
        self.assertEqual(out["memoryLimitInMB"], "128")
        self.assertEqual(out["logGroupName"], "/aws/lambda/node-hello")
        self.assertTrue(0 < out["remaining"] <= 3000, out["remaining"])
        self.assertIs(out["callbackWaitsForEmptyEventLoop"], True)
        self.assertEqual(out["executionEnv"], "AWS_Lambda_nodejs20.x")
        self.assertEqual(out["greeting"], "hej")
        self.assertRegex(log, r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\t" + rid +
                         r"\tINFO\thello from console.log { n: 1 }\n")

    def test_node_callback_and_promise_handlers(self):
        self.create("node-cb", "nodejs20.x", "index.handler", {"index.js": NODE_CALLBACK})
        self.create("node-promise", "nodejs20.x", "lib/app.handler", {"lib/app.js": NODE_PROMISE})
        _, out, _ = self.invoke("node-cb", b'{"x": 7}')
        self.assertEqual(out, {"style": "callback", "got": 7})
        _, out, _ = self.invoke("node-promise")
        self.assertEqual(out, {"style": "promise"})

    def test_node_thrown_error(self):
        self.create("node-throw", "nodejs20.x", "index.handler", {"index.mjs": NODE_THROW})
        r, out, log = self.invoke("node-throw")
        self.assertEqual(r["FunctionError"], "Unhandled")
        self.assertEqual(out["errorType"], "TypeError")
        self.assertEqual(out["errorMessage"], "bad things")
        self.assertEqual(out["trace"][0], "TypeError: bad things")
        self.assertIn("index.mjs", out["trace"][1])
        self.assertIn("\tERROR\tInvoke Error \t", log)

    def test_node_unhandled_rejection(self):
        self.create("node-reject", "nodejs20.x", "index.handler", {"index.js": NODE_REJECTION})
        r, out, _ = self.invoke("node-reject")
        self.assertEqual(r["FunctionError"], "Unhandled")
        self.assertEqual(out["errorType"], "Runtime.UnhandledPromiseRejection")
        self.assertEqual(out["errorMessage"], "Error: nobody caught me")

    def test_node_handler_not_found_and_import_error(self):
        self.create("node-nohandler", "nodejs20.x", "index.nothere", {"index.mjs": NODE_ECHO})
        _, out, _ = self.invoke("node-nohandler")
        self.assertEqual(out["errorType"], "Runtime.HandlerNotFound")
        self.assertEqual(out["errorMessage"], "index.nothere is undefined or not exported")
        self.create("node-nomodule", "nodejs20.x", "missing.handler", {"index.mjs": NODE_ECHO})
        _, out, _ = self.invoke("node-nomodule")
        self.assertEqual(out["errorType"], "Runtime.ImportModuleError")
        self.assertIn("Cannot find module 'missing'", out["errorMessage"])

    def test_node_timeout_watched_through_remaining_time(self):
        self.create("node-timeout", "nodejs20.x", "index.handler", {"index.js": NODE_TIMEOUT},
                    Timeout=2)
        r, out, _ = self.invoke("node-timeout")
        self.assertNotIn("FunctionError", r)
        self.assertGreater(out["ticks"], 10)
        self.assertTrue(0 < out["remaining"] <= 300, out)

    def test_node_large_payload(self):
        self.create("node-large", "nodejs20.x", "index.handler", {"index.mjs": NODE_ECHO},
                    MemorySize=512)
        event = {"data": "y" * (5 * 1024 * 1024)}
        r, out, _ = self.invoke("node-large", json.dumps(event).encode())
        self.assertNotIn("FunctionError", r)
        self.assertEqual(len(out["data"]), 5 * 1024 * 1024)


    def check_sequence(self, name):
        # Successes, errors and an answer over the 6 MB limit (refused with 413 and the
        # connection closed) on one warm environment: every later invoke gets its own event,
        # once, from the same process.
        steps = [{"n": 1}, {"n": 2}, {"fail": True}, {"n": 4}, {"big": True}, {"n": 6},
                 {"fail": True}, {"big": True}, {"n": 9}, {"n": 10}]
        for count, event in enumerate(steps, 1):
            with self.subTest(count=count, event=event):
                r, out, _ = self.invoke(name, json.dumps(event).encode())
                if event.get("fail"):
                    self.assertEqual(r["FunctionError"], "Unhandled")
                    self.assertEqual(out["errorMessage"], "failed at %d" % count)
                elif event.get("big"):
                    self.assertEqual(r["FunctionError"], "Unhandled")
                    self.assertEqual(out["errorType"], "Function.ResponseSizeTooLarge")
                else:
                    self.assertNotIn("FunctionError", r)
                    self.assertEqual(out, {"count": count, "n": event["n"],
                                           "id": r["ResponseMetadata"]["RequestId"]})

    def test_python_warm_sequence_with_refused_answers(self):
        self.create("py-seq", "python3.11", "lambda_function.lambda_handler",
                    {"lambda_function.py": PY_SEQUENCE}, MemorySize=512)
        self.check_sequence("py-seq")

    def test_node_warm_sequence_with_refused_answers(self):
        self.create("node-seq", "nodejs20.x", "index.handler", {"index.js": NODE_SEQUENCE},
                    MemorySize=512)
        self.check_sequence("node-seq")

    # -- Both ---------------------------------------------------------------------------------

    def test_uninstalled_runtime_is_refused(self):
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            self.create("py312", "python3.12", "lambda_function.lambda_handler",
                        {"lambda_function.py": PY_ECHO})
        err = cm.exception.response["Error"]
        self.assertEqual(err["Code"], "InvalidParameterValueException")
        self.assertIn("Runtime python3.12 is not available on this Hearth host; installed: "
                      "python3.11, nodejs20.x, provided.al2023, provided.al2", err["Message"])

    def test_layers(self):
        layer = harness.make_zip({
            "python/hearth_layer_mod.py": "VALUE = 'from a python layer'\n",
            "nodejs/node_modules/hearth-layer-mod/index.js": "exports.VALUE = 'from a node layer';\n",
        })
        try:
            pub = self.c.publish_layer_version(LayerName="hearth-rt-layer", Content={"ZipFile": layer})
        except botocore.exceptions.ClientError as e:
            self.skipTest(f"PublishLayerVersion is not available yet: {e}")
        arn = pub["LayerVersionArn"]
        self.create("py-layer", "python3.11", "lambda_function.lambda_handler",
                    {"lambda_function.py": PY_LAYER}, Layers=[arn])
        self.create("node-layer", "nodejs20.x", "index.handler", {"index.js": NODE_LAYER},
                    Layers=[arn])
        r, out, _ = self.invoke("py-layer")
        self.assertEqual(out, {"layer": "from a python layer"}, r)
        r, out, _ = self.invoke("node-layer")
        self.assertEqual(out, {"layer": "from a node layer"}, r)


PY_INTROSPECT = r"""import os
import sys

MODULES_AT_IMPORT = sorted(sys.modules)


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError as e:
        return "error %d" % e.errno


def lambda_handler(event, context):
    import resource
    import time
    env = [[k, v] for k, v in os.environ.items() if k != "_X_AMZN_TRACE_ID"]
    status = [l for l in _read("/proc/self/status").splitlines()
              if l.split(":")[0] in ("Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapBnd",
                                     "CapAmb", "NoNewPrivs", "Seccomp", "Seccomp_filters")]
    mounts = sorted(" ".join(l.split()[4:6] + l.split(" - ")[1].split()[:1])
                    for l in _read("/proc/self/mountinfo").splitlines())
    with open("/proc/uptime") as f:
        uptime = float(f.read().split()[0])
    start_ticks = int(_read("/proc/self/stat").rsplit(")", 1)[1].split()[19])
    return {
        "env": env, "cwd": os.getcwd(), "path": sys.path, "argv": sys.argv,
        "executable": sys.executable, "flags": list(sys.flags), "modules": MODULES_AT_IMPORT,
        "dont_write_bytecode": sys.flags.dont_write_bytecode,
        "ids": [os.getuid(), os.geteuid(), os.getgid(), os.getegid(), os.getgroups()],
        "pid": [os.getpid(), os.getppid(), os.getpgrp(), os.getsid(0)],
        "nice": os.getpriority(os.PRIO_PROCESS, 0), "umask": os.umask(0o22),
        "rlimits": [resource.getrlimit(getattr(resource, r)) for r in dir(resource) if r.startswith("RLIMIT_")],
        "status": status, "mounts": mounts, "fds": sorted(os.listdir("/proc/self/fd")),
        "cgroup": _read("/proc/self/cgroup"), "tz": list(time.tzname),
        "encodings": [sys.getfilesystemencoding(), sys.stdout.encoding, sys.stderr.encoding],
        "oom": _read("/proc/self/oom_score_adj"), "affinity": sorted(os.sched_getaffinity(0)),
        "tmp_writable": os.access("/tmp", os.W_OK), "task": sorted(os.listdir("/var/task")),
        "age_s": uptime - start_ticks / os.sysconf("SC_CLK_TCK"),
    }
"""


NODE_INTROSPECT = r"""const fs = require('fs');
const os = require('os');
const CACHED_AT_LOAD = Object.keys(require.cache).sort();
const read = (p) => { try { return fs.readFileSync(p, 'utf8'); } catch (e) { return 'error ' + e.code; } };

exports.handler = async () => {
  const env = Object.entries(process.env).filter(([k]) => k !== '_X_AMZN_TRACE_ID');
  const status = read('/proc/self/status').split('\n').filter((l) => ['Uid', 'Gid', 'Groups', 'CapInh',
    'CapPrm', 'CapEff', 'CapBnd', 'CapAmb', 'NoNewPrivs', 'Seccomp', 'Seccomp_filters'].includes(l.split(':')[0]));
  const mounts = read('/proc/self/mountinfo').trim().split('\n').map((l) =>
    l.split(' ').slice(4, 6).concat(l.split(' - ')[1].split(' ').slice(0, 1)).join(' ')).sort();
  const uptime = Number(read('/proc/uptime').split(' ')[0]);
  const ticks = Number(read('/proc/self/stat').split(')').pop().trim().split(' ')[19]);
  return {
    env, cwd: process.cwd(), argv: process.argv, execArgv: process.execArgv, execPath: process.execPath,
    modules: CACHED_AT_LOAD, paths: module.paths, title: process.title,
    ids: [process.getuid(), process.geteuid(), process.getgid(), process.getegid(), process.getgroups()],
    pid: [process.pid, process.ppid], nice: os.getPriority(), umask: process.umask(),
    status, mounts, fds: fs.readdirSync('/proc/self/fd').sort(), cgroup: read('/proc/self/cgroup'),
    tz: Intl.DateTimeFormat().resolvedOptions().timeZone, offset: new Date(0).getTimezoneOffset(),
    oom: read('/proc/self/oom_score_adj'), task: fs.readdirSync('/var/task').sort(),
    tmpWritable: (() => { try { fs.accessSync('/tmp', fs.constants.W_OK); return true; } catch { return false; } })(),
    age_s: uptime - ticks / 100,
  };
};
"""


@unittest.skipUnless(os.geteuid() == 0 and os.environ.get("HEARTH_E2E_ISOLATION", "sandbox") == "sandbox",
                     "pre-started runtimes live in the sandbox (root)")
class PrestartedRuntimeTest(unittest.TestCase):
    """A Python function cold-started in a pre-started interpreter (preinit_runtimes, the default)
    sees exactly what it sees when the interpreter starts for it (preinit_runtimes 0)."""

    def run_on(self, preinit, env_vars, runtime="python3.11"):
        cfg = os.path.join(tempfile.mkdtemp(prefix="hearth-preinit-"), "config.json")
        with open(cfg, "w") as f:
            json.dump({"preinit_runtimes": {runtime: preinit}}, f)
        d = harness.Daemon("--config", cfg).start()
        try:
            c = d.client()
            time.sleep(1.0)  # the pool fills in the background
            if runtime == "python3.11":
                handler, files = "lambda_function.lambda_handler", {"lambda_function.py": PY_INTROSPECT}
            else:
                handler, files = "index.handler", {"index.js": NODE_INTROSPECT}
            c.create_function(FunctionName="rt-introspect", Runtime=runtime, Role=ROLE,
                              Handler=handler, MemorySize=256, Timeout=10,
                              Environment={"Variables": env_vars},
                              Code={"ZipFile": harness.make_zip(files)})
            r = c.invoke(FunctionName="rt-introspect", Payload=b"{}")
            out = json.loads(r["Payload"].read())
            self.assertNotIn("FunctionError", r, out)
            for kv in out["env"]:  # the stream name carries the environment's id
                if kv[0] == "AWS_LAMBDA_LOG_STREAM_NAME":
                    kv[1] = kv[1].rsplit("]", 1)[0]
            return out
        finally:
            d.close()

    def test_prestarted_python_sees_what_a_fresh_start_sees(self):
        env_vars = {"GREETING": "hi", "ZED": "last"}
        pooled = self.run_on(1, env_vars)
        fresh = self.run_on(0, env_vars)
        # The pooled interpreter was started before the function existed; the fresh one for it.
        self.assertGreater(pooled.pop("age_s"), 0.5)
        self.assertLess(fresh.pop("age_s"), 0.5)
        self.assertIn(["GREETING", "hi"], pooled["env"])
        self.assertEqual(pooled["cwd"], "/var/task")
        self.assertEqual(pooled["ids"][0], 993)
        for key in fresh:
            self.assertEqual(pooled[key], fresh[key], key)

    def test_prestarted_node_sees_what_a_fresh_start_sees(self):
        env_vars = {"GREETING": "hi", "ZED": "last"}
        pooled = self.run_on(1, env_vars, "nodejs20.x")
        fresh = self.run_on(0, env_vars, "nodejs20.x")
        self.assertGreater(pooled.pop("age_s"), 0.5)
        self.assertLess(fresh.pop("age_s"), 0.5)
        self.assertIn(["GREETING", "hi"], pooled["env"])
        self.assertEqual(pooled["cwd"], "/var/task")
        for key in fresh:
            self.assertEqual(pooled[key], fresh[key], key)

    def test_startup_variables_take_the_normal_path(self):
        # PYTHONDONTWRITEBYTECODE is read at interpreter start: no pre-started interpreter has it.
        out = self.run_on(1, {"PYTHONDONTWRITEBYTECODE": "1"})
        self.assertLess(out["age_s"], 0.5)
        self.assertEqual(out["dont_write_bytecode"], 1)


if __name__ == "__main__":
    unittest.main()
