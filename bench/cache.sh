#!/usr/bin/env bash
# The node-cache benchmark (tools/bench --cache): 16 worker processes of one node each read the
# same 256 MiB file (Toil's read_file) — through the daemon and its node cache (cold: nothing
# cached; warm: cached and revalidated; link: Toil's symlink=True, a hard link to the entry) and
# through Toil's own AWSJobStore (boto3), all on the same SeaweedFS. Reports the GetObject
# requests and bytes that reached S3 and each reader's throughput. Expects release binaries and
# JOBSTORE_TEST_S3_* (tools/bench starts tools/dev-s3). SIZE_MIB and READERS change the shape.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
size_mib=${SIZE_MIB:-256}
readers=${READERS:-16}
build=$(mktemp -d /tmp/jobstore-cachebench-XXXXXX)
trap 'kill $writer $daemon 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$build"' EXIT
python3 -m pip install -q --disable-pip-version-check ./Clients/python >/dev/null 2>&1
export AWS_ACCESS_KEY_ID=$JOBSTORE_TEST_S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$JOBSTORE_TEST_S3_SECRET_KEY
export AWS_ENDPOINT_URL=$JOBSTORE_TEST_S3_ENDPOINT AWS_EC2_METADATA_DISABLED=true
export PYTHONPATH="$root/Clients/python" READERS_DIR="$build"
# The file is written through a daemon without a cache, so the readers' daemon starts cold.
.build/release/jobstored --socket "$build/w.sock" --log-level warning --endpoint "$JOBSTORE_TEST_S3_ENDPOINT" --no-cache &
writer=$!
.build/release/jobstored --socket "$build/d.sock" --log-level warning --endpoint "$JOBSTORE_TEST_S3_ENDPOINT" \
  --cache-dir "$build/cache" &
daemon=$!
for _ in $(seq 1 100); do [ -S "$build/d.sock" ] && [ -S "$build/w.sock" ] && break; sleep 0.05; done
head -c $((size_mib << 20)) /dev/urandom > "$build/input"
name="cachebench-$(python3 -c 'import uuid; print(uuid.uuid4().hex[:8])')"

# Both stores are made as Toil makes them (config.pickle included): through the adapter on the
# cache-less daemon, and with Toil's own AWSJobStore.
file_id=$(JOBSTORED_SOCKET="$build/w.sock" python3 - "jobstored:aws:us-east-1:$name" "$build/input" <<'PY'
import sys
from toil.common import Config, Toil
js = Toil.getJobStore(sys.argv[1])
c = Config(); c.workflowID = None
js.initialize(c)
print(js.write_file(sys.argv[2]))
PY
)
toil_id=$(python3 - "us-east-1:t$name" "$build/input" <<'PY'
import sys
import toil.lib.aws.s3 as s
s.enable_public_objects = lambda *a, **k: None
s.enable_encryption = lambda *a, **k: None
import toil.jobStores.aws.jobStore as aws
aws.enable_public_objects = s.enable_public_objects
aws.enable_encryption = s.enable_encryption
from toil.common import Config
js = aws.AWSJobStore(sys.argv[1])
c = Config(); c.workflowID = None
js.initialize(c)
print(js.write_file(sys.argv[2]))
PY
)

# GetObject requests and bytes the caching daemon has sent so far.
gets() {
  python3 - "$build/d.sock" <<'PY'
import sys, jobstore
from jobstore import pb
s = jobstore.Client(sys.argv[1]).stats(pb.Empty())
g = [b for b in s.backend_requests if b.operation == "GetObject"]
print(g[0].requests if g else 0, g[0].bytes_received if g else 0)
PY
}

run_daemon() {  # label, extra args
  read -r r0 b0 < <(gets)
  read -r wall median slowest _ _ < <(JOBSTORED_SOCKET="$build/d.sock" python3 bench/python/cache_readers.py \
    "jobstored:aws:us-east-1:$name" "$file_id" "$readers" "$@")
  read -r r1 b1 < <(gets)
  echo "| $label | $((r1 - r0)) | $(( (b1 - b0) >> 20 )) MiB | $median | $slowest | $wall |"
}

echo "$readers processes each reading one ${size_mib} MiB file (Toil read_file):"
echo "GetObject requests include the $readers reads of config.pickle by each process's resume (a Toil worker's start)."
echo "| reader | GetObject requests | bytes from S3 | per-reader MiB/s (median) | slowest reader MiB/s | all done (s) |"
echo "|---|---|---|---|---|---|"
label="jobstored, cold cache (copy into the worker's file)" run_daemon
label="jobstored, warm cache (revalidated, copy)" run_daemon
label="jobstored, warm cache, symlink=True (hard link)" run_daemon --symlink
read -r wall median slowest requests bytes < <(python3 bench/python/cache_readers.py "aws:us-east-1:t$name" "$toil_id" "$readers")
echo "| Toil AWSJobStore (boto3), each process alone | $requests | $((bytes >> 20)) MiB | $median | $slowest | $wall |"

python3 - "$build/w.sock" "aws:us-east-1:$name" "us-east-1:t$name" <<'PY'
import sys, jobstore
from jobstore import pb
jobstore.Client(sys.argv[1]).destroy(pb.StoreRequest(locator=sys.argv[2]))
import toil.jobStores.aws.jobStore as aws
aws.AWSJobStore(sys.argv[3]).destroy()
PY
