"""A small, language-neutral model of Protos/jobstore.proto built from protoc's descriptors.

Every backend (Swift, Python, C) reads this model rather than raw descriptors, so the call
shapes (upload, download, fd passing) are decided once.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from google.protobuf import descriptor_pb2 as d

SCALARS = {
    d.FieldDescriptorProto.TYPE_STRING: "string",
    d.FieldDescriptorProto.TYPE_BYTES: "bytes",
    d.FieldDescriptorProto.TYPE_BOOL: "bool",
    d.FieldDescriptorProto.TYPE_UINT32: "uint32",
    d.FieldDescriptorProto.TYPE_UINT64: "uint64",
    d.FieldDescriptorProto.TYPE_INT32: "int32",
    d.FieldDescriptorProto.TYPE_INT64: "int64",
    d.FieldDescriptorProto.TYPE_DOUBLE: "double",
}


def snake_to_camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def camel_to_snake(name: str) -> str:
    """protoc-c's CamelToLower: an underscore before each capital that follows a lowercase
    letter or digit."""
    out = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name)
    return out.lower()


@dataclass
class Field:
    name: str            # as in the proto (snake_case)
    number: int
    kind: str            # a SCALARS value, "enum" or "message"
    type_name: str = ""  # for enum and message: the short name
    repeated: bool = False
    comment: str = ""

    @property
    def camel(self) -> str:
        return snake_to_camel(self.name)

    @property
    def secret(self) -> bool:
        """`@secret` in the comment: a key whose C buffers the generated code wipes."""
        return "@secret" in self.comment


@dataclass
class Message:
    name: str
    fields: List[Field]
    comment: str = ""

    @property
    def c_type(self) -> str:
        return f"Jobstore__{self.name}"

    @property
    def c_prefix(self) -> str:
        return f"jobstore__{camel_to_snake(self.name)}"


@dataclass
class EnumValue:
    name: str
    number: int
    comment: str = ""
    status: str = ""     # ErrorKind values: the StatusCode name of `@status NAME`


@dataclass
class Enum:
    name: str
    values: List[EnumValue]
    comment: str = ""


@dataclass
class Method:
    index: int
    name: str
    input: str
    output: str
    upload: bool       # client streams DATA frames after the request
    download: bool     # server streams DATA frames before the response
    fd: str            # "", "required" or "optional": an fd travels with the request
    comment: str = ""
    idempotent: bool = False  # @idempotent: safe to send again when the connection was lost
    inline: bool = False      # @inline: never blocks; answered on the connection's reader thread
    bounded: bool = False     # @bounded: a short unary call to the store (see TRAITS)

    @property
    def snake(self) -> str:
        return camel_to_snake(self.name)

    @property
    def lower_camel(self) -> str:
        return self.name[:1].lower() + self.name[1:]


@dataclass
class Model:
    package: str
    enums: List[Enum] = field(default_factory=list)
    messages: List[Message] = field(default_factory=list)
    methods: List[Method] = field(default_factory=list)

    def message(self, name: str) -> Message:
        return next(m for m in self.messages if m.name == name)

    def enum(self, name: str) -> Enum:
        found = next((e for e in self.enums if e.name == name), None)
        if found is None:
            raise SystemExit(f"stubgen: the proto defines no enum {name}")
        return found


def _comments(fd: d.FileDescriptorProto) -> Dict[tuple, str]:
    out = {}
    for loc in fd.source_code_info.location:
        if loc.leading_comments or loc.trailing_comments:
            text = (loc.leading_comments or "") + (loc.trailing_comments or "")
            out[tuple(loc.path)] = "\n".join(line.strip() for line in text.strip().splitlines())
    return out


def _short(type_name: str) -> str:
    return type_name.rsplit(".", 1)[-1]


# The per-method traits an rpc's comment may carry, one `@name` each (several on a line):
# facts about the contract that every client and the server read from here, never from a
# hand-written list.
TRAITS = {
    "idempotent": "sending it again after a lost connection does no harm (the Python client resends it)",
    "inline": "never blocks: the server answers it on the connection's reader thread",
    "bounded": "a short unary call to the store: runs on the reader thread of a client with one call at a time",
}


def _tags(line: str):
    """The traits on a comment line made only of `@name` tags, else None."""
    words = line.split()
    if not words or not all(w.startswith("@") for w in words):
        return None
    return [w[1:] for w in words]


def _check_statuses(model: Model) -> None:
    """The error model's two tables: StatusCode (gRPC numbering) and ErrorKind, each of whose
    kinds but the first names the status it travels with (`@status NAME`)."""
    names = {e.name: e for e in model.enums}
    if "StatusCode" not in names and "ErrorKind" not in names:
        return  # a proto without the error model (the generator's own tests); its tables are not asked for
    if "StatusCode" not in names or "ErrorKind" not in names:
        raise SystemExit("stubgen: the error model needs both enum StatusCode and enum ErrorKind")
    codes = {v.name for v in names["StatusCode"].values}
    for e in model.enums:
        for i, v in enumerate(e.values):
            if v.status and e.name != "ErrorKind":
                raise SystemExit(f"stubgen: {e.name}.{v.name}: @status is for ErrorKind values")
            if e.name == "ErrorKind" and i > 0 and v.status not in codes:
                raise SystemExit(f"stubgen: ErrorKind.{v.name}: needs `@status NAME` with NAME a StatusCode "
                                 f"(got {v.status or 'none'})")


def build(fd: d.FileDescriptorProto) -> Model:
    comments = _comments(fd)
    model = Model(package=fd.package)
    for ei, e in enumerate(fd.enum_type):
        values = []
        for vi, v in enumerate(e.value):
            comment = comments.get((5, ei, 2, vi), "")
            tag = re.search(r"\s*@status (\w+)", comment)
            values.append(EnumValue(v.name, v.number, (comment[:tag.start()] + comment[tag.end():]).strip() if tag else comment,
                                    tag.group(1) if tag else ""))
        model.enums.append(Enum(e.name, values, comments.get((5, ei), "")))
    _check_statuses(model)
    for mi, m in enumerate(fd.message_type):
        if m.nested_type or m.enum_type or m.oneof_decl:
            raise SystemExit(f"stubgen: {m.name}: nested types and oneofs are not supported")
        fields = []
        for fi, f in enumerate(m.field):
            if f.type == d.FieldDescriptorProto.TYPE_MESSAGE:
                kind = "message"
            elif f.type == d.FieldDescriptorProto.TYPE_ENUM:
                kind = "enum"
            elif f.type in SCALARS:
                kind = SCALARS[f.type]
            else:
                raise SystemExit(f"stubgen: {m.name}.{f.name}: unsupported field type {f.type}")
            fields.append(Field(f.name, f.number, kind, _short(f.type_name),
                                f.label == d.FieldDescriptorProto.LABEL_REPEATED,
                                comments.get((4, mi, 2, fi), "")))
        model.messages.append(Message(m.name, fields, comments.get((4, mi), "")))
    if len(fd.service) != 1:
        raise SystemExit("stubgen: exactly one service expected")
    for i, m in enumerate(fd.service[0].method):
        comment = comments.get((6, 0, 2, i), "")
        fd_mode = ""
        kept = []
        traits = set()
        for line in comment.splitlines():
            tag = re.fullmatch(r"@fd request( optional)?", line.strip())
            if tag:
                fd_mode = "optional" if tag.group(1) else "required"
            elif (names := _tags(line)) is not None:
                for name in names:
                    if name not in TRAITS:
                        raise SystemExit(f"stubgen: {m.name}: unknown trait @{name} (known: {', '.join(TRAITS)})")
                    traits.add(name)
            else:
                kept.append(line)
        if m.client_streaming and m.server_streaming:
            raise SystemExit(f"stubgen: {m.name}: bidirectional streams are not supported")
        if traits & {"inline", "bounded"} and (m.client_streaming or m.server_streaming or fd_mode):
            raise SystemExit(f"stubgen: {m.name}: @inline and @bounded are for unary calls without a descriptor")
        model.methods.append(Method(i, m.name, _short(m.input_type), _short(m.output_type),
                                    m.client_streaming, m.server_streaming, fd_mode,
                                    "\n".join(kept).strip(), "idempotent" in traits, "inline" in traits,
                                    "bounded" in traits))
    return model
