import Foundation
import ObjectStore
import Synchronization

/// Any ObjectStore with faults injected into a share of its calls, for tests of the layers
/// above: a call may fail before it reaches the store (`unavailable`), a put's body may break
/// part-way (the source "fails", as when a client dies mid-upload), a get may break part-way
/// (the sink gets half the bytes, then an error), or a call may take effect and still report
/// `unavailable` (its answer lost).
///
/// Why a wrapper and not a mock: the store underneath is real, so what a fault leaves behind
/// (nothing, the old object, or the new one — never a torn one) can be checked afterwards.
public final class FaultInjectingObjectStore: ObjectStore, Sendable {
    /// The ways a call is made to fail; a test checks each was injected at least once.
    public enum Fault: String, CaseIterable, Sendable {
        case unavailable, brokenBody, brokenDownload, lostAnswer
    }

    public let inner: any ObjectStore
    private let rate: Double
    /// What `state` guards: the random draws, and the faults they injected.
    private struct State {
        var generator: SplitMix64
        var counts: [Fault: Int] = [:]
    }
    private let state: Mutex<State>

    /// `rate`: the share of calls that meet a fault; `seed` makes a run repeatable.
    public init(_ inner: any ObjectStore, rate: Double, seed: UInt64 = 1) {
        self.inner = inner
        self.rate = rate
        state = Mutex(State(generator: SplitMix64(seed: seed)))
    }

    /// Faults injected so far.
    public var injected: [Fault: Int] {
        state.withLock { $0.counts }
    }

    /// A fault for this call, drawn from `allowed`, or nil.
    private func draw(_ allowed: [Fault]) -> Fault? {
        state.withLock { s in
            guard Double(s.generator.next() % 1_000_000) / 1_000_000 < rate else { return nil }
            let fault = allowed[Int(s.generator.next() % UInt64(allowed.count))]
            s.counts[fault, default: 0] += 1
            return fault
        }
    }

    private func injectedError(_ what: String) -> ObjectStoreError { .unavailable("injected fault: \(what)") }

    public func createBucket(_ bucket: String) throws { try inner.createBucket(bucket) }
    public func bucketExists(_ bucket: String) throws -> Bool { try inner.bucketExists(bucket) }
    public func bucketRecentlySeen(_ bucket: String) -> Bool { inner.bucketRecentlySeen(bucket) }
    public func destroyBucket(_ bucket: String) throws { try inner.destroyBucket(bucket) }

    public func put(_ bucket: String, key: String, body: any ByteSource, options: PutOptions) throws -> ObjectInfo {
        switch draw([.unavailable, .brokenBody, .lostAnswer]) {
        case .unavailable: throw injectedError("put \(key)")
        case .brokenBody: return try inner.put(bucket, key: key, body: BreakingSource(body), options: options)
        case .lostAnswer:
            _ = try inner.put(bucket, key: key, body: body, options: options)
            throw injectedError("answer to put \(key) lost")
        default: return try inner.put(bucket, key: key, body: body, options: options)
        }
    }

    public func get(_ bucket: String, key: String, into sink: any ByteSink, options: GetOptions) throws -> ObjectInfo {
        switch draw([.unavailable, .brokenDownload]) {
        case .unavailable: throw injectedError("get \(key)")
        case .brokenDownload: return try inner.get(bucket, key: key, into: BreakingSink(sink), options: options)
        default: return try inner.get(bucket, key: key, into: sink, options: options)
        }
    }

    public func head(_ bucket: String, key: String, options: GetOptions) throws -> ObjectInfo? {
        if draw([.unavailable]) != nil { throw injectedError("head \(key)") }
        return try inner.head(bucket, key: key, options: options)
    }

    public func list(_ bucket: String, prefix: String, startAfter: String, maxKeys: Int) throws -> ListPage {
        if draw([.unavailable]) != nil { throw injectedError("list \(prefix)") }
        return try inner.list(bucket, prefix: prefix, startAfter: startAfter, maxKeys: maxKeys)
    }

    public func delete(_ bucket: String, keys: [String]) throws {
        switch draw([.unavailable, .lostAnswer]) {
        case .unavailable: throw injectedError("delete")
        case .lostAnswer:
            try inner.delete(bucket, keys: keys)
            throw injectedError("answer to delete lost")
        default: try inner.delete(bucket, keys: keys)
        }
    }

    public func localPath(_ bucket: String, key: String) throws -> String? { try inner.localPath(bucket, key: key) }
    public func url(_ bucket: String, key: String, expiresIn seconds: Int) throws -> String {
        try inner.url(bucket, key: key, expiresIn: seconds)
    }
    public func collectGarbage(_ bucket: String, olderThan age: Double) throws -> Int {
        try inner.collectGarbage(bucket, olderThan: age)
    }
    public var cacheIdentity: String? { inner.cacheIdentity }

    public func allowCustomerKeys(_ bucket: String) throws -> CustomerKeySetting { try inner.allowCustomerKeys(bucket) }
}

/// A body that breaks after some bytes, as a client dying mid-upload.
final class BreakingSource: ByteSource {
    private let inner: any ByteSource
    private var delivered = 0
    init(_ inner: any ByteSource) { self.inner = inner }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        if delivered > 0 { throw ObjectStoreError.sourceFailed("injected fault: the body broke after \(delivered) bytes") }
        let n = try inner.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<max(1, buffer.count / 2)]))
        delivered += n
        if n == 0 { throw ObjectStoreError.sourceFailed("injected fault: the body broke before its end") }
        return n
    }
}

/// A download that breaks after its first bytes, as a reset connection.
final class BreakingSink: ByteSink {
    private let inner: any ByteSink
    private var written = false
    init(_ inner: any ByteSink) { self.inner = inner }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        if written { throw ObjectStoreError.unavailable("injected fault: the download broke") }
        written = true
        try inner.write(UnsafeRawBufferPointer(rebasing: bytes[0..<(bytes.count / 2)]))
        throw ObjectStoreError.unavailable("injected fault: the download broke")
    }

    func rewind() -> Bool { inner.rewind() }
}
