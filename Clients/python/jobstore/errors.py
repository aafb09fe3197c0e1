"""Exceptions for the daemon's status codes, named after Toil's exception kinds where the
daemon reports one (`Status.kind`), else after the status code."""
from __future__ import annotations

from typing import Dict, Type

CODES = {
    0: "OK", 1: "CANCELLED", 2: "UNKNOWN", 3: "INVALID_ARGUMENT", 4: "DEADLINE_EXCEEDED", 5: "NOT_FOUND",
    6: "ALREADY_EXISTS", 7: "PERMISSION_DENIED", 8: "RESOURCE_EXHAUSTED", 9: "FAILED_PRECONDITION", 10: "ABORTED",
    11: "OUT_OF_RANGE", 12: "UNIMPLEMENTED", 13: "INTERNAL", 14: "UNAVAILABLE", 15: "DATA_LOSS",
}


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


_BY_CODE: Dict[int, Type[JobStoreError]] = {
    1: Cancelled, 3: InvalidArgument, 5: NotFound, 6: AlreadyExists, 7: PermissionDenied, 8: ResourceExhausted,
    9: FailedPrecondition, 10: Aborted, 12: Unimplemented, 13: Internal, 14: Unavailable, 15: DataLoss,
}
_BY_KIND: Dict[int, Type[JobStoreError]] = {
    1: NoSuchJob, 2: NoSuchFile, 3: NoSuchJobStore, 4: JobStoreExists, 5: ConcurrentModification,
    6: BadEncryptionKey, 7: InvalidLocator, 8: InvalidName,
}


BAD_ENCRYPTION_KEY = 6
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
