"""jobstore.toil.DaemonJobStore against a real daemon: Toil's job-store contract directly, and
a real Toil workflow (leader and worker processes) on local: and aws: (SeaweedFS) stores,
followed by `toil status` and `toil clean`."""
import io
import os
import pickle
import subprocess
import sys
import unittest

from toil.common import Config, Toil
from toil.job import JobDescription
from toil.jobStores.abstractJobStore import (JobStoreExistsException, NoSuchFileException, NoSuchJobException,
                                             NoSuchJobStoreException)

from jobstore.toil import DaemonJobStore

from daemon import Daemon, have_s3

HERE = os.path.dirname(os.path.abspath(__file__))


def job_description(name: str) -> JobDescription:
    return JobDescription(requirements={"memory": 1 << 20, "cores": 1, "disk": 1 << 20, "preemptible": False},
                          jobName=name, unitName=name)


class AdapterContract:
    """Toil's AbstractJobStore contract; mixed into a local and an S3 variant."""

    s3 = False

    def setUp(self):
        if self.s3 and not have_s3():
            self.fail("JOBSTORE_TEST_S3_* not set: run tools/dev-s3 start (tools/test does)")
        self.daemon = Daemon(s3=self.s3)
        self.locator = Daemon.aws_locator() if self.s3 else self.daemon.local_locator()
        self.store = DaemonJobStore(self.locator, socket=self.daemon.socket)
        config = Config()
        config.workflowID = None
        self.store.initialize(config)

    def tearDown(self):
        try:
            self.store.destroy()
        finally:
            self.store.close()
            self.daemon.stop()

    def test_store_lifecycle_exceptions(self):
        with self.assertRaises(JobStoreExistsException):
            DaemonJobStore(self.locator, socket=self.daemon.socket).initialize(self._config())
        other = DaemonJobStore(self.locator, socket=self.daemon.socket)
        other.resume()
        self.assertEqual(other.config.workflowID, self.store.config.workflowID)
        missing = DaemonJobStore(self.locator + "-missing", socket=self.daemon.socket)
        with self.assertRaises(NoSuchJobStoreException):
            missing.resume()

    @staticmethod
    def _config():
        c = Config()
        c.workflowID = None
        return c

    def test_jobs(self):
        job = job_description("a job")
        self.store.assign_job_id(job)
        self.assertTrue(str(job.jobStoreID))
        self.store.create_job(job)
        self.assertTrue(self.store.job_exists(str(job.jobStoreID)))
        loaded = self.store.load_job(str(job.jobStoreID))
        self.assertEqual(loaded.jobName, "a job")
        loaded.jobName = "renamed"
        self.store.update_job(loaded)
        self.assertEqual(self.store.load_job(str(job.jobStoreID)).jobName, "renamed")
        self.assertEqual([str(j.jobStoreID) for j in self.store.jobs()], [str(job.jobStoreID)])
        owned = self.store.get_empty_file_store_id(job_id=str(job.jobStoreID), cleanup=True)
        self.store.delete_job(str(job.jobStoreID))
        self.assertFalse(self.store.job_exists(str(job.jobStoreID)))
        self.assertFalse(self.store.file_exists(owned), "a cleanup file goes with its job")
        with self.assertRaises(NoSuchJobException):
            self.store.load_job(str(job.jobStoreID))

    def test_files(self):
        path = os.path.join(self.daemon.directory, "input.bin")
        body = os.urandom(7 << 20)  # on S3 with 5 MiB parts: a multipart object
        with open(path, "wb") as f:
            f.write(body)
        os.chmod(path, 0o755)
        file_id = self.store.write_file(path)
        self.assertTrue(file_id.executable)
        self.assertEqual(self.store.get_file_size(file_id), len(body))
        for symlink in (False, True):
            target = os.path.join(self.daemon.directory, f"out-{symlink}")
            self.store.read_file(file_id, target, symlink=symlink)
            with open(target, "rb") as f:
                self.assertEqual(f.read(), body)
            self.assertTrue(os.access(target, os.X_OK))
            if symlink:  # a hard link to the daemon's read-only file (on S3: the node cache's entry)
                self.assertFalse(os.path.islink(target))
                self.assertGreaterEqual(os.stat(target).st_nlink, 2)
        with self.store.write_file_stream(hints=["my wf", "step 1"], basename="out.txt") as (f, stream_id):
            self.assertIn("/files/", stream_id, "the id is known before the content is written")
            f.write(b"streamed")
        with self.store.read_file_stream(stream_id) as f:
            self.assertEqual(f.read(), b"streamed")
        with self.store.read_file_stream(stream_id, encoding="utf-8") as f:
            self.assertEqual(f.read(), "streamed")
        with self.store.update_file_stream(stream_id) as f:
            f.write(b"updated")
        with self.store.read_file_stream(stream_id) as f:
            self.assertEqual(f.read(), b"updated")
        self.store.update_file(stream_id, path)
        self.assertEqual(self.store.get_file_size(stream_id), len(body))
        with self.assertRaises(ZeroDivisionError):
            with self.store.write_file_stream(basename="never") as (f, never_id):
                f.write(b"half")
                1 / 0
        self.assertFalse(self.store.file_exists(never_id), "a failed stream stores nothing")
        self.store.delete_file(file_id)
        self.assertFalse(self.store.file_exists(file_id))
        with self.assertRaises(NoSuchFileException):
            with self.store.read_file_stream(file_id):
                pass
        with self.assertRaises(NoSuchFileException):
            self.store.read_file(file_id, os.path.join(self.daemon.directory, "gone"))

    def test_shared_files_and_logs(self):
        with self.store.write_shared_file_stream("environment.pickle") as f:
            pickle.dump({"A": "1"}, f)
        with self.store.read_shared_file_stream("environment.pickle") as f:
            self.assertEqual(pickle.load(f), {"A": "1"})
        with self.assertRaises(NoSuchFileException):
            with self.store.read_shared_file_stream("missing"):
                pass
        self.store.write_logs("first")
        self.store.write_logs("second")
        seen = []
        self.assertEqual(self.store.read_logs(lambda s: seen.append(s.read())), 2)
        self.assertEqual(sorted(seen), [b"first", b"second"])
        self.assertEqual(self.store.read_logs(lambda s: seen.append(s.read())), 0, "read once")
        self.assertEqual(self.store.read_logs(lambda s: seen.append(s.read()), read_all=True), 2)
        url = self.store.get_shared_public_url("environment.pickle")
        self.assertTrue(url.startswith("http" if self.s3 else "file:"), url)


class LocalAdapterTests(AdapterContract, unittest.TestCase):
    pass


class S3AdapterTests(AdapterContract, unittest.TestCase):
    s3 = True


class WorkflowTests(unittest.TestCase):
    """A real Toil run: 1 root, 10 middles each with a child and a follow-on, 1 gather (32 jobs),
    two workers at a time (single-machine batch system), files between jobs, a shared file, logs
    to the leader; then `toil status` and `toil clean` on the same locator."""

    def run_workflow(self, s3: bool) -> None:
        daemon = Daemon(s3=s3)
        try:
            locator = "jobstored:" + (Daemon.aws_locator() if s3 else daemon.local_locator())
            work = daemon.directory
            with open(os.path.join(work, "in.txt"), "w") as f:
                f.write("hello jobstored\n")
            env = dict(os.environ, JOBSTORED_SOCKET=daemon.socket)
            for k in [k for k in env if k.startswith("AWS_")]:
                del env[k]  # Toil itself must not need S3: everything goes through the daemon
            run = subprocess.run([sys.executable, os.path.join(HERE, "workflow.py"), locator, os.path.join(work, "in.txt"),
                                  os.path.join(work, "out.txt"), "10", "--batchSystem", "single_machine", "--maxCores", "2",
                                  "--clean", "never", "--logLevel", "INFO", "--workDir", work],
                                 env=env, cwd=work, capture_output=True, text=True, timeout=600)
            self.assertEqual(run.returncode, 0, run.stderr[-4000:])
            with open(os.path.join(work, "out.txt")) as f:
                out = f.read().split("\n")
            self.assertEqual(sorted(x for x in out if x), sorted(f"T{i}:HELLO JOBSTORED" for i in range(10)))
            self.assertIn("leaf 3 read 16 bytes", run.stderr, "logs reach the leader")
            status = subprocess.run(["toil", "status", locator], env=env, capture_output=True, text=True, timeout=120)
            self.assertEqual(status.returncode, 0, status.stderr[-2000:])
            self.assertIn("0 completely failed jobs", status.stdout + status.stderr)
            clean = subprocess.run(["toil", "clean", locator], env=env, capture_output=True, text=True, timeout=120)
            self.assertEqual(clean.returncode, 0, clean.stderr[-2000:])
            gone = subprocess.run(["toil", "status", locator], env=env, capture_output=True, text=True, timeout=120)
            self.assertIn("was not found", gone.stdout + gone.stderr)
        finally:
            daemon.stop()

    def test_workflow_on_a_local_store(self):
        self.run_workflow(s3=False)

    def test_workflow_on_an_s3_store(self):
        if not have_s3():
            self.fail("JOBSTORE_TEST_S3_* not set")
        self.run_workflow(s3=True)


if __name__ == "__main__":
    unittest.main()
