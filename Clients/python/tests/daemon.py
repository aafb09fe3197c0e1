"""A real jobstored for a Python test: its own socket and scratch directory, removed after."""
import os
import shutil
import subprocess
import tempfile
import time
import uuid

import jobstore

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


def binary() -> str:
    explicit = os.environ.get("JOBSTORED_BIN")
    if explicit:
        return explicit
    for candidate in (".build/debug/jobstored", ".build/release/jobstored"):
        path = os.path.join(ROOT, candidate)
        if os.access(path, os.X_OK):
            return path
    raise RuntimeError("no jobstored binary: run swift build first")


class Daemon:
    def __init__(self, s3: bool = False, extra: tuple = (), endpoint: str = None, log_path: str = None) -> None:
        self.directory = tempfile.mkdtemp(prefix="jobstored-pytest-")
        self.socket = os.path.join(self.directory, "d.sock")
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(AWS_EC2_METADATA_DISABLED="true", AWS_SHARED_CREDENTIALS_FILE=self.directory + "/none",
                   AWS_CONFIG_FILE=self.directory + "/none")
        args = [binary(), "--socket", self.socket, "--no-fsync", "--log-level", "warning",
                "--cache-dir", os.path.join(self.directory, "cache"), *extra]
        if s3:
            env["AWS_ACCESS_KEY_ID"] = os.environ["JOBSTORE_TEST_S3_ACCESS_KEY"]
            env["AWS_SECRET_ACCESS_KEY"] = os.environ["JOBSTORE_TEST_S3_SECRET_KEY"]
            args += ["--endpoint", endpoint or os.environ["JOBSTORE_TEST_S3_ENDPOINT"], "--part-size", "5MiB"]
        self._args, self._env = args, env
        self.log_path = log_path  # the daemon's stderr goes there (else to the test's)
        self._start()

    def _start(self) -> None:
        log = open(self.log_path, "a") if self.log_path else None
        try:
            self.process = subprocess.Popen(self._args, env=self._env, stderr=log)
        finally:
            if log:
                log.close()
        deadline = time.time() + 10
        while not os.path.exists(self.socket):
            if time.time() > deadline or self.process.poll() is not None:
                self.stop()
                raise RuntimeError("jobstored did not start")
            time.sleep(0.02)

    def kill(self) -> None:
        """kill -9: the daemon dies with its connections (its socket file stays)."""
        self.process.kill()
        self.process.wait()

    def restart(self) -> None:
        """Starts the daemon again on the same socket, cache and stores."""
        self._start()

    def client(self) -> jobstore.Client:
        return jobstore.Client(self.socket)

    def local_locator(self) -> str:
        return f"local:{self.directory}/store-{uuid.uuid4().hex[:8]}"

    @staticmethod
    def aws_locator() -> str:
        return f"aws:us-east-1:jobstore-py-{uuid.uuid4().hex[:8]}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


def have_s3() -> bool:
    return all(os.environ.get(v) for v in ("JOBSTORE_TEST_S3_ENDPOINT", "JOBSTORE_TEST_S3_ACCESS_KEY",
                                           "JOBSTORE_TEST_S3_SECRET_KEY"))
