"""Per-method traits (`@idempotent`, `@inline`, `@bounded` in Protos/jobstore.proto): the
generator reads them, refuses unknown or misplaced ones, and every client's table agrees."""
import os
import re
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


def build(service: str):
    """The generator's model of a small proto with `service`."""
    from google.protobuf import descriptor_pb2
    with tempfile.TemporaryDirectory(prefix="jobstore-traits-") as directory:
        with open(os.path.join(directory, "t.proto"), "w") as f:
            f.write('syntax = "proto3";\npackage t;\nmessage Empty {}\n' + service)
        out = os.path.join(directory, "t.pb")
        subprocess.run(["protoc", f"--proto_path={directory}", "--include_source_info", f"--descriptor_set_out={out}",
                        os.path.join(directory, "t.proto")], check=True)
        with open(out, "rb") as f:
            proto = descriptor_pb2.FileDescriptorSet.FromString(f.read()).file[0]
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    try:
        from stubgen import model
    finally:
        sys.path.remove(os.path.join(ROOT, "tools"))
    return model.build(proto)


class MethodTraitTests(unittest.TestCase):
    def test_traits_are_read_and_kept_out_of_the_docs(self):
        m = build("service S {\n  // Says hello.\n  // @idempotent @inline\n  rpc A(Empty) returns (Empty);\n"
                  "  // @bounded\n  rpc B(Empty) returns (Empty);\n  rpc C(stream Empty) returns (Empty);\n}\n")
        a, b, c = m.methods
        self.assertEqual((a.idempotent, a.inline, a.bounded, a.comment), (True, True, False, "Says hello."))
        self.assertEqual((b.idempotent, b.inline, b.bounded, b.comment), (False, False, True, ""))
        self.assertEqual((c.idempotent, c.inline, c.bounded), (False, False, False))

    def test_an_unknown_trait_is_refused(self):
        with self.assertRaises(SystemExit) as caught:
            build("service S {\n  // @idempotnet\n  rpc A(Empty) returns (Empty);\n}\n")
        self.assertIn("unknown trait @idempotnet", str(caught.exception))

    def test_inline_and_bounded_are_for_plain_unary_calls(self):
        for rpc in ("rpc A(stream Empty) returns (Empty);", "rpc A(Empty) returns (stream Empty);"):
            with self.assertRaises(SystemExit, msg=rpc):
                build("service S {\n  // @bounded\n  " + rpc + "\n}\n")
        with self.assertRaises(SystemExit):
            build("service S {\n  // @fd request\n  // @inline\n  rpc A(Empty) returns (Empty);\n}\n")

    def test_every_client_has_the_protos_idempotent_rpcs(self):
        from jobstore._stub import FD_METHODS, IDEMPOTENT, METHODS
        with open(os.path.join(ROOT, "Protos/jobstore.proto")) as f:
            proto = f.read()
        tagged = set(re.findall(r"// [^\n]*@idempotent[^\n]*\n\s*rpc (\w+)\(", proto))
        self.assertEqual(set(IDEMPOTENT), tagged)
        self.assertIn("Ping", IDEMPOTENT)
        self.assertNotIn("WriteFileStream", IDEMPOTENT)
        for index, name in enumerate(METHODS):
            if name in IDEMPOTENT:
                self.assertNotIn(index, FD_METHODS, f"{name}: a descriptor's read position is not resent")
        with open(os.path.join(ROOT, "Clients/c/generated/jobstore_stub.c")) as f:
            c = f.read()
        rows = re.findall(r"    ([01]),  /\* (\w+) \*/", c)
        self.assertEqual([n for _, n in rows], list(METHODS))
        self.assertEqual({n for flag, n in rows if flag == "1"}, tagged)
        with open(os.path.join(ROOT, "Sources/JobStoreWire/Generated/JobStoreMethod.swift")) as f:
            swift = f.read()
        line = re.search(r"var isIdempotent: Bool \{\n\s*switch self \{\n\s*case ([^:]+): true", swift).group(1)
        self.assertEqual({n.strip()[1:] for n in line.split(",")}, {n[:1].lower() + n[1:] for n in tagged})


if __name__ == "__main__":
    unittest.main()
