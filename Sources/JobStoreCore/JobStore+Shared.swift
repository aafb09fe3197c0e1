import ObjectStore

extension JobStore {
    /// Writes a shared file (named, at the bucket root) atomically, with SSE-C when `sseKey` is
    /// given, except config.pickle, which Toil must read before it knows any key.
    public func writeSharedFile(_ name: String, from source: any ByteSource, sseKey: EncryptionKey? = nil) throws {
        try Names.checkSharedFileName(name)
        try putChecked(Keys.shared + name, source, sseKey: Self.sharedKey(name, sseKey))
    }

    /// Reads a shared file. One written in the clear (Toil's encrypted=False) is also read when
    /// the caller holds a key (see `orInTheClear`).
    public func readSharedFile(_ name: String, into sink: any ByteSink, sseKey: EncryptionKey? = nil) throws -> StoredFile {
        try Names.checkSharedFileName(name)
        let info = try Self.orInTheClear(Self.sharedKey(name, sseKey)) { key in
            try getVerified(Keys.shared + name, into: sink, notFound: missingShared(name), sseKey: key)
        }
        return StoredFile(id: name, size: info.size, executable: false)
    }

    public func sharedFileExists(_ name: String, sseKey: EncryptionKey? = nil) throws -> Bool {
        try Names.checkSharedFileName(name)
        return try Self.orInTheClear(Self.sharedKey(name, sseKey)) { key in
            try mapped { try store.head(bucket, key: Keys.shared + name, options: GetOptions(encryptionKey: key)) != nil }
        }
    }

    /// One keyless HEAD tells both whether the file exists and whether it is SSE-C (refused):
    /// no key is involved, as a URL can carry none.
    public func sharedFileURL(_ name: String, expiresIn seconds: Int) throws -> String {
        try Names.checkSharedFileName(name)
        guard try refusePresigningEncrypted(Keys.shared + name, what: "shared file \(name)") else { throw missingShared(name) }
        return try mapped { try store.url(bucket, key: Keys.shared + name, expiresIn: seconds) }
    }

    /// Toil reads config.pickle before it knows the store's key, so it is never encrypted.
    static let alwaysUnencrypted: Set<String> = ["config.pickle"]

    /// The key a shared file is written and read with: none for config.pickle.
    static func sharedKey(_ name: String, _ sseKey: EncryptionKey?) -> EncryptionKey? {
        alwaysUnencrypted.contains(name) ? nil : sseKey
    }

    /// `access` with the caller's key and, when S3 refuses that key, without one: shared files
    /// written with encrypted=False are in the clear even where a key is configured. The keyed
    /// request is refused before any byte arrives, and a keyless one never yields an SSE-C
    /// object's bytes; if both are refused, the keyed refusal is the reason told.
    static func orInTheClear<T>(_ key: EncryptionKey?, _ access: (EncryptionKey?) throws -> T) throws -> T {
        do {
            return try access(key)
        } catch let keyed as JobStoreError where keyed.kind == .badEncryptionKey && key != nil {
            do {
                return try access(nil)
            } catch let keyless as JobStoreError where keyless.kind == .badEncryptionKey {
                throw keyed
            }
        }
    }

    /// Toil's NoSuchFileException for a shared file names its S3 URL.
    private func missingShared(_ name: String) -> JobStoreError {
        switch locator {
        case .aws: .noSuchFile("s3://\(bucket)/\(Keys.shared)\(name)")
        case .local: .noSuchFile(name)
        }
    }
}
