"""Toil small-job throughput: P worker processes each create, load and update J pickled
JobDescriptions, through the given Toil job store (jobstored:... via the adapter, or aws:...
Toil's own AWSJobStore with boto3). usage: toil_jobs.py LOCATOR P J -> "OPS_PER_S WORKER_CPU_MS_PER_OP"
(3 ops per job; the CPU the worker processes spent in their loops, per op)."""
import multiprocessing
import sys
import time

LOCATOR, PROCS, JOBS = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])


def store():
    import toil.lib.aws.s3 as s
    s.enable_public_objects = lambda *a, **k: None
    s.enable_encryption = lambda *a, **k: None
    import toil.jobStores.aws.jobStore as aws
    aws.enable_public_objects = s.enable_public_objects
    aws.enable_encryption = s.enable_encryption
    from toil.common import Toil
    return Toil.getJobStore(LOCATOR)


def worker(args):
    index, barrier = args
    from toil.job import JobDescription
    js = store()
    js.resume()
    barrier.wait()
    t = time.perf_counter()
    cpu = time.process_time()
    for j in range(JOBS):
        jd = JobDescription(requirements={"memory": 1 << 20, "cores": 1, "disk": 1 << 20, "preemptible": False},
                            jobName=f"w{index}", unitName="u")
        js.assign_job_id(jd)
        js.create_job(jd)
        loaded = js.load_job(str(jd.jobStoreID))
        js.update_job(loaded)
    return time.perf_counter() - t, time.process_time() - cpu


if __name__ == "__main__":
    from toil.common import Config
    js = store()
    config = Config()
    config.workflowID = None
    js.initialize(config)
    manager = multiprocessing.Manager()
    barrier = manager.Barrier(PROCS)
    # Every worker starts its loop at the barrier (after its imports and resume); the run lasts
    # until the slowest one is done.
    with multiprocessing.get_context("spawn").Pool(PROCS) as pool:
        results = pool.map(worker, [(i, barrier) for i in range(PROCS)])
    js.destroy()
    elapsed = max(wall for wall, _ in results)
    cpu = sum(c for _, c in results)
    print(f"{PROCS * JOBS * 3 / elapsed:.0f} {cpu / (PROCS * JOBS * 3) * 1000:.3f}")
