#!/usr/bin/env bash
# The operators' tools benchmark (tools/bench --cli): `jobstore cp` of one file into an aws:
# store on SeaweedFS and back (streamed through the daemon: progress needs the bytes to pass
# through the command) next to `aws s3 cp` of the same file against the same server, and the
# cost of a Prometheus scrape of a daemon that has served that traffic. Median of 3 rounds.
# Expects release binaries and JOBSTORE_TEST_S3_* (tools/bench starts tools/dev-s3).
# SIZE_MIB changes the file's size (default 1024).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
size_mib=${SIZE_MIB:-1024}
rounds=${ROUNDS:-3}
build=$(mktemp -d /tmp/jobstore-clibench-XXXXXX)
trap 'kill $daemon 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$build"' EXIT
command -v aws >/dev/null || python3 -m pip install -q awscli
export AWS_ACCESS_KEY_ID=$JOBSTORE_TEST_S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$JOBSTORE_TEST_S3_SECRET_KEY
export AWS_EC2_METADATA_DISABLED=true AWS_DEFAULT_REGION=us-east-1
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# No node cache: every download comes from S3, as aws s3 cp's does.
.build/release/jobstored --socket "$build/d.sock" --log-level warning --endpoint "$JOBSTORE_TEST_S3_ENDPOINT" \
  --no-cache --metrics "127.0.0.1:$port" &
daemon=$!
js() { .build/release/jobstore "$@" --socket "$build/d.sock"; }
js ping --wait 10 >/dev/null
head -c $((size_mib << 20)) /dev/urandom > "$build/input"
name="clibench-$(python3 -c 'import uuid; print(uuid.uuid4().hex[:8])')"
locator="aws:us-east-1:$name"
js init "$locator" >/dev/null
aws --endpoint-url "$JOBSTORE_TEST_S3_ENDPOINT" s3 mb "s3://$name-awscli" >/dev/null

now() { python3 -c 'import time; print(time.monotonic())'; }
rate() { python3 -c "print(f'{$size_mib / ($2 - $1):.0f}')"; }
declare -a up down awsup awsdown
for round in $(seq 1 "$rounds"); do
  t0=$(now); id=$(js cp "$locator" "$build/input" store: -q); t1=$(now)
  js cp "$locator" "store:$id" "$build/out" -q; t2=$(now)
  cmp -s "$build/input" "$build/out" || { echo "cli bench: the copy differs" >&2; exit 1; }
  rm -f "$build/out"
  aws --endpoint-url "$JOBSTORE_TEST_S3_ENDPOINT" s3 cp --only-show-errors "$build/input" "s3://$name-awscli/f"; t3=$(now)
  aws --endpoint-url "$JOBSTORE_TEST_S3_ENDPOINT" s3 cp --only-show-errors "s3://$name-awscli/f" "$build/out"; t4=$(now)
  rm -f "$build/out"
  up+=("$(rate "$t0" "$t1")"); down+=("$(rate "$t1" "$t2")")
  awsup+=("$(rate "$t2" "$t3")"); awsdown+=("$(rate "$t3" "$t4")")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "| $size_mib MiB on SeaweedFS | jobstore cp (MiB/s) | aws s3 cp (MiB/s) |"
echo "|---|---|---|"
echo "| upload | $(median "${up[@]}") (${up[*]}) | $(median "${awsup[@]}") (${awsup[*]}) |"
echo "| download | $(median "${down[@]}") (${down[*]}) | $(median "${awsdown[@]}") (${awsdown[*]}) |"

python3 - "$port" <<'PY'
import http.client, statistics, sys, time
port = int(sys.argv[1])
samples, size = [], 0
for _ in range(200):
    t = time.perf_counter()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/metrics")
    body = c.getresponse().read()
    samples.append((time.perf_counter() - t) * 1000)
    size = len(body)
    c.close()
samples.sort()
print(f"metrics scrape: {size} bytes, {sum(1 for l in body.decode().splitlines() if not l.startswith('#'))} samples, "
      f"p50 {statistics.median(samples):.2f} ms, p99 {samples[int(len(samples) * 0.99)]:.2f} ms (200 scrapes)")
PY
js destroy "$locator" --yes >/dev/null
aws --endpoint-url "$JOBSTORE_TEST_S3_ENDPOINT" s3 rb --force "s3://$name-awscli" >/dev/null
