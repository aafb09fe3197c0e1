"""The generated Python client against a real daemon."""
import os
import threading
import unittest

import jobstore
from jobstore import errors, pb
from jobstore._stub import METHODS

from daemon import Daemon


class ClientTests(unittest.TestCase):
    def setUp(self):
        self.daemon = Daemon()
        self.client = self.daemon.client()
        self.locator = self.daemon.local_locator()
        self.client.initialize(pb.StoreRequest(locator=self.locator))

    def tearDown(self):
        self.client.close()
        self.daemon.stop()

    def test_method_table_matches_the_daemon(self):
        hello = self.client.hello(pb.HelloRequest(protocol_version=1, client_name="test"))
        self.assertEqual(tuple(hello.methods), METHODS)

    def test_jobs_and_errors_named_after_toil_kinds(self):
        self.client.create_job(pb.JobBody(locator=self.locator, job_id="j1", body=b"\x00\x01pickle"))
        self.assertEqual(self.client.load_job(pb.JobRequest(locator=self.locator, job_id="j1")).body, b"\x00\x01pickle")
        with self.assertRaises(errors.NoSuchJob) as caught:
            self.client.load_job(pb.JobRequest(locator=self.locator, job_id="nope"))
        self.assertEqual(caught.exception.message, "The job 'nope' does not exist.")
        self.assertIsInstance(caught.exception, errors.NotFound)
        with self.assertRaises(errors.JobStoreExists):
            self.client.initialize(pb.StoreRequest(locator=self.locator))
        with self.assertRaises(errors.InvalidLocator):
            self.client.store_exists(pb.StoreRequest(locator="gs:x"))
        with self.assertRaises(errors.InvalidArgument):  # refused before sending: NUL
            self.client.load_job(pb.JobRequest(locator=self.locator, job_id="a\0b"))

    def test_streams_of_every_size_round_trip(self):
        for size in (0, 1, (1 << 20) - 1, 1 << 20, 3 * (1 << 20) + 7):
            body = os.urandom(size)
            info = self.client.write_file_stream(pb.WriteFileRequest(locator=self.locator, basename="f"), body)
            self.assertEqual(info.size, size)
            with self.client.read_file_stream(pb.FileRequest(locator=self.locator, file_id=info.file_id)) as d:
                self.assertEqual(d.read(), body)
                self.assertEqual(d.response.size, size)

    def test_descriptors_travel_both_ways_with_the_executable_bit(self):
        source = os.path.join(self.daemon.directory, "tool.sh")
        with open(source, "wb") as f:
            f.write(b"#!/bin/sh\n" * 1000)
        os.chmod(source, 0o755)
        fd = os.open(source, os.O_RDONLY)
        info = self.client.write_file(pb.WriteFileRequest(locator=self.locator, basename="tool.sh"), fd)
        os.close(fd)
        self.assertTrue(info.executable)
        target = os.path.join(self.daemon.directory, "copy")
        fd = os.open(target, os.O_WRONLY | os.O_CREAT, 0o600)
        reply = self.client.read_file(pb.ReadFileRequest(locator=self.locator, file_id=info.file_id), fd)
        os.close(fd)
        self.assertTrue(reply.info.executable)
        with open(target, "rb") as f:
            self.assertEqual(f.read(), b"#!/bin/sh\n" * 1000)
        with self.assertRaises(errors.InvalidArgument):
            self.client.write_file(pb.WriteFileRequest(locator=self.locator), None)

    def test_a_cancelled_upload_stores_nothing(self):
        class Boom(Exception):
            pass
        with self.assertRaises(Boom):
            with self.client.write_file_stream(pb.WriteFileRequest(locator=self.locator, basename="x")) as up:
                up.write(b"partial" * 1000)
                raise Boom()
        files = [p for p in os.listdir(self.locator[len("local:"):] + "/objects") if p.startswith("files")]
        self.assertEqual(files, [])

    def test_many_threads_share_one_connection(self):
        failures = []

        def work(n):
            try:
                for k in range(50):
                    body = f"{n}-{k}".encode() * (k + 1)
                    self.client.create_job(pb.JobBody(locator=self.locator, job_id=f"t{n}-{k}", body=body))
                    got = self.client.load_job(pb.JobRequest(locator=self.locator, job_id=f"t{n}-{k}")).body
                    if got != body:
                        failures.append((n, k))
            except Exception as e:  # pragma: no cover - reported below
                failures.append(e)
        threads = [threading.Thread(target=work, args=(n,)) for n in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(failures, [])
        listed = self.client.list_jobs(pb.ListJobsRequest(locator=self.locator, page_size=1000))
        self.assertEqual(len(listed.jobs), 16 * 50)

    def test_downloads_and_calls_from_many_threads_interleave(self):
        """Whichever thread waits reads for all (leader/follower): downloads read slowly by some
        threads while others make quick calls all complete, byte for byte."""
        bodies = [os.urandom((n + 1) * 300_000) for n in range(6)]
        ids = [self.client.write_file_stream(pb.WriteFileRequest(locator=self.locator), b).file_id for b in bodies]
        failures = []

        def download(n):
            try:
                for _ in range(3):
                    with self.client.read_file_stream(pb.FileRequest(locator=self.locator, file_id=ids[n])) as d:
                        parts = []
                        while True:
                            chunk = d.read(70_000)
                            if not chunk:
                                break
                            parts.append(chunk)
                    if b"".join(parts) != bodies[n]:
                        failures.append(n)
            except Exception as e:  # pragma: no cover - reported below
                failures.append(e)

        def chatter():
            try:
                for _ in range(300):
                    self.client.ping(pb.Empty())
            except Exception as e:  # pragma: no cover
                failures.append(e)
        threads = [threading.Thread(target=download, args=(n,)) for n in range(6)]
        threads += [threading.Thread(target=chatter) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertFalse(any(t.is_alive() for t in threads), "a thread is stuck")
        self.assertEqual(failures, [])

    def test_a_daemon_that_goes_away_fails_calls_with_unavailable(self):
        self.daemon.process.kill()
        self.daemon.process.wait()
        with self.assertRaises(errors.Unavailable):
            self.client.ping(pb.Empty())
        with self.assertRaises(errors.Unavailable):
            jobstore.Client(self.daemon.socket)


if __name__ == "__main__":
    unittest.main()


class ReconnectTests(unittest.TestCase):
    """The client survives the daemon going away: kill -9 and restart, or an upgrade."""

    def setUp(self):
        self.daemon = Daemon()
        self.client = jobstore.Client(self.daemon.socket, reconnect_timeout=10)
        self.locator = self.daemon.local_locator()
        self.client.initialize(pb.StoreRequest(locator=self.locator))
        self.client.create_job(pb.JobBody(locator=self.locator, job_id="j", body=b"kept"))

    def tearDown(self):
        self.client.close()
        self.daemon.stop()

    def test_calls_after_a_restart_reconnect(self):
        self.daemon.kill()
        self.daemon.restart()
        self.assertEqual(self.client.load_job(pb.JobRequest(locator=self.locator, job_id="j")).body, b"kept")
        self.client.ping(pb.Empty())

    def test_a_call_waits_for_the_daemon_to_come_back(self):
        self.daemon.kill()
        timer = threading.Timer(0.5, self.daemon.restart)
        timer.start()
        try:
            self.assertEqual(self.client.load_job(pb.JobRequest(locator=self.locator, job_id="j")).body, b"kept")
        finally:
            timer.join()

    def test_an_idempotent_call_in_flight_is_sent_again_and_a_stream_fails_clearly(self):
        upload = self.client.write_file_stream(pb.WriteFileRequest(locator=self.locator, basename="x"))
        upload.write(b"partial")
        self.daemon.kill()
        self.daemon.restart()
        with self.assertRaises(errors.Unavailable):
            upload.close()  # a stream is never replayed: the write did not happen
        self.assertTrue(self.client.job_exists(pb.JobRequest(locator=self.locator, job_id="j")).exists)

    def test_without_a_daemon_the_error_is_unavailable_after_the_timeout(self):
        self.client.reconnect_timeout = 0.3
        self.daemon.kill()
        with self.assertRaises(errors.Unavailable):
            self.client.ping(pb.Empty())
