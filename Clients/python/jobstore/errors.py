"""Exceptions for the daemon's status codes, named after Toil's exception kinds where the
daemon reports one (`Status.kind`), else after the status code."""
from __future__ import annotations

from typing import Dict, Type

from .messages import KIND_STATUS, ErrorKind, StatusCode

# Every status code's name, from the proto's StatusCode (generated), never listed here.
CODES = {code.value: code.name for code in StatusCode}


class JobStoreError(Exception):
    """A call failed: `code` (gRPC numbering), `code_name`, `kind` (Toil's exception kind, 0 if
    none) and the daemon's `message` (Toil's text where Toil has one)."""

    def __init__(self, code: int, message: str, kind: int = 0) -> None:
        super().__init__(message)
        self.code = code
        self.code_name = CODES.get(code, str(code))
        self.kind = kind
        self.message = message

    def __str__(self) -> str:
        return f"{self.code_name}: {self.message}"


# By status code.
class Cancelled(JobStoreError): pass
class InvalidArgument(JobStoreError): pass
class NotFound(JobStoreError): pass
class AlreadyExists(JobStoreError): pass
class PermissionDenied(JobStoreError): pass
class ResourceExhausted(JobStoreError): pass
class FailedPrecondition(JobStoreError): pass
class Aborted(JobStoreError): pass
class Unimplemented(JobStoreError): pass
class Internal(JobStoreError): pass
class Unavailable(JobStoreError):
    """Retryable: the daemon or its storage is unreachable or overloaded, or the connection broke."""
class DataLoss(JobStoreError):
    """Bytes did not match their checksum: what was read must be discarded."""


# By Toil exception kind (Status.kind); each also is its status code's class.
class NoSuchJob(NotFound): pass
class NoSuchFile(NotFound): pass
class NoSuchJobStore(NotFound): pass
class JobStoreExists(AlreadyExists): pass
class ConcurrentModification(FailedPrecondition): pass
class BadEncryptionKey(PermissionDenied): pass
class InvalidLocator(InvalidArgument): pass
class InvalidName(InvalidArgument): pass


# The exception classes are this package's API, named here; which code and kind each stands
# for, and which status each kind travels with, come from the proto.
_BY_CODE: Dict[int, Type[JobStoreError]] = {
    StatusCode.CANCELLED: Cancelled, StatusCode.INVALID_ARGUMENT: InvalidArgument, StatusCode.NOT_FOUND: NotFound,
    StatusCode.ALREADY_EXISTS: AlreadyExists, StatusCode.PERMISSION_DENIED: PermissionDenied,
    StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted, StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    StatusCode.ABORTED: Aborted, StatusCode.UNIMPLEMENTED: Unimplemented, StatusCode.INTERNAL: Internal,
    StatusCode.UNAVAILABLE: Unavailable, StatusCode.DATA_LOSS: DataLoss,
}
_BY_KIND: Dict[int, Type[JobStoreError]] = {
    ErrorKind.NO_SUCH_JOB: NoSuchJob, ErrorKind.NO_SUCH_FILE: NoSuchFile, ErrorKind.NO_SUCH_JOB_STORE: NoSuchJobStore,
    ErrorKind.JOB_STORE_EXISTS: JobStoreExists, ErrorKind.CONCURRENT_MODIFICATION: ConcurrentModification,
    ErrorKind.BAD_ENCRYPTION_KEY: BadEncryptionKey, ErrorKind.INVALID_LOCATOR: InvalidLocator,
    ErrorKind.INVALID_NAME: InvalidName,
}
# A kind's class is a subclass of its status's class (NoSuchJob is a NotFound), as the proto's
# `@status` says: checked at import, so a new kind cannot be filed under the wrong status.
for _kind, _status in KIND_STATUS.items():
    if not issubclass(_BY_KIND[_kind], _BY_CODE[_status]):
        raise TypeError(f"{_BY_KIND[_kind].__name__} must subclass {_BY_CODE[_status].__name__} (@status of {_kind.name})")


BAD_ENCRYPTION_KEY = int(ErrorKind.BAD_ENCRYPTION_KEY)
_BASE_KIND = dict(_BY_KIND)


def register_kind(kind: int, cls: Type[JobStoreError]) -> None:
    """Raise ``cls`` (a subclass of this kind's class) for ``kind`` from now on: how the Toil
    adapter makes BAD_ENCRYPTION_KEY also Toil's AWSBadEncryptionKeyError."""
    if not issubclass(cls, _BASE_KIND[kind]):
        raise TypeError(f"{cls.__name__} must subclass {_BASE_KIND[kind].__name__}")
    _BY_KIND[kind] = cls


def from_status(code: int, message: str, kind: int = 0) -> JobStoreError:
    cls = _BY_KIND.get(kind) or _BY_CODE.get(code, JobStoreError)
    return cls(code, message, kind)
