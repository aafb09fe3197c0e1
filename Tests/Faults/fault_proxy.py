"""A fault-injecting HTTP proxy between jobstored and an S3 server, for reliability tests.

usage: fault_proxy.py UPSTREAM_URL RATE SEED STALL_SECONDS
Listens on 127.0.0.1 (an ephemeral port, printed as the first line of stdout) and forwards
every request to UPSTREAM_URL with the Host header the client signed. With probability RATE a
request meets one fault, chosen uniformly:

  slowdown   503 SlowDown, not forwarded
  error500   500 InternalError, not forwarded
  lost       forwarded (it takes effect), but the client gets a 500
  reset      forwarded; the client gets the headers and half the body, then a TCP reset
  truncate   forwarded; the client gets the headers and half the body, then a clean close
  stall      forwarded; the client gets the headers and half the body, then nothing for
             STALL_SECONDS + 1 seconds, then a close
  corrupt    forwarded; one byte of the body flipped: object data of a GET (the response), or
             of a PUT (the request; the server's Content-MD5/SHA-256 check refuses it)

GET /__faults answers the counts injected so far as JSON (never forwarded).
GET /__outage?seconds=N begins an outage once it has answered: the proxy stops listening (every
connection is refused), closes the connections open to it (their requests in flight get no
answer), and listens again on the same port N seconds later. RATE 0 injects no other fault."""
import http.client
import http.server
import json
import random
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
import urllib.parse

UPSTREAM = urllib.parse.urlparse(sys.argv[1])
RATE = float(sys.argv[2])
RNG = random.Random(int(sys.argv[3]))
STALL = float(sys.argv[4])
KINDS = ["slowdown", "error500", "lost", "reset", "truncate", "stall", "corrupt"]
COUNTS = {k: 0 for k in KINDS}
COUNTS["requests"] = 0
COUNTS["outages"] = 0
OPEN = set()  # client sockets open now, closed by an outage
LOCK = threading.Lock()
HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}


def choose():
    with LOCK:
        COUNTS["requests"] += 1
        if RNG.random() >= RATE:
            return None
        kind = RNG.choice(KINDS)
        COUNTS[kind] += 1
        return kind


def error_xml(code, message):
    return (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
            f"<Message>{message}</Message></Error>").encode()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def setup(self):
        super().setup()
        with LOCK:
            OPEN.add(self.connection)

    def finish(self):
        with LOCK:
            OPEN.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass  # closed under it by an outage

    def upstream(self):
        if getattr(self, "_upstream", None) is None:
            self._upstream = http.client.HTTPConnection(UPSTREAM.hostname, UPSTREAM.port, timeout=120)
        return self._upstream

    def reply(self, status, headers, body):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def handle_one(self):
        if self.path.startswith("/__faults"):
            with LOCK:
                body = json.dumps(COUNTS).encode()
            self.reply(200, [("Content-Type", "application/json")], body)
            return
        if self.path.startswith("/__outage"):
            query = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
            seconds = float(query.get("seconds", ["10"])[0])
            self.reply(200, [("Content-Type", "application/json")], json.dumps({"outage_seconds": seconds}).encode())
            self.close_connection = True
            threading.Thread(target=PROXY.outage, args=(seconds,), daemon=True).start()
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        kind = choose()
        if kind == "slowdown":
            self.reply(503, [("Content-Type", "application/xml")], error_xml("SlowDown", "Please reduce your request rate."))
            return
        if kind == "error500":
            self.reply(500, [("Content-Type", "application/xml")], error_xml("InternalError", "injected"))
            return
        is_object_put = self.command == "PUT" and len(body) > 0 and "tagging" not in self.path
        if kind == "corrupt" and is_object_put:
            flipped = bytearray(body)
            flipped[len(flipped) // 2] ^= 0xFF
            body = bytes(flipped)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP and k.lower() != "content-length"}
        try:
            conn = self.upstream()
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in headers.items():
                conn.putheader(name, value)
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            response = conn.getresponse()
            data = response.read()
        except Exception:
            self._upstream = None
            self.reply(502, [], error_xml("BadGateway", "upstream failed"))
            return
        out_headers = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP and k.lower() != "content-length"]
        if kind == "lost":
            self.reply(500, [("Content-Type", "application/xml")], error_xml("InternalError", "injected after forwarding"))
            return
        parsed = urllib.parse.urlparse(self.path)
        is_object_get = self.command == "GET" and parsed.query == "" and parsed.path.strip("/").count("/") >= 1
        if kind == "corrupt" and self.command == "GET" and is_object_get and response.status in (200, 206) and data:
            flipped = bytearray(data)
            flipped[len(flipped) // 2] ^= 0xFF
            data = bytes(flipped)
        if kind in ("reset", "truncate", "stall") and data:
            self.send_response(response.status)
            for name, value in out_headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            if kind == "stall":
                time.sleep(STALL + 1)
            if kind == "reset":
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            return
        if self.command == "HEAD":
            # A HEAD answer's Content-Length is the object's size; it has no body.
            self.send_response(response.status)
            for name, value in response.getheaders():
                if name.lower() not in HOP:
                    self.send_header(name, value)
            self.end_headers()
            return
        self.reply(response.status, out_headers, data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_one


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # A connection an outage closed under its handler (a broken pipe, a reset) is the point.
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class Proxy:
    """The listening side, which an outage takes away and gives back on the same port."""

    def __init__(self):
        self.port = 0
        self.listen()

    def listen(self):
        self.server = Server(("127.0.0.1", self.port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def outage(self, seconds):
        time.sleep(0.05)  # the answer to /__outage goes out first
        self.server.shutdown()
        self.server.server_close()
        with LOCK:
            COUNTS["outages"] += 1
            open_now = list(OPEN)
        for conn in open_now:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        time.sleep(seconds)
        self.listen()


if __name__ == "__main__":
    # Spawned from a thread that blocks signals, this process would ignore SIGTERM.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGTERM, signal.SIGINT])
    PROXY = Proxy()
    print(PROXY.port, flush=True)
    threading.Event().wait()
