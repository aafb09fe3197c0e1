"""Checks a job store's bucket directly on the S3 server (boto3, not through the daemon or the
fault proxy) after a fault-injection run.

usage: verify_bucket.py ENDPOINT BUCKET EXPECTED_JSON
EXPECTED_JSON: {"objects": {key: [allowed sha256 hex, or "absent"]}}
Checks that every listed key holds one of its allowed contents (or is absent when allowed), and
that every object in the bucket is whole: its bytes match the SHA-256 the daemon recorded for it
(metadata `jobstore-sha256`, or the tags of a multipart object). Prints a JSON summary; exits 1
on any violation."""
import hashlib
import json
import os
import sys

import boto3

endpoint, bucket, expected_path = sys.argv[1:4]
expected = json.load(open(expected_path))["objects"]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id=os.environ["JOBSTORE_TEST_S3_ACCESS_KEY"],
                  aws_secret_access_key=os.environ["JOBSTORE_TEST_S3_SECRET_KEY"])
keys = []
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
    keys += [o["Key"] for o in page.get("Contents", [])]
violations = []
digests = {}
for key in keys:
    obj = s3.get_object(Bucket=bucket, Key=key)
    body = obj["Body"].read()
    digest = hashlib.sha256(body).hexdigest()
    digests[key] = digest
    recorded = obj["Metadata"].get("jobstore-sha256")
    if recorded is None and obj["Metadata"].get("jobstore-trailing-tags") == "1":
        tags = {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]}
        if tags.get("jobstore-etag", "").strip('"') == obj["ETag"].strip('"'):
            recorded = tags.get("jobstore-sha256")
        else:
            violations.append(f"{key}: multipart object without its checksum tags")
    if recorded is not None and recorded != digest:
        violations.append(f"{key}: torn or wrong: bytes {digest}, recorded {recorded}")
    if recorded is None and obj["Metadata"].get("jobstore-writer") and len(body) > 0:
        violations.append(f"{key}: written by the daemon without a checksum")
for key, allowed in expected.items():
    actual = digests.get(key, "absent")
    if actual not in allowed:
        violations.append(f"{key}: holds {actual}, expected one of {allowed}")
print(json.dumps({"objects": len(keys), "checked": len(expected), "violations": violations[:20],
                  "violation_count": len(violations)}))
sys.exit(1 if violations else 0)
