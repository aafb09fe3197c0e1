"""Python client of jobstored, the per-node daemon serving Toil job stores over a Unix socket.

    import jobstore
    from jobstore import pb
    with jobstore.Client() as c:
        c.initialize(pb.StoreRequest(locator="local:/tmp/store"))

`pb` is `jobstore.messages`: generated plain-Python message classes (no protobuf runtime, so a
new worker starts ~15 ms sooner). `jobstore.jobstore_pb2` holds protoc's classes for the same
messages, for code that wants google.protobuf's API (needs the `protobuf` extra).

`jobstore.toil.DaemonJobStore` is a Toil 9.6 job store on top of it (needs `toil`).
"""
from . import errors
from . import messages as pb
from .client import Client, Download, Upload, default_socket_path
from .errors import JobStoreError
from .sse import read_sse_key

__all__ = ["Client", "Download", "Upload", "JobStoreError", "default_socket_path", "errors", "pb", "read_sse_key"]
from ._version import __version__  # noqa: F401 (generated from the repository's VERSION)
