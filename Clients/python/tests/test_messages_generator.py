"""The message generator (tools/stubgen/python_messages.py) on a proto with every field kind it
supports, including those Protos/jobstore.proto does not use yet (doubles, signed and packed
repeated numbers, nested and repeated enums), against protoc's own Python classes."""
import importlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))

PROTO = """
syntax = "proto3";
package kinds;
enum Colour { COLOUR_NONE = 0; RED = 1; GREEN = 2; }
message Inner { string name = 1; Colour colour = 2; }
message Every {
  string s = 1; bytes b = 2; bool flag = 3; uint32 u32 = 4; uint64 u64 = 5; int32 i32 = 6;
  int64 i64 = 7; double d = 8; Colour colour = 9; Inner inner = 10;
  repeated string rs = 11; repeated bytes rb = 12; repeated bool rflag = 13; repeated uint32 ru32 = 14;
  repeated uint64 ru64 = 15; repeated int32 ri32 = 16; repeated int64 ri64 = 17; repeated double rd = 18;
  repeated Colour rcolour = 19; repeated Inner rinner = 20; uint64 far = 300;
}
message Empty {}
service Kinds { rpc Echo(Every) returns (Every); }
"""


def _repeated(field) -> bool:
    flag = getattr(field, "is_repeated", None)
    return flag if isinstance(flag, bool) else field.label == field.LABEL_REPEATED


class GeneratorTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="jobstore-gen-")
        package = os.path.join(cls.dir, "kindspkg")
        os.makedirs(package)
        with open(os.path.join(cls.dir, "kinds.proto"), "w") as f:
            f.write(PROTO)
        # The Python backend alone (the Swift one has no repeated numbers yet, so the whole
        # plugin refuses this proto): descriptors from protoc, then the generator's model.
        descriptors = os.path.join(cls.dir, "kinds.pb")
        subprocess.run(["protoc", f"--proto_path={cls.dir}", "--include_source_info", f"--descriptor_set_out={descriptors}",
                        f"--python_out={package}", os.path.join(cls.dir, "kinds.proto")], check=True)
        from google.protobuf import descriptor_pb2
        sys.path.insert(0, os.path.join(ROOT, "tools"))
        try:
            from stubgen import model, python_messages
        finally:
            sys.path.remove(os.path.join(ROOT, "tools"))
        with open(descriptors, "rb") as f:
            proto = descriptor_pb2.FileDescriptorSet.FromString(f.read()).file[0]
        with open(os.path.join(package, "messages.py"), "w") as f:
            f.write(python_messages.generate(model.build(proto)))
        shutil.copy(os.path.join(ROOT, "Clients/python/jobstore/_codec.py"), os.path.join(package, "_codec.py"))
        open(os.path.join(package, "__init__.py"), "w").close()
        sys.path.insert(0, cls.dir)
        cls.ours = importlib.import_module("kindspkg.messages")
        sys.path.insert(0, package)
        cls.reference = importlib.import_module("kinds_pb2")

    @classmethod
    def tearDownClass(cls):
        for p in (cls.dir, os.path.join(cls.dir, "kindspkg")):
            if p in sys.path:
                sys.path.remove(p)
        shutil.rmtree(cls.dir, ignore_errors=True)

    def values(self, rng, field):
        t = field.type
        if t == field.TYPE_STRING:
            return rng.choice(["", "ü", "x" * rng.randint(1, 200)])
        if t == field.TYPE_BYTES:
            return bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 50)))
        if t == field.TYPE_BOOL:
            return rng.random() < 0.5
        if t == field.TYPE_DOUBLE:
            return rng.choice([0.0, -0.0, 2.5, -1e-300, float("inf"), rng.uniform(-1e9, 1e9)])
        if t == field.TYPE_ENUM:
            return rng.choice([0, 1, 2])
        bits = {field.TYPE_UINT32: (0, 32), field.TYPE_UINT64: (0, 64), field.TYPE_INT32: (1, 32), field.TYPE_INT64: (1, 64)}[t]
        signed, width = bits
        low, high = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)
        return rng.choice([0, 1, 127, 128, low, high, rng.randint(low, high)] + ([-1, -128] if signed else []))

    def kwargs(self, rng, descriptor):
        theirs, mine = {}, {}
        for field in descriptor.fields:
            if rng.random() < 0.2:
                continue
            count = rng.randint(0, 5) if _repeated(field) else 1
            if field.type == field.TYPE_MESSAGE:
                pairs = [self.kwargs(rng, field.message_type) for _ in range(count)]
                a = [getattr(self.reference, field.message_type.name)(**x) for x, _ in pairs]
                b = [getattr(self.ours, field.message_type.name)(**y) for _, y in pairs]
            else:
                a = [self.values(rng, field) for _ in range(count)]
                b = list(a)
            theirs[field.name] = a if _repeated(field) else a[0]
            mine[field.name] = b if _repeated(field) else b[0]
        return theirs, mine

    def test_every_kind_encodes_and_decodes_as_protobuf_does(self):
        rng = random.Random(20261130)
        for round_ in range(400):
            a, b = self.kwargs(rng, self.reference.Every.DESCRIPTOR)
            expected = self.reference.Every(**a).SerializeToString(deterministic=True)
            mine = self.ours.Every(**b)
            self.assertEqual(mine.SerializeToString(), expected, f"round {round_}: {a}")
            self.assertEqual(self.ours.Every.FromString(expected).SerializeToString(), expected)
            self.assertEqual(self.reference.Every.FromString(mine.SerializeToString()), self.reference.Every(**a))

    def test_unpacked_repeated_numbers_are_read_too(self):
        # protobuf writes repeated numbers packed; a decoder must also take them one by one.
        data = b"\x70\x05\x70\x07" + b"\x91\x01" + bytes(7) + b"\x40"  # ru32: 5, 7 unpacked; rd: 2.0 unpacked
        decoded = self.ours.Every.FromString(data)
        self.assertEqual(decoded.ru32, [5, 7])
        self.assertEqual(decoded.rd, [2.0])
        self.assertEqual(decoded.SerializeToString(), self.reference.Every(ru32=[5, 7], rd=[2.0]).SerializeToString())
        self.assertEqual(self.reference.Every.FromString(data), self.reference.Every(ru32=[5, 7], rd=[2.0]))

    def test_field_numbers_with_two_byte_keys(self):
        self.assertEqual(self.ours.Every(far=1).SerializeToString(), self.reference.Every(far=1).SerializeToString())
        self.assertEqual(self.ours.Every.FromString(self.reference.Every(far=9).SerializeToString()).far, 9)


if __name__ == "__main__":
    unittest.main()
