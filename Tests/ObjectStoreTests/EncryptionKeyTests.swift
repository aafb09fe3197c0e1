import ObjectStore
import XCTest

/// The SSE-C key value: exactly 32 bytes, named by its digest, never printed.
final class EncryptionKeyTests: XCTestCase {
    func testOnlyThirtyTwoBytesMakeAKey() {
        XCTAssertNil(EncryptionKey(bytes: []))
        XCTAssertNil(EncryptionKey(bytes: [UInt8](repeating: 1, count: 31)))
        XCTAssertNil(EncryptionKey(bytes: [UInt8](repeating: 1, count: 33)))
        XCTAssertNotNil(EncryptionKey(bytes: [UInt8](repeating: 1, count: 32)))
    }

    func testTheDigestNamesTheKeyAndNothingPrintsIt() throws {
        let bytes = Array("01234567890123456789012345678901".utf8)
        let key = try XCTUnwrap(EncryptionKey(bytes: bytes))
        // sha256("01234567890123456789012345678901")
        XCTAssertEqual(key.digest, SHA256Digest.hex(of: bytes))
        XCTAssertEqual(key, EncryptionKey(bytes: bytes))
        XCTAssertNotEqual(key, EncryptionKey(bytes: [UInt8](repeating: 0, count: 32)))
        for text in ["\(key)", String(describing: key), String(reflecting: key), "\(Optional(key) as Any)"] {
            XCTAssertFalse(text.contains("0123456789"), text)
            XCTAssertFalse(text.contains(Data(bytes).base64EncodedString()), text)
        }
        key.withUnsafeBytes { XCTAssertEqual(Array($0), bytes) }
    }
}
