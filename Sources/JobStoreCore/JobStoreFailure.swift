/// Why a job-store operation failed: a status class and, where Toil has one, the exception
/// kind. The server maps both 1:1 onto the wire's status code and ErrorKind.
public struct JobStoreFailure: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: Sendable, Equatable {
        case invalidArgument, notFound, alreadyExists, permissionDenied, failedPrecondition
        case resourceExhausted, aborted, dataLoss, unavailable, cancelled, `internal`
    }

    public enum Kind: Sendable, Equatable {
        case none, noSuchJob, noSuchFile, noSuchJobStore, jobStoreExists
        case concurrentModification, badEncryptionKey, invalidLocator, invalidName
    }

    public var code: Code
    public var kind: Kind
    public var message: String

    public init(_ code: Code, _ message: String, kind: Kind = .none) {
        self.code = code
        self.kind = kind
        self.message = message
    }

    public var description: String { message }

    // Toil's exception texts (toil.jobStores.abstractJobStore).
    static func noSuchJob(_ id: String) -> Self {
        Self(.notFound, "The job '\(id)' does not exist.", kind: .noSuchJob)
    }
    static func noSuchFile(_ id: String) -> Self {
        Self(.notFound, "File '\(id)' does not exist.", kind: .noSuchFile)
    }
    static func noSuchJobStore(_ locator: String) -> Self {
        Self(.notFound, "The job store '\(locator)' does not exist, so there is nothing to restart.", kind: .noSuchJobStore)
    }
    static func jobStoreExists(_ locator: String) -> Self {
        Self(.alreadyExists, "The job store '\(locator)' already exists. Use --restart to resume the workflow, or remove "
             + "the job store with 'toil clean' to start the workflow from scratch.", kind: .jobStoreExists)
    }
    /// toil.lib.aws.s3's AWSBadEncryptionKeyError text, which Toil's tests look for.
    static func badEncryptionKey(_ detail: String) -> Self {
        Self(.permissionDenied, "Your AWS encryption key is most likely configured incorrectly (\(detail)).", kind: .badEncryptionKey)
    }
    static func invalidName(_ message: String) -> Self {
        Self(.invalidArgument, message, kind: .invalidName)
    }
}
