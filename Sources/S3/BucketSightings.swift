import Foundation
import Synchronization

/// When each bucket last answered as existing: a 2xx or 304 to a request on it. A node's
/// workers ask the same few buckets thousands of times a workflow, and at WAN round trips a
/// HeadBucket to learn again what the previous answer just showed is a worker waiting ~20 ms
/// for nothing (each Toil worker process resumes the store; every HEAD of a missing key needs a
/// second HEAD to tell "no such key" from "no such bucket").
///
/// A sighting is only ever evidence that the bucket existed at that time: another node may have
/// destroyed it since. So a sighting is trusted for a short window only, it is dropped when this
/// client deletes the bucket or is told NoSuchBucket, and everything that skips a check on it
/// still sends a request on the bucket soon after, which meets a destroy by anyone.
public final class BucketSightings: Sendable {
    /// When each bucket last answered as existing (uptime nanoseconds).
    private let lastSeen = Mutex<[String: UInt64]>([:])

    public init() {}

    /// Records what an answer of the server says about the bucket.
    func record(method: String, bucket: String, key: String?, status: Int, code: String = "") {
        guard !bucket.isEmpty else { return }
        let now = DispatchTime.now().uptimeNanoseconds
        lastSeen.withLock { lastSeen in
            if code == "NoSuchBucket" || (key == nil && (method == "DELETE" || status == 404)) {
                lastSeen[bucket] = nil  // gone, or going: a deleted bucket must be asked about again
            } else if (200..<300).contains(status) || status == 304 {
                lastSeen[bucket] = now
            }
        }
    }

    /// Whether the bucket answered as existing within the last `seconds`.
    public func seen(_ bucket: String, within seconds: Double) -> Bool {
        let at = lastSeen.withLock { $0[bucket] }
        guard let at, seconds > 0 else { return false }
        return Double(DispatchTime.now().uptimeNanoseconds - at) < seconds * 1e9
    }

    /// Forgets every sighting (a test's way to make the next check ask the server).
    public func forgetAll() {
        lastSeen.withLock { $0 = [:] }
    }
}
