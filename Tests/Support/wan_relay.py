#!/usr/bin/env python3
"""A TCP relay on 127.0.0.1 that makes loopback look like a wide-area link, and counts what
crosses it: this kernel has no `netem`, so the delay is added here, in userspace.

usage: wan_relay.py UPSTREAM_HOST:PORT [--delay-ms D] [--rate-mbit R] [--http] [--listen HOST[:PORT]]

Every segment read from either side is held for D ms before it is written to the other (so a
round trip costs 2·D on top of loopback), in order, without serialising the segments behind
each other's delays: a stream keeps flowing at the link's rate. --rate-mbit caps each direction
of each connection at R Mbit/s (a token bucket). Bytes are relayed untouched, so TLS passes
through and the handshakes pay the delay as they would on a WAN.

--http also reads the client's bytes as HTTP/1.1 requests (the relay must then stand where the
traffic is plain, e.g. between a TLS terminator and the S3 server) and counts them by S3
operation, from the method, the path and the query, as AWS names them.

Prints the listening port, then the control port, one per line (--port-file FILE: also writes
"PORT PID CONTROL_PORT" to FILE). A line to the control port, `counts` or `reset`, is answered
with one line of JSON: connections, bytes each way, and with --http the requests by operation
and by key prefix (`reset` answers the counts and zeroes them); `GET /counts` over HTTP too.
`by_peer` holds the same figures per client address: on tools/cluster's bridge, per node.

--listen: the address to listen on (default 127.0.0.1, any free port); the control port is on
the same address. --proxy-protocol: each connection begins with a PROXY protocol v1 line (a TLS
terminator's, e.g. stunnel's `protocol = proxy`), which names the real client: it is counted
under that address and not relayed. Only loopback or an address of a namespace or bridge this project made."""
import argparse
import asyncio
import json
import os
import signal
import socket
import sys
import urllib.parse

QUEUE_LIMIT = 16 << 20  # bytes held per direction before reading from the sender pauses


class Counts:
    def __init__(self):
        self.reset()

    def reset(self):
        self.connections = 0
        self.bytes_up = 0
        self.bytes_down = 0
        self.requests = {}
        self.by_prefix = {}
        # Zeroed in place: a connection kept open across a reset (a daemon's pool) goes on
        # counting into the same per-client object.
        for counts in getattr(self, "by_peer", {}).values():
            counts.reset()
        if not hasattr(self, "by_peer"):
            self.by_peer = {}

    def peer(self, address: str) -> "Counts":
        if address not in self.by_peer:
            self.by_peer[address] = Counts()
        return self.by_peer[address]

    def as_dict(self):
        d = {"connections": self.connections, "bytes_up": self.bytes_up, "bytes_down": self.bytes_down,
             "requests": dict(sorted(self.requests.items())), "total_requests": sum(self.requests.values()),
             "by_prefix": dict(sorted(self.by_prefix.items()))}
        if self.by_peer:
            d["by_peer"] = {address: c.as_dict() for address, c in sorted(self.by_peer.items())}
        return d


def key_prefix(target: str) -> str:
    """Where in the bucket a request goes, for telling the job store's kinds of object apart:
    the key's first path segment (jobs/, files-flat/, ...), a root key's own name (a shared
    file), or the bucket's sub-resource."""
    parsed = urllib.parse.urlsplit(target)
    parts = parsed.path.lstrip("/").split("/", 2)
    if len(parts) < 2 or not parts[1]:
        query = urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
        prefix = (query.get("prefix") or [""])[0].split("/", 1)[0]
        return "bucket" + (f" prefix={prefix}" if prefix else "")
    return parts[1] + "/" if len(parts) > 2 else urllib.parse.unquote(parts[1])


COUNTS = Counts()


def s3_operation(method: str, target: str, headers: dict) -> str:
    """The S3 operation a path-style request is (AWS's names)."""
    parsed = urllib.parse.urlsplit(target)
    query = urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
    parts = parsed.path.lstrip("/").split("/", 1)
    bucket, key = parts[0], (parts[1] if len(parts) > 1 else "")
    copy = "x-amz-copy-source" in headers
    if not bucket:
        return "ListBuckets"
    if not key:
        for sub, names in (("uploads", {"GET": "ListMultipartUploads"}),
                           ("delete", {"POST": "DeleteObjects"}),
                           ("location", {"GET": "GetBucketLocation"}),
                           ("encryption", {"PUT": "PutBucketEncryption", "GET": "GetBucketEncryption"}),
                           ("versioning", {"GET": "GetBucketVersioning", "PUT": "PutBucketVersioning"}),
                           ("tagging", {"GET": "GetBucketTagging", "PUT": "PutBucketTagging"}),
                           ("publicAccessBlock", {"DELETE": "DeletePublicAccessBlock", "PUT": "PutPublicAccessBlock"}),
                           ("policy", {"PUT": "PutBucketPolicy", "GET": "GetBucketPolicy"}),
                           ("versions", {"GET": "ListObjectVersions"})):
            if sub in query and method in names:
                return names[method]
        return {"HEAD": "HeadBucket", "PUT": "CreateBucket", "DELETE": "DeleteBucket",
                "GET": "ListObjectsV2" if query.get("list-type") == ["2"] else "ListObjects"}.get(method, method + " bucket")
    if "uploadId" in query:
        if method == "PUT":
            return "UploadPartCopy" if copy else "UploadPart"
        return {"POST": "CompleteMultipartUpload", "DELETE": "AbortMultipartUpload", "GET": "ListParts"}.get(method, method + " upload")
    if "uploads" in query and method == "POST":
        return "CreateMultipartUpload"
    if "tagging" in query:
        return {"GET": "GetObjectTagging", "PUT": "PutObjectTagging"}.get(method, method + " tagging")
    if "acl" in query:
        return {"GET": "GetObjectAcl", "PUT": "PutObjectAcl"}.get(method, method + " acl")
    if method == "PUT":
        return "CopyObject" if copy else "PutObject"
    return {"GET": "GetObject", "HEAD": "HeadObject", "DELETE": "DeleteObject"}.get(method, method + " object")


class RequestReader:
    """Follows HTTP/1.1 requests through a byte stream fed in arbitrary pieces: headers, then a
    body of Content-Length bytes or in chunks. Only watches; never changes the bytes. Counts into
    each of `counts` (the relay's, and its client's)."""

    def __init__(self, counts):
        self.counts = counts
        self.buffer = b""
        self.state = "head"
        self.remaining = 0  # bytes to pass over in state "skip", then `after`
        self.after = "head"

    def skip(self, count: int, then: str):
        self.remaining, self.after = count, then
        self.state = "skip" if count else then

    def line(self):
        """The next CRLF-ended line, or None until it has arrived whole."""
        end = self.buffer.find(b"\r\n")
        if end < 0:
            return None
        line, self.buffer = self.buffer[:end], self.buffer[end + 2:]
        return line

    def feed(self, data: bytes):
        self.buffer += data
        while True:
            if self.state == "head":
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                head, self.buffer = self.buffer[:end].decode("latin-1"), self.buffer[end + 4:]
                lines = head.split("\r\n")
                method, target = lines[0].split(" ")[:2]
                headers = {}
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                op = s3_operation(method, target, headers)
                where = f"{op} {key_prefix(target)}"
                for counts in self.counts:
                    counts.requests[op] = counts.requests.get(op, 0) + 1
                    counts.by_prefix[where] = counts.by_prefix.get(where, 0) + 1
                if "chunked" in headers.get("transfer-encoding", "").lower():
                    self.state = "chunk-size"
                else:
                    self.skip(int(headers.get("content-length", "0") or 0), "head")
            elif self.state == "skip":
                taken = min(self.remaining, len(self.buffer))
                self.buffer, self.remaining = self.buffer[taken:], self.remaining - taken
                if self.remaining:
                    return
                self.state = self.after
            elif self.state == "chunk-size":
                line = self.line()
                if line is None:
                    return
                size = int(line.split(b";")[0], 16)
                if size == 0:
                    self.state = "trailers"
                else:
                    self.skip(size + 2, "chunk-size")  # the data and its CRLF
            elif self.state == "trailers":
                line = self.line()
                if line is None:
                    return
                if not line:
                    self.state = "head"


async def pipe(reader, writer, delay: float, rate: float, up: bool, watcher, counted):
    """One direction: read, hold each segment `delay` seconds, write, at most `rate` bytes/s."""
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()
    held = {"bytes": 0}
    room = asyncio.Event()
    room.set()

    async def receive():
        nonlocal watcher
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                for counts in counted:
                    if up:
                        counts.bytes_up += len(data)
                    else:
                        counts.bytes_down += len(data)
                if watcher is not None:
                    try:
                        watcher.feed(data)
                    except Exception as error:
                        print(f"wan_relay: not HTTP, no longer counted: {error!r}", file=sys.stderr, flush=True)
                        watcher = None  # not HTTP after all: stop counting, keep relaying
                held["bytes"] += len(data)
                queue.put_nowait((loop.time() + delay, data))
                if held["bytes"] > QUEUE_LIMIT:
                    room.clear()
                    await room.wait()
        except (ConnectionError, OSError):
            pass
        queue.put_nowait((loop.time() + delay, None))

    async def send():
        sent_at, budget = loop.time(), 0.0
        try:
            while True:
                due, data = await queue.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if data is None:
                    if writer.can_write_eof():
                        writer.write_eof()
                    break
                if rate:
                    now = loop.time()
                    budget = max(0.0, budget - (now - sent_at) * rate) + len(data)
                    sent_at = now
                    if budget > rate * 0.01:
                        await asyncio.sleep((budget - rate * 0.01) / rate)
                writer.write(data)
                await writer.drain()
                held["bytes"] -= len(data)
                if held["bytes"] <= QUEUE_LIMIT:
                    room.set()
        except (ConnectionError, OSError):
            writer.transport.abort()

    await asyncio.gather(receive(), send())


async def relay(client_reader, client_writer, upstream, delay, rate, http, proxy_protocol=False):
    peer = client_writer.get_extra_info("peername")
    address = peer[0] if peer else "?"
    if proxy_protocol:  # "PROXY TCP4 CLIENT SERVER CPORT SPORT\r\n"
        line = (await client_reader.readline()).decode("latin-1").split()
        if len(line) < 3 or line[0] != "PROXY":
            client_writer.transport.abort()
            return
        address = line[2] if line[1] != "UNKNOWN" else address
    counted = [COUNTS, COUNTS.peer(address)]
    for counts in counted:
        counts.connections += 1
    try:
        server_reader, server_writer = await asyncio.open_connection(*upstream)
    except OSError:
        client_writer.transport.abort()
        return
    for w in (client_writer, server_writer):
        w.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    watcher = RequestReader(counted) if http else None
    try:
        await asyncio.gather(pipe(client_reader, server_writer, delay, rate, True, watcher, counted),
                             pipe(server_reader, client_writer, delay, rate, False, None, counted))
    finally:
        for w in (client_writer, server_writer):
            w.close()


async def control(reader, writer):
    """`counts` or `reset` lines, each answered with a JSON line; or one HTTP GET of /counts or
    /reset, answered as HTTP (for tests that speak only HTTP)."""
    try:
        while line := (await reader.readline()).strip():
            http = line.startswith(b"GET /")
            command = line.split(b" ")[1].lstrip(b"/") if http else line
            answer = (json.dumps(COUNTS.as_dict()) + "\n").encode()
            if command == b"reset":
                COUNTS.reset()
            if http:
                while (await reader.readline()).strip():
                    pass
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                             + f"Content-Length: {len(answer)}\r\n\r\n".encode() + answer)
                await writer.drain()
                break
            writer.write(answer)
            await writer.drain()
    finally:
        writer.close()


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("upstream")
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--rate-mbit", type=float, default=0.0)
    parser.add_argument("--http", action="store_true")
    parser.add_argument("--port-file", help='also write "PORT PID CONTROL_PORT" there, once listening')
    parser.add_argument("--listen", default="127.0.0.1", help="HOST or HOST:PORT to listen on (the control port: same host)")
    parser.add_argument("--proxy-protocol", action="store_true", help="connections begin with a PROXY v1 line naming the client")
    args = parser.parse_args()
    host, _, port = args.upstream.rpartition(":")
    upstream = (host, int(port))
    delay, rate = args.delay_ms / 1000.0, args.rate_mbit * 125000.0
    connections = set()  # the loop holds tasks weakly: a connection's task is held here

    def accepted(reader, writer):
        task = asyncio.ensure_future(relay(reader, writer, upstream, delay, rate, args.http, args.proxy_protocol))
        connections.add(task)
        task.add_done_callback(connections.discard)

    listen_host, _, listen_port = args.listen.partition(":")
    server = await asyncio.start_server(accepted, listen_host, int(listen_port or 0))
    controller = await asyncio.start_server(control, listen_host, 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    print(controller.sockets[0].getsockname()[1], flush=True)
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write(f"{server.sockets[0].getsockname()[1]} {os.getpid()} {controller.sockets[0].getsockname()[1]}")
        os.rename(args.port_file + ".tmp", args.port_file)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    os._exit(0)  # at once: the connections' tasks need no orderly cancelling


if __name__ == "__main__":
    # Spawned from a thread that blocks signals, this process would ignore SIGTERM.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGTERM, signal.SIGINT])
    asyncio.run(main())
