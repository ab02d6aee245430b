"""Layers (lambda-reference.md §3.5, §4.3-4.5) against a real daemon, with boto3 and the AWS CLI:
PublishLayerVersion, GetLayerVersion(ByArn), ListLayers, ListLayerVersions, DeleteLayerVersion
with their errors; functions using layers: a custom runtime shipped as a layer, layers stacked in
order into /opt, a deleted layer version that keeps working, and the 250 MB unzipped limit."""

import base64
import hashlib
import io
import json
import os
import re
import unittest
import urllib.request
import zipfile

from botocore.exceptions import ClientError

import harness
from harness import ACCOUNT, REGION, DaemonTestCase, unique

# Answers with what it finds in /opt (and its PATH), over one keep-alive Runtime API connection.
OPT_BOOTSTRAP = r'''
import http.client, json, os
host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
conn = http.client.HTTPConnection(host, int(port))
def read(p):
    try:
        return open(p).read()
    except OSError as e:
        return "missing: " + str(e)
while True:
    conn.request("GET", "/2018-06-01/runtime/invocation/next")
    r = conn.getresponse()
    rid = r.getheader("Lambda-Runtime-Aws-Request-Id")
    r.read()
    out = json.dumps({"x": read("/opt/x.txt"), "a": read("/opt/a.txt"),
                      "path": os.environ.get("PATH", ""),
                      "ld": os.environ.get("LD_LIBRARY_PATH", "")}).encode()
    conn.request("POST", "/2018-06-01/runtime/invocation/" + rid + "/response", body=out)
    conn.getresponse().read()
'''


def layer_arn(name, version=None):
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:{name}"
    return arn if version is None else f"{arn}:{version}"


def echo_bootstrap() -> bytes:
    with zipfile.ZipFile(io.BytesIO(harness.echo_zip())) as z:
        return z.read("bootstrap")


def padded_zip(name: str, size: int) -> bytes:
    """A zip holding one file of `size` bytes that compresses about 500:1 (under the code store's
    zip-bomb ratio), so a few hundred KB upload unpacks to hundreds of MB."""
    chunk = 64 * 1024
    parts = []
    left = size
    while left > 0:
        n = min(chunk, left)
        head = os.urandom(min(64, n))
        parts.append(head + b"\0" * (n - len(head)))
        left -= n
    return harness.make_zip({name: b"".join(parts)})


class LayersTest(DaemonTestCase):

    def sandboxed(self):
        return "process" not in self.daemon.extra_args

    def publish(self, name=None, files=None, **kw):
        name = name or unique("layer")
        zip_bytes = harness.make_zip(files or {"x.txt": "x"})
        out = self.daemon.client().publish_layer_version(
            LayerName=name, Content={"ZipFile": zip_bytes}, **kw)
        return name, out, zip_bytes

    # -- the layer operations -----------------------------------------------------------------

    def test_publish_get_list_delete(self):
        c = self.daemon.client()
        name, v1, zip1 = self.publish(
            files={"python/mod.py": "V = 1\n"}, Description="first",
            CompatibleRuntimes=["python3.11", "provided.al2023"],
            CompatibleArchitectures=["x86_64"], LicenseInfo="MIT")
        self.assertEqual(v1["ResponseMetadata"]["HTTPStatusCode"], 201)
        self.assertEqual(v1["Version"], 1)
        self.assertEqual(v1["LayerArn"], layer_arn(name))
        self.assertEqual(v1["LayerVersionArn"], layer_arn(name, 1))
        self.assertEqual(v1["Description"], "first")
        self.assertEqual(v1["LicenseInfo"], "MIT")
        self.assertEqual(v1["CompatibleRuntimes"], ["python3.11", "provided.al2023"])
        self.assertEqual(v1["CompatibleArchitectures"], ["x86_64"])
        self.assertRegex(v1["CreatedDate"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$")
        content = v1["Content"]
        self.assertEqual(content["CodeSize"], len(zip1))
        self.assertEqual(content["CodeSha256"],
                         base64.b64encode(hashlib.sha256(zip1).digest()).decode())
        with urllib.request.urlopen(content["Location"], timeout=10) as r:
            self.assertEqual(r.read(), zip1)

        got = c.get_layer_version(LayerName=name, VersionNumber=1)
        self.assertEqual(got["LayerVersionArn"], layer_arn(name, 1))
        self.assertEqual(got["Content"]["CodeSha256"], content["CodeSha256"])
        by_arn = c.get_layer_version_by_arn(Arn=layer_arn(name, 1))
        self.assertEqual(by_arn["Version"], 1)
        self.assertEqual(by_arn["Description"], "first")
        # The layer name may be its ARN.
        self.assertEqual(c.get_layer_version(LayerName=layer_arn(name), VersionNumber=1)["Version"], 1)

        _, v2, _ = self.publish(name, {"nodejs/x.js": "1"}, CompatibleRuntimes=["nodejs20.x"])
        self.assertEqual(v2["Version"], 2)
        versions = c.list_layer_versions(LayerName=name)["LayerVersions"]
        self.assertEqual([v["Version"] for v in versions], [2, 1])  # newest first
        self.assertNotIn("Content", versions[0])
        py = c.list_layer_versions(LayerName=name, CompatibleRuntime="python3.11")["LayerVersions"]
        self.assertEqual([v["Version"] for v in py], [1])
        page = c.list_layer_versions(LayerName=name, MaxItems=1)
        self.assertEqual([v["Version"] for v in page["LayerVersions"]], [2])
        rest = c.list_layer_versions(LayerName=name, MaxItems=1, Marker=page["NextMarker"])
        self.assertEqual([v["Version"] for v in rest["LayerVersions"]], [1])
        self.assertNotIn("NextMarker", rest)

        layers = {l["LayerName"]: l for l in c.list_layers()["Layers"]}
        self.assertIn(name, layers)
        self.assertEqual(layers[name]["LayerArn"], layer_arn(name))
        self.assertEqual(layers[name]["LatestMatchingVersion"]["Version"], 2)
        layers = {l["LayerName"]: l for l in c.list_layers(CompatibleRuntime="python3.11")["Layers"]}
        self.assertEqual(layers[name]["LatestMatchingVersion"]["Version"], 1)
        layers = {l["LayerName"]: l for l in c.list_layers(CompatibleArchitecture="arm64")["Layers"]}
        self.assertNotIn(name, layers)

        # Delete: 204, gone from every view; the number is never handed out again.
        d = c.delete_layer_version(LayerName=name, VersionNumber=2)
        self.assertEqual(d["ResponseMetadata"]["HTTPStatusCode"], 204)
        with self.assertRaises(ClientError) as ctx:
            c.get_layer_version(LayerName=name, VersionNumber=2)
        self.assertClientError(ctx, "ResourceNotFoundException", 404,
                               f"Layer version {layer_arn(name, 2)} does not exist.")
        with self.assertRaises(ClientError) as ctx:
            c.get_layer_version_by_arn(Arn=layer_arn(name, 2))
        self.assertClientError(ctx, "ResourceNotFoundException", 404)
        self.assertEqual([v["Version"] for v in c.list_layer_versions(LayerName=name)["LayerVersions"]], [1])
        _, v3, _ = self.publish(name)
        self.assertEqual(v3["Version"], 3)
        # Deleting what is not there is not an error, as in Lambda.
        d = c.delete_layer_version(LayerName=name, VersionNumber=2)
        self.assertEqual(d["ResponseMetadata"]["HTTPStatusCode"], 204)
        d = c.delete_layer_version(LayerName=unique("never"), VersionNumber=7)
        self.assertEqual(d["ResponseMetadata"]["HTTPStatusCode"], 204)
        # Versions survive a restart, and so does the counter.
        self.daemon.restart()
        c = self.daemon.client()
        self.assertEqual([v["Version"] for v in c.list_layer_versions(LayerName=name)["LayerVersions"]], [3, 1])
        _, v4, _ = self.publish(name)
        self.assertEqual(v4["Version"], 4)

    def test_list_layers_pages(self):
        c = self.daemon.client()
        prefix = unique("pg")
        for i in range(3):
            self.publish(f"{prefix}-{i}", CompatibleRuntimes=["provided.al2"])
        seen, marker = [], None
        while True:
            kw = {"Marker": marker} if marker else {}
            page = c.list_layers(MaxItems=2, CompatibleRuntime="provided.al2", **kw)
            self.assertLessEqual(len(page["Layers"]), 2)
            seen += [l["LayerName"] for l in page["Layers"]]
            marker = page.get("NextMarker")
            if not marker:
                break
        self.assertEqual([s for s in seen if s.startswith(prefix)],
                         [f"{prefix}-{i}" for i in range(3)])
        self.assertEqual(len(seen), len(set(seen)))

    def test_publish_and_get_errors(self):
        c = self.daemon.client()
        with self.assertRaises(ClientError) as ctx:
            c.publish_layer_version(LayerName="bad name!", Content={"ZipFile": harness.make_zip({"a": "b"})})
        self.assertClientError(ctx, "ValidationException", 400)
        with self.assertRaises(ClientError) as ctx:
            self.publish(CompatibleRuntimes=["python3.11"] * 16)
        self.assertClientError(ctx, "ValidationException", 400,
                               re.compile("compatibleRuntimes"))
        with self.assertRaises(ClientError) as ctx:
            self.publish(CompatibleRuntimes=["cobol9"])
        self.assertClientError(ctx, "ValidationException", 400)
        with self.assertRaises(ClientError) as ctx:
            self.publish(CompatibleArchitectures=["x86_64", "arm64", "x86_64"])
        self.assertClientError(ctx, "ValidationException", 400)
        with self.assertRaises(ClientError) as ctx:
            self.publish(CompatibleArchitectures=["sparc"])
        self.assertClientError(ctx, "ValidationException", 400)
        with self.assertRaises(ClientError) as ctx:
            self.publish(LicenseInfo="L" * 513)
        self.assertClientError(ctx, "ValidationException", 400)
        with self.assertRaises(ClientError) as ctx:
            self.publish(Description="d" * 257)
        self.assertClientError(ctx, "ValidationException", 400)
        with self.assertRaises(ClientError) as ctx:
            c.publish_layer_version(LayerName=unique("l"), Content={"ZipFile": b"not a zip"})
        self.assertClientError(ctx, "InvalidParameterValueException", 400)
        # Missing Content (boto3 would refuse to send it).
        r = self.daemon.request("POST", f"/2018-10-31/layers/{unique('l')}/versions", "{}")
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.headers.get("x-amzn-errortype"), "ValidationException", r)
        # Unknown versions and layers.
        with self.assertRaises(ClientError) as ctx:
            c.get_layer_version(LayerName=unique("nope"), VersionNumber=1)
        self.assertClientError(ctx, "ResourceNotFoundException", 404)
        with self.assertRaises(ClientError) as ctx:
            c.get_layer_version_by_arn(Arn="arn:aws:lambda:us-east-1:000000000000:function:f")
        self.assertClientError(ctx, "ValidationException", 400)
        self.assertEqual(c.list_layer_versions(LayerName=unique("nope"))["LayerVersions"], [])
        with self.assertRaises(ClientError) as ctx:
            c.list_layers(MaxItems=51)
        self.assertClientError(ctx, "ValidationException", 400)
        self.assertDaemonAlive()

    def test_aws_cli(self):
        name = unique("cli-layer")
        zpath = os.path.join(self.daemon.tmp, name + ".zip")
        with open(zpath, "wb") as f:
            f.write(harness.make_zip({"bin/tool": ("#!/bin/sh\necho hi\n", 0o755)}))
        _, out = self.daemon.aws("publish-layer-version", "--layer-name", name,
                                 "--zip-file", f"fileb://{zpath}",
                                 "--compatible-runtimes", "provided.al2023",
                                 "--compatible-architectures", "x86_64",
                                 "--license-info", "Apache-2.0", "--description", "from the cli")
        self.assertEqual(out["Version"], 1)
        self.assertEqual(out["LicenseInfo"], "Apache-2.0")
        _, out = self.daemon.aws("get-layer-version", "--layer-name", name, "--version-number", "1")
        self.assertEqual(out["Description"], "from the cli")
        _, out = self.daemon.aws("get-layer-version-by-arn", "--arn", layer_arn(name, 1))
        self.assertEqual(out["LayerVersionArn"], layer_arn(name, 1))
        _, out = self.daemon.aws("list-layer-versions", "--layer-name", name)
        self.assertEqual([v["Version"] for v in out["LayerVersions"]], [1])
        _, out = self.daemon.aws("list-layers", "--compatible-runtime", "provided.al2023")
        self.assertIn(name, [l["LayerName"] for l in out["Layers"]])
        p, _ = self.daemon.aws("delete-layer-version", "--layer-name", name, "--version-number", "1")
        self.assertEqual(p.returncode, 0)
        p, _ = self.daemon.aws("get-layer-version", "--layer-name", name, "--version-number", "1",
                               check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("ResourceNotFoundException", p.stderr)

    # -- functions using layers ---------------------------------------------------------------

    def test_custom_runtime_shipped_as_a_layer(self):
        c = self.daemon.client()
        layer_zip = harness.make_zip({"bootstrap": (echo_bootstrap(), 0o755)})
        runtime = c.publish_layer_version(LayerName=unique("echo-runtime"),
                                          Content={"ZipFile": layer_zip},
                                          CompatibleRuntimes=["provided.al2023"])
        fn = unique("layer-rt")
        created = self.daemon.create(fn, harness.make_zip({"function.sh": "handler only\n"}),
                                     Handler="function.handler",
                                     Layers=[runtime["LayerVersionArn"]])
        self.assertEqual(created["Layers"], [{"Arn": runtime["LayerVersionArn"],
                                              "CodeSize": len(layer_zip)}])
        r, body = self.daemon.invoke(fn, {"hello": "layer"})
        self.assertNotIn("FunctionError", r, body)
        self.assertEqual(json.loads(body), {"hello": "layer"})
        conf = c.get_function_configuration(FunctionName=fn)
        self.assertEqual(conf["Layers"][0]["CodeSize"], len(layer_zip))
        # A published version keeps its layers.
        v1 = c.publish_version(FunctionName=fn)
        self.assertEqual(v1["Layers"], created["Layers"])
        r, body = self.daemon.invoke(fn, {"v": 1}, Qualifier="1")
        self.assertNotIn("FunctionError", r, body)
        self.assertEqual(json.loads(body), {"v": 1})
        # Without the layer there is no bootstrap anywhere.
        c.update_function_configuration(FunctionName=fn, Layers=[])
        r, body = self.daemon.invoke(fn, {})
        self.assertEqual(r.get("FunctionError"), "Unhandled", body)
        err = json.loads(body)
        self.assertEqual(err["errorType"], "Runtime.InvalidEntrypoint")
        self.assertIn("Couldn't find valid bootstrap(s): [/var/task/bootstrap /opt/bootstrap]",
                      err["errorMessage"])
        r, body = self.daemon.invoke(fn, {"still": "v1"}, Qualifier="1")
        self.assertEqual(json.loads(body), {"still": "v1"})

    def test_layers_stack_in_order(self):
        if not self.sandboxed():
            self.skipTest("plain processes see the host's /opt, not the layers")
        c = self.daemon.client()
        _, a, _ = self.publish(files={"x.txt": "from a", "a.txt": "only in a",
                                      "bin/tool": ("#!/bin/sh\n", 0o755)})
        _, b, _ = self.publish(files={"x.txt": "from b"})
        fn = unique("stack")
        self.daemon.create(fn, harness.python_bootstrap_zip(OPT_BOOTSTRAP),
                           Layers=[a["LayerVersionArn"], b["LayerVersionArn"]])
        _, body = self.daemon.invoke(fn, {})
        out = json.loads(body)
        self.assertEqual(out["x"], "from b")  # later layers win
        self.assertEqual(out["a"], "only in a")
        self.assertIn("/opt/bin", out["path"].split(":"))
        self.assertIn("/opt/lib", out["ld"].split(":"))
        c.update_function_configuration(FunctionName=fn,
                                        Layers=[b["LayerVersionArn"], a["LayerVersionArn"]])
        _, body = self.daemon.invoke(fn, {})
        self.assertEqual(json.loads(body)["x"], "from a")
        # The same combination in another function shares the assembled tree (built once).
        fn2 = unique("stack")
        self.daemon.create(fn2, harness.python_bootstrap_zip(OPT_BOOTSTRAP),
                           Layers=[b["LayerVersionArn"], a["LayerVersionArn"]])
        _, body = self.daemon.invoke(fn2, {})
        self.assertEqual(json.loads(body)["x"], "from a")
        opt_root = os.path.join(self.daemon.data_dir, "opt")
        trees = [t for t in os.listdir(opt_root) if t != "tmp"]
        self.assertEqual(len(trees), len(set(trees)))
        self.assertEqual(os.listdir(os.path.join(opt_root, "tmp")), [])

    def test_deleted_layer_version_keeps_working(self):
        c = self.daemon.client()
        layer_zip = harness.make_zip({"bootstrap": (echo_bootstrap(), 0o755)})
        lname = unique("doomed")
        lv = c.publish_layer_version(LayerName=lname, Content={"ZipFile": layer_zip})
        fn = unique("survivor")
        self.daemon.create(fn, harness.make_zip({"handler.txt": "x"}), Layers=[lv["LayerVersionArn"]])
        c.delete_layer_version(LayerName=lname, VersionNumber=1)
        r, body = self.daemon.invoke(fn, {"alive": 1})
        self.assertEqual(json.loads(body), {"alive": 1}, body)
        # It cannot be added to new configurations.
        with self.assertRaises(ClientError) as ctx:
            self.daemon.create(unique("late"), harness.make_zip({"handler.txt": "x"}),
                               Layers=[lv["LayerVersionArn"]])
        self.assertClientError(ctx, "InvalidParameterValueException", 400,
                               f"Layer version {lv['LayerVersionArn']} does not exist.")
        # A restart (which collects unreferenced code and /opt trees) keeps it working.
        self.daemon.restart()
        r, body = self.daemon.invoke(fn, {"alive": 2})
        self.assertEqual(json.loads(body), {"alive": 2}, body)
        self.assertEqual(self.daemon.client().get_function_configuration(FunctionName=fn)["Layers"],
                         [{"Arn": lv["LayerVersionArn"], "CodeSize": len(layer_zip)}])

    def test_function_layer_errors(self):
        c = self.daemon.client()
        lname, v1, _ = self.publish()
        _, v2, _ = self.publish(lname)
        zip_bytes = harness.make_zip({"handler.txt": "x"})
        missing = layer_arn(unique("ghost"), 1)
        with self.assertRaises(ClientError) as ctx:
            self.daemon.create(unique("f"), zip_bytes, Layers=[missing])
        self.assertClientError(ctx, "InvalidParameterValueException", 400,
                               f"Layer version {missing} does not exist.")
        foreign = f"arn:aws:lambda:eu-west-1:{ACCOUNT}:layer:{lname}:1"
        with self.assertRaises(ClientError) as ctx:
            self.daemon.create(unique("f"), zip_bytes, Layers=[foreign])
        self.assertClientError(ctx, "InvalidParameterValueException", 400,
                               f"Layer version {foreign} does not exist.")
        with self.assertRaises(ClientError) as ctx:
            self.daemon.create(unique("f"), zip_bytes,
                               Layers=[v1["LayerVersionArn"], v2["LayerVersionArn"]])
        self.assertClientError(
            ctx, "InvalidParameterValueException", 400,
            "Two different versions of the same layer are not allowed to be referenced in the "
            f"same function. {v1['LayerVersionArn']} and {v2['LayerVersionArn']} are versions "
            "of the same layer.")
        six = [self.publish()[1]["LayerVersionArn"] for _ in range(6)]
        with self.assertRaises(ClientError) as ctx:
            self.daemon.create(unique("f"), zip_bytes, Layers=six)
        self.assertClientError(ctx, "InvalidParameterValueException", 400,
                               "Cannot reference more than 5 layers.")
        fn = unique("f")
        created = self.daemon.create(fn, zip_bytes, Layers=six[:5])
        self.assertEqual([l["Arn"] for l in created["Layers"]], six[:5])
        with self.assertRaises(ClientError) as ctx:
            c.update_function_configuration(FunctionName=fn, Layers=[missing])
        self.assertClientError(ctx, "InvalidParameterValueException", 400)
        self.assertEqual([l["Arn"] for l in c.get_function_configuration(FunctionName=fn)["Layers"]],
                         six[:5])

    def test_unzipped_size_limit(self):
        c = self.daemon.client()
        big_a = c.publish_layer_version(LayerName=unique("big"),
                                        Content={"ZipFile": padded_zip("a.bin", 140_000_000)})
        big_b = c.publish_layer_version(LayerName=unique("big"),
                                        Content={"ZipFile": padded_zip("b.bin", 125_000_000)})
        fn_zip = harness.make_zip({"handler.txt": "12345"})
        with self.assertRaises(ClientError) as ctx:
            self.daemon.create(unique("huge"), fn_zip,
                               Layers=[big_a["LayerVersionArn"], big_b["LayerVersionArn"]])
        self.assertClientError(
            ctx, "InvalidParameterValueException", 400,
            "Function code combined with layers exceeds the maximum allowed size of 262144000 "
            "bytes. The actual size is 265000005 bytes.")
        fn = unique("fits")
        self.daemon.create(fn, fn_zip, Layers=[big_a["LayerVersionArn"]])
        with self.assertRaises(ClientError) as ctx:
            c.update_function_configuration(
                FunctionName=fn, Layers=[big_a["LayerVersionArn"], big_b["LayerVersionArn"]])
        self.assertClientError(ctx, "InvalidParameterValueException", 400,
                               re.compile("The actual size is 265000005 bytes"))
        # New code counts with the layers the function keeps.
        with self.assertRaises(ClientError) as ctx:
            c.update_function_code(FunctionName=fn, ZipFile=padded_zip("c.bin", 125_000_000))
        self.assertClientError(ctx, "InvalidParameterValueException", 400,
                               re.compile("The actual size is 265000000 bytes"))


if __name__ == "__main__":
    unittest.main()
