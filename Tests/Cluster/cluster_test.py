"""Toil across a 3-node Slurm cluster made by tools/cluster, one jobstored per node, on
jobstored:aws: (SeaweedFS on the cluster's bridge). Leader on node 1, --batchSystem slurm.

- Toil's sort example: the output is the input sorted (sort_workflow.py checks it).
- A fan-out: one 64 MiB input read by 24 jobs spread by Slurm over the nodes with
  readGlobalFile, each writing an output, checked by a last job. Each node's scratch disk holds
  one copy of the input at its peak (the daemon's cache entry, and Toil's cached copy as a hard
  link to it), not two.
- --sseKey across the nodes: a fan-out (8 MiB, multipart, read by 6 jobs) with a key file; every
  object in the bucket but config.pickle is refused by S3 without the key and whole with it.
- Another node's update is seen: node 1 writes a file, node 2 reads it (into its cache), node 3
  updates it, node 2's next read has the update (cross_node.py, Toil's job-store API).
- Every node's daemon served calls in each workflow (the work really spread).
- Each node downloaded the fan-out's input at most once: S3 bytes received per node, from the
  daemons' own Stats, stay under one input's size (plus the outputs' few bytes).
- `tools/cluster down` leaves nothing behind: no namespace, link, process or state directory.
Prints one line "cluster: 1 passed, 0 failed" (or "0 passed, 1 failed") and exits 0 or 1."""
import json
import os
import subprocess
import sys
import time
import uuid
from functools import partial

from scratch_disk import ScratchDiskPeak

print = partial(print, flush=True)  # noqa: A001 (progress while it runs)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CLUSTER = os.path.join(ROOT, "tools", "cluster")
NODES = 3
FANOUT_MIB, READERS = 64, 24
MiB = 1 << 20


def cluster(*args, **kw):
    return subprocess.run([CLUSTER, *args], check=True, text=True, capture_output=True, **kw).stdout


def node_stats(k):
    out = cluster("exec", str(k), "--", os.path.join(ROOT, ".build", "release", "jobstore"), "status", "--json")
    s = json.loads(out)
    gets = sum(b["bytes_received"] for b in s.get("backend_requests", []) if b["operation"] == "GetObject")
    calls = sum(m["calls"] for m in s.get("methods", []) if m["method"] not in ("Hello", "Ping", "Stats"))
    return {"get_bytes": gets, "calls": calls}


def sse_objects_check(env, bucket, key):
    """Every object but config.pickle: refused without the key, whole with it."""
    import boto3
    from botocore.exceptions import ClientError
    s3 = boto3.client("s3", endpoint_url=env["JOBSTORE_CLUSTER_S3_DIRECT"], region_name="us-east-1",
                      aws_access_key_id="jobstore-test", aws_secret_access_key="jobstore-test-secret")
    problems, checked = [], 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            name = obj["Key"]
            if name == "config.pickle":
                continue
            try:
                s3.get_object(Bucket=bucket, Key=name)["Body"].read()
                problems.append(f"{name}: readable without the SSE-C key")
            except ClientError:
                pass
            body = s3.get_object(Bucket=bucket, Key=name, SSECustomerAlgorithm="AES256", SSECustomerKey=key)["Body"].read()
            if len(body) != obj["Size"]:
                problems.append(f"{name}: {len(body)} bytes with the key, listed as {obj['Size']}")
            checked += 1
    if checked == 0:
        problems.append("no encrypted object to check")
    return problems, checked


def run_workflow(env, name, argv, clean="always"):
    run_dir = os.path.join(env["JOBSTORE_CLUSTER_DIR"], f"run-{name}")
    os.makedirs(run_dir, exist_ok=True)
    started = time.monotonic()
    p = subprocess.run([CLUSTER, "exec", "1", "--", "env", f"PYTHONPATH={ROOT}/Clients/python", "python3", *argv,
                        "--batchSystem", "slurm", "--workDir", env["JOBSTORE_CLUSTER_SCRATCH"] + "/toil", "--clean", clean, "--logLevel", "INFO"],
                       cwd=run_dir, env=env, text=True, capture_output=True, timeout=1200)
    took = time.monotonic() - started
    if p.returncode != 0:
        raise AssertionError(f"{name} failed (exit {p.returncode}):\n{(p.stdout + p.stderr)[-4000:]}")
    return took


def check_nothing_left():
    left = []
    netns = subprocess.run(["ip", "netns", "list"], text=True, capture_output=True).stdout
    if "jsnode" in netns:
        left.append(f"namespaces: {netns.strip()}")
    if subprocess.run(["ip", "link", "show", "jsbr0"], capture_output=True).returncode == 0:
        left.append("the bridge jsbr0")
    procs = subprocess.run(["pgrep", "-af", "jobstore-cluster"], text=True, capture_output=True).stdout.strip()
    if procs:
        left.append(f"processes: {procs}")
    if os.path.exists(os.environ.get("JOBSTORE_CLUSTER_DIR", "/var/tmp/jobstore-cluster")):
        left.append("the state directory")
    return left


def main():
    env = dict(os.environ)
    failures = []
    try:
        up = cluster("up", "--nodes", str(NODES))
        for line in up.splitlines():
            if line.startswith("export "):
                key, value = line[len("export "):].split("=", 1)
                env[key] = value
        sinfo = subprocess.run(["sinfo", "-h", "-o", "%D %T"], env=env, text=True, capture_output=True).stdout.strip()
        print(f"cluster: {NODES} nodes up ({sinfo})")

        before = {k: node_stats(k) for k in range(1, NODES + 1)}
        took = run_workflow(env, "sort", [f"{ROOT}/bench/python/sort_workflow.py", f"jobstored:aws:us-east-1:cl-sort-{uuid.uuid4().hex[:6]}",
                                          "--numLines", "20000", "--N", "20000"])
        after_sort = {k: node_stats(k) for k in range(1, NODES + 1)}
        spread = {k: after_sort[k]["calls"] - before[k]["calls"] for k in before}
        print(f"cluster: sort in {took:.1f} s, calls per node {spread}")
        for k, calls in spread.items():
            if calls == 0:
                failures.append(f"sort: node{k}'s daemon served no call (the work did not spread)")

        disk = ScratchDiskPeak(env["JOBSTORE_CLUSTER_DIR"], NODES)
        disk.start()
        took = run_workflow(env, "fanout", [f"{ROOT}/bench/python/fanout_workflow.py", f"jobstored:aws:us-east-1:cl-fan-{uuid.uuid4().hex[:6]}",
                                            str(FANOUT_MIB), str(READERS), "file"])
        peak = {k: p["disk"] for k, p in disk.stop().items()}
        after = {k: node_stats(k) for k in range(1, NODES + 1)}
        spread = {k: after[k]["calls"] - after_sort[k]["calls"] for k in before}
        downloaded = {k: after[k]["get_bytes"] - after_sort[k]["get_bytes"] for k in before}
        print(f"cluster: fan-out ({FANOUT_MIB} MiB, {READERS} readers) in {took:.1f} s, calls per node {spread}, "
              f"MiB from S3 per node { {k: round(v / MiB, 1) for k, v in downloaded.items()} }, "
              f"in all {sum(downloaded.values()) / MiB:.1f} MiB (without the node cache: {READERS * FANOUT_MIB} MiB), "
              f"peak MiB on each node's scratch disk { {k: round(v / MiB, 1) for k, v in peak.items()} }")
        for k in before:
            if spread[k] == 0:
                failures.append(f"fan-out: node{k}'s daemon served no call")
            if downloaded[k] > FANOUT_MIB * MiB + MiB:
                failures.append(f"fan-out: node{k} downloaded {downloaded[k] / MiB:.1f} MiB, more than the input once")
            if peak[k] > 1.5 * FANOUT_MIB * MiB:
                failures.append(f"fan-out: node{k}'s scratch disk held {peak[k] / MiB:.1f} MiB at its peak: "
                                f"more than one copy of the {FANOUT_MIB} MiB input")

        # --sseKey across the nodes, and a raw look at the bucket.
        key = os.urandom(16).hex()  # 32 characters, as Toil's --sseKey file holds
        key_path = os.path.join(env["JOBSTORE_CLUSTER_DIR"], "sse.key")
        with open(key_path, "w") as f:
            f.write(key)
        name = f"cl-sse-{uuid.uuid4().hex[:6]}"
        took = run_workflow(env, "sse", [f"{ROOT}/bench/python/fanout_workflow.py", f"jobstored:aws:us-east-1:{name}", "8", "6", "file",
                                         "--sseKey", key_path], clean="never")
        problems, checked = sse_objects_check(env, f"{name}--toil", key.encode())
        print(f"cluster: --sseKey fan-out (8 MiB, 6 readers) in {took:.1f} s; {checked} objects refused without the key, whole with it")
        failures += [f"--sseKey: {p}" for p in problems]
        cluster("exec", "1", "--", "env", f"PYTHONPATH={ROOT}/Clients/python", "toil", "clean", f"jobstored:aws:us-east-1:{name}")

        # One node's update, seen by another node's next read.
        state = os.path.join(env["JOBSTORE_CLUSTER_DIR"], "cross-node")
        os.makedirs(state)
        locator = f"aws:us-east-1:cl-x-{uuid.uuid4().hex[:6]}"
        for node, step in ((1, "init"), (1, "write"), (2, "read-v1"), (3, "update"), (2, "read-v2"), (1, "destroy")):
            p = subprocess.run([CLUSTER, "exec", str(node), "--", "env", f"PYTHONPATH={ROOT}/Clients/python", "python3",
                                os.path.join(ROOT, "Tests", "Cluster", "cross_node.py"), step, locator, state],
                               text=True, capture_output=True, timeout=300)
            if p.returncode != 0:
                failures.append(f"cross-node: {step} on node{node} failed: {(p.stdout + p.stderr)[-2000:]}")
                break
        else:
            print("cluster: node3's update of a file read through node2's cache was seen by node2's next read")
    except Exception as e:  # the failing step's output is the report
        failures.append(f"{type(e).__name__}: {e}" + (f"\n{e.stderr[-3000:]}" if getattr(e, "stderr", None) else ""))
    finally:
        subprocess.run([CLUSTER, "down"], env=env)
        left = check_nothing_left()
        if left:
            failures.append(f"tools/cluster down left: {left}")
    for f in failures:
        print(f"cluster: FAILED: {f}")
    print(f"cluster: {0 if failures else 1} passed, {1 if failures else 0} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
