import Foundation
import ObjectStore

/// One part's memory, reused from transfer to transfer. A class, so that handing it between
/// threads never copies its bytes.
public final class PartBuffer: @unchecked Sendable {
    public var bytes: [UInt8]
    /// How many of `bytes` hold data.
    public var count = 0

    init(size: Int) { bytes = [UInt8](repeating: 0, count: size) }

    /// Fills the buffer from `source` until it is full or the source ends, after the first
    /// `keeping` bytes already there; returns the count.
    @discardableResult
    func fill(from source: any ByteSource, keeping: Int = 0) throws -> Int {
        count = keeping
        let size = bytes.count
        try bytes.withUnsafeMutableBytes { raw in
            while count < size {
                let n = try source.read(into: UnsafeMutableRawBufferPointer(rebasing: raw[count..<size]))
                if n == 0 { break }
                count += n
            }
        }
        return count
    }
}

/// The part buffers shared by every transfer of the session: memory for transfers is at most
/// `capacity × partSize` however many and however large the files in flight are. A transfer
/// waits for a buffer when all are taken; each holds its buffers only while a part moves.
public final class BufferPool: @unchecked Sendable {
    public let partSize: Int
    public let capacity: Int
    private let condition = NSCondition()
    private var free: [PartBuffer] = []
    private var allocated = 0
    private var permits = 0

    public init(partSize: Int, capacity: Int) {
        self.partSize = partSize
        self.capacity = max(1, capacity)
    }

    /// A buffer of `partSize` bytes; blocks while all are in use.
    public func acquire() -> PartBuffer {
        condition.lock()
        defer { condition.unlock() }
        while free.isEmpty && allocated + permits >= capacity { condition.wait() }
        if let buffer = free.popLast() { return buffer }
        allocated += 1
        return PartBuffer(size: partSize)
    }

    public func release(_ buffer: PartBuffer) {
        condition.lock()
        free.append(buffer)
        condition.signal()
        condition.unlock()
    }

    /// Room for one part that arrives in memory of its own (a download's response body).
    public func acquirePermit() {
        condition.lock()
        defer { condition.unlock() }
        while allocated + permits >= capacity {
            if !free.isEmpty {  // turn an idle buffer into room
                free.removeLast()
                allocated -= 1
                continue
            }
            condition.wait()
        }
        permits += 1
    }

    /// A permit if one is free now, without waiting.
    public func tryAcquirePermit() -> Bool {
        condition.lock()
        defer { condition.unlock() }
        if allocated + permits >= capacity, !free.isEmpty {
            free.removeLast()
            allocated -= 1
        }
        guard allocated + permits < capacity else { return false }
        permits += 1
        return true
    }

    public func releasePermit() {
        condition.lock()
        permits -= 1
        condition.signal()
        condition.unlock()
    }

    /// Buffers and permits in use now (for stats and tests).
    public var inUse: Int {
        condition.lock()
        defer { condition.unlock() }
        return allocated - free.count + permits
    }
}
