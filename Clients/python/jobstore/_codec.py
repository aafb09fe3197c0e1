"""Proto3 wire-format primitives for the generated message classes (`jobstore.messages`).

Why not google.protobuf: importing it (descriptor pool, builder, reflection) costs a new
worker process ~15 ms, half of what the client is allowed for start-up; these few functions
cost well under 1 ms and encode byte for byte what protobuf (upb) and protobuf-c encode:
fields in number order, proto3 defaults left out, packed repeated scalars.
"""
from __future__ import annotations

import struct
from typing import Tuple

_DOUBLE = struct.Struct("<d")
_ZERO_DOUBLE = bytes(8)
_U32, _U64 = 1 << 32, 1 << 64


class DecodeError(ValueError):
    """The bytes are not a valid encoding of the expected message."""


class NulInString(ValueError):
    """A string field holds NUL, which the protocol cannot carry (protobuf-c strings are C
    strings; Protos/WIRE.md)."""


def varint(out: bytearray, value: int) -> None:
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def read_varint(buf: bytes, pos: int) -> Tuple[int, int]:
    """The varint at `pos` and the position after it (IndexError past the end)."""
    byte = buf[pos]
    if byte < 0x80:
        return byte, pos + 1
    result, shift = byte & 0x7F, 7
    while True:
        pos += 1
        byte = buf[pos]
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            if shift >= 63 and result >= _U64:
                raise DecodeError("varint longer than 64 bits")
            return result, pos + 1
        shift += 7
        if shift > 63:
            raise DecodeError("varint longer than 10 bytes")


def span(buf: bytes, pos: int, end: int) -> Tuple[int, int]:
    """A length-delimited field's payload: (start, stop) within `end`."""
    length, pos = read_varint(buf, pos)
    stop = pos + length
    if stop > end:
        raise DecodeError("length-delimited field runs past the end of its message")
    return pos, stop


def skip(buf: bytes, pos: int, end: int, key: int) -> int:
    """Skips an unknown field (forward compatibility: newer daemons may add fields)."""
    if key >> 3 == 0:
        raise DecodeError("field number 0")
    wire = key & 7
    if wire == 0:
        return read_varint(buf, pos)[1]
    if wire == 1:
        pos += 8
    elif wire == 2:
        pos = span(buf, pos, end)[1]
    elif wire == 5:
        pos += 4
    else:
        raise DecodeError(f"unsupported wire type {wire}")
    if pos > end:
        raise DecodeError("field runs past the end of its message")
    return pos


def text(buf: bytes, start: int, stop: int) -> str:
    try:
        return buf[start:stop].decode("utf-8")
    except UnicodeDecodeError as error:
        raise DecodeError(f"string field is not UTF-8: {error}") from None


def put_string(out: bytearray, key: bytes, value: str, name: str) -> None:
    if type(value) is not str:
        raise TypeError(f"{name}: expected str, got {type(value).__name__}")
    if "\0" in value:
        raise NulInString(f"{name} contains a NUL character, which the protocol cannot carry")
    data = value.encode("utf-8")
    out += key
    varint(out, len(data))
    out += data


def put_bytes(out: bytearray, key: bytes, value: bytes, name: str) -> None:
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise TypeError(f"{name}: expected bytes, got {type(value).__name__}")
    out += key
    varint(out, len(value) if not isinstance(value, memoryview) else value.nbytes)
    out += value


def unsigned(value: int, limit: int, name: str) -> int:
    if not isinstance(value, int):
        raise TypeError(f"{name}: expected int, got {type(value).__name__}")
    if not 0 <= value < limit:
        raise ValueError(f"{name}: {value} is out of range")
    return value


def signed(value: int, bits: int, name: str) -> int:
    """A signed integer as its varint: negatives as 64-bit two's complement (as protobuf)."""
    if not isinstance(value, int):
        raise TypeError(f"{name}: expected int, got {type(value).__name__}")
    half = 1 << (bits - 1)
    if not -half <= value < half:
        raise ValueError(f"{name}: {value} is out of range")
    return value + _U64 if value < 0 else value


def as_int32(value: int) -> int:
    value &= _U32 - 1
    return value - _U32 if value >= 1 << 31 else value


def as_int64(value: int) -> int:
    return value - _U64 if value >= 1 << 63 else value


def put_double(out: bytearray, key: bytes, value: float, name: str) -> None:
    if not isinstance(value, (int, float)):
        raise TypeError(f"{name}: expected float, got {type(value).__name__}")
    data = _DOUBLE.pack(value)
    if data != _ZERO_DOUBLE:  # -0.0 is kept, as protobuf does
        out += key
        out += data


def read_double(buf: bytes, pos: int, end: int) -> Tuple[float, int]:
    if pos + 8 > end:
        raise DecodeError("double runs past the end of its message")
    return _DOUBLE.unpack_from(buf, pos)[0], pos + 8


def expect_list(value: object, name: str) -> list:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(f"{name}: expected a list, got {type(value).__name__}")
    return value if type(value) is list else list(value)  # type: ignore[arg-type]
