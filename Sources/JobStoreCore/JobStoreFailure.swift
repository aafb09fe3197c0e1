import JobStoreStatus

/// Why a job-store operation failed: its status and, where Toil has one, the exception kind,
/// both the proto's own (generated into JobStoreStatus). The failure carries what the wire
/// sends, so the server passes it on as it is: storage errors are translated once, here in
/// the core (`JobStore.translate`), and never again on the way out.
public struct JobStoreFailure: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: StatusCode
    public var kind: ErrorKind
    public var message: String

    public init(_ code: StatusCode, _ message: String, kind: ErrorKind = .none) {
        self.code = code
        self.kind = kind
        self.message = message
    }

    /// A failure of a Toil kind, with the status that kind always travels with (`@status`).
    public init(_ kind: ErrorKind, _ message: String) {
        self.init(kind.status ?? .unknown, message, kind: kind)
    }

    public var description: String { message }

    // Toil's exception texts (toil.jobStores.abstractJobStore).
    static func noSuchJob(_ id: String) -> Self {
        Self(.noSuchJob, "The job '\(id)' does not exist.")
    }
    static func noSuchFile(_ id: String) -> Self {
        Self(.noSuchFile, "File '\(id)' does not exist.")
    }
    static func noSuchJobStore(_ locator: String) -> Self {
        Self(.noSuchJobStore, "The job store '\(locator)' does not exist, so there is nothing to restart.")
    }
    static func jobStoreExists(_ locator: String) -> Self {
        Self(.jobStoreExists, "The job store '\(locator)' already exists. Use --restart to resume the workflow, or remove "
             + "the job store with 'toil clean' to start the workflow from scratch.")
    }
    /// toil.lib.aws.s3's AWSBadEncryptionKeyError text, which Toil's tests look for.
    static func badEncryptionKey(_ detail: String) -> Self {
        Self(.badEncryptionKey, "Your AWS encryption key is most likely configured incorrectly (\(detail)).")
    }
    static func invalidName(_ message: String) -> Self {
        Self(.invalidName, message)
    }
}
