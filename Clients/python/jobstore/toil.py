"""`DaemonJobStore`: a Toil 9.6 job store served by jobstored.

Use it with `--jobStore jobstored:aws:REGION:NAME` or `jobstored:local:/path` once this
package is installed (its start-up hook teaches Toil the `jobstored:` scheme), or directly:
`DaemonJobStore("local:/tmp/store")`. Jobs and shared files are pickled here, exactly as Toil
pickles them; the daemon stores the bytes. Exceptions are Toil's own.
"""
from __future__ import annotations

import io
import logging
import os
import pickle
import tempfile
import uuid
from contextlib import contextmanager
from typing import IO, Any, Callable, Iterator, Optional, Tuple
from urllib.parse import ParseResult

from toil.fileStores import FileID
from toil.job import JobDescription
from toil.jobStores.abstractJobStore import (
    AbstractJobStore,
    JobStoreExistsException,
    NoSuchFileException,
    NoSuchJobException,
    NoSuchJobStoreException,
)

from . import errors
from . import messages as pb
from .client import Client
from .sse import read_sse_key

try:  # Toil's own error for a missing or wrong SSE-C key (toil[aws]); a stand-in without it
    from toil.lib.aws.s3 import AWSBadEncryptionKeyError
except ImportError:  # pragma: no cover - toil without its aws extra
    class AWSBadEncryptionKeyError(Exception):  # type: ignore[no-redef]
        """Stands for toil.lib.aws.s3.AWSBadEncryptionKeyError where toil[aws] is absent."""

logger = logging.getLogger(__name__)


class BadEncryptionKeyError(errors.BadEncryptionKey, AWSBadEncryptionKeyError):
    """A read of an SSE-C object without its key, or with another: both the client's
    BadEncryptionKey and Toil's AWSBadEncryptionKeyError, whose text Toil's tests look for."""

    def __str__(self) -> str:
        return self.message


errors.register_kind(errors.BAD_ENCRYPTION_KEY, BadEncryptionKeyError)


def _daemon_locator(locator: str) -> str:
    """A local path is made absolute (workers may run elsewhere in the tree)."""
    if locator.startswith("local:") and not locator[len("local:"):].startswith("/"):
        return "local:" + os.path.abspath(locator[len("local:"):])
    return locator


class DaemonJobStore(AbstractJobStore):
    """A Toil job store whose storage is reached through the node's jobstored."""

    def __init__(self, locator: str, socket: Optional[str] = None) -> None:
        self.daemon_locator = _daemon_locator(locator)
        super().__init__(self.daemon_locator)
        self._socket = socket or os.environ.get("JOBSTORED_SOCKET") or None
        self._client: Optional[Client] = None
        self._client_pid = -1

    # -- connection ---------------------------------------------------------------------------

    @property
    def client(self) -> Client:
        """One connection per process (a forked child opens its own)."""
        if self._client is None or self._client_pid != os.getpid():
            self._client = Client(self._socket)
            self._client_pid = os.getpid()
        return self._client

    def close(self) -> None:
        """Closes this process's connection (another call opens a new one)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_client"] = None
        return state

    def _store(self) -> pb.StoreRequest:
        return pb.StoreRequest(locator=self.daemon_locator)

    def _sse_key(self) -> bytes:
        """The SSE-C key for the next call, read now from the file ``config.sseKey`` names, as
        Toil's AWSJobStore reads it: the config is the single source of truth, a change at run
        time applies to the next call, and the key is kept nowhere. The bytes travel with the
        call (the daemon never opens a key file for a client). Empty: no key, the clear."""
        try:
            config = self.config
        except AttributeError:  # during resume(), before config.pickle (never encrypted) is read
            return b""
        return self._key_of(config) if config is not None else b""

    # -- the store ------------------------------------------------------------------------------

    def initialize(self, config) -> None:
        try:
            # With a key the new bucket is made to accept SSE-C, as Toil's AWSJobStore does.
            self.client.initialize(pb.StoreRequest(locator=self.daemon_locator,
                                                   sse_key=self._key_of(config)))
        except errors.JobStoreExists:
            raise JobStoreExistsException(self.locator, "jobstored")
        super().initialize(config)

    @staticmethod
    def _key_of(config) -> bytes:
        """The key ``config.sseKey`` names (Initialize runs before the store has its config)."""
        path = getattr(config, "sseKey", None)
        return read_sse_key(path) if path else b""

    def resume(self) -> None:
        try:
            self.client.resume(self._store())
        except errors.NoSuchJobStore:
            raise NoSuchJobStoreException(self.locator, "jobstored")
        super().resume()

    def destroy(self) -> None:
        self.client.destroy(self._store())

    def get_env(self) -> dict:
        env = super().get_env()
        env["JOBSTORED_SOCKET"] = self.client.path
        return env

    # -- jobs -----------------------------------------------------------------------------------

    def assign_job_id(self, job_description: JobDescription) -> None:
        # A random UUID, as Toil's AWSJobStore and the daemon's AssignJobId make: drawn here, it
        # saves a round trip per job (the rpc stays for clients without a UUID source).
        job_description.jobStoreID = str(uuid.uuid4())

    def create_job(self, job_description: JobDescription) -> JobDescription:
        job_description.pre_update_hook()
        self.client.create_job(pb.JobBody(locator=self.daemon_locator, job_id=str(job_description.jobStoreID),
                                          body=pickle.dumps(job_description, protocol=pickle.HIGHEST_PROTOCOL),
                                          sse_key=self._sse_key()))
        return job_description

    def job_exists(self, job_id: str) -> bool:
        return self.client.job_exists(pb.JobRequest(locator=self.daemon_locator, job_id=str(job_id),
                                                    sse_key=self._sse_key())).exists

    def _unpickle_job(self, job_id: str, body: bytes) -> JobDescription:
        job = pickle.loads(body)
        if not isinstance(job, JobDescription):
            raise RuntimeError(f"While trying to load a JobDescription for {job_id}, got a {type(job)} instead!")
        job.assignConfig(self.config)
        return job

    def load_job(self, job_id: str) -> JobDescription:
        try:
            body = self.client.load_job(pb.JobRequest(locator=self.daemon_locator, job_id=str(job_id),
                                                      sse_key=self._sse_key())).body
        except errors.NoSuchJob:
            raise NoSuchJobException(job_id)
        return self._unpickle_job(job_id, body)

    def update_job(self, job_description: JobDescription) -> None:
        job_description.pre_update_hook()
        self.client.update_job(pb.JobBody(locator=self.daemon_locator, job_id=str(job_description.jobStoreID),
                                          body=pickle.dumps(job_description, protocol=pickle.HIGHEST_PROTOCOL),
                                          sse_key=self._sse_key()))

    def delete_job(self, job_id: str) -> None:
        self.client.delete_job(pb.JobRequest(locator=self.daemon_locator, job_id=str(job_id), sse_key=self._sse_key()))

    def jobs(self) -> Iterator[JobDescription]:
        token = ""
        while True:
            page = self.client.list_jobs(pb.ListJobsRequest(locator=self.daemon_locator, page_token=token,
                                                            include_bodies=True, sse_key=self._sse_key()))
            for entry in page.jobs:
                yield self._unpickle_job(entry.job_id, entry.body)
            token = page.next_page_token
            if not token:
                return

    # -- files ----------------------------------------------------------------------------------

    def _write_request(self, job_id, cleanup, basename, hints, executable=False) -> pb.WriteFileRequest:
        return pb.WriteFileRequest(locator=self.daemon_locator, job_id=str(job_id) if job_id else "",
                                   cleanup=bool(cleanup and job_id), basename=basename or "",
                                   hints=list(hints or []), executable=executable, sse_key=self._sse_key())

    def write_file(self, local_path: str, job_id: Optional[str] = None, cleanup: bool = False,
                   hints: Optional[list] = None) -> FileID:
        fd = os.open(local_path, os.O_RDONLY)
        try:
            # The daemon takes the file's u+x (Toil's FileID.executable) from the descriptor.
            info = self.client.write_file(self._write_request(job_id, cleanup, os.path.basename(local_path), hints), fd)
        except errors.NoSuchJob:
            raise NoSuchJobException(job_id)
        finally:
            os.close(fd)
        return FileID(info.file_id, info.size, info.executable)

    @contextmanager
    def write_file_stream(self, job_id: Optional[str] = None, cleanup: bool = False, basename: Optional[str] = None,
                          encoding: Optional[str] = None, errors: Optional[str] = None,
                          hints: Optional[list] = None) -> Iterator[Tuple[IO[Any], str]]:
        request = self._write_request(job_id, cleanup, basename, hints)
        request.file_id = self.client.assign_file_id(request).file_id
        upload = self.client.write_file_stream(request)
        try:
            yield self._writer(upload, encoding, errors), request.file_id
        except BaseException:
            upload.cancel()
            if "/" in request.file_id:  # give back the claimed hint slot, as a failed write does
                self._quietly(lambda: self.delete_file(request.file_id))
            raise
        upload.close()

    def get_empty_file_store_id(self, job_id: Optional[str] = None, cleanup: bool = False,
                                basename: Optional[str] = None, hints: Optional[list] = None) -> str:
        return self.client.get_empty_file_store_id(self._write_request(job_id, cleanup, basename, hints)).file_id

    def read_file(self, file_id: str, local_path: str, symlink: bool = False) -> None:
        # Executable when the store's metadata says so, or the FileID does (Toil: "read_file
        # needs to respect the executable attribute on FileIDs"; a file stored before the
        # store knew the bit, e.g. imported through a stream, has only the FileID's).
        #
        # A hard link to the daemon's read-only file whatever `symlink` says: Toil's contract is
        # "copies or hard links" (the caller may not modify the file; `symlink` permits only a
        # symlink on top), and its FileJobStore links too. So the copy Toil's caching file store
        # keeps of every file it reads shares the node cache's blocks: one copy per node, not
        # two, where the cache and Toil's work directory share a filesystem.
        wanted = bool(getattr(file_id, "executable", False))
        request = pb.ReadFileRequest(locator=self.daemon_locator, file_id=str(file_id), sse_key=self._sse_key())
        try:
            request.link_ok = True
            try:
                reply = self.client.read_file(request)
            except errors.InvalidArgument:
                reply = None  # no local path on this backend: copy below
            if (reply is not None and reply.link_path
                    and self._link(reply.link_path, local_path, wanted or reply.info.executable)):
                return
            request.link_ok = False
            directory = os.path.dirname(os.path.abspath(local_path))
            fd, temporary = tempfile.mkstemp(dir=directory, prefix=".jobstore-")
            try:
                reply = self.client.read_file(request, fd)
                os.fchmod(fd, 0o755 if wanted or reply.info.executable else 0o644)
                os.close(fd)
                fd = -1
                os.replace(temporary, local_path)
            finally:
                if fd >= 0:
                    os.close(fd)
                if os.path.exists(temporary):
                    os.unlink(temporary)
        except errors.NoSuchFile:
            raise NoSuchFileException(file_id)

    @staticmethod
    def _link(source: str, target: str, executable: bool) -> bool:
        """Hard-links the daemon's read-only file (a local store's object or a node-cache entry)
        at ``target``; False when that is impossible (another filesystem, another user) or the
        file's u+x is not ``executable``, and the caller copies instead (a link shares the
        daemon's mode: nobody may chmod it, as Toil's caching file store would). Never a
        symlink: a cache entry may be evicted after its lease."""
        try:
            if (os.stat(source).st_mode & 0o100 != 0) != executable:  # stat.S_IXUSR
                return False
        except OSError:
            return False
        if os.path.lexists(target):
            os.unlink(target)
        try:
            os.link(source, target)
            return True
        except OSError:
            return False

    @contextmanager
    def read_file_stream(self, file_id: str, encoding: Optional[str] = None,
                         errors: Optional[str] = None) -> Iterator[IO[Any]]:
        download = self.client.read_file_stream(pb.FileRequest(locator=self.daemon_locator, file_id=str(file_id),
                                                               sse_key=self._sse_key()))
        with self._reader(download, file_id, encoding, errors) as stream:
            yield stream

    def delete_file(self, file_id: str) -> None:
        self.client.delete_file(pb.FileRequest(locator=self.daemon_locator, file_id=str(file_id), sse_key=self._sse_key()))

    def file_exists(self, file_id: str) -> bool:
        return self.client.file_exists(pb.FileRequest(locator=self.daemon_locator, file_id=str(file_id),
                                                      sse_key=self._sse_key())).exists

    def get_file_size(self, file_id: str) -> int:
        try:
            return self.client.get_file_size(pb.FileRequest(locator=self.daemon_locator, file_id=str(file_id),
                                                            sse_key=self._sse_key())).size
        except errors.NoSuchFile:
            return 0  # as Toil's stores answer for a missing file

    def update_file(self, file_id: str, local_path: str) -> None:
        fd = os.open(local_path, os.O_RDONLY)
        try:
            self.client.update_file(pb.UpdateFileRequest(locator=self.daemon_locator, file_id=str(file_id),
                                                         sse_key=self._sse_key()), fd)
        except errors.NoSuchFile:
            raise NoSuchFileException(file_id)
        finally:
            os.close(fd)

    @contextmanager
    def update_file_stream(self, file_id: str, encoding: Optional[str] = None,
                           errors: Optional[str] = None) -> Iterator[IO[Any]]:
        upload = self.client.update_file_stream(pb.UpdateFileRequest(locator=self.daemon_locator, file_id=str(file_id),
                                                                     sse_key=self._sse_key()))
        try:
            yield self._writer(upload, encoding, errors)
        except BaseException:
            upload.cancel()
            raise
        try:
            upload.close()
        except errors_module.NoSuchFile:
            raise NoSuchFileException(file_id)

    # -- shared files ---------------------------------------------------------------------------

    @contextmanager
    def write_shared_file_stream(self, shared_file_name: str, encrypted: Optional[bool] = None,
                                 encoding: Optional[str] = None, errors: Optional[str] = None) -> Iterator[IO[Any]]:
        # encrypted=False: in the clear (config.pickle, Toil's user-script resources); True: the
        # key is required (Toil would store in the clear without one, silently); None: as the
        # config says.
        key = b"" if encrypted is False else self._sse_key()
        if encrypted is True and not key:
            raise ValueError(f"The shared file {shared_file_name!r} must be encrypted (encrypted=True), but no SSE-C key "
                             "is configured (Toil's --sseKey, config.sseKey).")
        upload = self.client.write_shared_file_stream(pb.SharedFileRequest(
            locator=self.daemon_locator, name=shared_file_name, unencrypted=encrypted is False, sse_key=key))
        try:
            yield self._writer(upload, encoding, errors)
        except BaseException:
            upload.cancel()
            raise
        upload.close()

    @contextmanager
    def read_shared_file_stream(self, shared_file_name: str, encoding: Optional[str] = None,
                                errors: Optional[str] = None) -> Iterator[IO[Any]]:
        download = self.client.read_shared_file_stream(pb.SharedFileRequest(locator=self.daemon_locator,
                                                                            name=shared_file_name, sse_key=self._sse_key()))
        with self._reader(download, shared_file_name, encoding, errors) as stream:
            yield stream

    def get_public_url(self, file_name: str) -> str:
        try:
            return self.client.get_public_url(pb.PublicUrlRequest(locator=self.daemon_locator, file_id=str(file_name),
                                                                  sse_key=self._sse_key())).url
        except errors.NoSuchFile:
            raise NoSuchFileException(file_name)

    def get_shared_public_url(self, shared_file_name: str) -> str:
        try:
            return self.client.get_shared_public_url(pb.PublicUrlRequest(locator=self.daemon_locator,
                                                                         name=shared_file_name, sse_key=self._sse_key())).url
        except errors.NoSuchFile:
            raise NoSuchFileException(shared_file_name)

    # -- logs -----------------------------------------------------------------------------------

    def write_logs(self, msg) -> None:
        self.client.write_logs(pb.WriteLogsRequest(locator=self.daemon_locator,
                                                   message=msg.encode("utf-8") if isinstance(msg, str) else bytes(msg),
                                                   sse_key=self._sse_key()))

    def read_logs(self, callback: Callable[..., Any], read_all: bool = False) -> int:
        count = 0
        token = ""
        while True:
            page = self.client.read_logs(pb.ReadLogsRequest(locator=self.daemon_locator, read_all=read_all,
                                                            page_token=token, sse_key=self._sse_key()))
            for message in page.messages:
                callback(io.BytesIO(message))
                count += 1
            token = page.next_page_token
            if not token:
                return count

    # -- imports: s3:// server-side through the daemon, everything else as Toil does ------------

    def _import_file(self, otherCls, uri: ParseResult, shared_file_name: Optional[str] = None,
                     hardlink: bool = False, symlink: bool = True) -> Optional[FileID]:
        if uri.scheme == "s3":
            info = self.client.import_file(pb.ImportFileRequest(locator=self.daemon_locator, url=uri.geturl(),
                                                                shared_file_name=shared_file_name or "",
                                                                sse_key=self._sse_key()))
            return None if shared_file_name else FileID(info.file_id, info.size, info.executable)
        if uri.scheme == "file" and not shared_file_name:
            # Toil's generic import streams the bytes (write_file_stream): only the FileID it
            # returns would carry the source's u+x, never the stored file, so a bare id, the
            # non-caching file store or another node would read it back without. Pass the
            # source's descriptor as write_file does: the store keeps the bit (and the basename).
            path = otherCls._extract_path_from_url(uri)
            if os.path.isfile(path):
                return self.write_file(path)
        return super()._import_file(otherCls, uri, shared_file_name=shared_file_name, hardlink=hardlink, symlink=symlink)

    def _export_file(self, otherCls, jobStoreFileID: FileID, url: ParseResult) -> None:
        if url.scheme == "s3":
            self.client.export_file(pb.ExportFileRequest(locator=self.daemon_locator, file_id=str(jobStoreFileID),
                                                         url=url.geturl(), sse_key=self._sse_key()))
            return
        super()._export_file(otherCls, jobStoreFileID, url)

    # -- helpers ---------------------------------------------------------------------------------

    @staticmethod
    def _writer(upload, encoding: Optional[str], errors_: Optional[str]) -> IO[Any]:
        raw = _UploadFile(upload)
        if encoding is None:
            return raw
        return io.TextIOWrapper(raw, encoding=encoding, errors=errors_ or "strict", write_through=True)

    @contextmanager
    def _reader(self, download, name: str, encoding: Optional[str], errors_: Optional[str]) -> Iterator[IO[Any]]:
        try:
            download.wait_for_start()
            buffered = io.BufferedReader(download, buffer_size=1 << 20)
            stream: IO[Any] = buffered if encoding is None else io.TextIOWrapper(buffered, encoding=encoding,
                                                                                   errors=errors_ or "strict")
            yield stream
        except errors.NoSuchFile:
            raise NoSuchFileException(name)
        finally:
            download.close()

    @staticmethod
    def _quietly(action: Callable[[], Any]) -> None:
        try:
            action()
        except Exception:
            logger.debug("cleanup after a failed write failed", exc_info=True)


errors_module = errors


class _UploadFile(io.RawIOBase):
    """A writable binary file over an Upload, which the store's context manager closes."""

    def __init__(self, upload) -> None:
        super().__init__()
        self._upload = upload

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        return self._upload.write(data)

    def close(self) -> None:  # the context manager ends the upload, not the caller
        super().close()
