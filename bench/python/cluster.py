"""The cluster benchmark (tools/bench --cluster): Toil across the Slurm cluster of tools/cluster
(3 nodes, one jobstored each), on jobstored:aws: and on Toil's own aws: store side by side in
one run, then the faults of issue 16 at cluster scale on jobstored:aws:.

How it counts, the same way for both stores: `tools/cluster up --count-s3` puts one counting
relay on the bridge in front of SeaweedFS (behind the cluster's TLS terminator: every node
reaches S3 over https with the cluster's own CA), so S3 requests (by operation), bytes from and to S3
are counted per client address, that is per node, for the daemons and for Toil's boto3 alike.
Disk used by file copies on each node (the daemon's cache plus Toil's work directory, where its
caching file store keeps what jobs read; both on the node's scratch disk) is sampled every
second while a workflow runs; the peak is reported, hard links counted once (du).

Runs, each with the leader on node 1 and --batchSystem slurm:
- sort: Toil's sort example (SORT_LINES lines, default 20000), on each store;
- fanout: one 64 MiB input read by 24 jobs with readGlobalFile (the way a job hands a path to a
  tool), each writing an output, checked by a last job; on each store;
- faults (jobstored:aws:, the sort): kill-daemon (kill -9 of node 2's jobstored mid-run; its
  supervisor restarts it, as the packaged unit's Restart=on-failure would), kill-slurmd (kill -9
  of node 3's slurmd: Slurm marks the node DOWN after SlurmdTimeout), s3-restart (SeaweedFS
  stopped mid-run and started again 15 s later on its data), wipe-cache (node 2's cache
  directory removed mid-run). Each ends with the output checked by the workflow and the bucket
  checked whole, object by object, against the SHA-256 the daemon stored (verify_bucket.py),
  with no multipart upload left open.

usage: cluster.py (as root; env: RUNS=sort,fanout,faults; FAULTS=kill-daemon,kill-slurmd,
s3-restart,wipe-cache; SORT_LINES; FAULT_AT=seconds into the run; OUT=FILE for the JSON)
Prints Markdown tables; exits 1 if any run failed."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from functools import partial

print = partial(print, flush=True)  # noqa: A001 (progress while it runs)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLUSTER = os.path.join(ROOT, "tools", "cluster")
sys.path.insert(0, os.path.join(ROOT, "Tests", "Cluster"))
from scratch_disk import ScratchDiskPeak  # noqa: E402 (the cluster test's sampler)
NODES = 3
MiB = 1 << 20
SORT_LINES = os.environ.get("SORT_LINES", "20000")
FANOUT_MIB, READERS = 64, 24
FAULT_AT = float(os.environ.get("FAULT_AT", "40"))
KEY, SECRET = "jobstore-test", "jobstore-test-secret"


def cluster(*args, check=True):
    p = subprocess.run([CLUSTER, *args], text=True, capture_output=True)
    if check and p.returncode != 0:
        raise RuntimeError(f"tools/cluster {' '.join(args)} failed (exit {p.returncode}): {p.stderr[-2000:]}")
    return p.stdout


def relay_counts(env, what="counts"):
    host, port = env["JOBSTORE_CLUSTER_S3_COUNTS"].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(what.encode() + b"\n")
        return json.loads(s.makefile().readline())


def node_of(address):
    """10.77.0.1K is node K (tools/cluster's addresses)."""
    return int(address.rsplit(".", 1)[1]) - 10


def node_pids(k, name):
    out = subprocess.run(["ip", "netns", "pids", f"jsnode{k}"], text=True, capture_output=True).stdout.split()
    found = []
    for pid in out:
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() == name:
                    found.append(int(pid))
        except OSError:
            pass
    return found


def daemon_stats(k):
    out = cluster("exec", str(k), "--", os.path.join(ROOT, ".build", "release", "jobstore"), "status", "--json", check=False)
    try:
        return json.loads(out)
    except ValueError:
        return {}


def workflow_argv(workflow, locator):
    if workflow == "sort":
        return [f"{ROOT}/bench/python/sort_workflow.py", locator, "--numLines", SORT_LINES, "--N", SORT_LINES]
    return [f"{ROOT}/bench/python/fanout_workflow.py", locator, str(FANOUT_MIB), str(READERS), "file"]


def inject(fault, env):
    """Does the fault; returns what it did, for the report."""
    state = env["JOBSTORE_CLUSTER_DIR"]
    if fault == "kill-daemon":
        pids = node_pids(2, "jobstored")
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        return f"kill -9 of node2's jobstored (pid {pids})"
    if fault == "kill-slurmd":
        pids = node_pids(3, "slurmd")
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        return f"kill -9 of node3's slurmd (pid {pids})"
    if fault == "s3-restart":
        cluster("s3", "stop")
        time.sleep(15)
        cluster("s3", "start")
        return "SeaweedFS stopped, started again 15 s later"
    if fault == "wipe-cache":
        cache = os.path.join(state, "node2", "scratch", "jobstored-cache")
        shutil.rmtree(cache, ignore_errors=True)
        return f"rm -rf of node2's cache directory"
    raise ValueError(fault)


def recover(fault, env):
    """Puts the cluster back as it was for the next run."""
    if fault == "kill-slurmd":
        cluster("exec", "3", "--", "slurmd", "-N", "node3")
        subprocess.run(["scontrol", "update", "NodeName=node3", "State=RESUME"], env=env, capture_output=True)
        for _ in range(120):
            states = subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, text=True, capture_output=True).stdout.split()
            if states and all(s == "idle" for s in states):
                return
            time.sleep(1)


def check_bucket(env, bucket):
    """The bucket straight from SeaweedFS: every object whole, no upload left open."""
    import boto3
    direct = env["JOBSTORE_CLUSTER_S3_DIRECT"]
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({"objects": {}}, f)
    verify = subprocess.run([sys.executable, os.path.join(ROOT, "Tests", "Faults", "verify_bucket.py"), direct, bucket, f.name],
                            env=dict(env, JOBSTORE_TEST_S3_ACCESS_KEY=KEY, JOBSTORE_TEST_S3_SECRET_KEY=SECRET),
                            text=True, capture_output=True)
    os.unlink(f.name)
    s3 = boto3.client("s3", endpoint_url=direct, region_name="us-east-1", aws_access_key_id=KEY, aws_secret_access_key=SECRET)
    uploads = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    problems = []
    if verify.returncode != 0:
        problems.append(f"verify_bucket: {(verify.stdout + verify.stderr)[-1500:]}")
    if uploads:
        problems.append(f"{len(uploads)} multipart uploads left open")
    try:
        summary = json.loads(verify.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        summary = {}
    return problems, summary


def run(env, workflow, store, fault=None):
    name = f"cb-{workflow}-{uuid.uuid4().hex[:6]}"
    locator = f"jobstored:aws:us-east-1:{name}" if store == "jobstored" else f"aws:us-east-1:{name}"
    run_dir = os.path.join(env["JOBSTORE_CLUSTER_DIR"], f"run-{name}")
    os.makedirs(run_dir)
    extra = {"AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_DEFAULT_REGION": "us-east-1",
             "AWS_EC2_METADATA_DISABLED": "true"}
    if store == "toil":
        extra["AWS_ENDPOINT_URL"] = env["JOBSTORE_CLUSTER_S3"]  # TLS to the counting relay, as the daemons use
        if env.get("JOBSTORE_CLUSTER_CA"):
            extra["AWS_CA_BUNDLE"] = env["JOBSTORE_CLUSTER_CA"]
    argv = [CLUSTER, "exec", "1", "--", "env", f"PYTHONPATH={ROOT}/Clients/python", *[f"{k}={v}" for k, v in extra.items()],
            "python3", *workflow_argv(workflow, locator), "--batchSystem", "slurm",
            "--workDir", env["JOBSTORE_CLUSTER_SCRATCH"] + "/toil", "--clean", "never" if fault else "always",
            "--retryCount", "3" if fault else "1", "--logLevel", "INFO"]
    before = {k: daemon_stats(k) for k in range(1, NODES + 1)}
    relay_counts(env, "reset")
    sampler = ScratchDiskPeak(env["JOBSTORE_CLUSTER_DIR"], NODES)
    sampler.start()
    started = time.monotonic()
    log_path = os.path.join(env["JOBSTORE_CLUSTER_DIR"], f"{name}.log")
    with open(log_path, "w") as log:
        process = subprocess.Popen(argv, cwd=run_dir, env=env, stdout=log, stderr=subprocess.STDOUT)
        did = None
        if fault:
            try:
                process.wait(FAULT_AT)
            except subprocess.TimeoutExpired:
                did = inject(fault, env)
        try:
            code = process.wait(1800)
        except subprocess.TimeoutExpired:
            process.kill()
            code = -9
    wall = time.monotonic() - started
    peak = sampler.stop()
    counted = relay_counts(env)
    after = {k: daemon_stats(k) for k in range(1, NODES + 1)}
    per_node = {k: {"requests": 0, "from_s3": 0, "to_s3": 0} for k in range(1, NODES + 1)}
    for address, c in counted.get("by_peer", {}).items():
        k = node_of(address)
        if k in per_node:
            per_node[k] = {"requests": c["total_requests"], "from_s3": c["bytes_down"], "to_s3": c["bytes_up"]}
    row = {"workflow": workflow, "store": store, "fault": fault or "", "did": did or "", "ok": code == 0, "wall_s": round(wall, 1),
           "s3_requests": counted["total_requests"], "from_s3": counted["bytes_down"], "to_s3": counted["bytes_up"],
           "by_operation": counted["requests"], "by_prefix": counted.get("by_prefix", {}), "per_node": per_node, "disk_peak": peak}
    if store == "jobstored":
        def calls(s):
            return sum(m["calls"] for m in s.get("methods", []) if m["method"] not in ("Hello", "Ping", "Stats"))
        # A restarted daemon's Stats start again at 0: count from 0 then.
        row["daemon_calls"] = {k: calls(after[k]) - (calls(before[k]) if calls(after[k]) >= calls(before[k]) else 0)
                               for k in after}
    with open(log_path) as f:
        text = f.read()
    if code != 0:
        row["log_tail"] = text[-3000:]
    row["jobs_retried"] = text.count("Got exit code") + text.count("has failed")
    if fault:
        recover(fault, env)
        problems, summary = check_bucket(env, f"{name}--toil")
        row["bucket"] = summary
        row["bucket_problems"] = problems
        row["ok"] = row["ok"] and not problems
        subprocess.run([CLUSTER, "exec", "1", "--", "env", f"PYTHONPATH={ROOT}/Clients/python", "toil", "clean", locator],
                       env=env, capture_output=True)
    shutil.rmtree(run_dir, ignore_errors=True)
    return row


def report(rows):
    print()
    print("| workflow | store | fault | wall s | S3 requests | MiB from S3 | MiB to S3 | requests per node | MiB from S3 per node "
          "| peak MiB of copies per node (cache + Toil = disk) | result |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        nodes = sorted(r["per_node"])
        req = " / ".join(str(r["per_node"][k]["requests"]) for k in nodes)
        got = " / ".join(f"{r['per_node'][k]['from_s3'] / MiB:.1f}" for k in nodes)
        disk = " ; ".join(f"{p['cache'] / MiB:.0f}+{p['toil'] / MiB:.0f}={p['disk'] / MiB:.0f}"
                          for p in (r["disk_peak"][k] for k in sorted(r["disk_peak"])))
        print(f"| {r['workflow']} | {'jobstored:aws:' if r['store'] == 'jobstored' else 'aws:'} | {r['fault'] or '—'} | "
              f"{r['wall_s']:.1f} | {r['s3_requests']} | {r['from_s3'] / MiB:.1f} | {r['to_s3'] / MiB:.1f} | {req} | {got} | "
              f"{disk} | {'ok' if r['ok'] else 'FAILED'} |")
    print()
    print("ratios, Toil's aws: store / jobstored:aws: (goals for the fan-out: requests ≥ 2×, bytes from S3 ≥ 3×, wall ≥ 1×):")
    print("| workflow | S3 requests | bytes from S3 | wall |")
    print("|---|---|---|---|")
    for r in rows:
        if r["store"] != "jobstored" or r["fault"]:
            continue
        t = next((o for o in rows if o["store"] == "toil" and o["workflow"] == r["workflow"] and not o["fault"]), None)
        if t:
            print(f"| {r['workflow']} | {t['s3_requests'] / max(1, r['s3_requests']):.2f}× | {t['from_s3'] / max(1, r['from_s3']):.2f}× | "
                  f"{t['wall_s'] / r['wall_s']:.2f}× |")
    faults = [r for r in rows if r["fault"]]
    if faults:
        print()
        print("| fault | what was done | wall s | output | bucket | daemon calls per node |")
        print("|---|---|---|---|---|---|")
        for r in faults:
            bucket = "whole" if not r.get("bucket_problems") else "; ".join(r["bucket_problems"])
            print(f"| {r['fault']} | {r['did']} | {r['wall_s']:.1f} | {'checked' if r['ok'] or r.get('bucket_problems') else 'FAILED'} | "
                  f"{bucket} ({r.get('bucket', {}).get('objects', '?')} objects) | {r.get('daemon_calls')} |")
    print()
    print("S3 requests by operation:")
    ops = sorted({op for r in rows for op in r["by_operation"]})
    print("| operation | " + " | ".join(f"{r['workflow']} {r['store']}{' ' + r['fault'] if r['fault'] else ''}" for r in rows) + " |")
    print("|---" * (len(rows) + 1) + "|")
    for op in ops:
        print(f"| {op} | " + " | ".join(str(r["by_operation"].get(op, 0)) for r in rows) + " |")


def main():
    env = dict(os.environ)
    rows = []
    runs = os.environ.get("RUNS", "sort,fanout,faults").split(",")
    faults = os.environ.get("FAULTS", "kill-daemon,kill-slurmd,s3-restart,wipe-cache").split(",")
    try:
        up = cluster("up", "--nodes", str(NODES), "--count-s3")
        for line in up.splitlines():
            if line.startswith("export "):
                key, value = line[len("export "):].split("=", 1)
                env[key] = value
        print(f"cluster-bench: {NODES} nodes up; S3 through the counting relay at {env['JOBSTORE_CLUSTER_S3']}")
        pairs = 0
        for workflow in [w for w in ("sort", "fanout") if w in runs]:
            # Alternate which store goes first, so neither always meets a warmer machine.
            for store in (["jobstored", "toil"] if pairs % 2 == 0 else ["toil", "jobstored"]):
                row = run(env, workflow, store)
                rows.append(row)
                print("cluster-bench: " + json.dumps({k: v for k, v in row.items() if k in ("workflow", "store", "ok", "wall_s", "s3_requests")}))
                if not row["ok"]:
                    print(row.get("log_tail", ""))
            pairs += 1
        if "faults" in runs:
            for fault in faults:
                row = run(env, "sort", "jobstored", fault)
                rows.append(row)
                print("cluster-bench: " + json.dumps({k: v for k, v in row.items() if k in ("fault", "did", "ok", "wall_s", "bucket_problems")}))
                if not row["ok"]:
                    print(row.get("log_tail", ""))
    finally:
        subprocess.run([CLUSTER, "down"], env=env)
    if os.environ.get("OUT"):
        with open(os.environ["OUT"], "w") as f:
            json.dump(rows, f, indent=1)
    report(rows)
    return 0 if rows and all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
