#!/usr/bin/env python3
"""A small HTTP proxy on 127.0.0.1 for the proxy tests: CONNECT tunnels (https) and absolute-URI
requests (http), each request line appended to LOG_FILE. Usage: connect_proxy.py PORT_FILE LOG_FILE
(PORT_FILE receives "PORT PID"). Forwards only to 127.0.0.1."""
import os
import socket
import sys
import threading

port_file, log_file = sys.argv[1], sys.argv[2]
lock = threading.Lock()


def log(line: str) -> None:
    with lock, open(log_file, "a") as f:
        f.write(line + "\n")


def pump(a: socket.socket, b: socket.socket) -> None:
    try:
        while True:
            data = a.recv(65536)
            if not data:
                break
            b.sendall(data)
    except OSError:
        pass
    finally:
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def handle(client: socket.socket) -> None:
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = client.recv(65536)
        if not chunk:
            client.close()
            return
        head += chunk
    line = head.split(b"\r\n", 1)[0].decode("latin-1")
    log(line)
    method, target, _ = line.split(" ", 2)
    if method == "CONNECT":
        host, port = target.rsplit(":", 1)
        rest = head.split(b"\r\n\r\n", 1)[1]
    else:  # absolute URI: http://host:port/path
        authority = target.split("://", 1)[1].split("/", 1)[0]
        host, port = authority.rsplit(":", 1) if ":" in authority else (authority, "80")
        rest = head
    if host not in ("127.0.0.1", "localhost"):
        client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        client.close()
        return
    upstream = socket.create_connection(("127.0.0.1", int(port)))
    if method == "CONNECT":
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
    if rest:
        upstream.sendall(rest)
    threading.Thread(target=pump, args=(upstream, client), daemon=True).start()
    pump(client, upstream)


server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", 0))
server.listen(64)
with open(port_file + ".tmp", "w") as f:
    f.write(f"{server.getsockname()[1]} {os.getpid()}")
os.replace(port_file + ".tmp", port_file)
while True:
    conn, _ = server.accept()
    threading.Thread(target=handle, args=(conn,), daemon=True).start()
