import Foundation
import ObjectStore

/// The on-disk record of one finished entry, next to its data file. A directory of these is the
/// cache's index: each is written to a temporary file and renamed into place only after its data
/// file was, so at every instant (a kill -9 included) a manifest names complete data.
struct CacheManifest: Codable, Equatable {
    static let formatVersion = 1

    var format = CacheManifest.formatVersion
    var key: CacheKey
    var etag: String
    var size: UInt64
    /// SHA-256 of the data file's bytes, checked when the cache was not shut down cleanly.
    var sha256: String
    var metadata: [String: String]
    var lastModified: Double
    /// SHA-256 of the SSE-C key the object was read with (empty: none): a reader with another
    /// key must not be served these bytes without the store checking its key.
    var secretDigest: String
    /// Seconds since 1970 when the entry was filled; the newest wins if a key has two.
    var filled: Double

    var info: ObjectInfo {
        ObjectInfo(key: key.key, size: size, etag: etag, metadata: metadata, lastModified: lastModified)
    }

    func encoded() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return [UInt8](try encoder.encode(self))
    }

    static func decode(_ bytes: [UInt8]) -> CacheManifest? {
        guard let manifest = try? JSONDecoder().decode(CacheManifest.self, from: Data(bytes)),
              manifest.format == formatVersion else { return nil }
        return manifest
    }
}
