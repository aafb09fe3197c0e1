import Foundation

/// Connects a download to an upload between two stores (or a URL and a store) without holding
/// the whole object: the producer writes on a thread of its own, the consumer reads, at most
/// `limit` bytes wait in between. Either side failing stops the other.
public final class BytePipe: ByteSource, ByteSink, @unchecked Sendable {
    private let condition = NSCondition()
    private var chunks: [[UInt8]] = []
    private var head = 0
    private var buffered = 0
    private var writerDone = false
    private var writerError: Error?
    private var readerGone = false
    private let limit: Int

    public init(limit: Int = 8 << 20) { self.limit = limit }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard bytes.count > 0 else { return }
        condition.lock()
        defer { condition.unlock() }
        while buffered >= limit && !readerGone { condition.wait() }
        if readerGone { throw ObjectStoreError.sinkFailed("the receiving side stopped") }
        chunks.append(Array(bytes))
        buffered += bytes.count
        condition.broadcast()
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        condition.lock()
        defer { condition.unlock() }
        while chunks.isEmpty && !writerDone { condition.wait() }
        if chunks.isEmpty {
            if let writerError { throw writerError }
            return 0
        }
        let chunk = chunks[0]
        let n = min(buffer.count, chunk.count - head)
        chunk.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress! + head, byteCount: n) }
        head += n
        buffered -= n
        if head == chunk.count {
            chunks.removeFirst()
            head = 0
        }
        condition.broadcast()
        return n
    }

    /// The producer is done; with an error, the reader sees it instead of the end of the body.
    public func finishWriting(_ error: Error?) {
        condition.lock()
        writerDone = true
        writerError = error
        condition.broadcast()
        condition.unlock()
    }

    /// The consumer stopped; the producer's next write fails.
    public func finishReading() {
        condition.lock()
        readerGone = true
        chunks = []
        buffered = 0
        condition.broadcast()
        condition.unlock()
    }

    /// Runs `produce` (writing into the pipe) on its own thread and `consume` (reading from it)
    /// on this one; returns both results, or throws the first side's failure (the producer's
    /// when the consumer failed only because the producer did).
    public static func transfer<P, C>(limit: Int = 8 << 20, produce: @escaping @Sendable (BytePipe) throws -> P,
                                      consume: (BytePipe) throws -> C) throws -> (P, C) {
        let pipe = BytePipe(limit: limit)
        let done = NSCondition()
        nonisolated(unsafe) var produced: Result<P, Error>?
        let thread = Thread {
            let result = Result { try produce(pipe) }
            if case .failure(let e) = result { pipe.finishWriting(e) } else { pipe.finishWriting(nil) }
            done.lock()
            produced = result
            done.broadcast()
            done.unlock()
        }
        thread.start()
        let consumed = Result { try consume(pipe) }
        pipe.finishReading()
        done.lock()
        while produced == nil { done.wait() }
        let p = produced!
        done.unlock()
        switch (p, consumed) {
        case (.success(let a), .success(let b)): return (a, b)
        case (.failure(let e), _): throw e
        case (_, .failure(let e)): throw e
        }
    }
}
