"""SSE-C through Toil (issue 13), end to end as a Toil user works, on SeaweedFS only (it enforces
SSE-C; moto ignores it, so nothing here may run on moto). Every test checks at least once that
a GET without the key really fails, so that a server ignoring SSE-C fails the test.

- WorkflowEncryptionTests: a real Toil workflow (leader + workers, sse_workflow.py "full") with
  --sseKey on jobstored:aws:us-east-1:NAME, in the caching and the non-caching file store; the
  bucket is read directly with boto3 mid-run (job descriptions) and after the run (everything
  else): each object but config.pickle refuses a keyless GET and gives the predicted bytes
  with the key. Then `toil clean`.
- KeyChangeTests: the key file rewritten by a job mid-workflow (sse_workflow.py "rotate"), on
  the daemon's store and, as the baseline, on Toil's own AWSJobStore against the same SeaweedFS.
- AdapterEncryptionTests: DaemonJobStore directly (Toil's testEncrypted and more: a wrong key, a
  short key, encrypted=True without a key, encrypted=False, config.pickle, public URLs, the
  node cache).
"""
import json
import os
import pickle
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import uuid
from unittest import mock

import jobstore
from jobstore import errors
from jobstore.toil import BadEncryptionKeyError, DaemonJobStore

from daemon import Daemon, have_s3
from sse_workflow import big_body, output_text

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(jobstore.__file__)))
TOIL_KEY_TEXT = "Your AWS encryption key is most likely configured incorrectly"
MiB = 1 << 20


def s3_client():
    import boto3
    from botocore.config import Config as BotoConfig

    return boto3.client("s3", endpoint_url=os.environ["JOBSTORE_TEST_S3_ENDPOINT"], region_name="us-east-1",
                        aws_access_key_id=os.environ["JOBSTORE_TEST_S3_ACCESS_KEY"],
                        aws_secret_access_key=os.environ["JOBSTORE_TEST_S3_SECRET_KEY"],
                        config=BotoConfig(s3={"addressing_style": "path"}, retries={"max_attempts": 2}))


def new_key() -> str:
    """A key as a Toil user makes one: 32 characters (Toil reads the file as text, the adapter
    as bytes: ASCII is the same 32 either way)."""
    return secrets.token_hex(16)


def write_key(path: str, key: str) -> str:
    with open(path, "w") as f:
        f.write(key)
    return path


def sse(key: str) -> dict:
    return {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": key}


def keyless_get_refused(test: unittest.TestCase, s3, bucket: str, key: str, may_vanish: bool = False) -> bool:
    """The server refuses the object without its key (SeaweedFS: 400 InvalidArgument). A 404
    is no refusal: the object must exist, unless it ``may_vanish`` (then False)."""
    from botocore.exceptions import ClientError

    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as e:
        if may_vanish and status_of(e) == 404:
            return False
        test.assertNotIn(status_of(e), (404, None), f"s3://{bucket}/{key}: {e}")
        return True
    test.fail(f"s3://{bucket}/{key}: a GET without the SSE-C key returned {len(body)} bytes "
              f"(stored in the clear, or the server ignores SSE-C)")


def status_of(error) -> int:
    return error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")


def keys_in(s3, bucket: str) -> dict:
    """{key: (size, etag)} of every object in the bucket."""
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            found[obj["Key"]] = (obj["Size"], obj["ETag"].strip('"'))
    return found


def remove_bucket(s3, bucket: str) -> None:
    """Best-effort cleanup (the workflow's `toil clean` is the real one)."""
    from botocore.exceptions import ClientError

    try:
        for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
            s3.abort_multipart_upload(Bucket=bucket, Key=u["Key"], UploadId=u["UploadId"])
        for key in keys_in(s3, bucket):
            s3.delete_object(Bucket=bucket, Key=key)
        s3.delete_bucket(Bucket=bucket)
    except ClientError:
        pass


def bucket_exists(s3, bucket: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        s3.head_bucket(Bucket=bucket)
        return True
    except ClientError as e:
        if e.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
            return False
        raise


def file_key(keys: dict, file_id: str) -> str:
    """The object of a Toil file id: files/ID (hinted) or files-flat/ID/BASENAME."""
    matches = [k for k in keys if k == "files/" + file_id or k.startswith(f"files-flat/{file_id}/")]
    if len(matches) != 1:
        raise AssertionError(f"file id {file_id}: objects {matches} in {sorted(keys)}")
    return matches[0]


def toil_env(work: str, daemon: Daemon = None) -> dict:
    """The environment of a Toil leader (and so of its workers). On the daemon's store Toil has
    no S3 access at all (no AWS_* variables): everything goes through the daemon. On Toil's own
    store (daemon None) boto3 reaches SeaweedFS through AWS_ENDPOINT_URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["TMPDIR"] = work  # Toil's leader leaves its message-bus files in the temporary directory
    env["PYTHONPATH"] = os.pathsep.join([PACKAGE_ROOT] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env.update(AWS_EC2_METADATA_DISABLED="true", AWS_CONFIG_FILE=os.path.join(work, "no-aws-config"),
               AWS_SHARED_CREDENTIALS_FILE=os.path.join(work, "no-aws-credentials"))
    if daemon is not None:
        env["JOBSTORED_SOCKET"] = daemon.socket
    else:
        env.update(AWS_ENDPOINT_URL=os.environ["JOBSTORE_TEST_S3_ENDPOINT"],
                   AWS_ACCESS_KEY_ID=os.environ["JOBSTORE_TEST_S3_ACCESS_KEY"],
                   AWS_SECRET_ACCESS_KEY=os.environ["JOBSTORE_TEST_S3_SECRET_KEY"])
    return env


def start_workflow(mode: str, locator: str, spec: dict, work: str, env: dict, options: list) -> subprocess.Popen:
    spec_path = os.path.join(work, f"spec-{mode}.json")
    with open(spec_path, "w") as f:
        json.dump(spec, f)
    log = open(os.path.join(work, f"leader-{mode}.log"), "w")
    try:
        return subprocess.Popen([sys.executable, os.path.join(HERE, "sse_workflow.py"), mode, locator, spec_path,
                                 os.path.join(work, f"result-{mode}.json"), "--batchSystem", "single_machine",
                                 "--clean", "never", "--logLevel", "INFO", "--workDir", work, *options],
                                env=env, cwd=work, stdout=log, stderr=subprocess.STDOUT)
    finally:
        log.close()


def leader_log(work: str, mode: str) -> str:
    with open(os.path.join(work, f"leader-{mode}.log"), errors="replace") as f:
        return f.read()


def stop(process: subprocess.Popen) -> None:
    """Ends a leader that is still running (a failed test): SIGTERM first, on which Toil's leader
    exits through its batch system's shutdown, which kills the workers (each in its own
    session, out of reach of a signal to the leader alone)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def toil_clean(test: unittest.TestCase, locator: str, env: dict) -> None:
    clean = subprocess.run(["toil", "clean", locator], env=env, capture_output=True, text=True, timeout=120)
    test.assertEqual(clean.returncode, 0, clean.stderr[-3000:])


class WorkflowEncryptionTests(unittest.TestCase):
    """sse_workflow.py "full" with --sseKey on jobstored:aws:us-east-1:NAME (SeaweedFS)."""

    @classmethod
    def setUpClass(cls):
        if not have_s3():
            raise RuntimeError("JOBSTORE_TEST_S3_* not set: run tools/dev-s3 start (tools/test does)")
        cls.s3 = s3_client()
        # The s3:// import's source (a plain object, as Toil reads sources: without SSE-C) and
        # the s3:// export's target.
        cls.source_bucket = f"jobstore-sse-src-{uuid.uuid4().hex[:8]}"
        cls.s3.create_bucket(Bucket=cls.source_bucket)
        cls.s3_seed, cls.s3_size = "s3 import source", 6 * MiB + 12345
        try:
            cls.s3.put_object(Bucket=cls.source_bucket, Key="in/source.bin", Body=big_body(cls.s3_seed, cls.s3_size))
        except BaseException:
            remove_bucket(cls.s3, cls.source_bucket)
            raise

    @classmethod
    def tearDownClass(cls):
        remove_bucket(cls.s3, cls.source_bucket)

    def run_full(self, caching: bool) -> None:
        daemon = Daemon(s3=True)
        self.addCleanup(daemon.stop)
        work = daemon.directory
        name = f"jobstore-sse-{uuid.uuid4().hex[:8]}"
        locator, bucket = f"jobstored:aws:us-east-1:{name}", f"{name}--toil"
        self.addCleanup(remove_bucket, self.s3, bucket)
        key = new_key()
        key_path = write_key(os.path.join(work, "sse.key"), key)
        pause_dir = os.path.join(work, "pause")
        os.mkdir(pause_dir)
        spec = {"input": "hello encrypted jobstored\n", "input_path": os.path.join(work, "input.txt"),
                "s3_url": f"s3://{self.source_bucket}/in/source.bin", "s3_seed": self.s3_seed, "s3_size": self.s3_size,
                "big_seed": f"big {caching}", "big_size": 6 * MiB + 1,  # > --part-size 5MiB: multipart
                "small_v1": "small, first version\n", "small_v2": "small, updated\n",
                "shared_name": "sse-shared.txt", "shared": f"shared by a job {uuid.uuid4().hex}",
                "log_message": f"sse root job logs to the leader {uuid.uuid4().hex}",
                "pause_dir": pause_dir, "export_path": os.path.join(work, "exported.txt"),
                "export_url": f"s3://{self.source_bucket}/out/exported-{caching}.txt"}
        with open(spec["input_path"], "w") as f:
            f.write(spec["input"])
        env = toil_env(work, daemon)
        process = start_workflow("full", locator, spec, work, env,
                                 ["--sseKey", key_path, "--caching", "true" if caching else "false", "--maxCores", "2",
                                  "--retryCount", "0"])
        self.addCleanup(stop, process)

        # Mid-run: job descriptions exist only while their jobs are not done.
        deadline = time.time() + 180
        while not os.path.exists(os.path.join(pause_dir, "ready")):
            if process.poll() is not None or time.time() > deadline:
                self.fail("the workflow never reached its pause:\n" + leader_log(work, "full")[-6000:])
            time.sleep(0.05)
        with open(os.path.join(pause_dir, "ready")) as f:
            pause_job = json.load(f)["job_id"]
        try:
            self.check_jobs_mid_run(bucket, key, pause_job)
        finally:
            open(os.path.join(pause_dir, "go"), "w").close()
        try:
            process.wait(240)
        except subprocess.TimeoutExpired:
            self.fail("the workflow did not end:\n" + leader_log(work, "full")[-6000:])
        log = leader_log(work, "full")
        self.assertEqual(process.returncode, 0, log[-8000:])
        self.assertIn(spec["log_message"], log, "log_to_leader reaches the leader")
        with open(os.path.join(work, "result-full.json")) as f:
            ids = json.load(f)["ids"]

        self.check_bucket_after_run(bucket, key, key_path, spec, ids)
        toil_clean(self, locator, env)
        self.assertFalse(bucket_exists(self.s3, bucket), "toil clean removes the bucket")

    def check_jobs_mid_run(self, bucket: str, key: str, pause_job: str) -> None:
        from botocore.exceptions import ClientError
        from toil.job import JobDescription

        jobs = [k for k in keys_in(self.s3, bucket) if k.startswith("jobs/")]
        self.assertIn("jobs/" + pause_job, jobs, "the running pause job's description is in jobs/")
        names = {}
        for job_key in jobs:
            try:
                body = self.s3.get_object(Bucket=bucket, Key=job_key, **sse(key))["Body"].read()
            except ClientError as e:
                if status_of(e) == 404:
                    continue  # a job (the reader) that finished since the listing
                raise
            if not keyless_get_refused(self, self.s3, bucket, job_key, may_vanish=True):
                continue
            description = pickle.loads(body)
            self.assertIsInstance(description, JobDescription, job_key)
            names[job_key] = description.jobName
        self.assertEqual(names.get("jobs/" + pause_job), "full_pause", names)
        # The root waits for its follow-on, which waits for the pause (the reader may be done).
        self.assertLessEqual({"full_root", "full_pause", "full_finish"}, set(names.values()), names)

    def check_bucket_after_run(self, bucket: str, key: str, key_path: str, spec: dict, ids: dict) -> None:
        from botocore.exceptions import ClientError
        from toil.common import Config

        keys = keys_in(self.s3, bucket)
        # config.pickle is Toil's one object always in the clear (AbstractJobStore writes it with
        # encrypted=False: resume() reads it to learn config.sseKey). Toil's other encrypted=False
        # shared files, the user-script resources (toil/resource.py), exist only when the batch
        # system ships the script (auto-deployment); single_machine does not, and any other
        # object found in the clear fails below.
        config = pickle.loads(self.s3.get_object(Bucket=bucket, Key="config.pickle")["Body"].read())
        self.assertIsInstance(config, Config)
        self.assertEqual(config.sseKey, key_path)
        clear, bodies = [], {}
        for name, (size, _) in sorted(keys.items()):
            if name == "config.pickle":
                continue
            try:
                self.s3.get_object(Bucket=bucket, Key=name)["Body"].read()
                if size > 0:
                    clear.append(name)
            except ClientError:
                pass
            bodies[name] = self.s3.get_object(Bucket=bucket, Key=name, **sse(key))["Body"].read()
            self.assertEqual(len(bodies[name]), size, name)
        self.assertEqual(clear, [], "objects stored in the clear")

        expected = {"input": spec["input"].encode(), "s3": big_body(spec["s3_seed"], spec["s3_size"]),
                    "small": spec["small_v2"].encode(), "big": big_body(spec["big_seed"], spec["big_size"])}
        big = expected["big"]
        expected["output"] = output_text(spec, spec["shared"].encode(), expected["small"], big).encode()
        for what, body in expected.items():
            self.assertEqual(bodies[file_key(keys, ids[what])], body, f"the {what} file's bytes, decrypted")
        self.assertIn("-", keys[file_key(keys, ids["big"])][1], "a 6 MiB file with 5 MiB parts is a multipart object")
        self.assertEqual(bodies[spec["shared_name"]], spec["shared"].encode(), "the shared file written by a job")
        logs = [k for k in keys if k.startswith("logs/")]
        self.assertTrue(logs, "logs/ holds the workers' messages")
        self.assertTrue(any(spec["log_message"].encode() in bodies[k] for k in logs), "log_to_leader's message, in logs/")
        # Exports are in the clear, as Toil's own store exports (it reads the file with the key).
        with open(spec["export_path"], "rb") as f:
            self.assertEqual(f.read(), expected["output"])
        target = spec["export_url"][len("s3://"):].split("/", 1)
        self.assertEqual(self.s3.get_object(Bucket=target[0], Key=target[1])["Body"].read(), expected["output"])

    def test_workflow_caching_file_store(self):
        self.run_full(caching=True)

    def test_workflow_non_caching_file_store(self):
        self.run_full(caching=False)


class KeyChangeTests(unittest.TestCase):
    """The key changed mid-workflow, on the daemon's store and on Toil's own AWSJobStore.

    What "changed" means here: the first job writes a file under key A; its child job (a
    worker) rewrites the key file config.sseKey names with key B (an atomic rename), writes a
    file under B and adds a child job; that job (its description written under B) reads the
    B file, then the A file. Every process (leader and workers) reads config.sseKey at each
    call, so from the rewrite on, everything written under A is unreadable to all of them.
    Run with the non-caching file store (Toil's cache would serve the A file from the node's
    disk without asking the store) and --retryCount 0. The leader polls the kill flag (a shared
    file written under A) once before the rotation and never after (sse_workflow.py's main()
    says why): otherwise whether the leader or the reader meets A first is a race.
    Both stores end the same way (the run fails with FailedJobsException, the reader the one
    failed job, the B file read, no byte of the A file); the errors differ in class: see below."""

    def run_rotate(self, ours: bool, s3) -> dict:
        work = tempfile.mkdtemp(prefix="jobstored-sse-rotate-")
        self.addCleanup(shutil.rmtree, work, True)
        daemon = None
        if ours:
            daemon = Daemon(s3=True)
            self.addCleanup(daemon.stop)
        name = f"jobstore-sse-rot-{'d' if ours else 't'}-{uuid.uuid4().hex[:8]}"
        bucket = f"{name}--toil"
        self.addCleanup(remove_bucket, s3, bucket)
        locator = ("jobstored:aws:us-east-1:" if ours else "aws:us-east-1:") + name
        first, second = new_key(), new_key()
        key_path = write_key(os.path.join(work, "sse.key"), first)
        spec = {"second_key": second, "probe": os.path.join(work, "probe.json"), "patch_toil_bucket_setup": not ours,
                "leader_polled": os.path.join(work, "leader-polled")}
        env = toil_env(work, daemon)
        process = start_workflow("rotate", locator, spec, work, env,
                                 ["--sseKey", key_path, "--caching", "false", "--maxCores", "1", "--retryCount", "0"])
        self.addCleanup(stop, process)
        try:
            process.wait(240)
        except subprocess.TimeoutExpired:
            self.fail("the workflow did not end:\n" + leader_log(work, "rotate")[-6000:])
        log = leader_log(work, "rotate")
        probe = None
        if os.path.exists(spec["probe"]):
            with open(spec["probe"]) as f:
                probe = json.load(f)
        # Really encrypted, and with the second key from the rotation on: a keyless GET fails.
        keys = keys_in(s3, bucket)
        after = [k for k in keys if k.startswith("files-flat/") and k.endswith("/after.txt")]
        before = [k for k in keys if k.startswith("files-flat/") and k.endswith("/before.txt")]
        self.assertEqual((len(after), len(before)), (1, 1), sorted(keys))
        keyless_get_refused(self, s3, bucket, after[0])
        keyless_get_refused(self, s3, bucket, before[0])
        self.assertEqual(s3.get_object(Bucket=bucket, Key=before[0], **sse(first))["Body"].read(),
                         b"written under the first key\n")
        self.assertEqual(s3.get_object(Bucket=bucket, Key=after[0], **sse(second))["Body"].read(),
                         b"written under the second key\n")
        outcome = {"returncode": process.returncode, "probe": probe, "log": log}
        toil_clean(self, locator, env)
        self.assertFalse(bucket_exists(s3, bucket), "toil clean removes the bucket")
        return outcome

    def test_key_rotated_mid_workflow_as_on_toils_own_store(self):
        if not have_s3():
            self.fail("JOBSTORE_TEST_S3_* not set: run tools/dev-s3 start (tools/test does)")
        s3 = s3_client()
        runs = {"Toil's AWSJobStore": self.run_rotate(ours=False, s3=s3),
                "jobstored": self.run_rotate(ours=True, s3=s3)}
        for store, run in runs.items():
            with self.subTest(store=store):
                log = run["log"]
                # The same ending: the reader is the one failed job, the leader ends normally
                # with Toil's FailedJobsException (no crash on the old key elsewhere).
                self.assertNotEqual(run["returncode"], 0, log[-6000:])
                self.assertIn("toil.exceptions.FailedJobsException", log, log[-6000:])
                self.assertIn("contains 1 failed jobs: 'rotate_reader'", log, log[-6000:])
                self.assertIsNotNone(run["probe"], "the reader ran")
                self.assertEqual(run["probe"]["after"], "written under the second key\n",
                                 "a file written after the rotation reads back under the new key")
                self.assertIsNone(run["probe"]["before"], "no bytes of the file written under the old key")
        ours, theirs = runs["jobstored"]["probe"]["error"], runs["Toil's AWSJobStore"]["probe"]["error"]
        # The daemon: Toil's AWSBadEncryptionKeyError, with Toil's text.
        self.assertIn("toil.lib.aws.s3.AWSBadEncryptionKeyError", ours["mro"], ours)
        self.assertIn(TOIL_KEY_TEXT, ours["message"])
        self.assertIn("jobstore.toil.BadEncryptionKeyError: " + TOIL_KEY_TEXT, runs["jobstored"]["log"])
        # Toil's own store turns only a 400 "Bad Request" on HeadObject (no key) into
        # AWSBadEncryptionKeyError; SeaweedFS answers a wrong key with 403, which reaches the job
        # as botocore's ClientError. Either way the store refused the key and the job failed on it.
        if "toil.lib.aws.s3.AWSBadEncryptionKeyError" not in theirs["mro"]:
            self.assertEqual((theirs["type"], theirs["http_status"], theirs["operation"]),
                             ("botocore.exceptions.ClientError", 403, "HeadObject"), theirs)
            self.assertIn("botocore.exceptions.ClientError: An error occurred (403) when calling the HeadObject operation",
                          runs["Toil's AWSJobStore"]["log"])



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
        self.assertEqual(self._read_file(file_id, symlink=False)[0], body)
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
