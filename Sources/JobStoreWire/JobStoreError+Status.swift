// The status codes, Toil kinds and JobStoreError live in JobStoreStatus, the module below every
// layer that fails; whoever speaks the wire gets them with it.
@_exported import JobStoreStatus

/// The one translation at the wire: a JobStoreError is a `Status` message and back.
extension JobStoreError {
    public init(status: Status) {
        self.init(StatusCode(rawValue: UInt16(truncatingIfNeeded: status.code)) ?? .unknown,
                  status.message, kind: status.kind)
    }

    public var status: Status {
        Status(code: UInt32(code.rawValue), message: message, kind: kind)
    }
}
