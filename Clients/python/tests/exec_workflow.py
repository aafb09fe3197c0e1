"""A real Toil workflow for test_executable.py (Toil's testImportReadFileCompatibility, widened):
the leader imports each URL of a spec, a job reads every import back through the file store in
every way (readGlobalFile mutable/symlink/cache, a plain-str id, readGlobalFileStream, and the
job store's read_file and read_file_stream), writes an executable and a plain file, and a child
job reads those back. Each read is recorded as {file, how, x (os.access X_OK), sha256}.
Usage: exec_workflow.py JOBSTORE SPEC.json RESULT.json [toil options]
SPEC: {"imports": {name: url}, "caching": bool}; RESULT: {"ids", "leader_executable", "reads"}."""
import hashlib
import json
import os
import stat
import sys

from toil.common import Toil
from toil.job import Job


def _sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _record(reads, name, how, path):
    st = os.lstat(path)
    reads.append({"file": name, "how": how, "x": os.access(path, os.X_OK), "sha256": _sha(path),
                  "mode": oct(os.stat(path).st_mode & 0o7777), "nlink": st.st_nlink, "islink": os.path.islink(path)})


def _read_every_way(job, name, fid, caching, reads):
    store = job.fileStore
    for mutable in (True, False):
        for symlink in (True, False):
            for cache in ((True, False) if caching else (True,)):
                how = f"readGlobalFile(mutable={mutable}, symlink={symlink}, cache={cache})"
                _record(reads, name, how, store.readGlobalFile(fid, mutable=mutable, symlink=symlink, cache=cache))
    for symlink in (True, False):
        # A bare id (a FileID that lost its attributes, as after a str() round trip): the job
        # store alone knows the bit.
        how = f"readGlobalFile(str(id), symlink={symlink})"
        _record(reads, name, how, store.readGlobalFile(str(fid), symlink=symlink))
    with store.readGlobalFileStream(fid) as stream:
        reads.append({"file": name, "how": "readGlobalFileStream", "x": None,
                      "sha256": hashlib.sha256(stream.read()).hexdigest()})
    for symlink in (True, False):
        for as_str in (False, True):
            path = os.path.join(store.getLocalTempDir(), "direct")
            store.jobStore.read_file(str(fid) if as_str else fid, path, symlink=symlink)
            _record(reads, name, f"jobStore.read_file({'str(id)' if as_str else 'id'}, symlink={symlink})", path)
    with store.jobStore.read_file_stream(fid) as stream:
        reads.append({"file": name, "how": "jobStore.read_file_stream", "x": None,
                      "sha256": hashlib.sha256(stream.read()).hexdigest()})


def read_imports(job, ids, caching, written_bodies):
    reads = []
    for name, fid in sorted(ids.items()):
        _read_every_way(job, name, fid, caching, reads)
    written = {}
    for name, (body, mode) in written_bodies.items():
        path = os.path.join(job.fileStore.getLocalTempDir(), name)
        with open(path, "wb") as f:
            f.write(body.encode())
        os.chmod(path, mode)
        written[name] = job.fileStore.writeGlobalFile(path)
        reads.append({"file": name, "how": "writeGlobalFile's FileID", "x": bool(written[name].executable),
                      "sha256": hashlib.sha256(body.encode()).hexdigest(), "id": str(written[name])})
    return job.addChildJobFn(read_written, written, caching, reads).rv()


def read_written(job, written, caching, reads):
    for name, fid in sorted(written.items()):
        _read_every_way(job, name, fid, caching, reads)
    return reads


def main():
    jobstore, spec_path, result_path = sys.argv[1:4]
    with open(spec_path) as f:
        spec = json.load(f)
    options = Job.Runner.getDefaultArgumentParser().parse_args([jobstore] + sys.argv[4:])
    with Toil(options) as toil:
        ids = {name: toil.importFile(url) for name, url in spec["imports"].items()}
        written_bodies = {"written-exec": ("#!/bin/sh\necho written\n", 0o755), "written-plain": ("written\n", 0o644)}
        reads = toil.start(Job.wrapJobFn(read_imports, ids, spec["caching"], written_bodies))
    with open(result_path, "w") as f:
        json.dump({"ids": {name: str(fid) for name, fid in ids.items()},
                   "leader_executable": {name: bool(fid.executable) for name, fid in ids.items()},
                   "reads": reads}, f)


if __name__ == "__main__":
    main()
