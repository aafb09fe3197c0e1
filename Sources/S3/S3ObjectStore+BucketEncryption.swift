import Foundation
import ObjectStore

extension S3ObjectStore {
    /// PutBucketEncryption with the rule AWS documents for unblocking SSE-C, as Toil 9.4+ does
    /// for every bucket it creates (`toil.lib.aws.utils.enable_encryption`): since 2025 AWS
    /// blocks SSE-C on new buckets unless told otherwise, and the rule that says so reads
    /// "block the encryption type NONE" (the list may not be empty).
    ///
    /// A server without the call (501 NotImplemented, 405) or without the rule (400: a dialect
    /// that only knows default-encryption rules) is `.notSupported`: such servers have no SSE-C
    /// block to lift (SeaweedFS accepts SSE-C without it). A refusal (403 AccessDenied: the
    /// credentials may not configure the bucket) throws, as SSE-C writes would fail later.
    public func allowCustomerKeys(_ bucket: String) throws -> CustomerKeySetting {
        let body = Array(Self.allowCustomerKeysXML.utf8)
        do {
            let response = try client.send("PUT", bucket: bucket, query: [("encryption", "")],
                                           headers: [("Content-MD5", Base64.encode(MD5.digest(body))),
                                                     ("Content-Type", "application/xml")],
                                           body: body, accept: [405, 501])
            if response.status == 405 || response.status == 501 {
                return .notSupported("the S3 server does not implement PutBucketEncryption (HTTP \(response.status))")
            }
            return .allowed
        } catch let e as S3Client.S3Error where e.code == "NotImplemented" || e.code == "MethodNotAllowed" {
            return .notSupported("the S3 server does not implement PutBucketEncryption (\(e.status) \(e.code))")
        } catch let e as S3Client.S3Error where e.status == 400 {
            // A dialect that knows bucket encryption but not the rule (SeaweedFS 4 answers
            // InvalidEncryptionAlgorithmError): it has no SSE-C block to lift either.
            return .notSupported("the S3 server does not understand the BlockedEncryptionTypes rule (\(e.status) \(e.code): \(e.message))")
        } catch let e as S3Client.S3Error {
            throw ObjectStoreError.permissionDenied("PutBucketEncryption on \(bucket) was refused (\(e.status) \(e.code): \(e.message))")
        } catch {
            throw map(error, bucket: bucket, key: nil)
        }
    }

    static let allowCustomerKeysXML = """
        <ServerSideEncryptionConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Rule>\
        <BlockedEncryptionTypes><EncryptionType>NONE</EncryptionType></BlockedEncryptionTypes>\
        </Rule></ServerSideEncryptionConfiguration>
        """
}
