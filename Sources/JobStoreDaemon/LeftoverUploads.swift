import Foundation
import Logging
import S3

/// What a crashed predecessor left open in S3, cleaned up at start.
enum LeftoverUploads {
    /// Aborts the multipart uploads a crashed predecessor left open (in the background: S3 may
    /// be slow or away), then starts the journal afresh. Only while this daemon holds the
    /// cache directory's lock, so never the uploads of a daemon still draining.
    static func abort(_ stores: S3Stores, logger: Logger) {
        guard let journal = stores.journal else { return }
        let (leftovers, intents) = journal.unfinished()
        journal.reset()
        guard !leftovers.isEmpty || !intents.isEmpty else { return }
        let thread = Thread {
            var aborted = 0
            var attempted = leftovers.count
            for upload in leftovers {
                do {
                    try stores.store(region: upload.region).abortUpload(upload.bucket, key: upload.key, uploadID: upload.uploadID)
                    aborted += 1
                } catch {
                    logger.warning("could not abort upload \(upload.uploadID) of \(upload.bucket)/\(upload.key): \(error)")
                }
            }
            // A CreateMultipartUpload whose answer the crash lost: its upload has no journaled id.
            // It is the upload of that key S3 lists as begun since the intent (60 s allowed for
            // the clocks' difference); one of another node's, of the same key in that minute,
            // would be aborted too: its writer then fails and is retried, nothing is torn.
            let named = Set(leftovers.map(\.uploadID))
            for intent in intents {
                do {
                    let store = stores.store(region: intent.region)
                    for upload in try store.listMultipartUploads(intent.bucket)
                    where upload.key == intent.key && upload.initiated >= intent.since - 60 && !named.contains(upload.uploadID) {
                        attempted += 1
                        try store.abortUpload(intent.bucket, key: upload.key, uploadID: upload.uploadID)
                        aborted += 1
                    }
                } catch {
                    logger.warning("could not look for an upload of \(intent.bucket)/\(intent.key) begun when the daemon stopped: \(error)")
                }
            }
            logger.notice("aborted \(aborted) of \(attempted) multipart upload(s) left open by a previous run")
        }
        thread.start()
    }
}
