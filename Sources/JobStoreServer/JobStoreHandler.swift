import Foundation
import JobStoreCore
import JobStoreWire
import Logging
import NodeCache
import ObjectStore

/// The daemon's implementation of every rpc: decode-free glue from wire messages to
/// JobStoreCore. Knows nothing of S3; JobStoreCore knows nothing of sockets.
public final class JobStoreHandler: JobStoreService {
    let registry: StoreRegistry
    let stats: ServerStats
    let logger: Logger
    /// Default lifetime of URLs from GetPublicUrl.
    public let defaultURLExpiry: Int
    /// What ImportFile and ExportFile reach outside the stores (nil: they are unavailable).
    let external: (any ExternalObjects)?
    /// The object stores' request counters for Stats (the daemon knows its S3 session).
    let backendRequests: @Sendable () -> [BackendRequestStats]
    /// The S3 session's connections and TLS for Stats (nil: the daemon has no S3 session).
    let s3Session: @Sendable () -> S3SessionStats?
    /// Local stores on which a client sent an SSE-C key (warned about once each).
    let localKeyWarnings = OnceSet()

    public init(registry: StoreRegistry, stats: ServerStats, logger: Logger, defaultURLExpiry: Int = 3600,
                external: (any ExternalObjects)? = nil, backendRequests: @escaping @Sendable () -> [BackendRequestStats] = { [] },
                s3Session: @escaping @Sendable () -> S3SessionStats? = { nil }) {
        self.backendRequests = backendRequests
        self.s3Session = s3Session
        self.registry = registry
        self.stats = stats
        self.logger = logger
        self.defaultURLExpiry = defaultURLExpiry
        self.external = external
    }

    func store(_ locator: String) throws -> JobStore {
        try registry.store(locator)
    }

    // MARK: daemon

    public func hello(_ request: HelloRequest, call: ServerCall) throws -> HelloResponse {
        HelloResponse(protocolVersion: WireLimits.protocolVersion, serverVersion: JobStore.version,
                      methods: JobStoreMethod.allCases.map(\.name),
                      maxMessageBytes: UInt32(WireLimits.maxMessageBytes), maxDataBytes: UInt32(WireLimits.maxDataBytes))
    }

    public func ping(_ request: Empty, call: ServerCall) throws -> Empty { Empty() }

    public func stats(_ request: Empty, call: ServerCall) throws -> StatsResponse {
        statsSnapshot()
    }

    /// What Stats answers, for the daemon's other outlets (the metrics endpoint).
    public func statsSnapshot() -> StatsResponse {
        var response = stats.snapshot(storesOpen: registry.count, version: JobStore.version)
        response.cache = registry.cache.map { Self.cacheStats($0.statistics) } ?? CacheStats(enabled: false)
        response.backendRequests = backendRequests()
        response.s3Session = s3Session()
        return response
    }

    static func cacheStats(_ s: CacheStatistics) -> CacheStats {
        CacheStats(enabled: true, directory: s.directory, capacityBytes: s.capacityBytes, sizeBytes: s.sizeBytes,
                   reservedBytes: s.reservedBytes, entries: s.entries, pinnedEntries: s.pinnedEntries, hits: s.hits,
                   misses: s.misses, revalidations: s.revalidations, joined: s.joined, bytesFromCache: s.bytesFromCache,
                   bytesFromStore: s.bytesFromStore, writtenThrough: s.writtenThrough, bypassed: s.bypassed,
                   evictions: s.evictions, invalidations: s.invalidations, corrupt: s.corrupt)
    }

    // MARK: stores

    /// A key path is refused: the daemon opening a file named by a client would read it with
    /// the daemon's rights, not the client's (a confused deputy once --allow-uid admits others).
    private func refuseKeyPath(_ request: StoreRequest) throws {
        if let path = request.options?.sseKeyPath, !path.isEmpty {
            throw JobStoreError(.invalidArgument, "StoreOptions.sse_key_path is not accepted: the daemon never opens a key file "
                                + "for a client. Read the key and send its 32 bytes as sse_key with each call (Protos/WIRE.md).")
        }
    }

    public func initialize(_ request: StoreRequest, call: ServerCall) throws -> Empty {
        try refuseKeyPath(request)
        let (store, key) = try keyed(request.locator, request.sseKey)
        let outcome = try store.initialize(allowingCustomerKeys: key != nil)
        if case .notSupported(let why) = outcome {
            logger.warning("initialized \(request.locator), but could not allow SSE-C on its bucket: \(why)")
        } else {
            logger.info("initialized \(request.locator)")
        }
        return Empty()
    }

    public func resume(_ request: StoreRequest, call: ServerCall) throws -> Empty {
        try refuseKeyPath(request)
        try store(request.locator).resume()
        return Empty()
    }

    public func destroy(_ request: StoreRequest, call: ServerCall) throws -> Empty {
        try store(request.locator).destroy()
        logger.info("destroyed \(request.locator)")
        return Empty()
    }

    public func storeExists(_ request: StoreRequest, call: ServerCall) throws -> StoreExistsResponse {
        StoreExistsResponse(exists: try store(request.locator).exists())
    }

    // MARK: jobs

    public func assignJobId(_ request: AssignJobIdRequest, call: ServerCall) throws -> JobIdResponse {
        let id = try store(request.locator).assignJobID()
        logger.trace("assigned \(id) to job \(request.jobName)")
        return JobIdResponse(jobId: id)
    }

    public func createJob(_ request: JobBody, call: ServerCall) throws -> Empty {
        let (store, key) = try keyed(request.locator, request.sseKey)
        try store.writeJob(request.jobId, body: request.body, sseKey: key)
        return Empty()
    }

    public func jobExists(_ request: JobRequest, call: ServerCall) throws -> JobExistsResponse {
        let (store, key) = try keyed(request.locator, request.sseKey)
        return JobExistsResponse(exists: try store.jobExists(request.jobId, sseKey: key))
    }

    public func loadJob(_ request: JobRequest, call: ServerCall) throws -> LoadJobResponse {
        let (store, key) = try keyed(request.locator, request.sseKey)
        return LoadJobResponse(body: try store.loadJob(request.jobId, sseKey: key))
    }

    public func updateJob(_ request: JobBody, call: ServerCall) throws -> Empty {
        let (store, key) = try keyed(request.locator, request.sseKey)
        try store.writeJob(request.jobId, body: request.body, sseKey: key)
        return Empty()
    }

    public func deleteJob(_ request: JobRequest, call: ServerCall) throws -> Empty {
        let (store, key) = try keyed(request.locator, request.sseKey)
        try store.deleteJob(request.jobId, sseKey: key)
        return Empty()
    }

    public func listJobs(_ request: ListJobsRequest, call: ServerCall) throws -> ListJobsResponse {
        let (store, key) = try keyed(request.locator, request.sseKey)
        let page = try store.listJobs(pageToken: request.pageToken, pageSize: Int(request.pageSize),
                                      includeBodies: request.includeBodies, sseKey: key)
        return ListJobsResponse(jobs: page.jobs.map { JobEntry(jobId: $0.id, size: $0.size, body: $0.body ?? []) },
                                nextPageToken: page.nextPageToken)
    }

    // MARK: files

    public func listFiles(_ request: ListFilesRequest, call: ServerCall) throws -> ListFilesResponse {
        let (store, key) = try keyed(request.locator, request.sseKey)
        let page = try store.listFiles(job: request.jobId, pageToken: request.pageToken, pageSize: Int(request.pageSize),
                                       sseKey: key)
        return ListFilesResponse(files: page.files.map { FileEntry(fileId: $0.id, size: $0.size) },
                                 nextPageToken: page.nextPageToken)
    }

    func writeRequest(_ r: WriteFileRequest, fd: Int32? = nil) -> FileWriteRequest {
        FileWriteRequest(jobID: r.jobId, cleanup: r.cleanup, basename: r.basename, hints: r.hints,
                         executable: r.executable || fd.map(Self.ownerExecutable) == true, fileID: r.fileId)
    }

    /// Whether the descriptor's file has its owner-execute bit (Toil's FileID.executable).
    static func ownerExecutable(_ fd: Int32) -> Bool {
        var st = stat()
        return fstat(fd, &st) == 0 && st.st_mode & S_IXUSR != 0
    }

    private func descriptor(_ call: ServerCall) throws -> Int32 {
        guard let fd = call.takeFD() else {
            throw JobStoreError(.invalidArgument, "\(call.method.name) needs a file descriptor passed with the request")
        }
        return fd
    }

    private func info(_ f: StoredFile) -> FileInfo {
        FileInfo(fileId: f.id, size: f.size, executable: f.executable)
    }

    public func writeFile(_ request: WriteFileRequest, call: ServerCall) throws -> FileInfo {
        let fd = try descriptor(call)
        defer { close(fd) }
        let (store, key) = try keyed(request.locator, request.sseKey)
        return info(try store.writeFile(writeRequest(request, fd: fd), from: FileDescriptorSource(fd: fd), sseKey: key))
    }

    public func writeFileStream(_ request: WriteFileRequest, call: ServerCall) throws -> FileInfo {
        let (store, key) = try keyed(request.locator, request.sseKey)
        return info(try store.writeFile(writeRequest(request), from: CallUploadSource(call), sseKey: key))
    }

    public func updateFile(_ request: UpdateFileRequest, call: ServerCall) throws -> FileInfo {
        let fd = try descriptor(call)
        defer { close(fd) }
        let (store, key) = try keyed(request.locator, request.sseKey)
        return info(try store.updateFile(request.fileId, from: FileDescriptorSource(fd: fd),
                                         executable: request.executable || Self.ownerExecutable(fd),
                                         sseKey: key))
    }

    /// A stream carries no file mode: an update that does not set `executable` keeps the file's.
    public func updateFileStream(_ request: UpdateFileRequest, call: ServerCall) throws -> FileInfo {
        let (store, key) = try keyed(request.locator, request.sseKey)
        return info(try store.updateFile(request.fileId, from: CallUploadSource(call), executable: request.executable ? true : nil,
                                         sseKey: key))
    }

    public func readFile(_ request: ReadFileRequest, call: ServerCall) throws -> ReadFileResponse {
        let (store, key) = try keyed(request.locator, request.sseKey)
        let fd = call.takeFD()
        defer { if let fd { close(fd) } }
        if request.linkOk, let local = try store.fileLocalPath(request.fileId, sseKey: key) {
            return ReadFileResponse(info: info(local.file), linkPath: local.path)
        }
        guard let fd else {
            throw JobStoreError(.invalidArgument, "ReadFile: this store has no local path to link; pass a file descriptor")
        }
        return ReadFileResponse(info: info(try store.readFile(request.fileId, into: FileDescriptorSink(fd: fd), sseKey: key)))
    }

    public func readFileStream(_ request: FileRequest, call: ServerCall) throws -> FileInfo {
        let (store, key) = try keyed(request.locator, request.sseKey)
        return info(try store.readFile(request.fileId, into: CallDownloadSink(call), sseKey: key))
    }

    public func fileExists(_ request: FileRequest, call: ServerCall) throws -> FileExistsResponse {
        let (store, key) = try keyed(request.locator, request.sseKey)
        return FileExistsResponse(exists: try store.fileExists(request.fileId, sseKey: key))
    }

    public func getFileSize(_ request: FileRequest, call: ServerCall) throws -> FileInfo {
        let (store, key) = try keyed(request.locator, request.sseKey)
        return info(try store.stat(request.fileId, sseKey: key))
    }

    public func deleteFile(_ request: FileRequest, call: ServerCall) throws -> Empty {
        let (store, key) = try keyed(request.locator, request.sseKey)
        try store.deleteFile(request.fileId, sseKey: key)
        return Empty()
    }

    public func getEmptyFileStoreId(_ request: WriteFileRequest, call: ServerCall) throws -> FileInfo {
        let (store, key) = try keyed(request.locator, request.sseKey)
        return info(try store.emptyFile(writeRequest(request), sseKey: key))
    }

    public func associateJobWithFile(_ request: AssociateJobWithFileRequest, call: ServerCall) throws -> Empty {
        let (store, key) = try keyed(request.locator, request.sseKey)
        try store.associate(job: request.jobId, file: request.fileId, sseKey: key)
        return Empty()
    }

    // MARK: shared files

    public func writeSharedFileStream(_ request: SharedFileRequest, call: ServerCall) throws -> Empty {
        let (store, key) = try keyed(request.locator, request.sseKey)
        try store.writeSharedFile(request.name, from: CallUploadSource(call), sseKey: request.unencrypted ? nil : key)
        return Empty()
    }

    public func readSharedFileStream(_ request: SharedFileRequest, call: ServerCall) throws -> FileInfo {
        let (store, key) = try keyed(request.locator, request.sseKey)
        return info(try store.readSharedFile(request.name, into: CallDownloadSink(call), sseKey: key))
    }

    public func sharedFileExists(_ request: SharedFileRequest, call: ServerCall) throws -> FileExistsResponse {
        let (store, key) = try keyed(request.locator, request.sseKey)
        return FileExistsResponse(exists: try store.sharedFileExists(request.name, sseKey: key))
    }

    // MARK: logs

    public func writeLogs(_ request: WriteLogsRequest, call: ServerCall) throws -> Empty {
        let (store, key) = try keyed(request.locator, request.sseKey)
        try store.writeLog(request.message, sseKey: key)
        return Empty()
    }

    public func readLogs(_ request: ReadLogsRequest, call: ServerCall) throws -> ReadLogsResponse {
        let (store, key) = try keyed(request.locator, request.sseKey)
        let page = try store.readLogs(readAll: request.readAll, pageToken: request.pageToken,
                                      maxMessages: Int(request.maxMessages), overlapSeconds: Int(request.overlapSeconds),
                                      sseKey: key)
        return ReadLogsResponse(messages: page.messages, nextPageToken: page.nextPageToken, resumeToken: page.resumeToken,
                                keys: page.keys)
    }

    // MARK: URLs

    private func expiry(_ request: PublicUrlRequest) -> Int {
        request.expiresSeconds == 0 ? defaultURLExpiry : Int(request.expiresSeconds)
    }

    public func getPublicUrl(_ request: PublicUrlRequest, call: ServerCall) throws -> UrlResponse {
        let (store, key) = try keyed(request.locator, request.sseKey)
        return UrlResponse(url: try store.fileURL(request.fileId, expiresIn: expiry(request), sseKey: key))
    }

    public func getSharedPublicUrl(_ request: PublicUrlRequest, call: ServerCall) throws -> UrlResponse {
        let (store, _) = try keyed(request.locator, request.sseKey)  // a malformed key is still refused
        return UrlResponse(url: try store.sharedFileURL(request.name, expiresIn: expiry(request)))
    }
}

// MARK: imports and exports

extension JobStoreHandler {
    private func caller(_ call: ServerCall) -> TransferCaller {
        TransferCaller(mayUseLocalFiles: call.peer.uid == geteuid(), description: "a connection from uid \(call.peer.uid)")
    }

    private func externalObjects() throws -> any ExternalObjects {
        guard let external else {
            throw JobStoreError(.unavailable, "This daemon has no S3 session or HTTP access configured for imports and exports.")
        }
        return external
    }

    public func importFile(_ request: ImportFileRequest, call: ServerCall) throws -> FileInfo {
        let (store, key) = try keyed(request.locator, request.sseKey)
        let file = try store.importFile(request.url, sharedName: request.sharedFileName, external: try externalObjects(),
                                        caller: caller(call), sseKey: key)
        return FileInfo(fileId: file.id, size: file.size, executable: file.executable)
    }

    public func assignFileId(_ request: WriteFileRequest, call: ServerCall) throws -> FileInfo {
        let (store, key) = try keyed(request.locator, request.sseKey)
        return FileInfo(fileId: try store.assignFileID(writeRequest(request), sseKey: key))
    }

    public func exportFile(_ request: ExportFileRequest, call: ServerCall) throws -> FileInfo {
        let (store, key) = try keyed(request.locator, request.sseKey)
        let file = try store.exportFile(request.fileId, to: request.url, external: try externalObjects(),
                                        caller: caller(call), sseKey: key)
        return FileInfo(fileId: file.id, size: file.size, executable: file.executable)
    }
}
