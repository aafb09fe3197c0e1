import JobStoreWire
import ObjectStore

/// An upload's DATA frames as a ByteSource; throws CANCELLED if the client cancels or leaves
/// before END, so the store keeps nothing.
final class CallUploadSource: ByteSource {
    private let call: ServerCall
    private var chunk: [UInt8] = []
    private var offset = 0
    private var ended = false

    init(_ call: ServerCall) { self.call = call }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while offset == chunk.count {
            if ended { return 0 }
            guard let next = try call.nextChunk() else {
                ended = true
                return 0
            }
            chunk = next
            offset = 0
        }
        let n = min(buffer.count, chunk.count - offset)
        chunk.withUnsafeBytes { src in
            buffer.baseAddress!.copyMemory(from: src.baseAddress! + offset, byteCount: n)
        }
        offset += n
        return n
    }
}

/// A download's bytes, sent to the client as DATA frames.
final class CallDownloadSink: ByteSink {
    private let call: ServerCall
    private var sent = false
    init(_ call: ServerCall) { self.call = call }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        sent = true
        try call.send(bytes)
    }

    /// Possible only while nothing has been sent to the client.
    func rewind() -> Bool { !sent }
}
