import ObjectStore

extension JobStore {
    /// Writes a shared file (named, at the bucket root) atomically.
    /// `encrypted: false` stores it without SSE-C, as Toil does for config.pickle.
    public func writeSharedFile(_ name: String, from source: any ByteSource, encrypted: Bool) throws {
        try Names.checkSharedFileName(name)
        try putChecked(Keys.shared + name, source, encrypted: encrypted && !Self.alwaysUnencrypted.contains(name))
    }

    /// Reads a shared file; one written unencrypted (Toil's encrypted=False) in a store with a
    /// key is read without the key when the keyed read is refused before any byte arrived.
    public func readSharedFile(_ name: String, into sink: any ByteSink) throws -> StoredFile {
        try Names.checkSharedFileName(name)
        let encrypted = !Self.alwaysUnencrypted.contains(name) && !options.sseKeyPath.isEmpty
        do {
            let info = try getVerified(Keys.shared + name, into: sink, notFound: missingShared(name), encrypted: encrypted)
            return StoredFile(id: name, size: info.size, executable: false)
        } catch let f as JobStoreFailure where f.kind == .badEncryptionKey && encrypted {
            let info = try getVerified(Keys.shared + name, into: sink, notFound: missingShared(name), encrypted: false)
            return StoredFile(id: name, size: info.size, executable: false)
        }
    }

    public func sharedFileExists(_ name: String) throws -> Bool {
        try Names.checkSharedFileName(name)
        return try mapped {
            try store.head(bucket, key: Keys.shared + name, options: getOptions(encrypted: !Self.alwaysUnencrypted.contains(name))) != nil
        }
    }

    public func sharedFileURL(_ name: String, expiresIn seconds: Int) throws -> String {
        try Names.checkSharedFileName(name)
        guard try sharedFileExists(name) else { throw missingShared(name) }
        return try mapped { try store.url(bucket, key: Keys.shared + name, expiresIn: seconds) }
    }

    /// Toil reads config.pickle before it knows the store's key, so it is never encrypted.
    static let alwaysUnencrypted: Set<String> = ["config.pickle"]

    /// Toil's NoSuchFileException for a shared file names its S3 URL.
    private func missingShared(_ name: String) -> JobStoreFailure {
        switch locator {
        case .aws: .noSuchFile("s3://\(bucket)/\(Keys.shared)\(name)")
        case .local: .noSuchFile(name)
        }
    }
}
