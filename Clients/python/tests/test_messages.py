"""The generated plain-Python messages (jobstore.messages) against protobuf's own classes for the
same proto (jobstore.jobstore_pb2): every message, random values, both directions, byte for byte."""
import random
import unittest
import zlib

from jobstore import jobstore_pb2 as reference
from jobstore import messages as ours
from jobstore._codec import DecodeError, NulInString

SCALAR_RANGES = {"uint32": (0, (1 << 32) - 1), "uint64": (0, (1 << 64) - 1),
                 "int32": (-(1 << 31), (1 << 31) - 1), "int64": (-(1 << 63), (1 << 63) - 1)}


def message_classes():
    for name in ours.__all__:
        cls = getattr(ours, name)
        if isinstance(cls, type) and issubclass(cls, ours._Message):
            yield name, cls


def _repeated(field) -> bool:
    flag = getattr(field, "is_repeated", None)  # protobuf >= 6; older ones have `label`
    return flag if isinstance(flag, bool) else field.label == field.LABEL_REPEATED


class RandomMessages:
    """Random field values (edges included) for a protobuf descriptor, as kwargs for both sides."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def scalar(self, field):
        rng, t = self.rng, field.type
        if t == field.TYPE_STRING:
            return rng.choice(["", "a", "é—≠😀", "x" * rng.randint(0, 300), "job/αβ/" + str(rng.random())])
        if t == field.TYPE_BYTES:
            return rng.choice([b"", b"\x00", bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 400)))])
        if t == field.TYPE_BOOL:
            return rng.random() < 0.5
        if t == field.TYPE_ENUM:
            return rng.choice([v.number for v in field.enum_type.values])
        if t == field.TYPE_DOUBLE:
            return rng.choice([0.0, -0.0, 1.5, -1e300, rng.random()])
        kind = {field.TYPE_UINT32: "uint32", field.TYPE_UINT64: "uint64",
                field.TYPE_INT32: "int32", field.TYPE_INT64: "int64"}[t]
        low, high = SCALAR_RANGES[kind]
        return rng.choice([0, 1, 127, 128, 300, low, high, rng.randint(low, high)])

    def kwargs(self, descriptor, depth=0):
        """(kwargs for the reference class, kwargs for ours) with the same values."""
        theirs, mine = {}, {}
        for field in descriptor.fields:
            if self.rng.random() < 0.25:
                continue
            repeated = _repeated(field)
            count = self.rng.randint(0, 4) if repeated else 1
            if field.type == field.TYPE_MESSAGE:
                if depth > 2:
                    continue
                pairs = [self.kwargs(field.message_type, depth + 1) for _ in range(count)]
                sub_ref = getattr(reference, field.message_type.name)
                sub_ours = getattr(ours, field.message_type.name)
                values_ref = [sub_ref(**a) for a, _ in pairs]
                values_ours = [sub_ours(**b) for _, b in pairs]
            else:
                values_ref = [self.scalar(field) for _ in range(count)]
                values_ours = list(values_ref)
            theirs[field.name] = values_ref if repeated else values_ref[0]
            mine[field.name] = values_ours if repeated else values_ours[0]
        return theirs, mine


class MessageTests(unittest.TestCase):
    def test_every_message_encodes_and_decodes_as_protobuf_does(self):
        checked = 0
        for name, cls in message_classes():
            ref_cls = getattr(reference, name)
            for seed in range(60):
                a, b = RandomMessages(zlib.crc32(f"{name} {seed}".encode())).kwargs(ref_cls.DESCRIPTOR)
                expected = ref_cls(**a).SerializeToString(deterministic=True)
                mine = cls(**b)
                self.assertEqual(mine.SerializeToString(), expected, f"{name} seed {seed}")
                decoded = cls.FromString(expected)
                self.assertEqual(decoded, mine, f"{name} seed {seed}")
                self.assertEqual(ref_cls.FromString(mine.SerializeToString()), ref_cls(**a))
                checked += 1
        self.assertGreater(checked, 1000)

    def test_unknown_fields_are_skipped(self):
        # A newer daemon's field 99 (every wire type) around known ones.
        data = (b"\x98\x06\x96\x01"          # 99: varint 150
                + ours.JobRequest(locator="l").SerializeToString()
                + b"\x99\x06" + bytes(8)     # 99: fixed64
                + b"\x9a\x06\x03abc"         # 99: bytes
                + b"\x9d\x06" + bytes(4)     # 99: fixed32
                + ours.JobRequest(job_id="j").SerializeToString())
        self.assertEqual(ours.JobRequest.FromString(data), ours.JobRequest(locator="l", job_id="j"))
        self.assertEqual(reference.JobRequest.FromString(data).job_id, "j")

    def test_fields_seen_twice_follow_protobuf(self):
        first = ours.ReadFileResponse(info=ours.FileInfo(size=5, executable=True)).SerializeToString()
        second = ours.ReadFileResponse(info=ours.FileInfo(size=7)).SerializeToString()
        merged = ours.ReadFileResponse.FromString(first + second)
        self.assertEqual(merged.SerializeToString(), reference.ReadFileResponse.FromString(first + second).SerializeToString())
        self.assertEqual((merged.info.size, merged.info.executable), (7, True))

    def test_packed_and_negative_numbers_decode(self):
        self.assertEqual(ours.Status.FromString(reference.Status(kind=-1).SerializeToString()).kind, -1)
        self.assertEqual(ours.Status(kind=-1).SerializeToString(), reference.Status(kind=-1).SerializeToString())

    def test_bad_bytes_raise_decode_error(self):
        good = ours.JobBody(locator="l", job_id="j", body=b"x" * 100).SerializeToString()
        boundaries = {3, 6}  # where a field ends, a shorter message is still valid
        for cut in set(range(1, len(good))) - boundaries:
            try:
                ours.JobBody.FromString(good[:cut])
            except DecodeError:
                continue
            self.fail(f"a message cut at {cut} of {len(good)} bytes decoded")
        for bad in (b"\x0a\x02\xff\xfe",            # not UTF-8
                    b"\x08" + b"\xff" * 11,         # an 11-byte varint
                    b"\x00\x00",                    # field number 0
                    b"\x0b",                        # a group (wire type 3)
                    b"\x0a\x80\x80\x80\x80\x10"):   # a length past the end
            with self.assertRaises(DecodeError, msg=bad):
                ours.JobBody.FromString(bad)

    def test_bad_values_are_refused_with_clear_errors(self):
        with self.assertRaisesRegex(NulInString, "JobRequest.job_id"):
            ours.JobRequest(job_id="a\0b").SerializeToString()
        with self.assertRaisesRegex(ValueError, "out of range"):
            ours.Status(code=1 << 32).SerializeToString()
        with self.assertRaisesRegex(ValueError, "out of range"):
            ours.FileInfo(size=-1).SerializeToString()
        with self.assertRaisesRegex(TypeError, "expected str"):
            ours.JobRequest(job_id=5).SerializeToString()
        with self.assertRaisesRegex(TypeError, "expected bytes"):
            ours.JobBody(body="text").SerializeToString()
        with self.assertRaisesRegex(TypeError, "expected FileInfo"):
            ours.ReadFileResponse(info=ours.Empty()).SerializeToString()
        with self.assertRaisesRegex(TypeError, "expected a list"):
            ours.HelloResponse(methods="Ping")
        with self.assertRaises(TypeError):
            ours.JobRequest(nonsense=1)

    def test_api_names_protobuf_users_know(self):
        message = ours.HelloResponse(methods=["Ping"])
        message.methods.append("Hello")
        copy = ours.HelloResponse()
        copy.ParseFromString(message.SerializeToString())
        self.assertEqual(copy.methods, ["Ping", "Hello"])
        self.assertIn("methods=['Ping', 'Hello']", repr(copy))
        self.assertEqual(ours.NO_SUCH_JOB, reference.NO_SUCH_JOB)
        self.assertEqual(ours.ErrorKind.NO_SUCH_FILE.name, reference.ErrorKind.Name(reference.NO_SUCH_FILE))


if __name__ == "__main__":
    unittest.main()
