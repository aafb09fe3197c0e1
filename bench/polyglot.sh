#!/usr/bin/env bash
# The polyglot benchmark (tools/bench --polyglot): empty-call round trip from C and Python next
# to a C socketpair ping-pong (the floor) in the same run; a new Python worker's start-up cost
# next to Toil's own AWSJobStore; Toil small-job throughput with 16 worker processes through the
# adapter vs Toil's AWSJobStore (boto3), both on the same SeaweedFS. Expects release binaries
# and JOBSTORE_TEST_S3_* (tools/bench starts tools/dev-s3).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
calls=${CALLS:-20000}
make -s -C Clients/c build/libjobstore-client.a
build=$(mktemp -d /tmp/jobstore-polyglot-XXXXXX)
trap 'kill $daemon 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$build"' EXIT
cc -O2 -std=c11 -IClients/c/include -IClients/c/generated -ISources/CJobStoreProto/include $(pkg-config --cflags libprotobuf-c) bench/c/ping.c \
  Clients/c/build/libjobstore-client.a $(pkg-config --libs libprotobuf-c) -lpthread -o "$build/ping"
python3 -m pip install -q --disable-pip-version-check ./Clients/python >/dev/null 2>&1
export AWS_ACCESS_KEY_ID=$JOBSTORE_TEST_S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$JOBSTORE_TEST_S3_SECRET_KEY
export AWS_ENDPOINT_URL=$JOBSTORE_TEST_S3_ENDPOINT AWS_EC2_METADATA_DISABLED=true
.build/release/jobstored --socket "$build/d.sock" --log-level warning --endpoint "$JOBSTORE_TEST_S3_ENDPOINT" --cache-dir "$build/cache" &
daemon=$!
for _ in $(seq 1 100); do [ -S "$build/d.sock" ] && break; sleep 0.05; done
export JOBSTORED_SOCKET="$build/d.sock" PYTHONPATH="$root/Clients/python"
# Byte-compiled, as pip installs it: a new worker should not pay for compiling the client.
python3 -m compileall -q "$root/Clients/python/jobstore"

echo "empty call round trip, $calls calls each (µs):"
echo "| client | p50 | p99 | p50 vs floor |"
echo "|---|---|---|---|"
read -r _ fp50 fp99 < <("$build/ping" "$build/d.sock" "$calls" | grep floor)
read -r _ cp50 cp99 < <("$build/ping" "$build/d.sock" "$calls" | grep c-client)
read -r _ pp50 pp99 < <(python3 bench/python/ping.py "$build/d.sock" "$calls")
echo "| C socketpair ping-pong (floor) | $fp50 | $fp99 | 1.0× |"
echo "| C client (jobstore_ping) | $cp50 | $cp99 | $(python3 -c "print(f'{$cp50/$fp50:.2f}×')") |"
echo "| Python client (Client.ping) | $pp50 | $pp99 | $(python3 -c "print(f'{$pp50/$fp50:.2f}×')") |"

# A store both sides can read: made by Toil's AWSJobStore, one job in it.
name="polyglot-$(python3 -c 'import uuid; print(uuid.uuid4().hex[:8])')"
job=$(python3 - "$name" <<'PY'
import sys
import toil.lib.aws.s3 as s
s.enable_public_objects = lambda *a, **k: None
s.enable_encryption = lambda *a, **k: None
import toil.jobStores.aws.jobStore as aws
aws.enable_public_objects = s.enable_public_objects
aws.enable_encryption = s.enable_encryption
from toil.common import Config
from toil.job import JobDescription
js = aws.AWSJobStore(f"us-east-1:{sys.argv[1]}")
c = Config(); c.workflowID = None
js.initialize(c)
jd = JobDescription(requirements={"memory": 1, "cores": 1, "disk": 1, "preemptible": False}, jobName="j", unitName="u")
js.assign_job_id(jd); js.create_job(jd)
print(jd.jobStoreID)
PY
)
echo
echo "a new worker process (ms, median of ${STARTS:-7}):"
python3 bench/python/startup.py "$build/d.sock" "aws:us-east-1:$name" "us-east-1:$name" "$job" "${STARTS:-7}" \
  | awk -F'\t' 'BEGIN{print "| process | ms |"; print "|---|---|"} {print "| " $1 " | " $2 " |"}'
python3 -c "
import jobstore; from jobstore import pb
jobstore.Client('$build/d.sock').destroy(pb.StoreRequest(locator='aws:us-east-1:$name'))"

echo
procs=${PROCS:-16}; per=${JOBS_PER_PROC:-30}
ours=$(python3 bench/python/toil_jobs.py "jobstored:aws:us-east-1:tj-$name" "$procs" "$per")
theirs=$(python3 bench/python/toil_jobs.py "aws:us-east-1:tt-$name" "$procs" "$per")
echo "Toil small jobs (assign + create + load + update; 3 ops counted), $procs worker processes × $per jobs, SeaweedFS:"
echo "| job store | ops/s |"
echo "|---|---|"
echo "| DaemonJobStore (jobstored:aws:) | $ours |"
echo "| Toil AWSJobStore (boto3) | $theirs |"
echo "| ratio | $(python3 -c "print(f'{$ours/$theirs:.1f}×')") |"
