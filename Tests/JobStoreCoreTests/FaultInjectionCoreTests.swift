import Foundation
@testable import JobStoreCore
import JobStoreTestSupport
import ObjectStore
import XCTest

/// Job-store operations over a real local store with faults injected under JobStoreCore: each
/// operation succeeds with the right bytes or fails with a retryable code, and afterwards every
/// object (read from the store underneath, past the faults) is whole and holds what it may.
final class FaultInjectionCoreTests: XCTestCase {
    var root = ""

    override func setUp() {
        root = NSTemporaryDirectory() + "core-faults-\(UUID().uuidString.prefix(8))"
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: root)
    }

    static func digest(_ bytes: [UInt8]) -> String {
        let d = SHA256Digest()
        d.update(bytes)
        return d.finalizeHex()
    }

    func testOperationsUnderInjectedFaultsLeaveNoTornObject() throws {
        let local = LocalObjectStore(durable: false)
        let faulty = FaultInjectingObjectStore(local, rate: 0.1, seed: 42)
        let locator = try Locator("local:\(root)")
        try JobStore(locator: locator, store: local).initialize()
        let store = JobStore(locator: locator, store: faulty)
        var expected: [String: Set<String>] = [:]  // key → allowed digests or "absent"
        var jobs: [String] = []
        var files: [String] = []
        var failures = 0
        var rng = SystemRandomNumberGenerator()
        func bytes(_ n: Int) -> [UInt8] {
            var out = [UInt8](repeating: 0, count: (n + 7) / 8 * 8)
            out.withUnsafeMutableBytes { raw in
                for i in 0..<raw.count / 8 { raw.storeBytes(of: rng.next(), toByteOffset: i * 8, as: UInt64.self) }
            }
            return Array(out.prefix(n))
        }
        func failed(_ error: Error, _ op: String) {
            failures += 1
            guard let f = error as? JobStoreError, [.unavailable, .aborted].contains(f.code) else {
                return XCTFail("\(op): not a retryable failure: \(error)")
            }
        }
        func check(_ key: String, _ read: [UInt8]?) {
            let d = read.map(Self.digest) ?? "absent"
            XCTAssertTrue(expected[key]?.contains(d) == true, "\(key): read \(d), expected \(expected[key] ?? [])")
            expected[key] = [d]
        }
        for _ in 0..<2000 {
            switch Int.random(in: 0..<100, using: &rng) {
            case 0..<20:
                let id = store.assignJobID()
                let body = bytes(Int.random(in: 1...2000, using: &rng))
                do { try store.writeJob(id, body: body); expected["jobs/\(id)"] = [Self.digest(body)] } catch {
                    failed(error, "createJob"); expected["jobs/\(id)"] = ["absent", Self.digest(body)]
                }
                jobs.append(id)
            case 20..<40 where !jobs.isEmpty:
                let id = jobs.randomElement(using: &rng)!
                do { check("jobs/\(id)", try store.loadJob(id)) } catch let f as JobStoreError where f.kind == .noSuchJob {
                    check("jobs/\(id)", nil)
                } catch { failed(error, "loadJob") }
            case 40..<50 where !jobs.isEmpty:
                let id = jobs.randomElement(using: &rng)!
                let body = bytes(Int.random(in: 1...2000, using: &rng))
                do { try store.writeJob(id, body: body); expected["jobs/\(id)"] = [Self.digest(body)] } catch {
                    failed(error, "updateJob"); expected["jobs/\(id)", default: []].insert(Self.digest(body))
                }
            case 50..<70:
                let body = bytes(Int.random(in: 1...300_000, using: &rng))
                do {
                    let file = try store.writeFile(FileWriteRequest(basename: "f"), from: MemorySource(body))
                    expected["files-flat/\(file.id)/f"] = [Self.digest(body)]
                    files.append(file.id)
                } catch { failed(error, "writeFile") }
            case 70..<85 where !files.isEmpty:
                let id = files.randomElement(using: &rng)!
                let sink = MemorySink()
                do { _ = try store.readFile(id, into: sink); check("files-flat/\(id)/f", sink.bytes) }
                catch let f as JobStoreError where f.kind == .noSuchFile { check("files-flat/\(id)/f", nil) }
                catch { failed(error, "readFile") }
            case 85..<95 where !files.isEmpty:
                let id = files.randomElement(using: &rng)!
                let body = bytes(Int.random(in: 1...300_000, using: &rng))
                do { _ = try store.updateFile(id, from: MemorySource(body), executable: false); expected["files-flat/\(id)/f"] = [Self.digest(body)] }
                catch let f as JobStoreError where f.kind == .noSuchFile { check("files-flat/\(id)/f", nil) }
                catch { failed(error, "updateFile"); expected["files-flat/\(id)/f", default: []].insert(Self.digest(body)) }
            default:
                guard !files.isEmpty else { continue }
                let id = files.randomElement(using: &rng)!
                do { try store.deleteFile(id); expected["files-flat/\(id)/f"] = ["absent"]; files.removeAll { $0 == id } }
                catch { failed(error, "deleteFile"); expected["files-flat/\(id)/f", default: []].insert("absent") }
            }
        }
        XCTAssertGreaterThan(faulty.injected.values.reduce(0, +), 150)
        XCTAssertEqual(Set(faulty.injected.keys), Set(FaultInjectingObjectStore.Fault.allCases))
        // Past the faults: every object is whole, and holds what it may.
        var after = ""
        var objects = 0
        while true {
            let page = try local.list(locator.bucket, prefix: "", startAfter: after, maxKeys: 1000)
            for object in page.objects {
                let sink = MemorySink()
                let info = try local.get(locator.bucket, key: object.key, into: sink, options: GetOptions())
                XCTAssertEqual(info.metadata[Keys.Meta.sha256], Self.digest(sink.bytes), "\(object.key) is whole")
                objects += 1
            }
            guard page.truncated, let last = page.objects.last else { break }
            after = last.key
        }
        for (key, allowed) in expected {
            let sink = MemorySink()
            let there = (try? local.get(locator.bucket, key: key, into: sink, options: GetOptions())) != nil
            XCTAssertTrue(allowed.contains(there ? Self.digest(sink.bytes) : "absent"), "\(key) holds what it may")
        }
        print("core fault injection: 2000 operations, \(failures) failed retryably, faults \(faulty.injected), \(objects) objects checked")
    }
}
