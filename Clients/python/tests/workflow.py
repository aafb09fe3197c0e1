"""A real Toil workflow for the adapter tests: a root job fans out to N children (each reads
the imported input, logs to the leader, writes a file), a follow-on gathers their files, and
a shared file travels beside them. Usage: workflow.py JOBSTORE INPUT OUTPUT N [toil options]."""
import os
import sys

from toil.common import Toil
from toil.job import Job


def leaf(job, i, input_id, shared_name):
    data = open(job.fileStore.readGlobalFile(input_id)).read()
    with job.fileStore.jobStore.read_shared_file_stream(shared_name) as shared:
        tag = shared.read().decode()
    job.fileStore.log_to_leader(f"leaf {i} read {len(data)} bytes")
    out = job.fileStore.getLocalTempFile()
    with open(out, "w") as f:
        f.write(f"{tag}{i}:{data.upper()}\n")
    return job.fileStore.writeGlobalFile(out)


def gather(job, ids):
    parts = [open(job.fileStore.readGlobalFile(fid)).read() for fid in ids]
    out = job.fileStore.getLocalTempFile()
    with open(out, "w") as f:
        f.write("".join(sorted(parts)))
    for fid in ids:
        job.fileStore.deleteGlobalFile(fid)
    return job.fileStore.writeGlobalFile(out)


def middle(job, i, input_id, shared_name):
    # a child with its own child and follow-on: deeper graphs than one fan-out
    child = job.addChildJobFn(leaf, i, input_id, shared_name)
    return job.addFollowOnJobFn(gather, [child.rv()]).rv()


def root(job, n, input_id, shared_name):
    ids = [job.addChildJobFn(middle, i, input_id, shared_name).rv() for i in range(n)]
    return job.addFollowOnJobFn(gather, ids).rv()


def main():
    jobstore, input_path, output_path, n = sys.argv[1:5]
    parser = Job.Runner.getDefaultArgumentParser()
    options = parser.parse_args([jobstore] + sys.argv[5:])
    with Toil(options) as toil:
        input_id = toil.importFile("file://" + os.path.abspath(input_path))
        with toil._jobStore.write_shared_file_stream("tag.txt") as f:
            f.write(b"T")
        result = toil.start(Job.wrapJobFn(root, int(n), input_id, "tag.txt"))
        toil.exportFile(result, "file://" + os.path.abspath(output_path))


if __name__ == "__main__":
    main()
