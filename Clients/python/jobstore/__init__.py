"""Python client of jobstored, the per-node daemon serving Toil job stores over a Unix socket.

    import jobstore
    from jobstore import pb
    with jobstore.Client() as c:
        c.initialize(pb.StoreRequest(locator="local:/tmp/store"))

`jobstore.toil.DaemonJobStore` is a Toil 9.6 job store on top of it (needs `toil`).
"""
from . import errors
from . import jobstore_pb2 as pb
from .client import Client, Download, Upload, default_socket_path
from .errors import JobStoreError

__all__ = ["Client", "Download", "Upload", "JobStoreError", "default_socket_path", "errors", "pb"]
__version__ = "0.1.0"
