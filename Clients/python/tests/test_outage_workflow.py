"""S3 restarting under a real Toil workflow (issue 18), as a Toil user meets it.

Toil's sort example (leader + worker processes, single_machine, --retryCount 0 so that any
failed call fails the run) on jobstored:aws:us-east-1:NAME against a SeaweedFS of the test's
own. Mid-run that SeaweedFS is stopped (SIGTERM, as a rolling upgrade does), kept down 30 s,
and started again on the same data and ports. The workflow must finish with the input's lines
sorted; the daemon's Stats must show one outage that calls waited through; a raw look at the
bucket (boto3, straight to SeaweedFS) must find every object whole and no upload left open.
"""
import json
import os
import subprocess
import sys
import time
import unittest
import uuid

import jobstore
from jobstore import pb

from daemon import ROOT, Daemon, have_s3
from encryption_support import remove_bucket, stop, toil_clean, toil_env
from seaweed import SeaweedFS

OUTAGE_SECONDS = 30


def stats(daemon: Daemon):
    client = jobstore.Client(daemon.socket)
    try:
        return client.stats(pb.Empty())
    finally:
        client.close()


class OutageWorkflowTests(unittest.TestCase):
    def test_sort_rides_out_a_30_s_restart_of_the_s3_server(self):
        if not have_s3():
            raise RuntimeError("JOBSTORE_TEST_S3_* not set: run tools/dev-s3 start (tools/test does)")
        import boto3

        seaweed = SeaweedFS()
        self.addCleanup(seaweed.remove)
        log_path = os.path.join(seaweed.directory, "daemon.log")
        daemon = Daemon(s3=True, endpoint=seaweed.endpoint, log_path=log_path)
        self.addCleanup(daemon.stop)
        work = daemon.directory
        run_dir = os.path.join(work, "run")
        os.mkdir(run_dir)
        name = f"jobstore-outage-{uuid.uuid4().hex[:8]}"
        locator, bucket = f"jobstored:aws:us-east-1:{name}", f"{name}--toil"
        s3 = boto3.client("s3", endpoint_url=seaweed.endpoint, region_name="us-east-1",
                          aws_access_key_id=os.environ["JOBSTORE_TEST_S3_ACCESS_KEY"],
                          aws_secret_access_key=os.environ["JOBSTORE_TEST_S3_SECRET_KEY"])
        env = toil_env(work, daemon)
        leader_log = os.path.join(work, "leader.log")
        with open(leader_log, "w") as log:
            process = subprocess.Popen(
                [sys.executable, os.path.join(ROOT, "bench", "python", "sort_workflow.py"), locator,
                 "--batchSystem", "single_machine", "--clean", "never", "--retryCount", "0", "--logLevel", "INFO",
                 "--workDir", work, "--numLines", "40000", "--N", "100000"],
                cwd=run_dir, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.addCleanup(stop, process)

        def tail() -> str:
            with open(leader_log, errors="replace") as f:
                return f.read()[-6000:]

        # Mid-run: once jobs have been written back (workers are running), S3 goes away.
        deadline = time.time() + 300
        while True:
            calls = {m.method: m.calls for m in stats(daemon).methods}
            if calls.get("UpdateJob", 0) >= 20:
                break
            if process.poll() is not None or time.time() > deadline:
                self.fail(f"the workflow never got going (calls {calls}):\n" + tail())
            time.sleep(0.1)
        stopped_at = time.monotonic()
        seaweed.stop()
        down_since = time.monotonic()
        time.sleep(OUTAGE_SECONDS)
        during = stats(daemon).s3_session.outages[0]
        self.assertIsNone(process.poll(), "the workflow is still running through the outage:\n" + tail())
        self.assertTrue(during.unreachable, "Stats shows S3 unreachable")
        seaweed.start()
        restarted_at = time.monotonic()
        try:
            process.wait(600)
        except subprocess.TimeoutExpired:
            self.fail("the workflow did not end after S3 came back:\n" + tail())
        self.assertEqual(process.returncode, 0, "the workflow completes, its output sorted:\n" + tail())

        after = stats(daemon).s3_session.outages[0]
        with open(log_path, errors="replace") as f:
            daemon_log = f.read()
        figures = {"s3_down_s": round(restarted_at - down_since, 1), "stop_took_s": round(down_since - stopped_at, 1),
                   "outages": after.outages, "outage_s": after.longest_outage_ms / 1000, "calls_waited": after.calls_waited,
                   "longest_wait_s": after.longest_wait_ms / 1000, "calls_failed": after.calls_failed,
                   "calls_waiting_mid_outage": during.calls_waiting}
        print("outage under Toil's sort:", json.dumps(figures), file=sys.stderr)
        self.assertFalse(after.unreachable)
        self.assertEqual(after.outages, 1, daemon_log[-3000:])
        self.assertGreaterEqual(after.calls_waited, 1)
        self.assertEqual(after.calls_failed, 0)
        self.assertGreaterEqual(after.longest_wait_ms / 1000, OUTAGE_SECONDS - 2, "calls waited through the outage")
        self.assertEqual(daemon_log.count("is unreachable ("), 1, daemon_log[-3000:])
        self.assertEqual(daemon_log.count("is reachable again after"), 1, daemon_log[-3000:])

        # Straight from SeaweedFS: every object whole (its bytes match the SHA-256 the daemon
        # recorded), none missing its checksum, no multipart upload left open.
        self.addCleanup(remove_bucket, s3, bucket)
        manifest = os.path.join(work, "expected.json")
        with open(manifest, "w") as f:
            json.dump({"objects": {}}, f)
        check = subprocess.run([sys.executable, os.path.join(ROOT, "Tests", "Faults", "verify_bucket.py"), seaweed.endpoint,
                                bucket, manifest], capture_output=True, text=True, timeout=300)
        print("bucket check:", check.stdout.strip(), file=sys.stderr)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        self.assertGreater(json.loads(check.stdout)["objects"], 0)
        self.assertEqual(s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []), [])
        toil_clean(self, locator, env)


if __name__ == "__main__":
    unittest.main()
