import Foundation
import NodeCache
import ObjectStore
import XCTest

/// A scratch cache directory per test, and a scripted "store" behind the cache: objects in
/// memory with ETags, counting what the cache asked of it.
class NodeCacheTestCase: XCTestCase, @unchecked Sendable {
    var root = ""

    override func setUpWithError() throws {
        root = NSTemporaryDirectory() + "nodecache-test-\(UUID().uuidString.prefix(8))"
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: root)
    }

    func makeCache(capacity: UInt64 = 64 << 20, trust: Double = 0, lease: Double = 60) throws -> NodeCache {
        try NodeCache(NodeCache.Configuration(directory: root, capacity: capacity, minFreeFraction: 0, trustSeconds: trust,
                                              linkLeaseSeconds: lease))
    }

    func key(_ name: String) -> CacheKey { CacheKey(store: "test", bucket: "b", key: name) }

    /// Every data and temporary file under the cache directory, in bytes.
    /// Bytes of data files in the cache directory. Each file counts once, by inode: a fill
    /// renamed from tmp/ to entries/ between the two listings is seen in both.
    func bytesOnDisk() -> UInt64 {
        var total: UInt64 = 0
        var counted = Set<UInt64>()
        for sub in ["tmp", "entries"] {
            let dir = "\(root)/\(sub)"
            for name in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] where !name.hasSuffix(".manifest") {
                var st = stat()
                if stat("\(dir)/\(name)", &st) == 0, counted.insert(UInt64(st.st_ino)).inserted { total += UInt64(st.st_size) }
            }
        }
        return total
    }

    func read(_ file: CachedFile) throws -> [UInt8] {
        let sink = MemorySink()
        try file.copy(into: sink)
        return sink.bytes
    }
}

/// Objects the fake store serves, with a count of fetches and downloads.
final class FakeRemote: @unchecked Sendable {
    private let lock = NSLock()
    private var objects: [String: (bytes: [UInt8], etag: String)] = [:]
    private(set) var fetches = 0
    private(set) var downloads = 0
    private(set) var conditional: [String?] = []
    /// Slows each download (to make readers overlap).
    var delay: useconds_t = 0
    /// The next fetches fail with this.
    var failure: Error?

    func set(_ name: String, _ bytes: [UInt8]) {
        lock.lock()
        objects[name] = (bytes, "\"\(UUID().uuidString)\"")
        lock.unlock()
    }

    func etag(_ name: String) -> String? {
        lock.lock()
        defer { lock.unlock() }
        return objects[name]?.etag
    }

    /// A CacheFetch for `name`, behaving as S3 does.
    func fetch(_ name: String) -> CacheFetch {
        { [self] ifNoneMatch, onInfo, sink in
            lock.lock()
            fetches += 1
            conditional.append(ifNoneMatch)
            let object = objects[name]
            let failure = self.failure
            lock.unlock()
            if delay > 0 { usleep(delay) }
            if let failure { throw failure }
            guard let object else { throw ObjectStoreError.noSuchKey(name) }
            if ifNoneMatch == object.etag { return .notModified }
            lock.lock()
            downloads += 1
            lock.unlock()
            let info = ObjectInfo(key: name, size: UInt64(object.bytes.count), etag: object.etag, metadata: ["m": "1"])
            try onInfo(info)
            var offset = 0
            while offset < object.bytes.count {
                let n = min(1 << 16, object.bytes.count - offset)
                try object.bytes[offset..<offset + n].withUnsafeBytes { try sink.write($0) }
                offset += n
            }
            let digest = SHA256Digest()
            digest.update(object.bytes)
            return .fetched(info, sha256: digest.finalizeHex())
        }
    }
}

func randomBytes(_ count: Int) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: count)
    bytes.withUnsafeMutableBytes { raw in
        var g = SystemRandomNumberGenerator()
        var i = 0
        while i < raw.count {
            var word = g.next()
            let n = min(8, raw.count - i)
            withUnsafeBytes(of: &word) { w in for j in 0..<n { raw[i + j] = w[j] } }
            i += n
        }
    }
    return bytes
}
