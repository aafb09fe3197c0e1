import Foundation
import ObjectStore
import Synchronization

/// Puts and gets: small objects in one request, large ones in parts of the pool's part size
/// moved in parallel, memory bounded by the session's BufferPool whatever the file size.
extension S3ObjectStore {
    /// Bytes read before deciding between one PUT and a multipart upload, and fetched by a
    /// read's first ranged GET, without taking a pool buffer: small objects (jobs, logs, the
    /// bulk of requests) never wait for the pool.
    static let smallObjectLimit = 1 << 20

    @discardableResult
    public func put(_ bucket: String, key: String, body: any ByteSource, options: PutOptions) throws -> ObjectInfo {
        // Read without zero-filling first: most puts are a few KiB.
        let limit = min(Self.smallObjectLimit, pool.partSize)
        var count = 0
        var head = try [UInt8](unsafeUninitializedCapacity: limit) { buffer, initialized in
            let raw = UnsafeMutableRawBufferPointer(buffer)
            defer { initialized = count }
            while count < raw.count {
                let n = try body.read(into: UnsafeMutableRawBufferPointer(rebasing: raw[count...]))
                if n == 0 { break }
                count += n
            }
        }
        if count < limit {
            return try putSingle(bucket, key: key, bytes: head[...], options: options)
        }
        let buffer = pool.acquire()
        buffer.bytes.replaceSubrange(0..<count, with: head)
        head = []
        do {
            try buffer.fill(from: body, keeping: count)
        } catch {
            pool.release(buffer)
            throw error
        }
        if buffer.count < pool.partSize {
            defer { pool.release(buffer) }
            return try putSingle(bucket, key: key, bytes: buffer.bytes[0..<buffer.count], options: options)
        }
        return try putMultipart(bucket, key: key, first: buffer, body: body, options: options)
    }

    /// One PUT with Content-MD5, SSE-C and If-None-Match as asked.
    func putSingle(_ bucket: String, key: String, bytes: ArraySlice<UInt8>, options: PutOptions) throws -> ObjectInfo {
        var metadata = options.metadata
        if let trailing = options.trailingMetadata { metadata.merge(trailing()) { $1 } }
        var headers = Self.metadataHeaders(metadata)
        headers.append(("Content-MD5", Base64.encode(MD5.digest(bytes))))
        headers += Self.sseHeaders(options.encryptionKey)
        if options.createOnly { headers.append(("If-None-Match", "*")) }
        do {
            let response = try client.send("PUT", bucket: bucket, key: key, headers: headers, body: bytes)
            return ObjectInfo(key: key, size: UInt64(bytes.count), etag: response.headers["etag"] ?? "", metadata: metadata,
                              lastModified: Date().timeIntervalSince1970)
        } catch let e as S3Client.S3Error where options.createOnly && e.status == 412 && e.attempts > 1 {
            // An earlier attempt's answer was lost: if the object there is this one (same
            // metadata, checksum included, and size), that attempt succeeded.
            if let there = try? head(bucket, key: key, options: GetOptions(encryptionKey: options.encryptionKey)),
               there.size == UInt64(bytes.count), metadata.allSatisfy({ there.metadata[$0.key] == $0.value }) {
                return there
            }
            throw map(e, bucket: bucket, key: key)
        } catch {
            throw map(error, bucket: bucket, key: key)
        }
    }

    /// A multipart upload whose first full part is in `first`. Metadata computed from the body
    /// (the checksum) is known only once the last part is read, after the upload was created
    /// with its metadata: it goes into the object's tags, with the ETag it belongs to, and the
    /// metadata says so. Reads merge it back (see `trailingTags`). No second pass over the body,
    /// no copy of the object.
    func putMultipart(_ bucket: String, key: String, first: PartBuffer, body: any ByteSource,
                      options: PutOptions) throws -> ObjectInfo {
        var metadata = options.metadata
        if options.trailingMetadata != nil { metadata[Self.trailingInTags] = "1" }
        let firstBuffer = first
        let createHeaders = Self.metadataHeaders(metadata) + Self.sseHeaders(options.encryptionKey)
        let uploadID: String
        do {
            uploadID = try createMultipartUpload(bucket, key: key, headers: createHeaders)
        } catch {
            pool.release(firstBuffer)
            throw map(error, bucket: bucket, key: key)
        }
        let workers = PartWorkers(width: partConcurrency)
        let etags = GrowingStrings()
        var size: UInt64 = 0
        var sourceError: Error?
        var buffer: PartBuffer? = firstBuffer
        var number = 1
        while let part = buffer {
            let partNumber = number
            size += UInt64(part.count)
            let full = part.count == pool.partSize
            let accepted = workers.submit { [self] cancelled in
                defer { pool.release(part) }
                if cancelled { return }
                let etag = try uploadPart(bucket, key: key, uploadID: uploadID, number: partNumber,
                                          bytes: part.bytes[0..<part.count], encryptionKey: options.encryptionKey)
                etags.set(partNumber - 1, etag)
            }
            buffer = nil
            guard accepted, full else { break }
            number += 1
            if number > 10_000 {
                sourceError = ObjectStoreError.invalidName("\(key): more than 10,000 parts; raise --part-size")
                break
            }
            let next = pool.acquire()
            do {
                if try next.fill(from: body) > 0 { buffer = next } else { pool.release(next) }
            } catch {
                pool.release(next)
                sourceError = error
            }
        }
        do {
            try workers.finish()
            if let sourceError { throw sourceError }
            let etag = try completeMultipartUpload(bucket, key: key, uploadID: uploadID, etags: etags.values,
                                                   createOnly: options.createOnly)
            var info = ObjectInfo(key: key, size: size, etag: etag, metadata: metadata, lastModified: Date().timeIntervalSince1970)
            if let trailing = options.trailingMetadata?() {
                try putTrailingTags(bucket, key: key, trailing, etag: etag)
                info.metadata.merge(trailing) { $1 }
            }
            return info
        } catch {
            try? abortMultipartUpload(bucket, key: key, uploadID: uploadID)
            if sourceError != nil, let sourceError { throw sourceError }
            throw map(error, bucket: bucket, key: key)
        }
    }

    /// A read: the first ranged GET fetches up to `smallObjectLimit` bytes and learns the size
    /// and ETag; the rest comes in part-size ranged GETs in parallel, each with If-Match on that
    /// ETag (an object replaced mid-read fails instead of mixing versions), written in order.
    @discardableResult
    public func get(_ bucket: String, key: String, into sink: any ByteSink, options: GetOptions) throws -> ObjectInfo {
        let sse = Self.sseHeaders(options.encryptionKey)
        if let range = options.range {
            guard range.count > 0 else { return try headOrThrow(bucket, key: key, options: options) }
            var headers = [("Range", "bytes=\(range.lowerBound)-\(range.upperBound - 1)")] + sse
            if let etag = options.ifMatch { headers.append(("If-Match", etag)) }
            if let etag = options.ifNoneMatch { headers.append(("If-None-Match", etag)) }
            let response: CurlSession.Response
            do {
                response = try client.send("GET", bucket: bucket, key: key, headers: headers, accept: [304],
                                           expectedResponseBytes: range.count)
            } catch {
                throw map(error, bucket: bucket, key: key)
            }
            if response.status == 304 { throw ObjectStoreError.notModified(options.ifNoneMatch ?? "") }
            var info = Self.info(key: key, headers: response.headers)
            info.size = Self.totalSize(response) ?? UInt64(response.body.count)
            try options.onInfo?(info)
            try response.body.withUnsafeBytes { try sink.write($0) }
            return try withTrailingTags(info, bucket: bucket)
        }
        var headers = [("Range", "bytes=0-\(Self.smallObjectLimit - 1)")] + sse
        if let etag = options.ifMatch { headers.append(("If-Match", etag)) }
        if let etag = options.ifNoneMatch { headers.append(("If-None-Match", etag)) }
        var response: CurlSession.Response
        do {
            response = try client.send("GET", bucket: bucket, key: key, headers: headers, accept: [304, 416],
                                       expectedResponseBytes: Self.smallObjectLimit)
            if response.status == 416 {  // an empty object has no byte 0
                headers.removeFirst()
                response = try client.send("GET", bucket: bucket, key: key, headers: headers, accept: [304])
            }
        } catch {
            throw map(error, bucket: bucket, key: key)
        }
        if response.status == 304 { throw ObjectStoreError.notModified(options.ifNoneMatch ?? "") }
        var info = Self.info(key: key, headers: response.headers)
        let total = Self.totalSize(response) ?? UInt64(response.body.count)
        info.size = total
        try options.onInfo?(info)
        try response.body.withUnsafeBytes { try sink.write($0) }
        let done = UInt64(response.body.count)
        response.body = []
        if total > done {
            try getRest(bucket, key: key, from: done, total: total, etag: info.etag, sse: sse, into: sink)
        }
        return try withTrailingTags(info, bucket: bucket)
    }

    /// Fetches bytes `from..<total` in parts, in parallel, writing them to `sink` in order.
    private func getRest(_ bucket: String, key: String, from start: UInt64, total: UInt64, etag: String,
                         sse: [(String, String)], into sink: any ByteSink) throws {
        let partSize = UInt64(pool.partSize)
        let count = Int((total - start + partSize - 1) / partSize)
        let results = PartResults()
        let workers = PartWorkers(width: partConcurrency)
        var submitted = 0
        var written = 0
        var failure: Error?
        var sinkFailure: Error?
        while written < count, failure == nil, sinkFailure == nil {
            // Ask for more parts while permits are free; the part to write next always has one.
            while submitted < count, submitted - written < partConcurrency * 2,
                  submitted == written ? { pool.acquirePermit(); return true }() : pool.tryAcquirePermit() {
                let index = submitted
                let first = start + UInt64(index) * partSize
                let last = min(total, first + partSize) - 1
                submitted += 1
                workers.submit { [self] cancelled in
                    // Every part yields one result; its permit is released when that is taken.
                    if cancelled {
                        results.put(index, .failure(ObjectStoreError.io("\(key): part cancelled")))
                        return
                    }
                    do {
                        var headers = [("Range", "bytes=\(first)-\(last)")] + sse
                        if !etag.isEmpty { headers.append(("If-Match", etag)) }
                        let response = try client.send("GET", bucket: bucket, key: key, headers: headers,
                                                       expectedResponseBytes: Int(last - first + 1))
                        guard response.body.count == Int(last - first + 1) else {
                            throw ObjectStoreError.io("\(key): asked for \(last - first + 1) bytes at \(first), got \(response.body.count)")
                        }
                        results.put(index, .success(response.body))
                    } catch {
                        results.put(index, .failure(error))
                        throw error
                    }
                }
            }
            switch results.take(written) {
            case .success(let bytes):
                do {
                    try bytes.withUnsafeBytes { try sink.write($0) }
                } catch {
                    sinkFailure = error
                }
                pool.releasePermit()
                written += 1
            case .failure(let error):
                pool.releasePermit()
                written += 1
                failure = error
            }
        }
        if failure != nil || sinkFailure != nil { workers.cancel() }
        try? workers.finish()
        // Parts fetched but never written still hold their permits.
        for _ in results.drain() { pool.releasePermit() }
        if let sinkFailure { throw sinkFailure }  // the reader went away: its error, unchanged
        // The first real error: a worker's, unless it is only the cancellation this loop asked
        // for (it may be recorded before the failing part's own error) or none was recorded.
        let workerFailure = workers.failure
        let real = workerFailure == nil || workerFailure is CancellationError ? failure : workerFailure
        if let real { throw map(real, bucket: bucket, key: key) }
    }

    private func headOrThrow(_ bucket: String, key: String, options: GetOptions) throws -> ObjectInfo {
        guard let info = try head(bucket, key: key, options: options) else { throw ObjectStoreError.noSuchKey(key) }
        return info
    }

    /// The object's whole size from a ranged answer's Content-Range (`bytes 0-99/1234`).
    static func totalSize(_ response: CurlSession.Response) -> UInt64? {
        guard let range = response.headers["content-range"], let slash = range.lastIndex(of: "/") else { return nil }
        return UInt64(range[range.index(after: slash)...])
    }

    static func metadataHeaders(_ metadata: [String: String]) -> [(String, String)] {
        metadata.sorted { $0.key < $1.key }.map { ("x-amz-meta-\($0.key)", $0.value) }
    }
}

/// ETags of parts finished in any order, collected by part index.
final class GrowingStrings: Sendable {
    /// The values set so far, by index ("" where none was set yet).
    private let storage = Mutex<[String]>([])

    func set(_ index: Int, _ value: String) {
        storage.withLock { storage in
            if storage.count <= index { storage += Array(repeating: "", count: index + 1 - storage.count) }
            storage[index] = value
        }
    }

    var values: [String] {
        storage.withLock { $0 }
    }
}

/// Downloaded parts waiting to be written in order.
final class PartResults: @unchecked Sendable {
    private let condition = NSCondition()
    private var parts: [Int: Result<[UInt8], Error>] = [:]

    func put(_ index: Int, _ result: Result<[UInt8], Error>) {
        condition.lock()
        parts[index] = result
        condition.broadcast()
        condition.unlock()
    }

    /// Waits for part `index`.
    func take(_ index: Int) -> Result<[UInt8], Error> {
        condition.lock()
        defer { condition.unlock() }
        while parts[index] == nil { condition.wait() }
        return parts.removeValue(forKey: index)!
    }

    /// The parts left (after a failure); each still holds a pool permit.
    func drain() -> [Result<[UInt8], Error>] {
        condition.lock()
        defer { condition.unlock() }
        let left = Array(parts.values)
        parts = [:]
        return left
    }
}
