"""A fan-out: one input file (64 MiB by default) imported by the leader and read by N jobs (16
by default), each writing a small output (the input's SHA-256 and its index); a last job checks
every output. usage: fanout_workflow.py LOCATOR INPUT_MIB READERS [stream|file] [Toil options...]
`stream` (the default) reads with readGlobalFileStream; `file` with readGlobalFile, the way a job
hands a path to a tool, which Toil's caching file store keeps a copy of on each node.
The readers are children of one root job, so Toil runs as many at once as --maxCores allows,
and each one is a new worker process. Same bucket set-up patch as sort_workflow.py."""
import hashlib
import os
import sys
import tempfile

import toil.lib.aws.s3 as toil_s3
from toil.common import Toil
from toil.job import Job

toil_s3.enable_public_objects = lambda *a, **k: None  # as in sort_workflow.py
toil_s3.enable_encryption = lambda *a, **k: None


def reader(job, input_id, index, mode="stream"):
    digest = hashlib.sha256()
    if mode == "file":
        with open(job.fileStore.readGlobalFile(input_id), "rb") as stream:
            while chunk := stream.read(1 << 20):
                digest.update(chunk)
    else:
        with job.fileStore.readGlobalFileStream(input_id) as stream:
            while chunk := stream.read(1 << 20):
                digest.update(chunk)
    path = os.path.join(job.fileStore.getLocalTempDir(), "out.txt")
    with open(path, "w") as f:
        f.write(f"{index} {digest.hexdigest()}\n")
    return job.fileStore.writeGlobalFile(path)


def check(job, outputs, expected):
    for index, output in enumerate(outputs):
        with job.fileStore.readGlobalFileStream(output) as stream:
            line = stream.read().decode()
        if line != f"{index} {expected}\n":
            raise RuntimeError(f"reader {index} wrote {line!r}, expected the input's digest {expected}")
    return len(outputs)


def root(job, input_id, readers, expected, mode="stream"):
    outputs = [job.addChildJobFn(reader, input_id, i, mode, cores=0.5, memory="100M", disk="200M").rv() for i in range(readers)]
    return job.addFollowOnJobFn(check, outputs, expected, cores=0.5, memory="100M", disk="10M").rv()


if __name__ == "__main__":
    locator, mib, readers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rest = sys.argv[4:]
    mode = rest.pop(0) if rest and rest[0] in ("stream", "file") else "stream"
    options = Job.Runner.getDefaultArgumentParser().parse_args([locator] + rest)
    work = tempfile.mkdtemp(prefix="fanout-input-")
    path = os.path.join(work, "input.bin")
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        block = hashlib.shake_256(b"fan-out input").digest(1 << 20)
        for i in range(mib):
            chunk = i.to_bytes(8, "big") + block[8:]
            digest.update(chunk)
            f.write(chunk)
    with Toil(options) as toil:
        input_id = toil.importFile("file://" + path)
        checked = toil.start(Job.wrapJobFn(root, input_id, readers, digest.hexdigest(), mode, cores=0.5, memory="100M", disk="10M"))
    os.remove(path)
    os.rmdir(work)
    if checked != readers:
        sys.exit(f"fanout_workflow: {checked} outputs checked, expected {readers}")
