#!/usr/bin/env python3
"""A scripted S3 endpoint on 127.0.0.1 that records every request, for calls SeaweedFS lacks
and moto rejects (PutBucketEncryption). Buckets exist once created; objects are not kept.

Usage: scripted_s3.py PORT_FILE LOG_FILE ENCRYPTION_STATUS  (PORT_FILE receives "PORT PID")
  ENCRYPTION_STATUS: the HTTP status PutBucketEncryption answers (200, 403, 501 ...).
Each request is appended to LOG_FILE as one JSON line: method, path, query, headers, body.
"""
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

port_file, log_file, encryption_status = sys.argv[1], sys.argv[2], int(sys.argv[3])
buckets = set()
lock = threading.Lock()
ERRORS = {403: ("AccessDenied", "Access Denied"), 501: ("NotImplemented", "A header you provided implies functionality "
                                                                            "that is not implemented"),
          400: ("MalformedXML", "The XML you provided was not well-formed")}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _record(self, body: bytes) -> None:
        parts = urlsplit(self.path)
        entry = {"method": self.command, "path": parts.path, "query": parts.query,
                 "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body.decode("utf-8", "replace")}
        with lock, open(log_file, "a") as f:
            f.write(json.dumps(entry) + "\n")

    def _answer(self, status: int, body: bytes = b"", extra=()) -> None:
        self.send_response(status)
        for name, value in extra:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        if body:
            self.send_header("Content-Type", "application/xml")
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int) -> None:
        code, message = ERRORS.get(status, ("InternalError", "scripted failure"))
        self._answer(status, f"<Error><Code>{code}</Code><Message>{message}</Message></Error>".encode())

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self._record(body)
        parts = urlsplit(self.path)
        bucket = parts.path.strip("/").split("/")[0]
        region = [("x-amz-bucket-region", "us-east-1")]
        if self.command == "HEAD":
            return self._answer(200 if bucket in buckets else 404, extra=region)
        if self.command == "PUT" and parts.query.startswith("encryption"):
            if bucket not in buckets:
                return self._error(404)
            return self._answer(200) if encryption_status == 200 else self._error(encryption_status)
        if self.command == "PUT" and "/" not in parts.path.strip("/"):
            buckets.add(bucket)
            return self._answer(200, extra=region)
        if self.command == "DELETE" and "/" not in parts.path.strip("/"):
            buckets.discard(bucket)
            return self._answer(204)
        if self.command == "GET" and "/" not in parts.path.strip("/"):  # empty listings
            xml = (f"<ListBucketResult><Name>{bucket}</Name><KeyCount>0</KeyCount><IsTruncated>false</IsTruncated>"
                   "</ListBucketResult>")
            return self._answer(200 if bucket in buckets else 404, xml.encode())
        self._error(501)

    do_GET = do_PUT = do_HEAD = do_DELETE = do_POST = _handle


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
import os
with open(port_file + ".tmp", "w") as f:
    f.write(f"{server.server_address[1]} {os.getpid()}")
import os
os.replace(port_file + ".tmp", port_file)  # "PORT PID": the pid is the server's own, not a launcher's
server.serve_forever()
