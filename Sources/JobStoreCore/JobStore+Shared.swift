import ObjectStore

extension JobStore {
    /// Writes a shared file (named, at the bucket root) atomically, with SSE-C when `sseKey` is
    /// given, except config.pickle, which Toil must read before it knows any key.
    public func writeSharedFile(_ name: String, from source: any ByteSource, sseKey: EncryptionKey? = nil) throws {
        try Names.checkSharedFileName(name)
        try putChecked(Keys.shared + name, source, sseKey: Self.alwaysUnencrypted.contains(name) ? nil : sseKey)
    }

    /// Reads a shared file. One written in the clear (Toil's encrypted=False) is also read when
    /// the caller holds a key: the keyed read is refused before any byte arrives, and only then
    /// is the object read without a key (which never yields an SSE-C object's bytes).
    public func readSharedFile(_ name: String, into sink: any ByteSink, sseKey: EncryptionKey? = nil) throws -> StoredFile {
        try Names.checkSharedFileName(name)
        let key = Self.alwaysUnencrypted.contains(name) ? nil : sseKey
        do {
            let info = try getVerified(Keys.shared + name, into: sink, notFound: missingShared(name), sseKey: key)
            return StoredFile(id: name, size: info.size, executable: false)
        } catch let keyed as JobStoreFailure where keyed.kind == .badEncryptionKey && key != nil {
            do {
                let info = try getVerified(Keys.shared + name, into: sink, notFound: missingShared(name), sseKey: nil)
                return StoredFile(id: name, size: info.size, executable: false)
            } catch let keyless as JobStoreFailure where keyless.kind == .badEncryptionKey {
                throw keyed  // an SSE-C object with another key: the keyed read's reason is the one to tell
            }
        }
    }

    public func sharedFileExists(_ name: String, sseKey: EncryptionKey? = nil) throws -> Bool {
        try Names.checkSharedFileName(name)
        let key = Self.alwaysUnencrypted.contains(name) ? nil : sseKey
        do {
            return try mapped { try store.head(bucket, key: Keys.shared + name, options: GetOptions(encryptionKey: key)) != nil }
        } catch let keyed as JobStoreFailure where keyed.kind == .badEncryptionKey && key != nil {
            // Written in the clear (encrypted=False), as readSharedFile allows.
            do {
                return try mapped { try store.head(bucket, key: Keys.shared + name, options: GetOptions()) != nil }
            } catch let keyless as JobStoreFailure where keyless.kind == .badEncryptionKey {
                throw keyed
            }
        }
    }

    public func sharedFileURL(_ name: String, expiresIn seconds: Int, sseKey: EncryptionKey? = nil) throws -> String {
        try Names.checkSharedFileName(name)
        let key = Self.alwaysUnencrypted.contains(name) ? nil : sseKey
        try refusePresigningEncrypted(Keys.shared + name, what: "shared file \(name)")
        guard try sharedFileExists(name, sseKey: key) else { throw missingShared(name) }
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
