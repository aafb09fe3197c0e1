// The failures the core raises are JobStoreErrors (JobStoreStatus): whoever uses the core sees
// the type its operations throw.
@_exported import JobStoreStatus

/// Toil's exception texts (toil.jobStores.abstractJobStore), with their kinds: the core's
/// failures say what Toil's own store says, so Toil's tests and users read the same words.
extension JobStoreError {
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
