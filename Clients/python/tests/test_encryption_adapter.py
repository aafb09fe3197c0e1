"""SSE-C through DaemonJobStore directly (issue 13), on SeaweedFS only: Toil's testEncrypted and
more (a wrong key, a short key, encrypted=True without a key, encrypted=False, config.pickle,
public URLs, the node cache)."""
import os
import pickle
import tempfile
import unittest
import uuid
from unittest import mock

from jobstore import errors
from jobstore.toil import BadEncryptionKeyError, DaemonJobStore

from daemon import Daemon, have_s3
from encryption_support import (s3_client, new_key, write_key, sse, keyless_get_refused, keys_in, remove_bucket, file_key,
                                TOIL_KEY_TEXT, MiB)


def job_description(name: str):
    from toil.job import JobDescription

    return JobDescription(requirements={"memory": 1 << 20, "cores": 1, "disk": 1 << 20, "preemptible": False},
                          jobName=name, unitName=name)


class AdapterEncryptionTests(unittest.TestCase):
    """DaemonJobStore on an aws: store (SeaweedFS) whose config.sseKey names a key file."""

    def setUp(self):
        if not have_s3():
            self.fail("JOBSTORE_TEST_S3_* not set: run tools/dev-s3 start (tools/test does)")
        from toil.common import Config

        self.s3 = s3_client()
        self.daemon = Daemon(s3=True)
        self.addCleanup(self.daemon.stop)
        self.locator = Daemon.aws_locator()
        self.bucket = self.locator.split(":")[2] + "--toil"
        self.addCleanup(remove_bucket, self.s3, self.bucket)
        self.key = new_key()
        self.key_path = write_key(os.path.join(self.daemon.directory, "sse.key"), self.key)
        self.other_key_path = write_key(os.path.join(self.daemon.directory, "other.key"), new_key())
        self.store = DaemonJobStore(self.locator, socket=self.daemon.socket)
        self.addCleanup(self.store.close)
        with mock.patch.object(tempfile, "tempdir", self.daemon.directory):
            config = Config()  # Toil's Config leaves a temporary file behind: in the daemon's directory
        config.workflowID = None
        config.sseKey = self.key_path
        self.store.initialize(config)
        self.addCleanup(self._destroy)
        # Every test: the server really refuses an SSE-C object without its key.
        with self.store.write_shared_file_stream("probe") as f:
            f.write(b"probe")
        keyless_get_refused(self, self.s3, self.bucket, "probe")
        self.assertEqual(self.s3.get_object(Bucket=self.bucket, Key="probe", **sse(self.key))["Body"].read(), b"probe")

    def _destroy(self):
        self.store.config.sseKey = self.key_path
        self.store.destroy()

    def assertBadKey(self, call, what: str) -> None:
        """Toil's AWSBadEncryptionKeyError with Toil's text, and no bytes."""
        from toil.lib.aws.s3 import AWSBadEncryptionKeyError

        with self.assertRaises(AWSBadEncryptionKeyError, msg=what) as caught:
            result = call()
            self.fail(f"{what} returned {result!r:.80}")
        self.assertIsInstance(caught.exception, BadEncryptionKeyError)
        self.assertIsInstance(caught.exception, errors.BadEncryptionKey)
        self.assertIn(TOIL_KEY_TEXT, str(caught.exception), what)

    def _read_stream(self, file_id):
        with self.store.read_file_stream(file_id) as f:
            return f.read()

    def _read_shared(self, name):
        with self.store.read_shared_file_stream(name) as f:
            return f.read()

    def _read_file(self, file_id, symlink: bool):
        target = os.path.join(self.daemon.directory, f"read-{uuid.uuid4().hex[:6]}")
        try:
            self.store.read_file(file_id, target, symlink=symlink)
        except BaseException:
            self.assertFalse(os.path.exists(target), "a refused read leaves nothing behind")
            raise
        with open(target, "rb") as f:
            return f.read(), os.stat(target).st_nlink

    def test_toils_testEncrypted(self):
        phrase = b"This file is encrypted."
        with self.store.write_shared_file_stream("foo", encrypted=True) as f:
            f.write(phrase)
        self.assertEqual(self._read_shared("foo"), phrase)
        keyless_get_refused(self, self.s3, self.bucket, "foo")
        self.assertEqual(self.s3.get_object(Bucket=self.bucket, Key="foo", **sse(self.key))["Body"].read(), phrase)
        self.store.config.sseKey = None  # Toil's test: "disable encryption"
        # Toil's own test also accepts a read that returns other bytes; here it must be refused.
        self.assertBadKey(lambda: self._read_shared("foo"), "a keyless read of an encrypted shared file")

    def test_a_wrong_key_is_refused_everywhere(self):
        body = b"file under the right key"
        path = os.path.join(self.daemon.directory, "body")
        with open(path, "wb") as f:
            f.write(body)
        file_id = self.store.write_file(path)
        with self.store.write_file_stream(hints=["wrong key"], basename="hinted.txt") as (f, hinted_id):
            f.write(body)
        job = job_description("encrypted job")
        self.store.assign_job_id(job)
        self.store.create_job(job)
        with self.store.write_shared_file_stream("shared.txt") as f:
            f.write(body)
        self.store.write_logs("a log under the right key")
        # With the right key, everything reads (and fills the daemon's caches).
        self.assertEqual(self._read_stream(file_id), body)
        self.assertEqual(self._read_stream(hinted_id), body)
        self.assertEqual(self._read_file(file_id, symlink=True)[0], body)
        self.assertEqual(self.store.load_job(str(job.jobStoreID)).jobName, "encrypted job")
        self.assertEqual([j.jobName for j in self.store.jobs()], ["encrypted job"])
        self.assertEqual(self.store.get_file_size(file_id), len(body))
        self.assertTrue(self.store.job_exists(str(job.jobStoreID)))
        for name in (file_key(keys_in(self.s3, self.bucket), str(file_id)), "files/" + hinted_id,
                     "jobs/" + str(job.jobStoreID), "shared.txt"):
            keyless_get_refused(self, self.s3, self.bucket, name)

        for how in ("another key file", "no key"):
            with self.subTest(how=how):
                self.store.config.sseKey = self.other_key_path if how == "another key file" else None
                self.assertBadKey(lambda: self._read_file(file_id, symlink=False), "read_file")
                self.assertBadKey(lambda: self._read_file(file_id, symlink=True), "read_file(symlink=True)")
                self.assertBadKey(lambda: self._read_stream(file_id), "read_file_stream")
                self.assertBadKey(lambda: self._read_stream(hinted_id), "read_file_stream of a hinted file")
                self.assertBadKey(lambda: self.store.load_job(str(job.jobStoreID)), "load_job")
                self.assertBadKey(lambda: list(self.store.jobs()), "jobs()")
                self.assertBadKey(lambda: self._read_shared("shared.txt"), "read_shared_file_stream")
                self.assertBadKey(lambda: self.store.read_logs(lambda s: s.read(), read_all=True), "read_logs")
                # Toil answers 0 for a missing file; an existing file under another key is not
                # missing: refused, as Toil's AWSJobStore refuses a HEAD under a wrong key.
                # (Toil 9.6's own get_file_size fails on any SSE-C object, even with the right
                # key: _get_size HEADs without the key.)
                self.assertBadKey(lambda: self.store.get_file_size(file_id), "get_file_size")
                self.assertBadKey(lambda: self.store.job_exists(str(job.jobStoreID)), "job_exists")
        self.store.config.sseKey = self.key_path
        self.assertEqual(self._read_stream(file_id), body, "the right key reads again")
        self.assertEqual(self.store.get_file_size("no-such-file"), 0)

    def test_a_key_file_of_the_wrong_length(self):
        path = os.path.join(self.daemon.directory, "body")
        with open(path, "wb") as f:
            f.write(b"body")
        file_id = self.store.write_file(path)
        for length in (31, 33, 40, 0):
            with self.subTest(length=length):
                bad = write_key(os.path.join(self.daemon.directory, f"key-{length}"), "k" * length)
                self.store.config.sseKey = bad
                text = f"Check that {bad} is the path to a real SSE key. (Key length {length} != 32)"
                for what, call in (("read_file_stream", lambda: self._read_stream(file_id)),
                                   ("write_file", lambda: self.store.write_file(path)),
                                   ("load_job", lambda: self.store.load_job("no-such-job"))):
                    with self.assertRaises(ValueError, msg=what) as caught:
                        call()
                    self.assertEqual(str(caught.exception), text, what)
        self.store.config.sseKey = self.key_path
        self.assertEqual(self._read_stream(file_id), b"body")

    def test_encrypted_true_needs_a_key(self):
        self.store.config.sseKey = None
        with self.assertRaises(ValueError):
            with self.store.write_shared_file_stream("must-be-encrypted", encrypted=True) as f:
                f.write(b"secret")
        self.assertNotIn("must-be-encrypted", keys_in(self.s3, self.bucket), "nothing stored")

    def test_encrypted_false_and_config_pickle_are_in_the_clear(self):
        from toil.common import Config

        with self.store.write_shared_file_stream("clear.txt", encrypted=False) as f:
            f.write(b"in the clear")
        self.assertEqual(self.s3.get_object(Bucket=self.bucket, Key="clear.txt")["Body"].read(), b"in the clear")
        # Read back through the store with the key too (Toil's AWSJobStore could not: it sends
        # the key, which S3 refuses for an unencrypted object).
        self.assertEqual(self._read_shared("clear.txt"), b"in the clear")
        with self.store.write_shared_file_stream("default.txt") as f:  # encrypted=None: as the config says
            f.write(b"encrypted by default")
        keyless_get_refused(self, self.s3, self.bucket, "default.txt")
        config = pickle.loads(self.s3.get_object(Bucket=self.bucket, Key="config.pickle")["Body"].read())
        self.assertIsInstance(config, Config)
        self.assertEqual(config.sseKey, self.key_path)
        # A resumed store learns the key path from the clear config.pickle, then reads with it.
        other = DaemonJobStore(self.locator, socket=self.daemon.socket)
        self.addCleanup(other.close)
        other.resume()
        self.assertEqual(other.config.sseKey, self.key_path)
        with other.read_shared_file_stream("default.txt") as f:
            self.assertEqual(f.read(), b"encrypted by default")

    def test_public_urls_of_encrypted_objects_are_refused(self):
        path = os.path.join(self.daemon.directory, "body")
        with open(path, "wb") as f:
            f.write(b"body")
        file_id = self.store.write_file(path)
        with self.assertRaises(errors.FailedPrecondition):
            self.store.get_public_url(file_id)
        with self.assertRaises(errors.FailedPrecondition):
            self.store.get_shared_public_url("probe")
        keyless_get_refused(self, self.s3, self.bucket, file_key(keys_in(self.s3, self.bucket), str(file_id)))
        # A shared file in the clear has a URL that works.
        with self.store.write_shared_file_stream("public.txt", encrypted=False) as f:
            f.write(b"public")
        import urllib.request

        with urllib.request.urlopen(self.store.get_shared_public_url("public.txt"), timeout=30) as response:
            self.assertEqual(response.read(), b"public")

    def test_the_node_cache_serves_only_the_same_key(self):
        body = os.urandom(7 * MiB)  # multipart, and big enough to be worth caching
        path = os.path.join(self.daemon.directory, "big")
        with open(path, "wb") as f:
            f.write(body)
        file_id = self.store.write_file(path)
        keyless_get_refused(self, self.s3, self.bucket, file_key(keys_in(self.s3, self.bucket), str(file_id)))
        got, links = self._read_file(file_id, symlink=True)
        self.assertEqual(got, body)
        self.assertGreaterEqual(links, 2, "a hard link to the node cache's entry")
        got, links = self._read_file(file_id, symlink=False)
        self.assertEqual(got, body)
        self.assertGreaterEqual(links, 3, "symlink=False links too: Toil's read_file copies or hard links")
        for how in ("no key", "another key file"):
            with self.subTest(how=how):
                self.store.config.sseKey = None if how == "no key" else self.other_key_path
                for symlink in (True, False):
                    self.assertBadKey(lambda: self._read_file(file_id, symlink=symlink),
                                      f"a cached file read with {how} (symlink={symlink})")
                self.assertBadKey(lambda: self._read_stream(file_id), f"a cached file streamed with {how}")
        self.store.config.sseKey = self.key_path
        got, links = self._read_file(file_id, symlink=True)
        self.assertEqual(got, body)
        self.assertGreaterEqual(links, 2)


if __name__ == "__main__":
    unittest.main()
