"""Many workers of one node reading the same file: P processes each read FILE_ID of the Toil
job store LOCATOR into a local file (Toil's read_file) after a common barrier.

usage: cache_readers.py LOCATOR FILE_ID P [--symlink]
  LOCATOR: jobstored:aws:REGION:NAME (through the daemon and its node cache) or
           aws:REGION:NAME (Toil's own AWSJobStore, boto3).
prints one line: <seconds until all were done> <per-reader MiB/s, median> <slowest reader MiB/s>
                 <GetObject requests> <bytes received by GetObject>   (the last two: Toil only,
                 counted in each process from botocore; for the daemon read Stats instead)."""
import multiprocessing
import os
import statistics
import sys
import tempfile
import time

LOCATOR, FILE_ID, PROCS = sys.argv[1], sys.argv[2], int(sys.argv[3])
SYMLINK = "--symlink" in sys.argv


def count_s3_calls(counts):
    """Counts GetObject calls and their bytes in this process (boto3 readers only)."""
    import botocore.client
    original = botocore.client.BaseClient._make_api_call

    def counting(self, operation, params):
        response = original(self, operation, params)
        if operation == "GetObject":
            counts["requests"] += 1
            counts["bytes"] += int(response.get("ContentLength", 0))
        return response

    botocore.client.BaseClient._make_api_call = counting


def store():
    import toil.lib.aws.s3 as s
    s.enable_public_objects = lambda *a, **k: None
    s.enable_encryption = lambda *a, **k: None
    import toil.jobStores.aws.jobStore as aws
    aws.enable_public_objects = s.enable_public_objects
    aws.enable_encryption = s.enable_encryption
    from toil.common import Toil
    return Toil.getJobStore(LOCATOR)


def reader(args):
    index, barrier, directory = args
    counts = {"requests": 0, "bytes": 0}
    count_s3_calls(counts)
    from toil.fileStores import FileID
    js = store()
    js.resume()
    size = js.get_file_size(FILE_ID)
    file_id = FileID(FILE_ID, size)
    target = os.path.join(directory, f"r{index}")
    barrier.wait()
    t = time.perf_counter()
    js.read_file(file_id, target, symlink=SYMLINK)
    elapsed = time.perf_counter() - t
    assert os.path.getsize(target) == size
    os.unlink(target)
    return elapsed, size, counts["requests"], counts["bytes"]


if __name__ == "__main__":
    manager = multiprocessing.Manager()
    barrier = manager.Barrier(PROCS)
    with tempfile.TemporaryDirectory(prefix="cache-readers-", dir=os.environ.get("READERS_DIR")) as directory:
        with multiprocessing.get_context("spawn").Pool(PROCS) as pool:
            results = pool.map(reader, [(i, barrier, directory) for i in range(PROCS)])
    mib = results[0][1] / (1 << 20)
    rates = [mib / r[0] for r in results]
    print(f"{max(r[0] for r in results):.2f} {statistics.median(rates):.0f} {min(rates):.0f} "
          f"{sum(r[2] for r in results)} {sum(r[3] for r in results)}")
