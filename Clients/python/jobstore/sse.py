"""SSE-C keys for requests' ``sse_key`` fields, read as Toil reads ``--sseKey``.

The daemon never opens a key file for a client: read the key with your own rights when you
build a request (a key changed on disk then applies to the next call) and pass its bytes::

    key = jobstore.read_sse_key("/path/to/key")
    client.load_job(pb.JobRequest(locator=..., job_id=..., sse_key=key))
"""
from __future__ import annotations

KEY_LENGTH = 32


def read_sse_key(path: str) -> bytes:
    """The 32 bytes of the key file at ``path``; ValueError with Toil's text otherwise."""
    with open(path, "rb") as f:
        key = f.read()
    if len(key) != KEY_LENGTH:
        raise ValueError(f"Check that {path} is the path to a real SSE key. (Key length {len(key)} != {KEY_LENGTH})")
    return key
