"""Real Toil workflows for test_encryption.py (SSE-C through Toil's --sseKey).
Usage: sse_workflow.py MODE JOBSTORE SPEC.json RESULT.json [toil options]

MODE "full": the leader imports a file:// and an s3:// input; a root job reads both, writes a
small file, a file larger than the daemon's 5 MiB part size (a multipart object) and a shared
file, and logs to the leader; its children read everything back (readGlobalFile, a stream, the
job store's read_file with and without symlink) and update the small file; one child pauses
until the test has looked at the bucket mid-run (the only time job descriptions are in jobs/:
Toil deletes them as jobs finish); a follow-on reads the update and the shared file and writes
the output, which the leader exports to file:// and s3://. Any wrong byte fails the job.

MODE "rotate": the key changes mid-workflow. The root job writes a file; its child rewrites the
key file (config.sseKey) with another 32-character key, writes a second file and adds a child
that reads the second file, then the first (written under the old key). What the reader saw
is written to SPEC["probe"] (JSON) before the error, if any, propagates. The rotation waits
until the leader has polled its kill flag once (SPEC["leader_polled"]; see main()).

SPEC["patch_toil_bucket_setup"]: for Toil's own AWSJobStore on SeaweedFS, which lacks
DeletePublicAccessBlock and PutBucketEncryption (AWSJobStore.initialize calls both): the leader
makes toil.lib.aws.s3.enable_public_objects and enable_encryption no-ops.
"""
import hashlib
import json
import os
import sys
import time

from toil.common import Toil
from toil.job import Job


def big_body(seed: str, size: int) -> bytes:
    """Deterministic bytes the test predicts (SHAKE-256 of the seed)."""
    return hashlib.shake_256(seed.encode()).digest(size)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _check(what: str, got: bytes, expected: bytes) -> None:
    if got != expected:
        raise AssertionError(f"{what}: {len(got)} bytes (sha256 {_sha(got)[:12]}), expected {len(expected)} "
                             f"(sha256 {_sha(expected)[:12]})")


# -- MODE full ---------------------------------------------------------------------------------

def full_root(job, input_id, s3_id, spec):
    store = job.fileStore
    _check("file:// import via readGlobalFile", _read(store.readGlobalFile(input_id)), spec["input"].encode())
    _check("s3:// import via readGlobalFile", _read(store.readGlobalFile(s3_id)), big_body(spec["s3_seed"], spec["s3_size"]))
    small_path = os.path.join(store.getLocalTempDir(), "small.txt")
    with open(small_path, "wb") as f:
        f.write(spec["small_v1"].encode())
    small_id = store.writeGlobalFile(small_path)
    big_path = os.path.join(store.getLocalTempDir(), "big.bin")
    with open(big_path, "wb") as f:
        f.write(big_body(spec["big_seed"], spec["big_size"]))
    big_id = store.writeGlobalFile(big_path)
    with store.jobStore.write_shared_file_stream(spec["shared_name"]) as f:
        f.write(spec["shared"].encode())
    store.log_to_leader(spec["log_message"])
    ids = {"input": str(input_id), "s3": str(s3_id), "small": str(small_id), "big": str(big_id)}
    job.addChildJobFn(full_pause, spec)
    job.addChildJobFn(full_reader, input_id, s3_id, small_id, big_id, spec)
    return job.addFollowOnJobFn(full_finish, small_id, big_id, ids, spec).rv()


def full_pause(job, spec):
    """Holds the workflow (its job descriptions still in jobs/) until the test says go."""
    with open(os.path.join(spec["pause_dir"], "ready.tmp"), "w") as f:
        json.dump({"job_id": str(job.jobStoreID)}, f)
    os.rename(os.path.join(spec["pause_dir"], "ready.tmp"), os.path.join(spec["pause_dir"], "ready"))
    deadline = time.time() + 120
    while not os.path.exists(os.path.join(spec["pause_dir"], "go")):
        if time.time() > deadline:
            raise RuntimeError("the test never said go")
        time.sleep(0.05)


def full_reader(job, input_id, s3_id, small_id, big_id, spec):
    store = job.fileStore
    expected = {"input": spec["input"].encode(), "s3": big_body(spec["s3_seed"], spec["s3_size"]),
                "small": spec["small_v1"].encode(), "big": big_body(spec["big_seed"], spec["big_size"])}
    for name, fid in (("input", input_id), ("s3", s3_id), ("small", small_id), ("big", big_id)):
        # In the caching file store the first read fills Toil's cache (through the daemon's
        # node cache, hard-linked); cache=False and the job store's read_file go to the daemon.
        _check(f"{name} readGlobalFile", _read(store.readGlobalFile(fid)), expected[name])
        _check(f"{name} readGlobalFile(symlink=True)", _read(store.readGlobalFile(fid, symlink=True)), expected[name])
        _check(f"{name} readGlobalFile(cache=False)", _read(store.readGlobalFile(fid, cache=False)), expected[name])
        with store.readGlobalFileStream(fid) as stream:
            _check(f"{name} readGlobalFileStream", stream.read(), expected[name])
        for symlink in (False, True):
            path = os.path.join(store.getLocalTempDir(), f"{name}-{symlink}")
            store.jobStore.read_file(fid, path, symlink=symlink)
            _check(f"{name} jobStore.read_file(symlink={symlink})", _read(path), expected[name])
        if store.jobStore.get_file_size(fid) != len(expected[name]):
            raise AssertionError(f"{name}: get_file_size {store.jobStore.get_file_size(fid)} != {len(expected[name])}")
    with store.jobStore.read_shared_file_stream(spec["shared_name"]) as f:
        _check("shared file", f.read(), spec["shared"].encode())
    path = os.path.join(store.getLocalTempDir(), "small-v2.txt")
    with open(path, "wb") as f:
        f.write(spec["small_v2"].encode())
    store.jobStore.update_file(small_id, path)


def full_finish(job, small_id, big_id, ids, spec):
    store = job.fileStore
    # The update went around the file store (the job store's update_file): read it from the store.
    with store.jobStore.read_file_stream(small_id) as f:
        small = f.read()
    _check("updated small file", small, spec["small_v2"].encode())
    with store.jobStore.read_shared_file_stream(spec["shared_name"]) as f:
        shared = f.read()
    big = _read(store.readGlobalFile(big_id, cache=False))
    out = os.path.join(store.getLocalTempDir(), "output.txt")
    with open(out, "wb") as f:
        f.write(output_text(spec, shared, small, big).encode())
    output_id = store.writeGlobalFile(out)
    ids["output"] = str(output_id)
    return {"output": output_id, "ids": ids}


def output_text(spec, shared: bytes, small: bytes, big: bytes) -> str:
    return f"{spec['input'].upper()}|{shared.decode()}|{small.decode()}|{_sha(big)}\n"


# -- MODE rotate ---------------------------------------------------------------------------------

def rotate_root(job, spec):
    store = job.fileStore
    path = os.path.join(store.getLocalTempDir(), "before.txt")
    with open(path, "w") as f:
        f.write("written under the first key\n")
    before = store.writeGlobalFile(path)
    store.log_to_leader("rotate_root wrote its file under the first key")
    job.addChildJobFn(rotate_key, before, spec)


def rotate_key(job, before_id, spec):
    deadline = time.time() + 60
    while not os.path.exists(spec["leader_polled"]):  # see main()
        if time.time() > deadline:
            raise RuntimeError("the leader never polled its kill flag")
        time.sleep(0.05)
    key_file = job.fileStore.jobStore.config.sseKey
    with open(key_file + ".new", "w") as f:
        f.write(spec["second_key"])
    os.replace(key_file + ".new", key_file)  # every process reads config.sseKey at each call
    store = job.fileStore
    path = os.path.join(store.getLocalTempDir(), "after.txt")
    with open(path, "w") as f:
        f.write("written under the second key\n")
    after = store.writeGlobalFile(path)
    job.addChildJobFn(rotate_reader, before_id, after, spec)


def rotate_reader(job, before_id, after_id, spec):
    store = job.fileStore
    probe = {"after": None, "before": None}
    try:
        probe["after"] = _read(store.readGlobalFile(after_id)).decode()
        try:
            probe["before"] = _read(store.readGlobalFile(before_id)).decode()
        except Exception as e:
            probe["error"] = _describe(e)
            raise
    finally:
        with open(spec["probe"], "w") as f:
            json.dump(probe, f)


def _describe(e: BaseException) -> dict:
    described = {"type": f"{type(e).__module__}.{type(e).__qualname__}",
                 "mro": [f"{c.__module__}.{c.__qualname__}" for c in type(e).__mro__], "message": str(e)}
    response = getattr(e, "response", None)
    if isinstance(response, dict):  # botocore's ClientError
        described["http_status"] = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        described["operation"] = getattr(e, "operation_name", None)
    return described


def _signal_after_first_call(cls, method: str, path: str) -> None:
    """Creates ``path`` once ``cls.method`` has first returned (in this process only; patched
    on the class, so that nothing unpicklable lands in the job store's __dict__)."""
    original = getattr(cls, method)

    def wrapper(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        if not os.path.exists(path):
            open(path, "w").close()
        return result

    setattr(cls, method, wrapper)


# -- the leader ----------------------------------------------------------------------------------

def main():
    mode, jobstore, spec_path, result_path = sys.argv[1:5]
    with open(spec_path) as f:
        spec = json.load(f)
    if spec.get("patch_toil_bucket_setup"):
        import toil.lib.aws.s3 as toil_s3

        toil_s3.enable_public_objects = lambda *a, **k: None
        toil_s3.enable_encryption = lambda *a, **k: None
    options = Job.Runner.getDefaultArgumentParser().parse_args([jobstore] + sys.argv[5:])
    result = {}
    with Toil(options) as toil:
        if mode == "full":
            input_id = toil.importFile("file://" + spec["input_path"])
            s3_id = toil.importFile(spec["s3_url"])
            returned = toil.start(Job.wrapJobFn(full_root, input_id, s3_id, spec))
            toil.exportFile(returned["output"], "file://" + spec["export_path"])
            toil.exportFile(returned["output"], spec["export_url"])
            result["ids"] = returned["ids"]
        elif mode == "rotate":
            # The leader polls the kill flag (a shared file written under the first key) at its
            # first loop, then every 5 s: a poll after the rotation would fail, and which process
            # meets the old key first would depend on timing. So the leader polls once, and the
            # rotation waits for that poll (the file says when; the poll itself is Toil's).
            toil.config.kill_polling_interval = 24 * 3600
            _signal_after_first_call(type(toil._jobStore), "read_kill_flag", spec["leader_polled"])
            toil.start(Job.wrapJobFn(rotate_root, spec))
        else:
            raise SystemExit(f"unknown mode {mode}")
    with open(result_path, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
