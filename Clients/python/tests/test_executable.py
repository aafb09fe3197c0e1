"""The executable bit (issue 13, item 5), as Toil's testImportReadFileCompatibility checks it but
wider: real Toil workflows (leader + worker processes, exec_workflow.py) on jobstored:local: and
jobstored:aws: (SeaweedFS) stores, in the caching and the non-caching file store, import
file:// (an executable and a plain file), s3:// (objects uploaded with boto3, with and without
the daemon's `x-amz-meta-jobstore-executable: 1`) and http:// (never executable), and read
each back every way (readGlobalFile mutable/symlink/cache, a bare-str id, streams, the job
store's read_file); files written with writeGlobalFile are read by a child job. Then a second
daemon (its own cache directory, same store) reads the same file ids."""
import functools
import hashlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import unittest
import uuid
from unittest import mock

import jobstore
from jobstore.toil import DaemonJobStore

from daemon import Daemon, have_s3

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(jobstore.__file__)))

# The daemon's executable marker on S3 objects (Sources/JobStoreCore/Keys.swift, Keys.Meta.executable).
# Toil 9.6 itself has none: its AWSJobStore imports s3:// objects as FileID(id, size), never executable.
EXECUTABLE_META = "jobstore-executable"

BODIES = {
    "file-exec": b"#!/bin/sh\necho file-exec\n",
    "file-plain": b"file-plain: not a program\n",
    "s3-exec": b"#!/bin/sh\necho s3-exec\n",
    "s3-no-meta": b"#!/bin/sh\necho s3 without our metadata\n",
    "http-exec": b"#!/bin/sh\necho served over http\n",
    "written-exec": b"#!/bin/sh\necho written\n",
    "written-plain": b"written\n",
}
EXPECTED_X = {"file-exec": True, "file-plain": False, "s3-exec": True, "s3-no-meta": False, "http-exec": False,
              "written-exec": True, "written-plain": False}


def sha(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


class ExecutableBitTests(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        if not have_s3():
            raise RuntimeError("JOBSTORE_TEST_S3_* not set: run tools/dev-s3 start (tools/test does)")
        import boto3
        from botocore.config import Config as BotoConfig

        cls.scratch = tempfile.mkdtemp(prefix="jobstored-exec-")
        try:
            cls.s3 = boto3.client("s3", endpoint_url=os.environ["JOBSTORE_TEST_S3_ENDPOINT"], region_name="us-east-1",
                                  aws_access_key_id=os.environ["JOBSTORE_TEST_S3_ACCESS_KEY"],
                                  aws_secret_access_key=os.environ["JOBSTORE_TEST_S3_SECRET_KEY"],
                                  config=BotoConfig(s3={"addressing_style": "path"}))
            cls.bucket = f"jobstore-exec-src-{uuid.uuid4().hex[:8]}"
            cls.s3.create_bucket(Bucket=cls.bucket)
            cls.s3.put_object(Bucket=cls.bucket, Key="in/s3-exec.sh", Body=BODIES["s3-exec"],
                              Metadata={EXECUTABLE_META: "1"})
            cls.s3.put_object(Bucket=cls.bucket, Key="in/s3-no-meta.sh", Body=BODIES["s3-no-meta"])
            served = os.path.join(cls.scratch, "http")
            os.mkdir(served)
            with open(os.path.join(served, "tool.sh"), "wb") as f:
                f.write(BODIES["http-exec"])
            os.chmod(os.path.join(served, "tool.sh"), 0o755)  # the mode does not travel over http
            handler = functools.partial(_QuietHandler, directory=served)
            cls.http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
            threading.Thread(target=cls.http.serve_forever, daemon=True).start()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "http", None) is not None:
            cls.http.shutdown()
            cls.http.server_close()
        if getattr(cls, "bucket", None):
            try:
                for obj in cls.s3.list_objects_v2(Bucket=cls.bucket).get("Contents", []):
                    cls.s3.delete_object(Bucket=cls.bucket, Key=obj["Key"])
                cls.s3.delete_bucket(Bucket=cls.bucket)
            except Exception:
                pass
        shutil.rmtree(getattr(cls, "scratch", ""), ignore_errors=True)

    def _inputs(self, directory: str) -> dict:
        inputs = os.path.join(directory, "inputs")
        os.mkdir(inputs)
        imports = {}
        for name, mode in (("file-exec", 0o755), ("file-plain", 0o644)):
            path = os.path.join(inputs, name + ".sh")
            with open(path, "wb") as f:
                f.write(BODIES[name])
            os.chmod(path, mode)
            imports[name] = "file://" + path
        imports["s3-exec"] = f"s3://{self.bucket}/in/s3-exec.sh"
        imports["s3-no-meta"] = f"s3://{self.bucket}/in/s3-no-meta.sh"
        imports["http-exec"] = f"http://127.0.0.1:{self.http.server_address[1]}/tool.sh"
        return imports

    def run_case(self, s3_store: bool, caching: bool) -> None:
        # Both daemons have an S3 session: a local: store imports s3:// through it too.
        daemon = Daemon(s3=True)
        self.addCleanup(daemon.stop)
        locator = Daemon.aws_locator() if s3_store else daemon.local_locator()
        work = daemon.directory
        spec_path, result_path = os.path.join(work, "spec.json"), os.path.join(work, "result.json")
        with open(spec_path, "w") as f:
            json.dump({"imports": self._inputs(work), "caching": caching}, f)
        # TMPDIR: Toil's leader leaves its message-bus files in the temporary directory.
        env = dict(os.environ, JOBSTORED_SOCKET=daemon.socket, TMPDIR=work)
        # The leader and workers use this process's jobstore package (not another installed one).
        env["PYTHONPATH"] = os.pathsep.join([PACKAGE_ROOT] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
        for k in [k for k in env if k.startswith("AWS_")]:
            del env[k]  # s3:// imports go through the daemon, not Toil's boto3
        self.addCleanup(self._destroy, locator, daemon.socket)
        run = subprocess.run([sys.executable, os.path.join(HERE, "exec_workflow.py"), "jobstored:" + locator, spec_path,
                              result_path, "--batchSystem", "single_machine", "--maxCores", "1",
                              "--caching", "true" if caching else "false", "--clean", "never", "--logLevel", "INFO",
                              "--workDir", work],
                             env=env, cwd=work, capture_output=True, text=True, timeout=300)
        self.assertEqual(run.returncode, 0, run.stderr[-6000:])
        with open(result_path) as f:
            result = json.load(f)

        wrong = []
        for name, executable in sorted(result["leader_executable"].items()):
            if executable != EXPECTED_X[name]:
                wrong.append(f"{name}: the leader's FileID.executable is {executable}")
        for read in result["reads"]:
            what = f"{read['file']} via {read['how']} (mode {read.get('mode')})"
            if read["sha256"] != sha(BODIES[read["file"]]):
                wrong.append(f"{what}: wrong bytes")
            if read["x"] is not None and read["x"] != EXPECTED_X[read["file"]]:
                wrong.append(f"{what}: X_OK is {read['x']}, expected {EXPECTED_X[read['file']]}")
            if read["how"].startswith("jobStore.read_file(") and "symlink=True" in read["how"] \
                    and (read["islink"] or read["nlink"] < 2):
                wrong.append(f"{what}: not a hard link to the daemon's file (nlink {read['nlink']})")
        kinds = {r["how"] for r in result["reads"]}
        self.assertIn("readGlobalFile(mutable=False, symlink=True, cache=True)", kinds)
        self.assertEqual({r["file"] for r in result["reads"]}, set(BODIES))

        # Another node: a second daemon with its own cache directory, on the same store.
        ids = dict(result["ids"])
        ids.update({r["file"]: r["id"] for r in result["reads"] if "id" in r})
        other = Daemon(s3=True)
        self.addCleanup(other.stop)
        store = DaemonJobStore(locator, socket=other.socket)
        self.addCleanup(store.close)
        store.resume()
        for name, file_id in sorted(ids.items()):
            for symlink in (False, True):
                path = os.path.join(other.directory, f"{name}-{symlink}")
                store.read_file(file_id, path, symlink=symlink)  # a bare str: no FileID attribute to lean on
                what = f"{name} read on a second daemon (symlink={symlink}, mode {oct(os.stat(path).st_mode & 0o7777)})"
                with open(path, "rb") as f:
                    if f.read() != BODIES[name]:
                        wrong.append(f"{what}: wrong bytes")
                if os.access(path, os.X_OK) != EXPECTED_X[name]:
                    wrong.append(f"{what}: X_OK is {os.access(path, os.X_OK)}, expected {EXPECTED_X[name]}")
            with store.read_file_stream(file_id) as stream:
                if stream.read() != BODIES[name]:
                    wrong.append(f"{name} streamed from a second daemon: wrong bytes")
        self.assertEqual(wrong, [], f"{len(wrong)} of the reads lost or gained the executable bit:\n" + "\n".join(wrong))

    @staticmethod
    def _destroy(locator: str, socket: str) -> None:
        store = DaemonJobStore(locator, socket=socket)
        try:
            store.destroy()
        except Exception:
            pass  # never created, or the daemon is gone (its directory goes with it)
        finally:
            store.close()

    def test_local_store_non_caching(self):
        self.run_case(s3_store=False, caching=False)

    def test_local_store_caching(self):
        self.run_case(s3_store=False, caching=True)

    def test_s3_store_non_caching(self):
        self.run_case(s3_store=True, caching=False)

    def test_s3_store_caching(self):
        self.run_case(s3_store=True, caching=True)


class FileIDExecutableTests(unittest.TestCase):
    """A file the store holds without the bit (written through a stream, as Toil's generic
    import of any other URL scheme does) read with a FileID whose executable is True: the copy
    and the link are executable, and the daemon's own read-only file is never chmod-ed (a hard
    link to it is refused when its mode differs; Toil's caching file store would chmod it)."""

    s3 = False

    def test_fileid_executable_on_a_file_stored_without_the_bit(self):
        if self.s3 and not have_s3():
            self.fail("JOBSTORE_TEST_S3_* not set: run tools/dev-s3 start (tools/test does)")
        from toil.common import Config
        from toil.fileStores import FileID

        from jobstore import messages as pb

        daemon = Daemon(s3=self.s3)
        self.addCleanup(daemon.stop)
        locator = Daemon.aws_locator() if self.s3 else daemon.local_locator()
        store = DaemonJobStore(locator, socket=daemon.socket)
        self.addCleanup(store.close)
        with mock.patch.object(tempfile, "tempdir", daemon.directory):
            config = Config()  # Toil's Config leaves a temporary file behind: in the daemon's directory
        config.workflowID = None
        store.initialize(config)
        self.addCleanup(store.destroy)
        body = b"#!/bin/sh\necho streamed\n"
        with store.write_file_stream(basename="tool.sh") as (f, bare_id):
            f.write(body)
        daemon_file = store.client.read_file(pb.ReadFileRequest(locator=store.daemon_locator, file_id=bare_id,
                                                                link_ok=True)).link_path
        self.assertEqual(os.stat(daemon_file).st_mode & 0o777, 0o400)
        for symlink in (False, True):
            for file_id, executable in ((FileID(bare_id, len(body), True), True), (bare_id, False)):
                path = os.path.join(daemon.directory, f"out-{symlink}-{executable}")
                store.read_file(file_id, path, symlink=symlink)
                with open(path, "rb") as f:
                    self.assertEqual(f.read(), body)
                self.assertEqual(os.access(path, os.X_OK), executable, f"symlink={symlink}, {file_id!r}")
                if symlink and not executable:
                    self.assertGreaterEqual(os.stat(path).st_nlink, 2, "a plain read still links")
        self.assertEqual(os.stat(daemon_file).st_mode & 0o777, 0o400, "the daemon's file keeps its mode")


class FileIDExecutableOnS3Tests(FileIDExecutableTests):
    s3 = True


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


if __name__ == "__main__":
    unittest.main()
