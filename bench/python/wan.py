"""The WAN benchmark (tools/bench --wan): real Toil workflows on jobstored:aws: and on Toil's own
aws: store, side by side in one run, over TLS, at 0 ms and at a set round trip.

The path of every S3 request, for both stores:

  client --TLS--> wan_relay (delay each way) --> stunnel (tls_rig.py, a CA made for this run)
         --> wan_relay --http (counts requests by operation, bytes) --> SeaweedFS

The first relay's connection count is the TLS handshakes (boto3 resumes no sessions; the
daemon's own count of full and resumed handshakes comes from its Stats). Each run gets a fresh
daemon (cold cache, zeroed Stats) or, for Toil's store, nothing shared but the S3 server.

Once per workflow it also runs on Toil's file: store (no network at all): the floor, Toil's own
work, so that what the store costs is the difference.

usage: wan.py S3_ENDPOINT JOBSTORED RTT_MS... (env: JOBSTORE_TEST_S3_ACCESS_KEY/SECRET_KEY;
WORKFLOWS=sort,fanout; STORES=jobstored,toil,file; SORT_LINES, SORT_N, FANOUT_MIB,
FANOUT_READERS; OUT=FILE for the JSON)"""
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

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SUPPORT = os.path.join(ROOT, "Tests", "Support")
S3_ENDPOINT, JOBSTORED, RTTS = sys.argv[1], sys.argv[2], [float(x) for x in sys.argv[3:]] or [0.0, 20.0]
WORK = tempfile.mkdtemp(prefix="jobstore-wan-")
CHILDREN = []


def spawn(args, **kwargs):
    process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, start_new_session=True, **kwargs)
    CHILDREN.append(process)
    return process


def relay(upstream, delay_ms=0.0, http=False):
    process = spawn([sys.executable, os.path.join(SUPPORT, "wan_relay.py"), upstream, "--delay-ms", str(delay_ms)]
                    + (["--http"] if http else []))
    return int(process.stdout.readline()), int(process.stdout.readline())


def ask(control_port, what="counts"):
    with socket.create_connection(("127.0.0.1", control_port)) as s:
        s.sendall(what.encode() + b"\n")
        return json.loads(s.makefile().readline())


def tls_rig(backend_port):
    directory = os.path.join(WORK, "tls")
    os.makedirs(directory)
    rig = subprocess.Popen([sys.executable, os.path.join(SUPPORT, "tls_rig.py"), f"127.0.0.1:{backend_port}", directory],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        if os.path.exists(os.path.join(directory, "rig.json")):
            break
        time.sleep(0.05)
    with open(os.path.join(directory, "rig.json")) as f:
        info = json.load(f)
    CHILDREN.append(info["pid"])
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", info["ports"]["good"])).close()
            break
        except OSError:
            time.sleep(0.05)
    return info["ports"]["good"], os.path.join(directory, "ca.pem"), rig


def daemon(endpoint, ca, run_dir):
    sock = os.path.join(run_dir, "d.sock")
    env = dict(os.environ, AWS_ACCESS_KEY_ID=os.environ["JOBSTORE_TEST_S3_ACCESS_KEY"],
               AWS_SECRET_ACCESS_KEY=os.environ["JOBSTORE_TEST_S3_SECRET_KEY"])
    env.pop("AWS_CA_BUNDLE", None)
    process = subprocess.Popen([JOBSTORED, "--socket", sock, "--endpoint", endpoint, "--ca-bundle", ca, "--log-level", "warning",
                                "--cache-dir", os.path.join(run_dir, "cache")], env=env, start_new_session=True)
    CHILDREN.append(process)
    for _ in range(200):
        if os.path.exists(sock):
            break
        time.sleep(0.05)
    return process, sock


def stats(sock):
    import jobstore
    from jobstore import pb
    client = jobstore.Client(sock)
    try:
        return client.stats(pb.Empty())
    finally:
        client.close()


def workflow_command(name, locator, run_dir):
    toil = ["--workDir", run_dir, "--batchSystem", "single_machine", "--logLevel", "WARNING", "--clean", "always"]
    if name == "sort":
        return [sys.executable, os.path.join(ROOT, "bench", "python", "sort_workflow.py"), locator] + toil \
            + ["--numLines", os.environ.get("SORT_LINES", "40000"), "--N", os.environ.get("SORT_N", "100000")]
    return [sys.executable, os.path.join(ROOT, "bench", "python", "fanout_workflow.py"), locator,
            os.environ.get("FANOUT_MIB", "64"), os.environ.get("FANOUT_READERS", "16")] + toil


def run(workflow, store, endpoint, ca, counter_ctl, wan_ctl):
    run_dir = tempfile.mkdtemp(prefix=f"{workflow}-{store}-", dir=WORK)
    name = f"wan-{workflow}-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PYTHONPATH"] = os.pathsep.join([os.path.join(ROOT, "Clients", "python")] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env.update(AWS_ACCESS_KEY_ID=os.environ["JOBSTORE_TEST_S3_ACCESS_KEY"], AWS_SECRET_ACCESS_KEY=os.environ["JOBSTORE_TEST_S3_SECRET_KEY"],
               AWS_DEFAULT_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true")
    process = sock = None
    if store == "jobstored":
        process, sock = daemon(endpoint, ca, run_dir)
        env["JOBSTORED_SOCKET"] = sock
        locator = f"jobstored:aws:us-east-1:{name}"
    elif store == "file":  # the floor: Toil's own work, on a local directory store
        locator = os.path.join(run_dir, "store")
    else:
        env.update(AWS_ENDPOINT_URL=endpoint, AWS_CA_BUNDLE=ca)
        locator = f"aws:us-east-1:{name}"
    ask(counter_ctl, "reset")
    ask(wan_ctl, "reset")
    start = time.monotonic()
    result = subprocess.run(workflow_command(workflow, locator, run_dir), cwd=run_dir, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall = time.monotonic() - start
    counted, links = ask(counter_ctl), ask(wan_ctl)
    row = {"workflow": workflow, "store": store, "wall_s": round(wall, 2), "ok": result.returncode == 0,
           "s3_requests": counted["total_requests"], "by_operation": counted["requests"], "by_prefix": counted["by_prefix"],
           "bytes_to_s3": counted["bytes_up"], "bytes_from_s3": counted["bytes_down"], "tls_connections": links["connections"]}
    if result.returncode != 0:
        row["log_tail"] = result.stdout[-3000:]
    if sock is not None:
        s = stats(sock)
        row["client_connections"] = s.connections_total
        row["tls_handshakes"] = s.s3_session.tls_handshakes
        row["tls_sessions_resumed"] = s.s3_session.tls_sessions_resumed
        row["daemon_requests"] = {b.operation: b.requests for b in s.backend_requests}
        row["rpcs"] = {m.method: m.calls for m in s.methods}
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    else:
        row["tls_handshakes"] = links["connections"]
    shutil.rmtree(run_dir, ignore_errors=True)
    return row


def main():
    counter_port, counter_ctl = relay(S3_ENDPOINT.split("://", 1)[1], http=True)
    tls_port, ca, _ = tls_rig(counter_port)
    rows = []
    pairs = 0
    workflows = os.environ.get("WORKFLOWS", "sort,fanout").split(",")
    for rtt in RTTS:
        wan_port, wan_ctl = relay(f"127.0.0.1:{tls_port}", delay_ms=rtt / 2)
        endpoint = f"https://127.0.0.1:{wan_port}"
        for workflow in workflows:
            # Alternate which store goes first, so neither always meets a warmer machine.
            order = ["jobstored", "toil"] if pairs % 2 == 0 else ["toil", "jobstored"]
            pairs += 1
            if rtt == RTTS[0]:
                order.append("file")  # no network: once per workflow
            for store in [s for s in order if s in os.environ.get("STORES", "jobstored,toil,file").split(",")]:
                row = run(workflow, store, endpoint, ca, counter_ctl, wan_ctl)
                row["rtt_ms"] = rtt
                rows.append(row)
                print(json.dumps({k: v for k, v in row.items() if k not in ("by_operation", "by_prefix", "daemon_requests", "rpcs", "log_tail")}),
                      file=sys.stderr, flush=True)
                if not row["ok"]:
                    print(row["log_tail"], file=sys.stderr)
    if os.environ.get("OUT"):
        with open(os.environ["OUT"], "w") as f:
            json.dump(rows, f, indent=1)
    report(rows)
    return 0 if all(r["ok"] for r in rows) else 1


def report(rows):
    print("| workflow | RTT | store | wall s | S3 requests | MiB from S3 | MiB to S3 | TLS handshakes (per client process) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        per = r.get("client_connections") or next((o.get("client_connections") for o in rows if o["workflow"] == r["workflow"]
                                                   and o["rtt_ms"] == r["rtt_ms"] and o.get("client_connections")), None)
        hs = f"{r['tls_handshakes']}" + (f" ({r['tls_handshakes'] / per:.2f})" if per else "")
        print(f"| {r['workflow']} | {r['rtt_ms']:g} ms | {STORE_LABELS.get(r['store'], r['store'])} | {r['wall_s']:.1f} | {r['s3_requests']} | "
              f"{r['bytes_from_s3'] / 2**20:.1f} | {r['bytes_to_s3'] / 2**20:.1f} | {hs} |")
    print()
    for r in rows:
        if r["store"] == "file":
            print(f"floor (Toil's own work, on its file: store): {r['workflow']} {r['wall_s']:.1f} s")
    print()
    print("ratios, jobstored / Toil's aws: store (goals at 20 ms: wall ≤ 0.5, requests ≤ 0.4):")
    print("| workflow | RTT | wall | S3 requests | bytes from S3 | goals |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        if r["store"] != "jobstored":
            continue
        t = next((o for o in rows if o["store"] == "toil" and o["workflow"] == r["workflow"] and o["rtt_ms"] == r["rtt_ms"]), None)
        if t is None:
            continue
        wall, requests = r["wall_s"] / t["wall_s"], r["s3_requests"] / t["s3_requests"]
        print(f"| {r['workflow']} | {r['rtt_ms']:g} ms | {wall:.2f}× | {requests:.2f}× | "
              f"{r['bytes_from_s3'] / max(1, t['bytes_from_s3']):.2f}× | {goals(wall, requests) if r['rtt_ms'] >= 20 else '—'} |")
    print()
    print("S3 requests by operation:")
    ops = sorted({op for r in rows for op in r["by_operation"]})
    heads = [f"{r['workflow']} {r['rtt_ms']:g} ms {STORE_LABELS.get(r['store'], r['store'])}" for r in rows]
    print("| operation | " + " | ".join(heads) + " |")
    print("|---" * (len(rows) + 1) + "|")
    for op in ops:
        print(f"| {op} | " + " | ".join(str(r["by_operation"].get(op, 0)) for r in rows) + " |")
    print()
    print("S3 requests by key prefix (where the requests go):")
    prefixes = sorted({p for r in rows for p in r.get("by_prefix", {})})
    print("| prefix | " + " | ".join(heads) + " |")
    print("|---" * (len(rows) + 1) + "|")
    for prefix in prefixes:
        print(f"| {prefix} | " + " | ".join(str(r.get("by_prefix", {}).get(prefix, 0)) for r in rows) + " |")


# The column names of the tables: the file: store is the floor, "toil" Toil's own aws: store.
STORE_LABELS = {"jobstored": "jobstored:aws:", "toil": "aws:", "file": "file:"}


def goals(wall, requests):
    """Met, or the measured distance to each goal (wall ≤ 0.5×, requests ≤ 0.4× Toil's store)."""
    missed = [f"{name} {ratio:.2f}× vs ≤ {goal}×" for name, ratio, goal in (("wall", wall, 0.5), ("requests", requests, 0.4))
              if ratio > goal]
    return "met" if not missed else "missed: " + ", ".join(missed)


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        for child in reversed(CHILDREN):
            try:
                if isinstance(child, int):
                    os.kill(child, signal.SIGTERM)
                else:
                    os.killpg(child.pid, signal.SIGTERM)
                    child.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                pass
        shutil.rmtree(WORK, ignore_errors=True)
