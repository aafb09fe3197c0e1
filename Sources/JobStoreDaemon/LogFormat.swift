import Foundation
import Logging

/// How the daemon writes its log to stderr: text for people, JSON lines for journald's
/// structured fields or a log shipper. There is no log file to rotate: under systemd stderr
/// goes to the journal.
public enum LogFormat: String, Sendable {
    case text, json

    public func handler(label: String, level: Logger.Level) -> any LogHandler {
        switch self {
        case .text:
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        case .json:
            var handler = JSONLogHandler(label: label)
            handler.logLevel = level
            return handler
        }
    }
}
