import Foundation
import ObjectStore

extension JobStore {
    /// Toil's import_file: copies a URL into the store as a new file, or as the shared file
    /// `sharedName`. S3 to S3 on the daemon's session is a server-side copy (no bytes through
    /// this node); everything else streams through a bounded pipe, checksummed as any write.
    /// The copy is stored with SSE-C under `sseKey` (config.pickle excepted); the source is read
    /// as the daemon's own session reads it (S3 sources unencrypted, as in Toil).
    public func importFile(_ urlText: String, sharedName: String, external: any ExternalObjects,
                           caller: TransferCaller, sseKey: EncryptionKey? = nil) throws -> StoredFile {
        let url = try TransferURL(urlText)
        if !sharedName.isEmpty { try Names.checkSharedFileName(sharedName) }
        let id = sharedName.isEmpty ? UUID().uuidString.lowercased() : sharedName
        let key = sharedName.isEmpty ? fileKey(id, basename: url.basename) : Keys.shared + sharedName
        let writer = [Keys.Meta.writer: "jobstored/\(Self.version)"]
        let sseKey = Self.sharedKey(sharedName, sseKey)
        do {
            let stored: StoredFile
            switch url {
            case .s3(let sourceBucket, let sourceKey):
                let source = try mapped { try external.s3Store(forBucket: sourceBucket) }
                let copyOptions = CopyOptions(encryptionKey: sseKey, metadata: writer)
                if let info = try mapped({
                    try store.serverSideCopy(from: source, bucket: sourceBucket, key: sourceKey, to: bucket, key: key, options: copyOptions)
                }) {
                    stored = StoredFile(id: id, size: info.size, executable: Self.isExecutable(info))
                } else {
                    guard let head = try mapped({ try source.head(sourceBucket, key: sourceKey, options: GetOptions()) }) else {
                        throw JobStoreError(.notFound, "no such object")
                    }
                    let executable = sharedName.isEmpty && Self.isExecutable(head)
                    let (_, info) = try BytePipe.transfer(produce: { pipe in
                        try source.get(sourceBucket, key: sourceKey, into: pipe, options: GetOptions(ifMatch: head.etag))
                    }, consume: { pipe in
                        try putChecked(key, pipe, metadata: executable ? [Keys.Meta.executable: "1"] : [:], sseKey: sseKey)
                    })
                    stored = StoredFile(id: id, size: info.size, executable: executable)
                }
            case .http(let text):
                let (_, info) = try BytePipe.transfer(produce: { pipe in try external.download(text, into: pipe) },
                                                      consume: { pipe in try putChecked(key, pipe, sseKey: sseKey) })
                stored = StoredFile(id: id, size: info.size, executable: false)
            case .file(let path):
                try checkLocalFiles(caller, urlText)
                let fd = open(path, O_RDONLY | O_CLOEXEC)
                guard fd >= 0 else { throw Self.fileFailure(path, errno) }
                defer { close(fd) }
                var st = Glibc.stat()
                guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
                    throw JobStoreError(.invalidArgument, "\(path) is not a regular file.")
                }
                let executable = sharedName.isEmpty && st.st_mode & S_IXUSR != 0
                let info = try putChecked(key, FileDescriptorSource(fd: fd), metadata: executable ? [Keys.Meta.executable: "1"] : [:],
                                          sseKey: sseKey)
                stored = StoredFile(id: id, size: info.size, executable: executable)
            }
            if sharedName.isEmpty { rememberFileKey(id, key) }
            return sharedName.isEmpty ? stored : StoredFile(id: "", size: stored.size, executable: false)
        } catch let failure as JobStoreError where failure.code == .notFound && failure.kind == .none {
            throw JobStoreError(.notFound, "Nothing to import at \(urlText): \(failure.message)")
        }
    }

    /// Toil's export_file: copies a file out to an s3:// URL (server-side when it can) or to a
    /// local path (atomically, through a temporary file renamed into place, executable bit kept).
    public func exportFile(_ id: String, to urlText: String, external: any ExternalObjects,
                           caller: TransferCaller, sseKey: EncryptionKey? = nil) throws -> StoredFile {
        let url = try TransferURL(urlText)
        let key = try findFileKey(id, sseKey: sseKey)
        switch url {
        case .s3(let targetBucket, let targetKey):
            let target = try mapped { try external.s3Store(forBucket: targetBucket) }
            if let info = try mapped({
                try target.serverSideCopy(from: store, bucket: bucket, key: key, to: targetBucket, key: targetKey,
                                          options: CopyOptions(sourceEncryptionKey: sseKey))
            }) {
                return StoredFile(id: id, size: info.size, executable: Self.isExecutable(info))
            }
            let (info, _) = try BytePipe.transfer(produce: { [self] pipe in
                try getVerified(key, into: pipe, notFound: .noSuchFile(id), sseKey: sseKey)
            }, consume: { pipe in
                try mapped { try target.put(targetBucket, key: targetKey, body: pipe, options: PutOptions()) }
            })
            return StoredFile(id: id, size: info.size, executable: Self.isExecutable(info))
        case .http:
            throw JobStoreError(.invalidArgument, "http(s) URLs can be imported from but not exported to (as in Toil): \(urlText).")
        case .file(let path):
            try checkLocalFiles(caller, urlText)
            let directory = (path as NSString).deletingLastPathComponent
            var template = Array("\(directory)/.\((path as NSString).lastPathComponent).jobstored-XXXXXX".utf8CString)
            let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
            guard fd >= 0 else { throw Self.fileFailure(directory, errno) }
            let temporary = String(cString: template)
            var renamed = false
            defer {
                close(fd)
                if !renamed { unlink(temporary) }
            }
            let info = try getVerified(key, into: FileDescriptorSink(fd: fd), notFound: .noSuchFile(id), sseKey: sseKey)
            let executable = Self.isExecutable(info)
            let mask = umask(0)
            umask(mask)
            fchmod(fd, (executable ? 0o777 : 0o666) & ~mask)
            guard fsync(fd) == 0, rename(temporary, path) == 0 else { throw Self.fileFailure(path, errno) }
            renamed = true
            return StoredFile(id: id, size: info.size, executable: executable)
        }
    }

    private func checkLocalFiles(_ caller: TransferCaller, _ url: String) throws {
        guard caller.mayUseLocalFiles else {
            throw JobStoreError(.permissionDenied, "file:// URLs are opened by the daemon with its own rights; \(caller.description) "
                + "may not use them (\(url)): pass a descriptor with WriteFile or ReadFile instead.")
        }
    }

    static func fileFailure(_ path: String, _ code: Int32) -> JobStoreError {
        let text = String(cString: strerror(code))
        switch code {
        case ENOENT: return JobStoreError(.notFound, "\(path): \(text)")
        case EACCES, EPERM: return JobStoreError(.permissionDenied, "\(path): \(text)")
        default: return JobStoreError(.internal, "\(path): \(text)")
        }
    }
}
