import Foundation
import JobStoreClient
import JobStoreWire
import XCTest

/// S3 away for seconds under a daemon serving 16 clients: the fault proxy's outage mode refuses
/// every connection (and drops those open) for a while. Every call waits and then succeeds;
/// nothing is torn; an outage longer than the tolerance fails the waiting calls, saying why.
final class OutageTests: XCTestCase, @unchecked Sendable {
    static let clients = 16
    static let outageSeconds = 8.0

    /// A flag shared by the clients' tasks.
    final class Flag: @unchecked Sendable {
        private let lock = NSLock()
        private var set = false
        func raise() { lock.lock(); set = true; lock.unlock() }
        var isRaised: Bool { lock.lock(); defer { lock.unlock() }; return set }
    }

    /// A daemon whose S3 traffic crosses the fault proxy (no random faults: outages on demand),
    /// a client, and an aws: store initialized on it; all torn down after the test.
    struct Rig {
        let upstream: String
        let proxy: FaultProxy
        let daemon: DaemonProcess
        let client: JobStoreClient
        let name: String
        var locator: String { "aws:us-east-1:\(name)" }
    }

    func rig(_ arguments: [String], captureLog: Bool = false) async throws -> Rig {
        let upstream = try XCTUnwrap(ProcessInfo.processInfo.environment["JOBSTORE_TEST_S3_ENDPOINT"], "run tools/dev-s3 first")
        let proxy = try FaultProxy(upstream: upstream, rate: 0, seed: 1, stallSeconds: 2)
        let daemon: DaemonProcess
        do {
            daemon = try DaemonProcess.withS3(endpoint: proxy.endpoint, extraArguments: arguments, captureLog: captureLog)
        } catch {
            proxy.stop()
            throw error
        }
        let name = "jobstore-outage-\(UUID().uuidString.prefix(8).lowercased())"
        let client = try daemon.connect()
        addTeardownBlock {
            _ = try? DaemonProcess.testS3Store().destroyBucket(name + "--toil")  // straight to SeaweedFS
            client.connection.close()
            daemon.stop()
            proxy.stop()
        }
        let rig = Rig(upstream: upstream, proxy: proxy, daemon: daemon, client: client, name: name)
        _ = try await client.initialize(StoreRequest(locator: rig.locator))
        return rig
    }

    func outage(_ stats: StatsResponse) throws -> S3OutageStats {
        try XCTUnwrap(stats.s3Session?.outages.first, "Stats shows the endpoint's reachability")
    }

    func testSixteenClientsRideOutAnOutageAndLoseNothing() async throws {
        let rig = try await rig(["--part-size", "5MiB", "--s3-outage-tolerance", "60"], captureLog: true)
        let (proxy, daemon, setup, locator) = (rig.proxy, rig.daemon, rig.client, rig.locator)

        let stop = Flag()
        let started = Date()
        async let outcomes = withThrowingTaskGroup(of: ClientOutcome.self) { group in
            for index in 0..<Self.clients {
                group.addTask {
                    let client = try daemon.connect()
                    defer { client.connection.close() }
                    var worker = FaultWorker(client: client, locator: locator, index: index, seed: UInt64(index + 1) * 104_729)
                    worker.largeFileEvery = 40
                    while !stop.isRaised { await worker.step() }
                    return worker.outcome
                }
            }
            return try await group.reduce(into: [ClientOutcome]()) { $0.append($1) }
        }
        try await Task.sleep(nanoseconds: 2_000_000_000)
        let before = try await setup.stats()
        let outageBegan = Date()
        try proxy.outage(seconds: Self.outageSeconds)
        try await Task.sleep(nanoseconds: 3_000_000_000)
        // Mid-outage: the state shows (Stats is answered on the reader thread, never behind S3).
        let during = try outage(try await setup.stats())
        let status = try CommandRunner(socket: daemon.socket).run(["status"]).text
        try await Task.sleep(nanoseconds: UInt64((Self.outageSeconds + 3) * 1e9))
        stop.raise()
        let all = try await outcomes
        let elapsed = Date().timeIntervalSince(started)
        let after = try outage(try await setup.stats())

        let failures = all.reduce(into: [String: Int]()) { sum, o in sum.merge(o.failures) { $0 + $1 } }
        let operations = all.map(\.operations).reduce(0, +)
        let operationsBefore = before.methods.reduce(0) { $0 + $1.calls }
        let slowest = all.flatMap(\.latencies).max() ?? 0
        print("outage: \(Self.outageSeconds) s of refused connections under \(Self.clients) clients; \(operations) operations in " +
              String(format: "%.1f s", elapsed) + " (\(operationsBefore) calls before the outage); calls that waited \(after.callsWaited), " +
              "longest wait \(Double(after.longestWaitMs) / 1000) s, outage \(Double(after.longestOutageMs) / 1000) s, " +
              "failed operations \(failures), slowest operation " + String(format: "%.1f s", slowest))
        XCTAssertEqual(failures, [:], "no operation failed")
        XCTAssertEqual(all.flatMap(\.violations), [])
        XCTAssertTrue(during.unreachable, "Stats shows the outage while it lasts")
        XCTAssertGreaterThanOrEqual(during.callsWaiting, UInt64(Self.clients) / 2, "the clients' calls wait")
        XCTAssertTrue(status.contains("UNREACHABLE since"), status)
        XCTAssertFalse(after.unreachable)
        XCTAssertEqual(after.outages, 1, "one outage, not one per call")
        XCTAssertGreaterThanOrEqual(after.callsWaited, UInt64(Self.clients))
        XCTAssertEqual(after.callsFailed, 0)
        XCTAssertGreaterThanOrEqual(Double(after.longestWaitMs) / 1000, Self.outageSeconds - 1.5)
        XCTAssertGreaterThanOrEqual(slowest, Self.outageSeconds - 1.5, "operations were in flight through the outage")
        XCTAssertLessThan(Date().timeIntervalSince(outageBegan), Self.outageSeconds + 30)
        let log = (try? String(contentsOfFile: daemon.logPath, encoding: .utf8)) ?? ""
        XCTAssertEqual(log.components(separatedBy: "is unreachable (").count - 1, 1, "one log line when it began:\n\(log.suffix(3000))")
        XCTAssertEqual(log.components(separatedBy: "is reachable again after").count - 1, 1, "one log line when it ended")

        // Every object, straight from SeaweedFS with boto3: nothing torn, nothing lost.
        let check = try FaultProxy.verifyBucket(upstream: rig.upstream, bucket: rig.name + "--toil", outcomes: all,
                                                manifestDirectory: daemon.directory)
        XCTAssertEqual(check.status, 0, check.report)
    }

    /// A 64 MiB stream from a worker while S3 is away: the daemon holds at most its two part
    /// buffers, so the worker's writes wait (back-pressure), and the upload goes on with its
    /// next part afterwards: one multipart upload, not a restart. The outage outlasts the
    /// daemon's frame timeout (2 s here): a stream held back by S3 is not a stalled client.
    /// Then a download through another outage: the parts fetched before it are not fetched again.
    func testAStreamDuringAnOutageIsHeldBackAndResumesItsParts() async throws {
        let rig = try await rig(["--part-size", "5MiB", "--transfer-buffers", "2", "--part-concurrency", "1",
                                 "--s3-outage-tolerance", "60", "--frame-timeout", "2", "--no-cache"])
        let (proxy, client, locator) = (rig.proxy, rig.client, rig.locator)
        let bytes = pattern(64 << 20, seed: 41)
        var longestWrite = 0.0
        let info = try await client.writeFileStream(WriteFileRequest(locator: locator, basename: "big")) { upload in
            var offset = 0
            while offset < bytes.count {
                if offset == 6 << 20 { try proxy.outage(seconds: 5) }
                let end = min(offset + (1 << 20), bytes.count)
                let began = Date()
                try await upload.write(Array(bytes[offset..<end]))
                longestWrite = max(longestWrite, Date().timeIntervalSince(began))
                offset = end
            }
        }
        XCTAssertEqual(info.size, UInt64(bytes.count))
        let stats = try await client.stats()
        func requests(_ operation: String) -> UInt64 { stats.backendRequests.first { $0.operation == operation }?.requests ?? 0 }
        func retries(_ operation: String) -> UInt64 { stats.backendRequests.first { $0.operation == operation }?.retries ?? 0 }
        func gotten(_ s: StatsResponse) -> UInt64 {
            s.backendRequests.first { $0.operation == "GetObject" }.map { $0.requests - $0.retries - $0.errors } ?? 0
        }
        print("stream through a 5 s outage: longest write \(String(format: "%.1f", longestWrite)) s; UploadPart \(requests("UploadPart")) " +
              "sent (\(retries("UploadPart")) retried), CreateMultipartUpload \(requests("CreateMultipartUpload"))")
        XCTAssertGreaterThanOrEqual(longestWrite, 3, "the worker's stream was held back while S3 was away")
        XCTAssertEqual(requests("CreateMultipartUpload"), 1, "one upload: it went on, not started again")
        XCTAssertEqual(requests("CompleteMultipartUpload") - retries("CompleteMultipartUpload"), 1)
        XCTAssertEqual(requests("UploadPart") - retries("UploadPart"), 13, "each of the 13 parts sent once successfully")
        XCTAssertEqual(try outage(stats).outages, 1)

        // Downloads: one without an outage, one with an outage once 6 MiB have arrived.
        let clean = try await client.download(locator, info.fileId)
        XCTAssertTrue(clean == bytes, "the bytes are whole")
        let afterClean = try await client.stats()
        let partsOfOneRead = gotten(afterClean) - gotten(stats)
        var received: [UInt8] = []
        var broke = false
        _ = try await client.readFileStream(FileRequest(locator: locator, fileId: info.fileId)) { chunk in
            received.append(contentsOf: chunk)
            if !broke && received.count >= 6 << 20 {
                broke = true
                try proxy.outage(seconds: 5)
            }
        }
        XCTAssertTrue(received == bytes, "the bytes read through the outage are whole")
        let afterOutage = try await client.stats()
        print("download through a 5 s outage: \(gotten(afterOutage) - gotten(afterClean)) ranged GETs, \(partsOfOneRead) without an outage")
        XCTAssertEqual(gotten(afterOutage) - gotten(afterClean), partsOfOneRead, "each part fetched once: the read went on, not again")
        XCTAssertEqual(try outage(afterOutage).outages, 2)
    }

    func testAnOutageLongerThanTheToleranceFailsTheWaitingCallsSayingWhy() async throws {
        let tolerance = 4.0
        let port = try MetricsEndpointTests.freePort()
        let rig = try await rig(["--s3-outage-tolerance", "\(Int(tolerance))", "--metrics", "127.0.0.1:\(port)"], captureLog: true)
        let (proxy, daemon, setup, locator) = (rig.proxy, rig.daemon, rig.client, rig.locator)
        let job = UUID().uuidString.lowercased()
        _ = try await setup.createJob(JobBody(locator: locator, jobId: job, body: [1, 2, 3]))
        try proxy.outage(seconds: 40)
        let began = Date()
        let outcomes = try await withThrowingTaskGroup(of: (Double, JobStoreError?).self) { group in
            for i in 0..<8 {
                group.addTask {
                    let client = try daemon.connect()
                    defer { client.connection.close() }
                    do {
                        if i % 2 == 0 {
                            _ = try await client.loadJob(JobRequest(locator: locator, jobId: job))
                        } else {
                            _ = try await client.upload(WriteFileRequest(locator: locator, basename: "f"), pattern(1000 + i))
                        }
                        return (Date().timeIntervalSince(began), nil)
                    } catch let e as JobStoreError {
                        return (Date().timeIntervalSince(began), e)
                    }
                }
            }
            return try await group.reduce(into: [(Double, JobStoreError?)]()) { $0.append($1) }
        }
        for (i, (took, error)) in outcomes.enumerated() {
            let e = try XCTUnwrap(error, "a call cannot succeed while S3 is away: \(i) after \(took) s")
            XCTAssertEqual(e.code, .unavailable, "\(e)")
            XCTAssertTrue(e.message.contains("S3 at \(proxy.endpoint) has been unreachable for"), e.message)
            XCTAssertTrue(e.message.contains("--s3-outage-tolerance 4 s"), e.message)
            XCTAssertTrue(e.message.contains("libcurl error"), e.message)
            XCTAssertGreaterThanOrEqual(took, tolerance - 1, "the call waited")
            XCTAssertLessThan(took, tolerance + 4, "and failed within the tolerance and a few seconds")
        }
        // Past the tolerance, a new call fails at once.
        let again = Date()
        await assertFails(.unavailable) { try await setup.loadJob(JobRequest(locator: locator, jobId: job)) }
        XCTAssertLessThan(Date().timeIntervalSince(again), 2)
        let o = try outage(try await setup.stats())
        XCTAssertTrue(o.unreachable)
        XCTAssertGreaterThanOrEqual(o.callsFailed, 8)
        let log = (try? String(contentsOfFile: daemon.logPath, encoding: .utf8)) ?? ""
        XCTAssertEqual(log.components(separatedBy: "waiting calls now fail with UNAVAILABLE").count - 1, 1, log)
        // The state and what it cost, in metrics.
        let page = MetricsEndpointTests.samples(try PlainHTTP.get(URL(string: "http://127.0.0.1:\(port)/metrics")!).text)
        let label = "{endpoint=\"\(proxy.endpoint)\"}"
        XCTAssertEqual(page["jobstored_s3_unreachable" + label], 1, "\(page.filter { $0.key.contains("outage") || $0.key.contains("unreachable") })")
        XCTAssertGreaterThanOrEqual(page["jobstored_s3_unreachable_seconds" + label] ?? 0, tolerance - 1)
        XCTAssertEqual(page["jobstored_s3_outages_total" + label], 1)
        XCTAssertGreaterThanOrEqual(page["jobstored_s3_outage_failed_calls_total" + label] ?? 0, 8)
        XCTAssertGreaterThanOrEqual(page["jobstored_s3_outage_waits_total" + label] ?? 0, 8)
        XCTAssertGreaterThanOrEqual(page["jobstored_s3_outage_longest_wait_seconds" + label] ?? 0, tolerance - 1)
    }

    /// With the default tolerance (120 s), answers that are not outages still fail at once, on
    /// the real SeaweedFS: a store that does not exist, a wrong secret. (A certificate never
    /// valid: TLSEndpointTests, also at the default.)
    func testErrorsThatAreNotOutagesStayFast() async throws {
        let env = ProcessInfo.processInfo.environment
        let endpoint = try XCTUnwrap(env["JOBSTORE_TEST_S3_ENDPOINT"], "run tools/dev-s3 first")
        let daemon = try DaemonProcess.withS3()
        defer { daemon.stop() }
        let client = try daemon.connect()
        defer { client.connection.close() }
        var started = Date()
        await assertFails(.notFound, kind: .noSuchJobStore) {
            try await client.resume(StoreRequest(locator: "aws:us-east-1:jobstore-outage-none-\(UUID().uuidString.prefix(8).lowercased())"))
        }
        XCTAssertLessThan(Date().timeIntervalSince(started), 2)
        let wrong = try DaemonProcess(extraArguments: ["--endpoint", endpoint],
                                      environment: ["AWS_ACCESS_KEY_ID": env["JOBSTORE_TEST_S3_ACCESS_KEY"] ?? "",
                                                    "AWS_SECRET_ACCESS_KEY": "not-the-secret"])
        defer { wrong.stop() }
        let refused = try wrong.connect()
        defer { refused.connection.close() }
        started = Date()
        await assertFails(.permissionDenied) { try await refused.initialize(StoreRequest(locator: "aws:us-east-1:jobstore-outage-denied")) }
        XCTAssertLessThan(Date().timeIntervalSince(started), 2)
        let stats = try await refused.stats()
        XCTAssertEqual(stats.s3Session?.outages.first?.outages ?? 0, 0, "no outage began")
    }
}
