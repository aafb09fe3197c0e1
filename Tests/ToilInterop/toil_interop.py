"""Toil 9.6's own AWSJobStore on one side of a store, the daemon on the other.

Run by ToilInteropTests (Swift), which drives the daemon side:
  toil_interop.py toil-writes NAME OUT.json   Toil creates the store and writes jobs, files,
                                              a shared file and logs; OUT.json says what.
  toil_interop.py toil-reads NAME IN.json     Toil reads what the daemon wrote (IN.json says
                                              what to expect); exit status 0 when all match.
Environment: AWS_ENDPOINT_URL and AWS credentials of the local S3 server.
"""
import base64
import hashlib
import io
import json
import os
import pickle
import sys
import tempfile

import toil.lib.aws.s3 as toil_s3

# SeaweedFS and moto lack DeletePublicAccessBlock / bucket encryption configuration, which
# AWSJobStore.initialize calls; they are not part of the layout under test.
toil_s3.enable_public_objects = lambda *a, **k: None
toil_s3.enable_encryption = lambda *a, **k: None
import toil.jobStores.aws.jobStore as aws_module  # noqa: E402

aws_module.enable_public_objects = toil_s3.enable_public_objects
aws_module.enable_encryption = toil_s3.enable_encryption
from toil.common import Config  # noqa: E402
from toil.job import JobDescription  # noqa: E402
from toil.jobStores.aws.jobStore import AWSJobStore  # noqa: E402


def job_description(name):
    return JobDescription(requirements={"memory": 1 << 20, "cores": 1, "disk": 1 << 20, "preemptible": False},
                          jobName=name, unitName=name)


def toil_writes(name, out_path):
    store = AWSJobStore(f"us-east-1:{name}")
    config = Config()
    config.workflowID = None
    store.initialize(config)
    job = job_description("toil-job")
    store.assign_job_id(job)
    store.create_job(job)
    raw = store.read_from_bucket(identifier=str(job.jobStoreID), prefix=store.job_key_prefix)
    content = os.urandom(3 << 20) + b"toil"
    with tempfile.NamedTemporaryFile(delete=False) as f:
        f.write(content)
    file_id = store.write_file(f.name, job_id=str(job.jobStoreID), cleanup=True)
    os.unlink(f.name)
    with store.write_file_stream() as (stream, stream_id):
        stream.write(b"streamed by toil")
    with store.write_shared_file_stream("toil-shared.txt") as stream:
        stream.write(b"shared by toil")
    store.write_logs("log line one from toil")
    store.write_logs("log line two from toil")
    # A job description for the daemon to store under an id of its own choosing.
    daemon_job = job_description("daemon-job")
    daemon_job.jobStoreID = "daemon-made-job-0001"
    json.dump({
        "job_id": str(job.jobStoreID),
        "job_sha256": hashlib.sha256(raw).hexdigest(),
        "file_id": str(file_id),
        "file_sha256": hashlib.sha256(content).hexdigest(),
        "file_size": len(content),
        "stream_id": str(stream_id),
        "daemon_job_id": "daemon-made-job-0001",
        "daemon_job_pickle": base64.b64encode(pickle.dumps(daemon_job, protocol=pickle.HIGHEST_PROTOCOL)).decode(),
    }, open(out_path, "w"))


def toil_reads(name, in_path):
    expected = json.load(open(in_path))
    store = AWSJobStore(f"us-east-1:{name}")
    store.resume()
    failures = []

    def check(what, ok):
        if not ok:
            failures.append(what)

    job = store.load_job(expected["daemon_job_id"])
    check("daemon job loads as a JobDescription", isinstance(job, JobDescription))
    check("daemon job id", str(job.jobStoreID) == expected["daemon_job_id"])
    check("daemon job listed", expected["daemon_job_id"] in [str(j.jobStoreID) for j in store.jobs()])
    for file_id, sha, size in expected["files"]:
        check(f"file {file_id} exists", store.file_exists(file_id))
        check(f"file {file_id} size", store.get_file_size(file_id) == size)
        with store.read_file_stream(file_id) as stream:
            data = stream.read()
        check(f"file {file_id} content", hashlib.sha256(data).hexdigest() == sha)
        with tempfile.TemporaryDirectory() as d:
            target = os.path.join(d, "copy")
            store.read_file(file_id, target)
            check(f"file {file_id} read_file", hashlib.sha256(open(target, "rb").read()).hexdigest() == sha)
    with store.read_shared_file_stream(expected["shared_name"]) as stream:
        check("shared file", stream.read() == expected["shared_content"].encode())
    messages = []
    store.read_logs(lambda s: messages.append(s.read().decode()), read_all=True)
    for line in expected["log_lines"]:
        check(f"log {line!r}", line in messages)
    if failures:
        print("MISMATCH: " + "; ".join(failures), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    mode, name, path = sys.argv[1:4]
    {"toil-writes": toil_writes, "toil-reads": toil_reads}[mode](name, path)
