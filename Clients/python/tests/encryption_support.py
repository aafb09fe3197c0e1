"""Helpers of the SSE-C tests (test_encryption_workflows.py, test_encryption_adapter.py): the
test S3 server through boto3, keys as Toil users make them, workflow processes and clean-up.
Only SeaweedFS (it enforces SSE-C; moto ignores it): every test checks at least once that a GET
without the key really fails."""
import json
import os
import secrets
import subprocess
import sys
import unittest

import jobstore

from daemon import Daemon


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
