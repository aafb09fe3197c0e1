"""SSE-C through Toil (issue 13), end to end as a Toil user works, on SeaweedFS only.

- WorkflowEncryptionTests: a real Toil workflow (leader + workers, sse_workflow.py "full") with
  --sseKey on jobstored:aws:us-east-1:NAME, in the caching and the non-caching file store; the
  bucket is read directly with boto3 mid-run (job descriptions) and after the run (everything
  else): each object but config.pickle refuses a keyless GET and gives the predicted bytes
  with the key. Then `toil clean`.
- KeyChangeTests: the key file rewritten by a job mid-workflow (sse_workflow.py "rotate"), on
  the daemon's store and, as the baseline, on Toil's own AWSJobStore against the same SeaweedFS.
"""
import json
import os
import pickle
import shutil
import subprocess
import tempfile
import time
import unittest
import uuid

from daemon import Daemon, have_s3
from encryption_support import (MiB, TOIL_KEY_TEXT, bucket_exists, file_key, keyless_get_refused, keys_in, leader_log,
                                new_key, remove_bucket, s3_client, sse, start_workflow, status_of, stop, toil_clean,
                                toil_env, write_key)
from sse_workflow import big_body, output_text


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


if __name__ == "__main__":
    unittest.main()
