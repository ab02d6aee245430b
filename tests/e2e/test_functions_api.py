"""The Lambda control-plane API against a real daemon, through boto3, the AWS CLI and raw HTTP."""

import base64
import hashlib
import json
import os
import re
import unittest
import urllib.request

from botocore.config import Config
from botocore.exceptions import ClientError

import harness
from harness import ROLE, DaemonTestCase, function_arn, not_found_message, unique

LAST_MODIFIED_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+0000$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
NOT_A_ZIP = "Could not unzip uploaded file. Please check your file, then try to upload again."

# A Python custom runtime written here (not the example): answers {"inline": <event>, "fn": name}.
INLINE_BOOTSTRAP = r'''
import json, os, urllib.request
api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"
while True:
    with urllib.request.urlopen(api + "next") as r:
        rid = r.headers["Lambda-Runtime-Aws-Request-Id"]
        event = json.loads(r.read() or b"null")
    out = json.dumps({"inline": event, "fn": os.environ["AWS_LAMBDA_FUNCTION_NAME"],
                      "answer": ANSWER}).encode()
    req = urllib.request.Request(api + rid + "/response", data=out, method="POST")
    with urllib.request.urlopen(req) as r:
        assert r.status == 202, r.status
'''


def inline_zip(answer: str = "one") -> bytes:
    return harness.python_bootstrap_zip(INLINE_BOOTSTRAP.replace("ANSWER", json.dumps(answer)))


def b64sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


class FunctionsApiTest(DaemonTestCase):
    def lax_client(self):
        """A boto3 client that sends invalid parameters instead of refusing them itself."""
        import boto3
        return boto3.client(
            "lambda", endpoint_url=self.daemon.endpoint, region_name=harness.REGION,
            aws_access_key_id="AKIDHEARTHTEST", aws_secret_access_key="x",
            config=Config(retries={"max_attempts": 1}, read_timeout=60,
                          parameter_validation=False))

    def assertNotFound(self, fn, name):
        with self.assertRaises(ClientError) as ctx:
            fn()
        self.assertClientError(ctx, "ResourceNotFoundException", 404, not_found_message(name))

    # -- create / get ---------------------------------------------------------------------------

    def test_create_echo_fields_and_invoke(self):
        name = unique("echo")
        zip_bytes = harness.echo_zip()
        c = self.daemon.create(name, zip_bytes, Description="the echo")
        self.assertEqual(c["ResponseMetadata"]["HTTPStatusCode"], 201)
        self.assertTrue(c["ResponseMetadata"]["HTTPHeaders"].get("x-amzn-requestid"))
        self.assertEqual(c["FunctionName"], name)
        self.assertEqual(c["FunctionArn"], function_arn(name))
        self.assertEqual(c["CodeSha256"], b64sha256(zip_bytes))
        self.assertEqual(c["CodeSize"], len(zip_bytes))
        self.assertRegex(c["LastModified"], LAST_MODIFIED_RE)
        self.assertRegex(c["RevisionId"], UUID_RE)
        self.assertEqual(c["Version"], "$LATEST")
        self.assertEqual(c["Runtime"], "provided.al2023")
        self.assertEqual(c["Handler"], "bootstrap.handler")
        self.assertEqual(c["Role"], ROLE)
        self.assertEqual(c["Description"], "the echo")
        self.assertEqual(c["MemorySize"], 128)
        self.assertEqual(c["Timeout"], 3)
        self.assertEqual(c["Architectures"], ["x86_64"])
        self.assertEqual(c["EphemeralStorage"], {"Size": 512})
        self.assertEqual(c["PackageType"], "Zip")
        self.assertIn(c["State"], ("Active", "Pending"))

        g = self.daemon.client().get_function_configuration(FunctionName=name)
        self.assertEqual(g["State"], "Active")
        self.assertEqual(g["LastUpdateStatus"], "Successful")
        self.assertEqual(g["CodeSha256"], c["CodeSha256"])

        _, body = self.daemon.invoke(name, {"hello": "world", "n": [1, 2, 3]})
        self.assertEqual(json.loads(body), {"hello": "world", "n": [1, 2, 3]})

        with self.assertRaises(ClientError) as ctx:
            self.daemon.create(name, zip_bytes)
        self.assertClientError(ctx, "ResourceConflictException", 409)

    def test_create_python_example_and_inline_python_bootstrap(self):
        name = unique("py")
        self.daemon.create(name, harness.python_zip(), Handler="handler.handler")
        _, body = self.daemon.invoke(name, {"name": "hearth"})
        self.assertEqual(json.loads(body), {"hello": "hearth"})

        name2 = unique("inline")
        self.daemon.create(name2, inline_zip("one"), Runtime="provided.al2")
        _, body = self.daemon.invoke(name2, {"k": "v"})
        self.assertEqual(json.loads(body), {"inline": {"k": "v"}, "fn": name2, "answer": "one"})

    def test_concurrent_creates_of_one_name(self):
        import concurrent.futures
        name = unique("race")
        zip_bytes = harness.echo_zip()

        def one(_):
            try:
                self.daemon.create(name, zip_bytes)
                return "created"
            except ClientError as e:
                return e.response["Error"]["Code"]

        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            results = list(ex.map(one, range(8)))
        self.assertEqual(results.count("created"), 1, results)
        self.assertEqual(results.count("ResourceConflictException"), 7, results)
        _, body = self.daemon.invoke(name, {"race": "won"})
        self.assertEqual(json.loads(body), {"race": "won"})

    def test_large_code_packages(self):
        import io
        import zipfile
        bootstrap = zipfile.ZipFile(io.BytesIO(harness.echo_zip())).read("bootstrap")
        # Incompressible, so the request body is well over Beast's 1 MiB default body limit.
        big = harness.make_zip({"bootstrap": (bootstrap, 0o755), "blob.bin": os.urandom(8 << 20)})
        name = unique("bigzip")
        c = self.daemon.create(name, big)
        self.assertEqual(c["CodeSize"], len(big))
        self.assertEqual(c["CodeSha256"], b64sha256(big))
        _, body = self.daemon.invoke(name, {"big": "code"})
        self.assertEqual(json.loads(body), {"big": "code"})
        big2 = harness.make_zip({"bootstrap": (bootstrap, 0o755), "blob.bin": os.urandom(6 << 20)})
        u = self.daemon.client().update_function_code(FunctionName=name, ZipFile=big2)
        self.assertEqual(u["CodeSize"], len(big2))
        # Over Lambda's request limit for CreateFunction: 413 with Lambda's exception name.
        r = self.daemon.request("POST", "/2015-03-31/functions", json.dumps({
            "FunctionName": unique("huge"), "Runtime": "provided.al2023", "Role": ROLE,
            "Handler": "h", "Code": {"ZipFile": "A" * 71_000_000}}),
            {"Content-Type": "application/json"})
        self.assertEqual(r.status, 413, r)
        self.assertEqual(r.headers.get("x-amzn-errortype"), "RequestEntityTooLargeException")
        self.assertIn("70167211", r.json()["message"])
        self.assertDaemonAlive()

    def test_publish_true_does_not_break(self):
        name = unique("pub")
        c = self.daemon.create(name, Publish=True)
        self.assertEqual(c["FunctionName"], name)
        _, body = self.daemon.invoke(name, {"p": 1})
        self.assertEqual(json.loads(body), {"p": 1})

    def test_get_function_code_location(self):
        name = unique("get")
        zip_bytes = harness.echo_zip()
        self.daemon.create(name, zip_bytes)
        g = self.daemon.client().get_function(FunctionName=name)
        self.assertEqual(g["Configuration"]["FunctionName"], name)
        self.assertEqual(g["Configuration"]["FunctionArn"], function_arn(name))
        self.assertEqual(g["Code"]["RepositoryType"], "S3")
        with urllib.request.urlopen(g["Code"]["Location"], timeout=30) as r:
            self.assertEqual(r.read(), zip_bytes)

    # -- the AWS CLI ----------------------------------------------------------------------------

    def test_aws_cli_create_get_list_invoke_update_delete(self):
        name = unique("cli")
        tmp = self.daemon.tmp
        echo = os.path.join(tmp, "echo.zip")
        with open(echo, "wb") as f:
            f.write(harness.echo_zip())
        inline = os.path.join(tmp, "inline.zip")
        with open(inline, "wb") as f:
            f.write(inline_zip("cli-two"))

        _, c = self.daemon.aws("create-function", "--function-name", name,
                               "--runtime", "provided.al2023", "--role", ROLE,
                               "--handler", "bootstrap.handler", "--zip-file", f"fileb://{echo}",
                               "--memory-size", "256", "--timeout", "5",
                               "--environment", "Variables={COLOR=blue}")
        self.assertEqual(c["FunctionArn"], function_arn(name))
        self.assertEqual(c["MemorySize"], 256)
        self.assertEqual(c["Environment"], {"Variables": {"COLOR": "blue"}})

        _, g = self.daemon.aws("get-function", "--function-name", name)
        self.assertEqual(g["Configuration"]["FunctionName"], name)
        _, gc = self.daemon.aws("get-function-configuration", "--function-name", name)
        self.assertEqual(gc["Timeout"], 5)
        _, lst = self.daemon.aws("list-functions")
        self.assertIn(name, [f["FunctionName"] for f in lst["Functions"]])

        out = os.path.join(tmp, f"{name}.out")
        _, inv = self.daemon.aws("invoke", "--function-name", name, "--log-type", "Tail",
                                 "--payload", '{"from":"cli"}', out)
        self.assertEqual(inv["StatusCode"], 200)
        self.assertEqual(inv["ExecutedVersion"], "$LATEST")
        self.assertIn("REPORT RequestId:", base64.b64decode(inv["LogResult"]).decode())
        with open(out) as f:
            self.assertEqual(json.load(f), {"from": "cli"})

        _, u = self.daemon.aws("update-function-code", "--function-name", name,
                               "--zip-file", f"fileb://{inline}")
        self.assertNotEqual(u["CodeSha256"], c["CodeSha256"])
        self.daemon.aws("invoke", "--function-name", name, "--payload", '{"x":1}', out)
        with open(out) as f:
            self.assertEqual(json.load(f), {"inline": {"x": 1}, "fn": name, "answer": "cli-two"})

        p, _ = self.daemon.aws("delete-function", "--function-name", name)
        self.assertEqual(p.returncode, 0)
        p, _ = self.daemon.aws("get-function", "--function-name", name, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("ResourceNotFoundException", p.stderr)
        self.assertIn(not_found_message(name), p.stderr)

    # -- update ---------------------------------------------------------------------------------

    def test_update_code_changes_the_answer(self):
        name = unique("upd")
        c = self.daemon.create(name, inline_zip("before"))
        _, body = self.daemon.invoke(name, {})
        self.assertEqual(json.loads(body)["answer"], "before")
        new_zip = inline_zip("after")
        u = self.daemon.client().update_function_code(FunctionName=name, ZipFile=new_zip)
        self.assertEqual(u["CodeSha256"], b64sha256(new_zip))
        self.assertEqual(u["CodeSize"], len(new_zip))
        self.assertNotEqual(u["RevisionId"], c["RevisionId"])
        _, body = self.daemon.invoke(name, {})
        self.assertEqual(json.loads(body)["answer"], "after")
        # Back to a completely different runtime binary.
        self.daemon.client().update_function_code(FunctionName=name, ZipFile=harness.echo_zip())
        _, body = self.daemon.invoke(name, {"echo": True})
        self.assertEqual(json.loads(body), {"echo": True})

    def test_update_configuration_is_seen_by_the_function(self):
        name = unique("cfg")
        c = self.daemon.create(name, Environment={"Variables": {"AA": "1", "CC": "gone soon"}})
        _, body = self.daemon.invoke(name, {"hearth_test": {"env": 1}})
        env = json.loads(body)
        self.assertEqual(env["AA"], "1")
        self.assertEqual(env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "128")

        u = self.daemon.client().update_function_configuration(
            FunctionName=name, MemorySize=256, Timeout=10, Description="new",
            Environment={"Variables": {"AA": "2", "BB": "three"}})
        self.assertEqual(u["MemorySize"], 256)
        self.assertEqual(u["Timeout"], 10)
        self.assertEqual(u["Description"], "new")
        self.assertEqual(u["Environment"]["Variables"], {"AA": "2", "BB": "three"})
        self.assertNotEqual(u["RevisionId"], c["RevisionId"])
        self.assertEqual(u["CodeSha256"], c["CodeSha256"])

        _, body = self.daemon.invoke(name, {"hearth_test": {"env": 1}})
        env = json.loads(body)
        self.assertEqual(env["AA"], "2")
        self.assertEqual(env["BB"], "three")
        self.assertNotIn("CC", env)  # Variables replaces the whole map
        self.assertEqual(env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "256")
        _, body = self.daemon.invoke(name, {"hearth_test": {"context": 1}})
        remaining = json.loads(body)["remaining_ms"]
        self.assertGreater(remaining, 8000)
        self.assertLessEqual(remaining, 10000)

        r, _ = self.daemon.invoke(name, {}, LogType="Tail")
        self.assertIn("Memory Size: 256 MB", harness.decode_tail(r))

        g = self.daemon.client().get_function_configuration(FunctionName=name)
        self.assertEqual(g["RevisionId"], u["RevisionId"])
        self.assertEqual(g["MemorySize"], 256)

    def test_revision_id_precondition(self):
        name = unique("rev")
        c = self.daemon.create(name)
        client = self.daemon.client()
        u = client.update_function_configuration(FunctionName=name, Description="one",
                                                 RevisionId=c["RevisionId"])
        with self.assertRaises(ClientError) as ctx:
            client.update_function_configuration(FunctionName=name, Description="two",
                                                 RevisionId=c["RevisionId"])
        self.assertClientError(ctx, "PreconditionFailedException", 412)
        with self.assertRaises(ClientError) as ctx:
            client.update_function_code(FunctionName=name, ZipFile=inline_zip(),
                                        RevisionId=c["RevisionId"])
        self.assertClientError(ctx, "PreconditionFailedException", 412)
        g = client.get_function_configuration(FunctionName=name)
        self.assertEqual(g["Description"], "one")
        self.assertEqual(g["CodeSha256"], c["CodeSha256"])
        client.update_function_code(FunctionName=name, ZipFile=inline_zip(),
                                    RevisionId=u["RevisionId"])

    # -- delete / not found ---------------------------------------------------------------------

    def test_delete_then_not_found_everywhere(self):
        name = unique("del")
        self.daemon.create(name)
        self.daemon.invoke(name, {})
        d = self.daemon.client().delete_function(FunctionName=name)
        self.assertIn(d["ResponseMetadata"]["HTTPStatusCode"], (200, 204))
        client = self.daemon.client()
        self.assertNotFound(lambda: client.get_function(FunctionName=name), name)
        self.assertNotFound(lambda: client.get_function_configuration(FunctionName=name), name)
        self.assertNotFound(lambda: client.invoke(FunctionName=name, Payload=b"{}"), name)
        self.assertNotFound(lambda: client.delete_function(FunctionName=name), name)
        self.assertNotFound(
            lambda: client.update_function_configuration(FunctionName=name, Timeout=5), name)
        self.assertNotFound(
            lambda: client.update_function_code(FunctionName=name, ZipFile=inline_zip()), name)
        # The raw shape: header, request id, and `Message` (capital M) as Lambda sends it.
        r = self.daemon.request("GET", f"/2015-03-31/functions/{name}")
        self.assertEqual(r.status, 404)
        self.assertEqual(r.headers.get("x-amzn-errortype"), "ResourceNotFoundException")
        self.assertTrue(r.headers.get("x-amzn-requestid"))
        self.assertEqual(r.json(), {"Type": "User", "Message": not_found_message(name)})
        # The name can be used again.
        self.daemon.create(name, inline_zip("reborn"))
        _, body = self.daemon.invoke(name, {})
        self.assertEqual(json.loads(body)["answer"], "reborn")

    def test_unknown_route(self):
        r = self.daemon.request("GET", "/2015-03-31/nothing-here")
        self.assertEqual(r.status, 404)
        self.assertTrue(r.headers.get("x-amzn-requestid"))

    # -- names and ARNs -------------------------------------------------------------------------

    def test_partial_and_full_arns_everywhere(self):
        client = self.daemon.client()
        for form in ("partial", "full"):
            name = unique(f"arn{form}")
            ref = (f"{harness.ACCOUNT}:function:{name}" if form == "partial"
                   else function_arn(name))
            with self.subTest(form=form):
                c = self.daemon.create(ref)
                self.assertEqual(c["FunctionName"], name)
                self.assertEqual(c["FunctionArn"], function_arn(name))
                self.assertEqual(client.get_function(FunctionName=ref)
                                 ["Configuration"]["FunctionName"], name)
                self.assertEqual(client.get_function_configuration(FunctionName=ref)
                                 ["FunctionName"], name)
                _, body = self.daemon.invoke(ref, {"via": form})
                self.assertEqual(json.loads(body), {"via": form})
                u = client.update_function_configuration(FunctionName=ref, Description=form)
                self.assertEqual(u["Description"], form)
                u = client.update_function_code(FunctionName=ref, ZipFile=inline_zip(form))
                _, body = self.daemon.invoke(ref, {})
                self.assertEqual(json.loads(body)["answer"], form)
                # Qualified $LATEST works for reads, and the ARN then carries the qualifier.
                g = client.get_function_configuration(FunctionName=ref, Qualifier="$LATEST")
                self.assertEqual(g["FunctionName"], name)
                self.assertEqual(g["FunctionArn"], function_arn(name, "$LATEST"))
                client.delete_function(FunctionName=ref)
                self.assertNotFound(lambda: client.get_function(FunctionName=name), name)

    def test_arn_of_another_account_or_region_is_refused(self):
        name = unique("scope")
        self.daemon.create(name)
        client = self.daemon.client()
        for ref in (f"arn:aws:lambda:us-east-1:111111111111:function:{name}",
                    f"arn:aws:lambda:eu-west-1:000000000000:function:{name}"):
            with self.subTest(ref=ref), self.assertRaises(ClientError) as ctx:
                client.get_function(FunctionName=ref)
            self.assertIn(ctx.exception.response["ResponseMetadata"]["HTTPStatusCode"],
                          (400, 403, 404))

    # -- validation -----------------------------------------------------------------------------

    def assertCreateRefused(self, code, message_part=None, status=400, **kw):
        name = kw.pop("FunctionName", None) or unique("bad")
        args = dict(FunctionName=name, Runtime="provided.al2023", Role=ROLE,
                    Handler="bootstrap.handler", Code={"ZipFile": harness.echo_zip()})
        args.update(kw)
        with self.assertRaises(ClientError) as ctx:
            self.lax_client().create_function(**args)
        err = self.assertClientError(ctx, code, status)
        if message_part:
            self.assertIn(message_part, err["Error"]["Message"])
        return err

    def test_validation_errors(self):
        self.assertCreateRefused("ValidationException", "memorySize", MemorySize=127)
        self.assertCreateRefused("ValidationException", "memorySize", MemorySize=10241)
        self.assertCreateRefused("ValidationException", "timeout", Timeout=0)
        self.assertCreateRefused("ValidationException", "timeout", Timeout=901)
        self.assertCreateRefused("ValidationException", "functionName",
                                 FunctionName="bad name!")
        self.assertCreateRefused("ValidationException", None, FunctionName="x" * 65)
        self.assertCreateRefused("ValidationException", "runtime", Runtime="cobol85")
        self.assertCreateRefused("InvalidParameterValueException", "python2.7",
                                 Runtime="python2.7")
        self.assertCreateRefused("ValidationException", "role", Role="not-a-role")
        err = self.assertCreateRefused("InvalidParameterValueException", "AWS_REGION",
                                       Environment={"Variables": {"AWS_REGION": "mars-1"}})
        self.assertIn("reserved", err["Error"]["Message"])
        self.assertCreateRefused("ValidationException", None,
                                 Environment={"Variables": {"1BAD": "x"}})
        err = self.assertCreateRefused(
            "InvalidParameterValueException", "4KB",
            Environment={"Variables": {"BIG": "v" * 4100}})
        # Just under the limit is fine.
        name = unique("env4k")
        self.daemon.create(name, Environment={"Variables": {"BIG": "v" * 4000}})
        _, body = self.daemon.invoke(name, {"hearth_test": {"env": 1}})
        self.assertEqual(json.loads(body)["BIG"], "v" * 4000)

        # Updates are validated the same way, and a refused update changes nothing.
        client = self.lax_client()
        for kw, code in ((dict(MemorySize=127), "ValidationException"),
                         (dict(Timeout=901), "ValidationException"),
                         (dict(Environment={"Variables": {"AWS_LAMBDA_FUNCTION_NAME": "x"}}),
                          "InvalidParameterValueException")):
            with self.subTest(update=kw), self.assertRaises(ClientError) as ctx:
                client.update_function_configuration(FunctionName=name, **kw)
            self.assertClientError(ctx, code, 400)
        g = client.get_function_configuration(FunctionName=name)
        self.assertEqual((g["MemorySize"], g["Timeout"]), (128, 3))

        # Error shape on the wire: x-amzn-ErrorType, request id, {"Type":"User","message":...}.
        r = self.daemon.request("POST", "/2015-03-31/functions", json.dumps({
            "FunctionName": unique("raw"), "Runtime": "provided.al2023", "Role": ROLE,
            "Handler": "h", "MemorySize": 127,
            "Code": {"ZipFile": base64.b64encode(harness.echo_zip()).decode()}}),
            {"Content-Type": "application/json"})
        self.assertEqual(r.status, 400)
        self.assertEqual(r.headers.get("x-amzn-errortype"), "ValidationException")
        self.assertTrue(r.headers.get("x-amzn-requestid"))
        body = r.json()
        self.assertEqual(body.get("Type"), "User")
        self.assertIn("memorySize", body.get("message", ""))

        r = self.daemon.request("POST", "/2015-03-31/functions", b"{not json",
                                {"Content-Type": "application/json"})
        self.assertEqual(r.status, 400)
        self.assertEqual(r.headers.get("x-amzn-errortype"), "InvalidRequestContentException")
        self.assertDaemonAlive()

    # -- hostile zips ---------------------------------------------------------------------------

    def test_hostile_zips_are_refused_naming_the_entry(self):
        import io
        import zipfile

        def raw_zip(entries):
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w") as zf:
                for info_name, data, mode in entries:
                    info = zipfile.ZipInfo(info_name)
                    info.create_system = 3
                    info.external_attr = mode << 16
                    zf.writestr(info, data)
            return buf.getvalue()

        ok = ("bootstrap", b"#!/bin/sh\n", 0o100755)
        cases = {
            "../evil": raw_zip([ok, ("../evil", b"x", 0o100644)]),
            "a/../../evil": raw_zip([ok, ("a/../../evil", b"x", 0o100644)]),
            "/etc/evil": raw_zip([ok, ("/etc/evil", b"x", 0o100644)]),
            "escape": raw_zip([ok, ("escape", b"../../../../etc/passwd", 0o120777)]),
        }
        for entry, data in cases.items():
            with self.subTest(entry=entry):
                name = unique("hostile")
                with self.assertRaises(ClientError) as ctx:
                    self.daemon.create(name, data)
                err = self.assertClientError(ctx, "InvalidParameterValueException", 400)
                self.assertIn(entry, err["Error"]["Message"])
                self.assertNotFound(
                    lambda: self.daemon.client().get_function(FunctionName=name), name)
        # Nothing escaped into the data directory's parent.
        self.assertFalse(os.path.exists(os.path.join(self.daemon.tmp, "evil")))
        self.assertFalse(os.path.exists(os.path.join(self.daemon.data_dir, "evil")))

        with self.assertRaises(ClientError) as ctx:
            self.daemon.create(unique("garbage"), os.urandom(4096))
        self.assertClientError(ctx, "InvalidParameterValueException", 400, NOT_A_ZIP)

        # A refused code update leaves the function as it was.
        name = unique("keep")
        self.daemon.create(name)
        with self.assertRaises(ClientError) as ctx:
            self.daemon.client().update_function_code(FunctionName=name,
                                                      ZipFile=cases["../evil"])
        err = self.assertClientError(ctx, "InvalidParameterValueException", 400)
        self.assertIn("../evil", err["Error"]["Message"])
        with self.assertRaises(ClientError) as ctx:
            self.daemon.client().update_function_code(FunctionName=name, ZipFile=b"PK\x03\x04junk")
        self.assertClientError(ctx, "InvalidParameterValueException", 400, NOT_A_ZIP)
        _, body = self.daemon.invoke(name, {"still": "echo"})
        self.assertEqual(json.loads(body), {"still": "echo"})
        self.assertDaemonAlive()


class ListFunctionsTest(DaemonTestCase):
    """Its own daemon, so that the listing holds exactly the functions made here."""

    N = 55

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.zip = harness.echo_zip()
        cls.names = sorted(f"list-{i:03d}" for i in range(cls.N))
        for n in cls.names:
            cls.daemon.create(n, cls.zip)

    def list_all(self, max_items=None, path="/2015-03-31/functions"):
        names, pages, marker = [], [], None
        while True:
            q = []
            if max_items:
                q.append(f"MaxItems={max_items}")
            if marker:
                q.append("Marker=" + urllib.request.quote(marker, safe=""))
            r = self.daemon.request("GET", path + ("?" + "&".join(q) if q else ""))
            self.assertEqual(r.status, 200, r)
            body = r.json()
            pages.append(len(body["Functions"]))
            names += [f["FunctionName"] for f in body["Functions"]]
            marker = body.get("NextMarker")
            if not marker:
                return names, pages

    def test_boto3_paging(self):
        client = self.daemon.client()
        names, pages, kw = [], [], {"MaxItems": 20}
        while True:
            r = client.list_functions(**kw)
            pages.append(len(r["Functions"]))
            names += [f["FunctionName"] for f in r["Functions"]]
            if "NextMarker" not in r:
                break
            kw["Marker"] = r["NextMarker"]
        self.assertEqual(pages, [20, 20, 15])
        self.assertEqual(sorted(names), self.names)
        self.assertEqual(len(set(names)), self.N)
        f = client.list_functions(MaxItems=1)["Functions"][0]
        self.assertEqual(f["FunctionArn"], function_arn(f["FunctionName"]))
        self.assertEqual(f["CodeSize"], len(self.zip))

        # The paginator (what most programs use) sees everything once.
        seen = []
        for page in client.get_paginator("list_functions").paginate(
                PaginationConfig={"PageSize": 20}):
            seen += [f["FunctionName"] for f in page["Functions"]]
        self.assertEqual(sorted(seen), self.names)

    def test_both_paths_and_page_cap(self):
        for path in ("/2015-03-31/functions", "/2015-03-31/functions/"):
            with self.subTest(path=path):
                names, pages = self.list_all(20, path)
                self.assertEqual(pages, [20, 20, 15])
                self.assertEqual(sorted(names), self.names)
                # No MaxItems, or a huge one: a page never holds more than 50.
                names, pages = self.list_all(None, path)
                self.assertEqual(pages, [50, 5])
                names, pages = self.list_all(1000, path)
                self.assertEqual(pages, [50, 5])
                self.assertEqual(sorted(names), self.names)

    def test_bad_max_items_and_marker(self):
        for v in ("0", "-1", "abc", "10001"):
            with self.subTest(MaxItems=v):
                r = self.daemon.request("GET", f"/2015-03-31/functions?MaxItems={v}")
                self.assertEqual(r.status, 400, r)
                self.assertTrue(r.headers.get("x-amzn-errortype"))
        r = self.daemon.request("GET", "/2015-03-31/functions?Marker=%21%21%21")
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.headers.get("x-amzn-errortype"), "InvalidParameterValueException")

    def test_aws_cli_lists_everything(self):
        _, out = self.daemon.aws("list-functions")
        self.assertEqual(sorted(f["FunctionName"] for f in out["Functions"]), self.names)
        _, out = self.daemon.aws("list-functions", "--max-items", "20")
        self.assertEqual(len(out["Functions"]), 20)
        self.assertIn("NextToken", out)
        _, out2 = self.daemon.aws("list-functions", "--max-items", "50",
                                  "--starting-token", out["NextToken"])
        self.assertEqual(len(out2["Functions"]), 35)
        self.assertEqual(sorted(f["FunctionName"] for f in out["Functions"] + out2["Functions"]),
                         self.names)


class AccountSettingsTest(DaemonTestCase):
    def test_usage_follows_functions_and_code(self):
        client = self.daemon.client()
        s = client.get_account_settings()
        self.assertEqual(s["AccountUsage"], {"TotalCodeSize": 0, "FunctionCount": 0})
        limit = s["AccountLimit"]
        self.assertEqual(limit["CodeSizeUnzipped"], 262144000)
        self.assertEqual(limit["CodeSizeZipped"], 52428800)
        self.assertGreater(limit["TotalCodeSize"], 0)
        self.assertGreater(limit["ConcurrentExecutions"], 0)

        echo = harness.echo_zip()
        small = inline_zip()
        self.daemon.create("acct-a", echo)
        self.daemon.create("acct-b", echo)
        self.daemon.create("acct-c", small)
        s = client.get_account_settings()
        self.assertEqual(s["AccountUsage"]["FunctionCount"], 3)
        self.assertEqual(s["AccountUsage"]["TotalCodeSize"], 2 * len(echo) + len(small))

        client.update_function_code(FunctionName="acct-a", ZipFile=small)
        s = client.get_account_settings()
        self.assertEqual(s["AccountUsage"]["TotalCodeSize"], len(echo) + 2 * len(small))

        client.delete_function(FunctionName="acct-b")
        s = client.get_account_settings()
        self.assertEqual(s["AccountUsage"], {"TotalCodeSize": 2 * len(small), "FunctionCount": 2})

        _, out = self.daemon.aws("get-account-settings")
        self.assertEqual(out["AccountUsage"]["FunctionCount"], 2)


if __name__ == "__main__":
    unittest.main()
