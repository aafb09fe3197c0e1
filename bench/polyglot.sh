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

# The round trip is dominated by where the scheduler puts the two ends: waking a thread on the
# other (idle) vCPU costs ~25 µs here, on the same CPU ~4 µs, and an unpinned run lands on either
# from one run to the next. So the floor and the clients are also measured under the same
# placement: everything on CPU 0, and client on CPU 0 with the daemon (and the floor's echo
# process) on CPU 1.
pingrow() {  # placement-label client-cpu daemon-cpu (empty: unpinned)
  local label=$1 ccpu=$2 dcpu=$3 pin=() fp50 fp99 cp50 cp99 pp50 pp99
  if [ -n "$dcpu" ]; then taskset -a -p -c "$dcpu" "$daemon" >/dev/null; pin=(taskset -c "$ccpu"); fi
  { read -r _ fp50 fp99; read -r _ cp50 cp99; } < <("${pin[@]}" "$build/ping" "$build/d.sock" "$calls" $dcpu)
  read -r _ pp50 pp99 < <("${pin[@]}" python3 bench/python/ping.py "$build/d.sock" "$calls")
  echo "| $label | $fp50 / $fp99 | $cp50 / $cp99 | $(python3 -c "print(f'{$cp50/$fp50:.2f}×')") | $pp50 / $pp99 | $(python3 -c "print(f'{$pp50/$fp50:.2f}×')") |"
}
echo "empty call round trip, $calls calls each (µs, p50 / p99; floor: C socketpair ping-pong between two processes):"
echo "| placement | floor | C client (jobstore_ping) | C vs floor | Python client (Client.ping) | Python vs floor |"
echo "|---|---|---|---|---|---|"
pingrow "unpinned" "" ""
pingrow "same CPU (all on 0)" 0 0
if [ "$(nproc)" -ge 2 ]; then pingrow "different CPUs (client 0, daemon 1)" 0 1; fi
taskset -a -p -c "0-$(($(nproc) - 1))" "$daemon" >/dev/null

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
procs=${PROCS:-16}; per=${JOBS_PER_PROC:-60}; rounds=${ROUNDS:-3}
# Where each op's CPU goes (2 cores are shared by the workers, the daemon and SeaweedFS):
# the workers' own loops (measured in each worker), the daemon and SeaweedFS (their whole runs).
s3pid=$(pgrep -f "s3.port=${JOBSTORE_TEST_S3_ENDPOINT##*:}" | head -1)
tick=$(getconf CLK_TCK)
cpu_s() { awk -v t="$tick" '{print ($14 + $15) / t}' "/proc/$1/stat"; }
# Rounds interleave the two stores (this machine's speed drifts by tens of percent over
# minutes); each figure is the median over rounds.
run() {  # locator -> "ops/s worker-ms/op daemon-ms/op s3-ms/op"
  local d0 s0 out d1 s1 ops=$((procs * per * 3))
  d0=$(cpu_s "$daemon"); s0=$(cpu_s "$s3pid")
  out=$(python3 bench/python/toil_jobs.py "$1" "$procs" "$per")
  d1=$(cpu_s "$daemon"); s1=$(cpu_s "$s3pid")
  echo "$out $(python3 -c "print(f'{($d1 - $d0) / $ops * 1000:.3f} {($s1 - $s0) / $ops * 1000:.3f}')")"
}
ours=(); theirs=()
for r in $(seq 1 "$rounds"); do
  ours+=("$(run "jobstored:aws:us-east-1:tj$r-$name")")
  theirs+=("$(run "aws:us-east-1:tt$r-$name")")
done
median() {  # column, rows...
  local col=$1; shift
  printf '%s\n' "$@" | awk -v c="$col" '{print $c}' | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'
}
row() {  # label rows...
  local label=$1; shift
  local ops w d s
  ops=$(median 1 "$@"); w=$(median 2 "$@"); d=$(median 3 "$@"); s=$(median 4 "$@")
  echo "| $label | $ops | $(printf '%s ' "$@" | awk '{for (i = 1; i <= NF; i += 4) printf "%s%s", (i > 1 ? " " : ""), $i}') | $w | $d | $s | $(python3 -c "print(f'{$w + $d:.3f}')") |"
}
echo "Toil small jobs (assign + create + load + update; 3 ops counted), $procs worker processes × $per jobs, SeaweedFS,"
echo "median of $rounds interleaved rounds; CPU in ms per op:"
echo "| job store | ops/s | rounds | workers' CPU | daemon CPU | SeaweedFS CPU | client side (workers + daemon) |"
echo "|---|---|---|---|---|---|---|"
row "DaemonJobStore (jobstored:aws:)" "${ours[@]}"
row "Toil AWSJobStore (boto3)" "${theirs[@]}"
echo "| ratio (Toil / ours) | $(python3 -c "print(f'{$(median 1 "${ours[@]}")/$(median 1 "${theirs[@]}"):.1f}× throughput')") | | | | | $(python3 -c "
o = $(median 2 "${ours[@]}") + $(median 3 "${ours[@]}"); t = $(median 2 "${theirs[@]}") + $(median 3 "${theirs[@]}")
print(f'{t / o:.1f}× less client CPU')") |"
