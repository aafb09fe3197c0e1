"""A SeaweedFS of a test's own (not tools/dev-s3's shared one), so that the test may stop it and
start it again on the same data and ports: an S3 service restarting under a workflow.
Every port is explicit (busy default ports shift silently; each gRPC port, HTTP port + 10000,
must be free too) and everything binds to 127.0.0.1 only (see ../shared/TESTING.md)."""
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _free_pair() -> int:
    """A port free with its gRPC twin (port + 10000)."""
    for _ in range(1000):
        port = random.randint(20000, 40000)
        if _free(port) and _free(port + 10000):
            return port
    raise RuntimeError("no free port pair")


class SeaweedFS:
    def __init__(self) -> None:
        self.directory = tempfile.mkdtemp(prefix="jobstore-seaweed-")
        self.ports = {}
        while len(set(self.ports.values())) < 5:
            self.ports = {name: _free_pair() for name in ("master", "volume", "filer", "admin", "s3")}
        with open(os.path.join(self.directory, "identities.json"), "w") as f:
            json.dump({"identities": [{"name": "test", "credentials": [
                {"accessKey": os.environ["JOBSTORE_TEST_S3_ACCESS_KEY"], "secretKey": os.environ["JOBSTORE_TEST_S3_SECRET_KEY"]}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}, f)
        os.mkdir(os.path.join(self.directory, "data"))
        self.process = None
        self.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    def start(self) -> None:
        """Starts (or starts again) on the same data directory and ports; returns once S3 answers."""
        p = self.ports
        log = open(os.path.join(self.directory, "seaweed.log"), "a")
        self.process = subprocess.Popen(
            [shutil.which("weed") or "weed", "mini", f"-dir={self.directory}/data", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
             "-master.telemetry=false", f"-master.port={p['master']}", f"-volume.port={p['volume']}",
             f"-filer.port={p['filer']}", f"-admin.port={p['admin']}", f"-s3.port={p['s3']}",
             f"-s3.config={self.directory}/identities.json", "-admin.ui=false", "-webdav=false",
             "-s3.autoCreateBucket=false", "-s3.allowDeleteBucketNotEmpty=false", "-s3.port.iceberg=0", "-s3.port.lance=0"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"weed exited {self.process.returncode}: see {self.directory}/seaweed.log")
            try:
                urllib.request.urlopen(self.endpoint + "/", timeout=1)
                return
            except urllib.error.HTTPError as e:
                if e.code == 403:  # S3 answers (anonymous is refused): the filer behind it is up
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError("SeaweedFS did not answer within 60 s")

    def stop(self) -> None:
        """SIGTERM (as a rolling upgrade stops it) and wait for every process of it to exit."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)
