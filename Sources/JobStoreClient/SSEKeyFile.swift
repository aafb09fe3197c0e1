import Foundation
import JobStoreWire

/// Reads an SSE-C key file as Toil does for `--sseKey`: the file's content is the key and must
/// be exactly 32 bytes. Clients read the key themselves and send its bytes as `sse_key` with
/// each call: the daemon never opens a key file for a client (Protos/WIRE.md).
///
/// Read it again for each call (or whenever the configuration may have changed): Toil's
/// config.sseKey is the single source of truth, and a key changed at run time applies to the
/// next call.
public enum SSEKeyFile {
    public static let keyLength = 32

    /// The key's bytes; INVALID_ARGUMENT with Toil's text when the file cannot be read or has
    /// another length. The message names the path, never the content.
    public static func read(_ path: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw JobStoreError(.invalidArgument, "Cannot read the SSE key file \(path).")
        }
        guard data.count == keyLength else {
            throw JobStoreError(.invalidArgument, "Check that \(path) is the path to a real SSE key. (Key length \(data.count) != 32)")
        }
        return [UInt8](data)
    }
}
