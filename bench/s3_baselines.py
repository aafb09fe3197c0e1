"""Baselines for the S3 transfer benchmark, against the same S3 server in the same run:
boto3 upload_file/download_file (default TransferConfig), `aws s3 cp` both ways, and
boto3 put_object of small objects (one thread, then 16 threads sharing one client).

usage: s3_baselines.py ENDPOINT BUCKET BIG_FILE SMALL_COUNT SMALL_SIZE  -> JSON on stdout
Credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY in the environment.
"""
import concurrent.futures
import json
import os
import subprocess
import sys
import time

import boto3

endpoint, bucket, big_file, small_count, small_size = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
size = os.path.getsize(big_file)
target = big_file + ".baseline"
results = {}


def timed(name, fn):
    start = time.perf_counter()
    fn()
    results[name] = time.perf_counter() - start


timed("boto3 upload_file", lambda: s3.upload_file(big_file, bucket, "boto3-big"))
timed("boto3 download_file", lambda: s3.download_file(bucket, "boto3-big", target))
assert os.path.getsize(target) == size
os.unlink(target)
aws = ["aws", "--endpoint-url", endpoint, "--region", "us-east-1", "s3", "cp", "--only-show-errors"]
timed("aws s3 cp (upload)", lambda: subprocess.run(aws + [big_file, f"s3://{bucket}/awscli-big"], check=True))
timed("aws s3 cp (download)", lambda: subprocess.run(aws + [f"s3://{bucket}/awscli-big", target], check=True))
assert os.path.getsize(target) == size
os.unlink(target)

body = os.urandom(small_size)
timed("boto3 put_object small, 1 thread",
      lambda: [s3.put_object(Bucket=bucket, Key=f"small1/{i}", Body=body) for i in range(small_count)])
with concurrent.futures.ThreadPoolExecutor(16) as pool:
    timed("boto3 put_object small, 16 threads",
          lambda: list(pool.map(lambda i: s3.put_object(Bucket=bucket, Key=f"small16/{i}", Body=body), range(small_count))))
json.dump(results, sys.stdout)
