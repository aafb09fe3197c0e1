"""A new worker's start-up cost: a fresh Python process that imports the client, connects and
loads one job, next to one that imports Toil's AWSJobStore, makes its boto3 session, resumes
the store and loads the job (against the same SeaweedFS). Median of N runs each, interleaved.
usage: startup.py SOCKET DAEMON_LOCATOR TOIL_LOCATOR JOB_ID N"""
import os
import statistics
import subprocess
import sys
import time

socket, daemon_locator, toil_locator, job_id, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
ours = ("import jobstore\nfrom jobstore import pb\n"
        f"c = jobstore.Client({socket!r})\n"
        f"assert c.load_job(pb.JobRequest(locator={daemon_locator!r}, job_id={job_id!r})).body\n")
toils = ("import toil.lib.aws.s3 as s\ns.enable_public_objects = lambda *a, **k: None\n"
         "from toil.jobStores.aws.jobStore import AWSJobStore\n"
         f"js = AWSJobStore({toil_locator!r})\njs.resume()\nassert js.load_job({job_id!r})\n")
bare = "pass\n"
results = {"python -c pass (interpreter floor)": [], "jobstore client: import + connect + load_job": [],
           "Toil AWSJobStore: import + boto3 + resume + load_job": []}
for _ in range(n):
    for label, code in zip(results, (bare, ours, toils)):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        results[label].append((time.perf_counter() - t) * 1000)
for label, values in results.items():
    print(f"{label}\t{statistics.median(values):.0f}")
