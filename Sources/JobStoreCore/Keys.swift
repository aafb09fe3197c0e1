/// Toil 9.6's bucket layout (toil/jobStores/aws/jobStore.py), so that Toil's own AWSJobStore
/// and the daemon read each other's stores.
enum Keys {
    static let jobs = "jobs/"
    static let jobAssociations = "job-associations/"
    static let flatFiles = "files-flat/"
    static let hintedFiles = "files/"
    static let logs = "logs/"
    /// Shared files live at the bucket root.
    static let shared = ""
    /// Toil's log marker: a shared object whose body is the last log key read.
    static let logMarker = "most_recently_read_log.marker"
    /// The daemon's log-reading state when too large for the marker's metadata (JobStore+Logs).
    static let logState = "most_recently_read_log.marker.jobstored"

    static func job(_ id: String) -> String { jobs + id }
    static func association(job: String, file: String) -> String { "\(jobAssociations)\(job).\(file)" }
    static func associations(of job: String) -> String { "\(jobAssociations)\(job)." }
    static func flatFile(_ id: String, basename: String) -> String { "\(flatFiles)\(id)/\(basename)" }
    static func flatFilePrefix(_ id: String) -> String { "\(flatFiles)\(id)/" }
    static func hintedFile(_ id: String) -> String { hintedFiles + id }

    /// Object metadata the daemon adds (S3 `x-amz-meta-*`); Toil ignores it.
    enum Meta {
        /// SHA-256 of the content, hex; checked on every read.
        static let sha256 = "jobstore-sha256"
        /// "1" when the file is executable (Toil loses this bit; the daemon keeps it).
        static let executable = "jobstore-executable"
        /// The daemon version that wrote the object.
        static let writer = "jobstore-writer"
        /// On Toil's log marker: the daemon's log-reading state (see JobStore+Logs).
        static let logRecent = "jobstore-log-recent"
    }
}

/// Checks on ids and names that arrive from clients, so that no request can address a key
/// outside its store's layout.
enum Names {
    /// Toil's `sharedFileNameRegex`: `^[a-zA-Z0-9._-]+$`.
    static func isValidSharedFileName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy { isAlnum($0) || $0 == 0x2e || $0 == 0x5f || $0 == 0x2d }
    }

    static func isAlnum(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)
    }

    static func hasControlCharacters(_ s: String) -> Bool {
        s.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7f }
    }

    /// A job id: one path component without '.', which separates job from file in
    /// association keys (Toil makes UUIDs).
    static func checkJobID(_ id: String) throws(JobStoreError) {
        guard !id.isEmpty, id.utf8.count <= 256, !id.contains("/"), !id.contains("."),
              !hasControlCharacters(id) else {
            throw JobStoreError.invalidName("Invalid job id \(id.debugDescription): it must be 1-256 characters without '/', '.' or control characters.")
        }
    }

    /// A file id: a UUID-style single component, or a hinted path containing "/files/".
    static func checkFileID(_ id: String) throws(JobStoreError) {
        let components = id.split(separator: "/", omittingEmptySubsequences: false)
        let componentsOK = components.allSatisfy { !$0.isEmpty && $0 != "." && $0 != ".." }
        let shapeOK = components.count == 1 || id.contains("/\(HintTree.filesDirectory)/")
        guard !id.isEmpty, id.utf8.count <= 900, componentsOK, shapeOK, !hasControlCharacters(id) else {
            throw JobStoreError.invalidName("Invalid file id \(id.debugDescription).")
        }
    }

    /// A file's basename: one path component.
    static func checkBasename(_ name: String) throws(JobStoreError) {
        guard !name.isEmpty, name.utf8.count <= 255, !name.contains("/"), name != ".", name != "..",
              !hasControlCharacters(name) else {
            throw JobStoreError.invalidName("Invalid basename \(name.debugDescription): it must be one path component of 1-255 bytes.")
        }
    }

    static func checkSharedFileName(_ name: String) throws(JobStoreError) {
        guard isValidSharedFileName(name) else {
            throw JobStoreError.invalidName("Not a valid shared file name: '\(name)'.")
        }
    }
}
