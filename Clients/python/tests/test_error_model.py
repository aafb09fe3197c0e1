"""The error model's tables (enum StatusCode and ErrorKind's `@status` in Protos/jobstore.proto):
the generator reads them and refuses a kind without a status, and the Swift, Python and C tables
all say what the proto says."""
import os
import re
import unittest

from test_method_traits import ROOT, build

SERVICE = "service S {\n  rpc A(Empty) returns (Empty);\n}\n"
CODES = "enum StatusCode {\n  OK = 0;\n  NOT_FOUND = 5;\n}\n"


def proto_tables():
    """(status code names by number, kind name -> its status name) as the proto spells them."""
    with open(os.path.join(ROOT, "Protos/jobstore.proto")) as f:
        proto = f.read()
    codes_block = re.search(r"enum StatusCode \{(.*?)\}", proto, re.S).group(1)
    codes = {int(n): name for name, n in re.findall(r"^\s*(\w+) = (\d+);", codes_block, re.M)}
    kinds_block = re.search(r"enum ErrorKind \{(.*?)\}", proto, re.S).group(1)
    kinds = dict(re.findall(r"^\s*(\w+) = \d+;[^\n]*@status (\w+)", kinds_block, re.M))
    return codes, kinds


def camel(name: str) -> str:
    first, *rest = name.lower().split("_")
    return first + "".join(p.capitalize() for p in rest)


class ErrorModelTests(unittest.TestCase):
    def test_the_generator_reads_each_kinds_status_and_keeps_it_out_of_the_docs(self):
        m = build(CODES + "enum ErrorKind {\n  NONE = 0;\n  GONE = 1;  // it went @status NOT_FOUND\n}\n" + SERVICE)
        gone = m.enum("ErrorKind").values[1]
        self.assertEqual((gone.status, gone.comment), ("NOT_FOUND", "it went"))

    def test_a_kind_without_a_status_or_with_an_unknown_one_is_refused(self):
        for value in ("GONE = 1;", "GONE = 1;  // @status MISSING"):
            with self.assertRaises(SystemExit, msg=value) as caught:
                build(CODES + "enum ErrorKind {\n  NONE = 0;\n  " + value + "\n}\n" + SERVICE)
            self.assertIn("ErrorKind.GONE", str(caught.exception))

    def test_python_tables_and_exceptions_follow_the_proto(self):
        from jobstore import errors
        from jobstore.messages import KIND_STATUS, ErrorKind, StatusCode
        codes, kinds = proto_tables()
        self.assertEqual(errors.CODES, codes)
        self.assertEqual({k.name: s.name for k, s in KIND_STATUS.items()}, kinds)
        for kind, status in KIND_STATUS.items():
            raised = errors.from_status(int(status), "m", kind=int(kind))
            self.assertIsInstance(raised, errors._BY_CODE[status], kind.name)
            self.assertEqual(raised.code_name, status.name)
        self.assertIsInstance(errors.from_status(int(StatusCode.UNAVAILABLE), "m"), errors.Unavailable)
        self.assertEqual(errors.BAD_ENCRYPTION_KEY, ErrorKind.BAD_ENCRYPTION_KEY)

    def test_c_tables_follow_the_proto(self):
        codes, kinds = proto_tables()
        with open(os.path.join(ROOT, "Clients/c/generated/jobstore_codes.h")) as f:
            header = f.read()
        self.assertEqual({int(n): name for name, n in re.findall(r"JOBSTORE_(\w+) = (\d+),", header)}, codes)
        with open(os.path.join(ROOT, "Clients/c/generated/jobstore_stub.c")) as f:
            source = f.read()
        names = re.search(r"code_names\[JOBSTORE_CODE_COUNT\] = \{(.*?)\};", source, re.S).group(1)
        self.assertEqual(re.findall(r'"(\w+)"', names), [codes.get(n, "UNKNOWN") for n in range(max(codes) + 1)])
        rows = dict((kind, status) for status, kind in re.findall(r"\[\d+\] = JOBSTORE_(\w+),  /\* (\w+) \*/", source))
        self.assertEqual(rows, kinds)

    def test_swift_tables_follow_the_proto(self):
        codes, kinds = proto_tables()
        with open(os.path.join(ROOT, "Sources/JobStoreStatus/Generated/Status.swift")) as f:
            swift = f.read()
        cases = {int(n): name.strip("`") for name, n in re.findall(r"case (`?\w+`?) = (\d+)\n", swift.split("enum ErrorKind")[0])}
        self.assertEqual(cases, {n: camel(name) for n, name in codes.items()})
        statuses = dict(re.findall(r"case \.(\w+): \.(\w+)\n", swift))
        self.assertEqual(statuses, {camel(k): camel(s) for k, s in kinds.items()})


if __name__ == "__main__":
    unittest.main()
