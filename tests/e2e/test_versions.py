"""Versions and aliases (lambda-reference.md §7) against a real daemon, with boto3 and the AWS CLI:
PublishVersion, ListVersionsByFunction, qualifiers, DeleteFunction of a version, the alias
operations with every validation error, weighted routing and a canary."""

import json
import math
import os
import unittest

from botocore.exceptions import ClientError

import harness
from harness import DaemonTestCase, function_arn, unique

# Answers with the version that ran, the ARN the caller used and the code's tag file. One
# keep-alive connection to the Runtime API, so thousands of invokes stay quick.
VERSION_BOOTSTRAP = r'''
import http.client, json, os
host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
conn = http.client.HTTPConnection(host, int(port))
tag = open("tag.txt").read().strip()
while True:
    conn.request("GET", "/2018-06-01/runtime/invocation/next")
    r = conn.getresponse()
    rid = r.getheader("Lambda-Runtime-Aws-Request-Id")
    arn = r.getheader("Lambda-Runtime-Invoked-Function-Arn")
    r.read()
    out = json.dumps({"version": os.environ["AWS_LAMBDA_FUNCTION_VERSION"], "arn": arn,
                      "tag": tag, "stream": os.environ["AWS_LAMBDA_LOG_STREAM_NAME"]}).encode()
    conn.request("POST", "/2018-06-01/runtime/invocation/" + rid + "/response", body=out)
    conn.getresponse().read()
'''


def tagged_zip(tag: str) -> bytes:
    return harness.python_bootstrap_zip(VERSION_BOOTSTRAP, {"tag.txt": tag})


class VersionsTest(DaemonTestCase):

    def new_function(self, tag="v-a", **kw):
        name = unique("ver")
        self.daemon.create(name, tagged_zip(tag), **kw)
        return name

    def run_version(self, name, qualifier=None):
        kw = {"Qualifier": qualifier} if qualifier else {}
        r, body = self.daemon.invoke(name, {}, **kw)
        self.assertNotIn("FunctionError", r, body)
        return r, json.loads(body)

    # -- PublishVersion ---------------------------------------------------------------------

    def test_publish_snapshots_latest_and_numbers_increase(self):
        c = self.daemon.client()
        name = self.new_function("one")
        v1 = c.publish_version(FunctionName=name, Description="first")
        self.assertEqual(v1["ResponseMetadata"]["HTTPStatusCode"], 201)
        self.assertEqual(v1["Version"], "1")
        self.assertEqual(v1["FunctionArn"], function_arn(name, "1"))
        self.assertEqual(v1["Description"], "first")
        # Nothing changed: the same version comes back.
        again = c.publish_version(FunctionName=name)
        self.assertEqual(again["Version"], "1")
        self.assertEqual(again["RevisionId"], v1["RevisionId"])
        # A config change makes a new version; $LATEST changes, version 1 does not.
        c.update_function_configuration(FunctionName=name, Timeout=7)
        v2 = c.publish_version(FunctionName=name)
        self.assertEqual(v2["Version"], "2")
        self.assertEqual(v2["Timeout"], 7)
        self.assertEqual(c.get_function_configuration(FunctionName=name, Qualifier="1")["Timeout"], 3)
        # A code change too.
        c.update_function_code(FunctionName=name, ZipFile=tagged_zip("two"))
        v3 = c.publish_version(FunctionName=name)
        self.assertEqual(v3["Version"], "3")
        self.assertNotEqual(v3["CodeSha256"], v1["CodeSha256"])
        _, out = self.run_version(name, "1")
        self.assertEqual(out["tag"], "one")
        _, out = self.run_version(name, "3")
        self.assertEqual(out["tag"], "two")

    def test_publish_preconditions(self):
        c = self.daemon.client()
        name = self.new_function()
        latest = c.get_function_configuration(FunctionName=name)
        with self.assertRaises(ClientError) as ctx:
            c.publish_version(FunctionName=name, CodeSha256="AAAA")
        self.assertClientError(ctx, "InvalidParameterValueException", 400,
                               f"CodeSHA256 (AAAA) is different from current CodeSHA256 in "
                               f"$LATEST ({latest['CodeSha256']}). Please try again with the "
                               f"CodeSHA256 in $LATEST.")
        with self.assertRaises(ClientError) as ctx:
            c.publish_version(FunctionName=name, RevisionId="not-the-revision")
        self.assertClientError(ctx, "PreconditionFailedException", 412)
        v = c.publish_version(FunctionName=name, CodeSha256=latest["CodeSha256"],
                              RevisionId=latest["RevisionId"])
        self.assertEqual(v["Version"], "1")
        with self.assertRaises(ClientError) as ctx:
            c.publish_version(FunctionName=unique("missing"))
        self.assertClientError(ctx, "ResourceNotFoundException", 404)

    def test_publish_flag_on_create_and_update_code(self):
        c = self.daemon.client()
        name = unique("ver")
        created = self.daemon.create(name, tagged_zip("p1"), Publish=True)
        self.assertEqual(created["Version"], "1")
        self.assertEqual(created["FunctionArn"], function_arn(name, "1"))
        updated = c.update_function_code(FunctionName=name, ZipFile=tagged_zip("p2"), Publish=True)
        self.assertEqual(updated["Version"], "2")
        _, out = self.run_version(name, "2")
        self.assertEqual(out["tag"], "p2")

    def test_list_versions_pages_latest_first(self):
        c = self.daemon.client()
        name = self.new_function()
        for t in range(4):
            c.update_function_configuration(FunctionName=name, Timeout=10 + t)
            c.publish_version(FunctionName=name)
        seen = []
        marker = None
        while True:
            kw = {"Marker": marker} if marker else {}
            page = c.list_versions_by_function(FunctionName=name, MaxItems=2, **kw)
            self.assertLessEqual(len(page["Versions"]), 2)
            seen += [v["Version"] for v in page["Versions"]]
            marker = page.get("NextMarker")
            if not marker:
                break
        self.assertEqual(seen, ["$LATEST", "1", "2", "3", "4"])
        full = c.list_versions_by_function(FunctionName=name)["Versions"]
        self.assertEqual(full[0]["FunctionArn"], function_arn(name, "$LATEST"))
        self.assertEqual(full[2]["FunctionArn"], function_arn(name, "2"))
        # The paginator (boto3's own marker loop) agrees.
        pages = c.get_paginator("list_versions_by_function").paginate(
            FunctionName=name, PaginationConfig={"PageSize": 3})
        self.assertEqual([v["Version"] for p in pages for v in p["Versions"]], seen)
        with self.assertRaises(ClientError) as ctx:
            c.list_versions_by_function(FunctionName=unique("missing"))
        self.assertClientError(ctx, "ResourceNotFoundException", 404)

    # -- qualifiers -------------------------------------------------------------------------

    def test_qualifiers_everywhere(self):
        c = self.daemon.client()
        name = self.new_function("q1")
        c.publish_version(FunctionName=name)
        c.update_function_code(FunctionName=name, ZipFile=tagged_zip("q2"))
        for ref, q in ((f"{name}:1", None), (name, "1"), (function_arn(name, "1"), None),
                       (function_arn(name), "1")):
            kw = {"Qualifier": q} if q else {}
            conf = c.get_function_configuration(FunctionName=ref, **kw)
            self.assertEqual(conf["Version"], "1")
            self.assertEqual(conf["FunctionArn"], function_arn(name, "1"))
            got = c.get_function(FunctionName=ref, **kw)
            self.assertEqual(got["Configuration"]["Version"], "1")
            r, out = self.run_version(ref, q)
            self.assertEqual(r["ExecutedVersion"], "1")
            self.assertEqual(out["version"], "1")
            self.assertEqual(out["tag"], "q1")
            self.assertEqual(out["arn"], function_arn(name, "1"))
        r, out = self.run_version(name)
        self.assertEqual(r["ExecutedVersion"], "$LATEST")
        self.assertEqual(out["tag"], "q2")
        self.assertIn("[1]", self.run_version(name, "1")[1]["stream"])
        logs = self.daemon.logs(name)
        self.assertRegex(logs, r"START RequestId: [0-9a-f-]{36} Version: 1\n")
        # A mismatch between the name's qualifier and ?Qualifier= is a 400.
        with self.assertRaises(ClientError) as ctx:
            c.get_function(FunctionName=f"{name}:1", Qualifier="2")
        self.assertEqual(ctx.exception.response["ResponseMetadata"]["HTTPStatusCode"], 400)
        # Unknown versions are not found everywhere.
        for call in (lambda: c.get_function(FunctionName=name, Qualifier="9"),
                     lambda: c.get_function_configuration(FunctionName=f"{name}:9"),
                     lambda: c.invoke(FunctionName=name, Qualifier="9", Payload=b"{}")):
            with self.assertRaises(ClientError) as ctx:
                call()
            self.assertClientError(ctx, "ResourceNotFoundException", 404,
                                   f"Function not found: {function_arn(name, '9')}")
        # Versions are immutable: updates take no qualifier.
        with self.assertRaises(ClientError) as ctx:
            c.update_function_configuration(FunctionName=f"{name}:1", Timeout=9)
        self.assertEqual(ctx.exception.response["ResponseMetadata"]["HTTPStatusCode"], 400)
        # DryRun reports the version too.
        dry = c.invoke(FunctionName=name, Qualifier="1", InvocationType="DryRun")
        self.assertEqual(dry["ExecutedVersion"], "1")

    def test_delete_version(self):
        c = self.daemon.client()
        name = self.new_function()
        c.publish_version(FunctionName=name)
        c.update_function_configuration(FunctionName=name, Timeout=9)
        c.publish_version(FunctionName=name)
        with self.assertRaises(ClientError) as ctx:
            c.delete_function(FunctionName=name, Qualifier="$LATEST")
        self.assertClientError(ctx, "InvalidParameterValueException", 400,
                               "$LATEST version cannot be deleted without deleting the function.")
        c.delete_function(FunctionName=name, Qualifier="2")
        with self.assertRaises(ClientError) as ctx:
            c.get_function(FunctionName=name, Qualifier="2")
        self.assertClientError(ctx, "ResourceNotFoundException", 404)
        with self.assertRaises(ClientError) as ctx:
            c.delete_function(FunctionName=name, Qualifier="2")
        self.assertClientError(ctx, "ResourceNotFoundException", 404)
        # Numbers are never reused.
        c.update_function_configuration(FunctionName=name, Timeout=11)
        self.assertEqual(c.publish_version(FunctionName=name)["Version"], "3")
        self.assertEqual([v["Version"] for v in
                          c.list_versions_by_function(FunctionName=name)["Versions"]],
                         ["$LATEST", "1", "3"])
        self.assertEqual(c.get_function(FunctionName=name)["Configuration"]["Version"], "$LATEST")
        # Deleting the function takes every version.
        c.delete_function(FunctionName=name)
        with self.assertRaises(ClientError):
            c.get_function(FunctionName=name, Qualifier="1")

    def test_account_settings_count_every_version(self):
        c = self.daemon.client()
        before = c.get_account_settings()["AccountUsage"]["TotalCodeSize"]
        name = self.new_function()
        size = c.get_function(FunctionName=name)["Configuration"]["CodeSize"]
        c.publish_version(FunctionName=name)
        c.update_function_configuration(FunctionName=name, Timeout=8)
        c.publish_version(FunctionName=name)
        after = c.get_account_settings()["AccountUsage"]["TotalCodeSize"]
        self.assertEqual(after - before, 3 * size)
        c.delete_function(FunctionName=name)

    # -- aliases ----------------------------------------------------------------------------

    def function_with_versions(self, n=2):
        c = self.daemon.client()
        name = self.new_function("t1")
        c.publish_version(FunctionName=name)
        for i in range(2, n + 1):
            c.update_function_code(FunctionName=name, ZipFile=tagged_zip(f"t{i}"))
            c.publish_version(FunctionName=name)
        return name

    def test_alias_crud(self):
        c = self.daemon.client()
        name = self.function_with_versions(3)
        a = c.create_alias(FunctionName=name, Name="live", FunctionVersion="1", Description="d")
        self.assertEqual(a["ResponseMetadata"]["HTTPStatusCode"], 201)
        self.assertEqual(a["AliasArn"], function_arn(name, "live"))
        self.assertEqual(a["FunctionVersion"], "1")
        self.assertEqual(a["Description"], "d")
        got = c.get_alias(FunctionName=name, Name="live")
        self.assertEqual(got["RevisionId"], a["RevisionId"])
        up = c.update_alias(FunctionName=name, Name="live", FunctionVersion="2",
                            RoutingConfig={"AdditionalVersionWeights": {"3": 0.25}},
                            RevisionId=a["RevisionId"])
        self.assertEqual(up["FunctionVersion"], "2")
        self.assertEqual(up["RoutingConfig"], {"AdditionalVersionWeights": {"3": 0.25}})
        self.assertNotEqual(up["RevisionId"], a["RevisionId"])
        with self.assertRaises(ClientError) as ctx:
            c.update_alias(FunctionName=name, Name="live", FunctionVersion="1",
                           RevisionId=a["RevisionId"])
        self.assertClientError(ctx, "PreconditionFailedException", 412)
        cleared = c.update_alias(FunctionName=name, Name="live",
                                 RoutingConfig={"AdditionalVersionWeights": {}})
        self.assertNotIn("RoutingConfig", cleared)
        c.create_alias(FunctionName=name, Name="beta", FunctionVersion="$LATEST")
        c.create_alias(FunctionName=name, Name="old", FunctionVersion="1")
        names = [x["Name"] for x in c.list_aliases(FunctionName=name)["Aliases"]]
        self.assertEqual(names, ["beta", "live", "old"])
        only1 = c.list_aliases(FunctionName=name, FunctionVersion="1")["Aliases"]
        self.assertEqual([x["Name"] for x in only1], ["old"])
        pages = c.get_paginator("list_aliases").paginate(
            FunctionName=name, PaginationConfig={"PageSize": 2})
        self.assertEqual([x["Name"] for p in pages for x in p["Aliases"]], names)
        # GetFunction through an alias shows its version under the alias ARN.
        conf = c.get_function_configuration(FunctionName=name, Qualifier="live")
        self.assertEqual(conf["Version"], "2")
        self.assertEqual(conf["FunctionArn"], function_arn(name, "live"))
        c.delete_alias(FunctionName=name, Name="old")
        with self.assertRaises(ClientError) as ctx:
            c.get_alias(FunctionName=name, Name="old")
        self.assertClientError(ctx, "ResourceNotFoundException", 404)
        # Aliases survive a restart (loaded into the registry with the versions).
        self.daemon.restart()
        c = self.daemon.client()
        self.assertEqual(c.get_alias(FunctionName=name, Name="live")["FunctionVersion"], "2")
        r, out = self.run_version(name, "live")
        self.assertEqual(r["ExecutedVersion"], "2")
        self.assertEqual(out["tag"], "t2")

    def test_alias_errors(self):
        c = self.daemon.client()
        name = self.function_with_versions(2)
        c.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
        with self.assertRaises(ClientError) as ctx:
            c.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
        self.assertClientError(ctx, "ResourceConflictException", 409,
                               f"Alias already exists: {function_arn(name, 'live')}")
        cases = [
            ({"Name": "x", "FunctionVersion": "1",
              "RoutingConfig": {"AdditionalVersionWeights": {"2": 0.1, "3": 0.1}}},
             "InvalidParameterValueException",
             "Number of items in AdditionalVersionWeights cannot be greater than 1"),
            ({"Name": "x", "FunctionVersion": "1",
              "RoutingConfig": {"AdditionalVersionWeights": {"1": 0.5}}},
             "InvalidParameterValueException",
             "Function version 1 is already included in routing configuration."),
            ({"Name": "x", "FunctionVersion": "$LATEST",
              "RoutingConfig": {"AdditionalVersionWeights": {"1": 0.5}}},
             "InvalidParameterValueException",
             "$LATEST is not supported for an alias pointing to more than 1 version"),
            ({"Name": "x", "FunctionVersion": "1",
              "RoutingConfig": {"AdditionalVersionWeights": {"2": 1.5}}},
             "ValidationException", None),
            ({"Name": "x", "FunctionVersion": "7"}, "ResourceNotFoundException",
             f"Function not found: {function_arn(name, '7')}"),
            ({"Name": "x", "FunctionVersion": "1",
              "RoutingConfig": {"AdditionalVersionWeights": {"8": 0.5}}},
             "ResourceNotFoundException", f"Function not found: {function_arn(name, '8')}"),
            ({"Name": "123", "FunctionVersion": "1"}, "ValidationException", None),
            ({"Name": "a" * 129, "FunctionVersion": "1"}, "ValidationException", None),
            ({"Name": "bad.name", "FunctionVersion": "1"}, "ValidationException", None),
            ({"Name": "x", "FunctionVersion": "live"}, "ValidationException", None),
        ]
        for kw, code, msg in cases:
            with self.subTest(kw=kw):
                with self.assertRaises(ClientError) as ctx:
                    c.create_alias(FunctionName=name, **kw)
                self.assertClientError(ctx, code, None, msg)
        # botocore refuses a negative weight itself; the daemon does too.
        r = self.daemon.request(
            "POST", f"/2015-03-31/functions/{name}/aliases",
            json.dumps({"Name": "x", "FunctionVersion": "1",
                        "RoutingConfig": {"AdditionalVersionWeights": {"2": -0.5}}}))
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.headers["x-amzn-errortype"], "ValidationException")
        with self.assertRaises(ClientError) as ctx:
            c.create_alias(FunctionName=unique("missing"), Name="x", FunctionVersion="1")
        self.assertClientError(ctx, "ResourceNotFoundException", 404)
        with self.assertRaises(ClientError) as ctx:
            c.update_alias(FunctionName=name, Name="nope", FunctionVersion="1")
        self.assertClientError(ctx, "ResourceNotFoundException", 404)
        # A version an alias uses cannot be deleted.
        with self.assertRaises(ClientError) as ctx:
            c.delete_function(FunctionName=name, Qualifier="1")
        self.assertClientError(ctx, "ResourceConflictException", 409)
        c.update_alias(FunctionName=name, Name="live", FunctionVersion="2",
                       RoutingConfig={"AdditionalVersionWeights": {"1": 0.5}})
        with self.assertRaises(ClientError) as ctx:
            c.delete_function(FunctionName=name, Qualifier="1")
        self.assertClientError(ctx, "ResourceConflictException", 409)
        # Invoking an unknown alias.
        with self.assertRaises(ClientError) as ctx:
            c.invoke(FunctionName=name, Qualifier="nope", Payload=b"{}")
        self.assertClientError(ctx, "ResourceNotFoundException", 404,
                               f"Function not found: {function_arn(name, 'nope')}")

    def test_invoke_through_alias_reports_version_and_alias_arn(self):
        c = self.daemon.client()
        name = self.function_with_versions(2)
        c.create_alias(FunctionName=name, Name="prod", FunctionVersion="2")
        for ref, q in ((f"{name}:prod", None), (name, "prod"), (function_arn(name, "prod"), None)):
            kw = {"Qualifier": q} if q else {}
            r, out = self.run_version(ref, q)
            self.assertEqual(r["ExecutedVersion"], "2")
            self.assertEqual(out["version"], "2")
            self.assertEqual(out["arn"], function_arn(name, "prod"))
        self.assertRegex(self.daemon.logs(name), r"START RequestId: [0-9a-f-]{36} Version: 2\n")

    def test_canary(self):
        """An alias moved 100/0, 90/10, 50/50, then fully to the new version; 10,000 invokes at
        90/10 land within 4 sigma of the weight. Raw http.client with keep-alive keeps it fast."""
        import http.client
        c = self.daemon.client()
        # The C++ echo runtime (the version is counted from X-Amz-Executed-Version): ~0.4 ms per
        # warm invoke, so 11,400 invokes take seconds.
        name = unique("canary")
        self.daemon.create(name, harness.echo_zip())
        c.publish_version(FunctionName=name)
        c.update_function_configuration(FunctionName=name, Timeout=5)
        self.assertEqual(c.publish_version(FunctionName=name)["Version"], "2")
        c.create_alias(FunctionName=name, Name="canary", FunctionVersion="1")
        conn = http.client.HTTPConnection("127.0.0.1", self.daemon.port, timeout=30)
        path = f"/2015-03-31/functions/{name}:canary/invocations"

        def split(n):
            counts = {}
            for _ in range(n):
                conn.request("POST", path, body=b"{}", headers={"Content-Type": "application/json"})
                r = conn.getresponse()
                body = r.read()
                self.assertEqual(r.status, 200, body)
                self.assertEqual(body, b"{}")
                v = r.getheader("X-Amz-Executed-Version")
                counts[v] = counts.get(v, 0) + 1
            return counts

        self.assertEqual(split(200), {"1": 200})
        c.update_alias(FunctionName=name, Name="canary", FunctionVersion="1",
                       RoutingConfig={"AdditionalVersionWeights": {"2": 0.1}})
        n = 10000
        counts = split(n)
        self.assertEqual(set(counts) | {"1", "2"}, {"1", "2"})
        sigma = math.sqrt(n * 0.1 * 0.9)
        self.assertLess(abs(counts.get("2", 0) - n * 0.1), 4 * sigma, counts)
        c.update_alias(FunctionName=name, Name="canary", FunctionVersion="1",
                       RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}})
        counts = split(1000)
        sigma = math.sqrt(1000 * 0.25)
        self.assertLess(abs(counts.get("2", 0) - 500), 4 * sigma, counts)
        c.update_alias(FunctionName=name, Name="canary", FunctionVersion="2",
                       RoutingConfig={"AdditionalVersionWeights": {}})
        self.assertEqual(split(200), {"2": 200})
        conn.close()


class VersionsCliTest(DaemonTestCase):
    """The same operations through the AWS CLI v1."""

    def test_cli_versions_and_aliases(self):
        name = unique("cli")
        zpath = os.path.join(self.daemon.tmp, f"{name}.zip")
        with open(zpath, "wb") as f:
            f.write(tagged_zip("c1"))
        _, out = self.daemon.aws("create-function", "--function-name", name, "--runtime",
                                 "provided.al2023", "--role", harness.ROLE, "--handler", "x",
                                 "--zip-file", f"fileb://{zpath}", "--publish")
        self.assertEqual(out["Version"], "1")
        _, out = self.daemon.aws("update-function-configuration", "--function-name", name,
                                 "--timeout", "9")
        _, out = self.daemon.aws("publish-version", "--function-name", name,
                                 "--description", "second")
        self.assertEqual(out["Version"], "2")
        _, out = self.daemon.aws("list-versions-by-function", "--function-name", name)
        self.assertEqual([v["Version"] for v in out["Versions"]], ["$LATEST", "1", "2"])
        _, out = self.daemon.aws("get-function", "--function-name", name, "--qualifier", "1")
        self.assertEqual(out["Configuration"]["Version"], "1")
        _, out = self.daemon.aws("create-alias", "--function-name", name, "--name", "live",
                                 "--function-version", "1", "--routing-config",
                                 '{"AdditionalVersionWeights":{"2":0.3}}')
        self.assertEqual(out["RoutingConfig"]["AdditionalVersionWeights"], {"2": 0.3})
        _, out = self.daemon.aws("update-alias", "--function-name", name, "--name", "live",
                                 "--function-version", "2", "--routing-config",
                                 '{"AdditionalVersionWeights":{}}')
        self.assertEqual(out["FunctionVersion"], "2")
        _, out = self.daemon.aws("get-alias", "--function-name", name, "--name", "live")
        self.assertEqual(out["FunctionVersion"], "2")
        _, out = self.daemon.aws("list-aliases", "--function-name", name)
        self.assertEqual([a["Name"] for a in out["Aliases"]], ["live"])
        outfile = os.path.join(self.daemon.tmp, "out.json")
        _, out = self.daemon.aws("invoke", "--function-name", f"{name}:live", outfile)
        self.assertEqual(out["ExecutedVersion"], "2")
        with open(outfile) as f:
            self.assertEqual(json.load(f)["version"], "2")
        p, _ = self.daemon.aws("delete-function", "--function-name", name, "--qualifier", "2",
                               check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("ResourceConflictException", p.stderr)
        p, _ = self.daemon.aws("create-alias", "--function-name", name, "--name", "x",
                               "--function-version", "1", "--routing-config",
                               '{"AdditionalVersionWeights":{"2":0.1,"3":0.1}}', check=False)
        self.assertIn("Number of items in AdditionalVersionWeights cannot be greater than 1",
                      p.stderr)
        self.daemon.aws("delete-alias", "--function-name", name, "--name", "live")
        self.daemon.aws("delete-function", "--function-name", name, "--qualifier", "1")
        _, out = self.daemon.aws("list-versions-by-function", "--function-name", name)
        self.assertEqual([v["Version"] for v in out["Versions"]], ["$LATEST", "2"])
        self.daemon.aws("delete-function", "--function-name", name)


if __name__ == "__main__":
    unittest.main()
