"""The transport of the Python client: one Unix-socket connection multiplexing calls from any
number of threads (Protos/WIRE.md), file descriptors passed with SCM_RIGHTS, uploads and
downloads as file-like objects. The per-rpc methods come from the generated `_stub`.

Receiving is leader/follower: whichever waiting thread finds the socket free reads frames and
hands each to its call until its own is ready, then passes the role on. A single-threaded
caller (a Toil worker) thus reads its own answers with no thread switch."""
from __future__ import annotations

import io
import itertools
import os
import socket as _socket
import struct
import threading
import time
from collections import deque
from typing import Callable, Deque, Dict, Generic, Iterable, Optional, Type, TypeVar

from . import errors
from . import messages as pb
from .messages import _Message as Message
from ._stub import FD_METHODS, IDEMPOTENT, METHODS, JobStoreStub

REQUEST, RESPONSE, DATA, END, CANCEL = 1, 2, 3, 4, 5
HEADER = struct.Struct(">IIHBB")
MAX_DATA = 1 << 20
MAX_MESSAGE = 16 << 20
READ_CHUNK = 64 << 10

R = TypeVar("R", bound=Message)


def default_socket_path() -> str:
    """The daemon's default: $JOBSTORED_SOCKET, $XDG_RUNTIME_DIR/jobstored.sock, or
    /tmp/jobstored-UID/jobstored.sock."""
    explicit = os.environ.get("JOBSTORED_SOCKET")
    if explicit:
        return explicit
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return os.path.join(runtime, "jobstored.sock")
    return f"/tmp/jobstored-{os.getuid()}/jobstored.sock"


class _Call:
    """One call in flight: DATA chunks as they arrive, then the terminal RESPONSE."""

    __slots__ = ("id", "client", "chunks", "done", "code", "payload", "lost")

    def __init__(self, call_id: int, client: "Client") -> None:
        self.id = call_id
        self.client = client
        self.chunks: Deque[bytes] = deque()
        self.done = False
        self.code = 0
        self.payload = b""
        self.lost = False  # failed because the connection went away, not by the daemon's answer

    def finish(self, code: int, payload: bytes) -> None:
        self.code, self.payload, self.done = code, payload, True

    def wait(self) -> None:
        self.client._pump(lambda: self.done)

    def result(self, response_type: Type[R]) -> R:
        self.wait()
        if self.code != 0:
            raise _error(self.code, self.payload)
        return response_type.FromString(self.payload)


def _error(code: int, payload: bytes) -> errors.JobStoreError:
    try:
        status = pb.Status.FromString(payload)
        return errors.from_status(code, status.message, int(status.kind))
    except Exception:  # a payload that is not a Status: still the code
        return errors.from_status(code, f"status {code}")


class Client(JobStoreStub):
    """A connection to jobstored. Thread-safe: calls from many threads share the connection and
    are answered in any order. Close it (or use `with`) when done.

    When the daemon goes away (a restart, an upgrade), the next call connects again, waiting up
    to `reconnect_timeout` seconds for the daemon to be back; a call in flight when the
    connection broke is sent again if it is idempotent (see IDEMPOTENT), else it fails with
    UNAVAILABLE.

    >>> with Client() as c:
    ...     c.ping(pb.Empty())
    """

    def __init__(self, socket: Optional[str] = None, *, check_methods: bool = False,
                 reconnect_timeout: float = 30.0) -> None:
        self.path = socket or default_socket_path()
        self.reconnect_timeout = reconnect_timeout
        self._sock = self._connect()
        self._rbuf = bytearray()  # bytes received past the frame being read
        self._send_lock = threading.Lock()
        self._calls: Dict[int, _Call] = {}
        self._calls_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._closed = False
        self._broken: Optional[str] = None
        # No reader thread: a waiting caller reads frames itself while no other thread does
        # (leader/follower), so a lone caller gets its answer without a thread hand-off; other
        # waiters sleep on `_progress`, which every dispatched frame and every hand-over wakes.
        self._recv_lock = threading.Lock()
        self._progress = threading.Condition()
        if check_methods:
            hello = self.hello(pb.HelloRequest(protocol_version=1, client_name="python"))
            if tuple(hello.methods[: len(METHODS)]) != METHODS:
                raise errors.FailedPrecondition(9, "the daemon's method table differs from this client's")

    def _connect(self) -> _socket.socket:
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            sock.connect(self.path)
        except OSError as e:
            sock.close()
            raise errors.Unavailable(14, f"cannot connect to jobstored at {self.path}: {e.strerror or e}") from None
        return sock

    def _reconnect(self) -> None:
        """Replaces a broken connection (every call on it has failed already), retrying for up
        to `reconnect_timeout` seconds while the daemon is away."""
        with self._recv_lock, self._send_lock:
            if not self._broken or self._closed:
                return
            deadline = time.monotonic() + self.reconnect_timeout
            delay = 0.02
            while True:
                try:
                    sock = self._connect()
                    break
                except errors.Unavailable:
                    if time.monotonic() >= deadline:
                        raise
                    time.sleep(delay)
                    delay = min(delay * 2, 0.5)
            try:
                self._sock.close()
            except OSError:
                pass
            self._sock = sock
            self._rbuf = bytearray()  # nothing of the old connection is read on the new one
            self._broken = None

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._sock.shutdown(_socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()

    # -- frames ---------------------------------------------------------------------------

    def _send(self, call_id: int, frame_type: int, code: int = 0, payload: bytes = b"", fd: Optional[int] = None) -> None:
        header = HEADER.pack(len(payload), call_id, code, frame_type, 1 if fd is not None else 0)
        with self._send_lock:
            if self._broken:
                raise errors.Unavailable(14, self._broken)
            try:
                if fd is not None:
                    sent = _socket.send_fds(self._sock, [header + payload], [fd])
                    if sent < len(header) + len(payload):
                        self._sock.sendall((header + payload)[sent:])
                elif len(payload) > 65536:
                    self._sock.sendall(header)
                    self._sock.sendall(payload)
                else:
                    self._sock.sendall(header + payload)
            except OSError as e:
                reason = f"connection to jobstored lost: {e}"
            else:
                return
        self._fail_all(reason)  # every call on this connection fails; the next call reconnects
        raise errors.Unavailable(14, reason)

    def _recv_exact(self, n: int) -> Optional[bytes]:
        """`n` bytes from the connection (None at its end), read through a buffer: a header
        and its payload usually arrive with one `recv`. Only the thread reading frames calls it."""
        buf = self._rbuf
        while len(buf) < n:
            chunk = self._sock.recv(max(n - len(buf), READ_CHUNK))
            if not chunk:
                return None
            buf += chunk
        out = bytes(buf[:n])
        del buf[:n]
        return out

    def _pump(self, ready: Callable[[], bool]) -> None:
        """Returns once `ready()` holds, reading and dispatching frames while no other thread is."""
        while not ready():
            if self._recv_lock.acquire(blocking=False):
                try:
                    while not ready() and self._read_frame():
                        pass
                finally:
                    self._recv_lock.release()
                    with self._progress:
                        self._progress.notify_all()
            else:
                with self._progress:
                    if not ready() and self._recv_lock.locked():
                        self._progress.wait(1.0)

    def _read_frame(self) -> bool:
        """Reads one frame and hands it to its call; False once the connection is gone (every
        call then fails with UNAVAILABLE)."""
        reason = "jobstored closed the connection"
        try:
            head = self._recv_exact(HEADER.size) if not self._broken else None
            if head is not None:
                length, call_id, code, frame_type, _ = HEADER.unpack(head)
                if length > MAX_MESSAGE:
                    reason = f"jobstored sent an oversized frame ({length} bytes)"
                else:
                    payload = (self._recv_exact(length) or b"") if length else b""
                    with self._calls_lock:
                        call = self._calls.get(call_id)
                        if frame_type == RESPONSE:
                            self._calls.pop(call_id, None)
                    if call is None and call_id == 0 and frame_type == RESPONSE:  # refused connection
                        reason = str(_error(code, payload))
                    else:
                        if call is not None:
                            if frame_type == DATA:
                                call.chunks.append(payload)
                            elif frame_type == RESPONSE:
                                call.finish(code, payload)
                            with self._progress:
                                self._progress.notify_all()
                        return True
            elif self._broken:
                reason = self._broken
        except OSError as e:
            reason = f"connection to jobstored lost: {e}"
        self._fail_all(reason)
        return False

    def _fail_all(self, reason: str) -> None:
        with self._send_lock:
            self._broken = self._broken or reason
        with self._calls_lock:
            calls = list(self._calls.values())
            self._calls.clear()
        status = pb.Status(code=14, message=reason).SerializeToString()
        for call in calls:
            call.lost = True
            call.finish(14, status)
        with self._progress:
            self._progress.notify_all()

    def _start(self, method: int, request: Message, fd: Optional[int] = None) -> _Call:
        if method in FD_METHODS and FD_METHODS[method] and fd is None:
            raise errors.InvalidArgument(3, f"{METHODS[method]} needs a file descriptor")
        try:
            payload = request.SerializeToString()
        except ValueError as error:  # NUL in a string (protobuf-c cannot carry it), out of range
            raise errors.InvalidArgument(3, str(error)) from None
        if len(payload) > MAX_MESSAGE:
            raise errors.InvalidArgument(3, f"{METHODS[method]} request of {len(payload)} bytes exceeds 16 MiB")
        call = _Call(next(self._ids) & 0xFFFFFFFF or next(self._ids), self)
        if self._broken and not self._closed:
            self._reconnect()
        with self._calls_lock:
            if self._broken:
                raise errors.Unavailable(14, self._broken)
            self._calls[call.id] = call
        try:
            self._send(call.id, REQUEST, method, payload, fd)
        except BaseException:
            with self._calls_lock:
                self._calls.pop(call.id, None)
            raise
        return call

    # -- call shapes (used by the generated stub) ---------------------------------------------

    def _unary(self, method: int, request: Message, response_type: Type[R], fd: Optional[int] = None) -> R:
        try:
            call = self._start(method, request, fd)
        except errors.Unavailable:
            if self._closed or METHODS[method] not in IDEMPOTENT:
                raise
            call = self._start(method, request, fd)  # the request may not have left: send it again
        if METHODS[method] in IDEMPOTENT and fd is None:
            call.wait()
            if call.lost and not self._closed:
                call = self._start(method, request, fd)
        return call.result(response_type)

    def _upload(self, method: int, request: Message, response_type: Type[R], data: object = None):
        upload = Upload(self, self._start(method, request), response_type)
        if data is None:
            return upload
        with upload:
            if isinstance(data, (bytes, bytearray, memoryview)):
                upload.write(data)
            elif hasattr(data, "read"):
                while True:
                    chunk = data.read(MAX_DATA)  # type: ignore[attr-defined]
                    if not chunk:
                        break
                    upload.write(chunk)
            else:
                for chunk in data:  # type: ignore[union-attr]
                    upload.write(chunk)
        return upload.response

    def _download(self, method: int, request: Message, response_type: Type[R]) -> "Download[R]":
        return Download(self, self._start(method, request), response_type)


class Upload(Generic[R]):
    """A file-like writer for an upload call: bytes go as DATA frames; `close()` sends END and
    waits for the response (`self.response`). Leaving a `with` block by an exception, or
    `cancel()`, cancels the call: nothing is stored."""

    def __init__(self, client: Client, call: _Call, response_type: Type[R]) -> None:
        self._client, self._call, self._type = client, call, response_type
        self.response: Optional[R] = None
        self._finished = False

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:
        if self._finished:
            raise ValueError("write to a closed upload")
        if self._call.done:  # the daemon answered early: an error
            self._finish_error()
        view = memoryview(data).cast("B")
        for start in range(0, len(view), MAX_DATA):
            self._client._send(self._call.id, DATA, 0, bytes(view[start:start + MAX_DATA]))
        return len(view)

    def _finish_error(self) -> None:
        self._finished = True
        self._call.result(self._type)  # raises the daemon's error

    def close(self) -> None:
        if self._finished:
            return
        self._finished = True
        self._client._send(self._call.id, END)
        self.response = self._call.result(self._type)

    def cancel(self) -> None:
        if self._finished:
            return
        self._finished = True
        try:
            self._client._send(self._call.id, CANCEL)
        except errors.Unavailable:
            return
        self._call.wait()

    def __enter__(self) -> "Upload[R]":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.cancel()


class Download(io.RawIOBase, Generic[R]):
    """A readable binary stream over a download call's DATA frames; after the last byte,
    `self.response` holds the response. A failed call raises from `read`."""

    def __init__(self, client: Client, call: _Call, response_type: Type[R]) -> None:
        super().__init__()
        self._client, self._call, self._type = client, call, response_type
        self.response: Optional[R] = None
        self._pending = b""
        self._eof = False

    def readable(self) -> bool:
        return True

    def wait_for_start(self) -> None:
        """Blocks until the first byte or the answer arrives; raises if the call failed before
        sending anything (no such file...), so callers can fail at open rather than at read."""
        call = self._call
        self._client._pump(lambda: bool(call.chunks) or call.done)
        if not call.chunks and call.code != 0:
            self._eof = True
            call.result(self._type)

    def _next_chunk(self) -> bytes:
        call = self._call
        self._client._pump(lambda: bool(call.chunks) or call.done)
        if call.chunks:
            return call.chunks.popleft()
        self._eof = True
        self.response = call.result(self._type)
        return b""

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            parts = [self._pending]
            self._pending = b""
            while not self._eof:
                parts.append(self._next_chunk())
            return b"".join(parts)
        while len(self._pending) < n and not self._eof:
            self._pending += self._next_chunk()
        out, self._pending = self._pending[:n], self._pending[n:]
        return out

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def chunks(self) -> Iterable[bytes]:
        """The bytes as they arrive (at most 1 MiB each)."""
        if self._pending:
            yield self._pending
            self._pending = b""
        while not self._eof:
            chunk = self._next_chunk()
            if chunk:
                yield chunk

    def close(self) -> None:
        """Stops early (CANCEL) if bytes are left; a download read to its end is complete."""
        if not self._eof:
            self._eof = True
            try:
                self._client._send(self._call.id, CANCEL)
                self._call.wait()
            except errors.Unavailable:
                pass
        super().close()

    def __enter__(self) -> "Download[R]":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
