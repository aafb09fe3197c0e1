"""Swift method table, server-side service protocol with its dispatcher, and the client stub."""
from __future__ import annotations

from typing import List

from .model import Method, Model
from .swift_messages import HEADER, doc


def shape(m: Method) -> str:
    return ".upload" if m.upload else ".download" if m.download else ".unary"


def fd_mode(m: Method) -> str:
    return {"": ".none", "required": ".required", "optional": ".optional"}[m.fd]


def method_table(model: Model) -> str:
    out = [HEADER,
           "/// Every rpc of `service JobStore`; the raw value is the method id on the wire",
           "/// (the rpc's declaration index, only ever appended).",
           "public enum JobStoreMethod: UInt16, CaseIterable, Sendable {"]
    for m in model.methods:
        out += doc(m.comment, "    ")
        out.append(f"    case {m.lower_camel} = {m.index}")
    out += ["", "    /// The rpc's name as declared in the proto.", "    public var name: String {",
            "        switch self {"]
    out += [f'        case .{m.lower_camel}: "{m.name}"' for m in model.methods]
    out += ["        }", "    }", "", "    /// How the call's bytes travel.",
            "    public var shape: CallShape {", "        switch self {"]
    out += [f"        case .{m.lower_camel}: {shape(m)}" for m in model.methods]
    out += ["        }", "    }", "", "    /// Whether a file descriptor travels with the request.",
            "    public var fdPassing: FDPassing {", "        switch self {"]
    out += [f"        case .{m.lower_camel}: {fd_mode(m)}" for m in model.methods]
    out += ["        }", "    }"]
    traits = [("isIdempotent", "idempotent", "Sending it again after a lost connection does no harm (`@idempotent`)."),
              ("runsInline", "inline", "Never blocks: answered on the connection's reader thread (`@inline`)."),
              ("isBoundedUnary", "bounded", "A short unary call to the store, run on the reader thread of a client with one\n    /// call at a time (`@bounded`).")]
    for prop, attr, text in traits:
        chosen = [m for m in model.methods if getattr(m, attr)]
        out += ["", f"    /// {text}", f"    public var {prop}: Bool {{", "        switch self {"]
        if chosen:
            out.append("        case " + ", ".join(f".{m.lower_camel}" for m in chosen) + ": true")
        out.append("        default: false")
        out += ["        }", "    }"]
    out += ["}", ""]
    return "\n".join(out)


def service(model: Model) -> str:
    out = [HEADER, "import JobStoreWire", "",
           "/// The daemon's side of `service JobStore`: one method per rpc. Uploads, downloads and",
           "/// passed descriptors are reached through `call`.",
           "public protocol JobStoreService: Sendable {"]
    for m in model.methods:
        out += doc(m.comment, "    ")
        out.append(f"    func {m.lower_camel}(_ request: {m.input}, call: ServerCall) throws -> {m.output}")
    out += ["}", "",
            "extension JobStoreService {",
            "    /// Decodes the request of `method`, runs it and encodes its response.",
            "    public func dispatch(_ method: JobStoreMethod, payload: UnsafeRawBufferPointer, call: ServerCall) throws -> [UInt8] {",
            "        switch method {"]
    for m in model.methods:
        out.append(f"        case .{m.lower_camel}:")
        out.append(f"            return try {m.lower_camel}({m.input}(serialized: payload), call: call).serialized()")
    out += ["        }", "    }", "}", ""]
    return "\n".join(out)


def client(model: Model) -> str:
    out = [HEADER, "import JobStoreWire", "",
           "/// A typed client of `service JobStore`: one async method per rpc over a",
           "/// `ClientConnection` (one socket, many calls in flight from many tasks).",
           "public struct JobStoreClient: Sendable {",
           "    public let connection: ClientConnection", "",
           "    public init(connection: ClientConnection) {",
           "        self.connection = connection",
           "    }", ""]
    for m in model.methods:
        out += doc(m.comment, "    ")
        req = f"_ request: {m.input}"
        if m.input == "Empty":
            req += " = Empty()"
        check = "        try checkStrings(request)"
        if m.upload:
            out.append(f"    public func {m.lower_camel}({req}, body: (ClientUpload) async throws -> Void) async throws -> {m.output} {{")
            out.append(check)
            out.append(f"        return try await {m.output}(serialized: connection.upload(.{m.lower_camel}, request.serialized(), body: body))")
        elif m.download:
            out.append(f"    public func {m.lower_camel}({req}, onData: (UnsafeRawBufferPointer) throws -> Void) async throws -> {m.output} {{")
            out.append(check)
            out.append(f"        return try await {m.output}(serialized: connection.download(.{m.lower_camel}, request.serialized(), onData: onData))")
        else:
            fd = {"": "", "required": ", fd: Int32", "optional": ", fd: Int32? = nil"}[m.fd]
            pass_fd = ", fd: fd" if m.fd else ""
            out.append(f"    public func {m.lower_camel}({req}{fd}) async throws -> {m.output} {{")
            out.append(check)
            out.append(f"        return try await {m.output}(serialized: connection.unary(.{m.lower_camel}, request.serialized(){pass_fd}))")
        out += ["    }", ""]
    out += ["    private func checkStrings(_ request: some WireMessage) throws {",
            "        if request.containsNUL {",
            '            throw JobStoreError(.invalidArgument, "string fields may not contain NUL characters", kind: .invalidName)',
            "        }",
            "    }",
            "}", ""]
    return "\n".join(out)
