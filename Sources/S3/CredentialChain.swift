import Foundation
import Synchronization

/// Where the daemon's one credential set comes from, in AWS's order: the environment, the
/// shared `credentials`/`config` files (profile from `AWS_PROFILE`), ECS container credentials,
/// then EC2 instance metadata (IMDSv2). Temporary credentials are refreshed five minutes before
/// they expire, by one caller at a time while the others keep the still-valid set. When no
/// source has credentials the error names every source and why it gave none; secrets are never
/// part of any message.
public final class CredentialChain: Sendable {
    /// Refresh this long before expiry.
    public static let refreshMargin: Double = 300

    private let environment: [String: String]
    private let session: CurlSession
    private let now: @Sendable () -> Double
    /// What `state` guards: the credentials last resolved, and where they came from.
    private struct State {
        var cached: AWSCredentials?
        /// Which source gave the cached credentials (for logs: never the secret).
        var source = ""
    }
    private let state = Mutex(State())
    /// Held across a refresh, so that one caller at a time resolves credentials.
    private let refreshing = Mutex(())

    /// Which source gave the cached credentials (for logs: never the secret).
    public var source: String { state.withLock { $0.source } }

    public init(environment: [String: String] = ProcessInfo.processInfo.environment, session: CurlSession,
                now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) {
        self.environment = environment
        self.session = session
        self.now = now
    }

    /// Valid credentials, resolving or refreshing them when needed.
    public func credentials() throws -> AWSCredentials {
        if let current = fresh() { return current }
        return try refreshing.withLock { _ in
            if let current = fresh() { return current }  // another caller refreshed meanwhile
            do {
                let (found, from) = try resolve()
                state.withLock { s in
                    s.cached = found
                    s.source = from
                }
                return found
            } catch {
                // A refresh that fails while the old set is still valid keeps the old set.
                return try state.withLock { s in
                    if let old = s.cached, let expiry = old.expiration, expiry > now() { return old }
                    throw error
                }
            }
        }
    }

    private func fresh() -> AWSCredentials? {
        state.withLock { s in
            guard let c = s.cached else { return nil }
            if let expiry = c.expiration, expiry - Self.refreshMargin <= now() { return nil }
            return c
        }
    }

    /// The first source that has credentials, or an error listing why each had none.
    func resolve() throws -> (AWSCredentials, String) {
        var tried: [String] = []
        let sources: [(String, () throws -> AWSCredentials?)] = [
            ("environment", fromEnvironment), ("shared files", fromSharedFiles), ("ECS container", fromContainer),
            ("EC2 instance metadata", fromInstanceMetadata),
        ]
        for (name, source) in sources {
            do {
                if let found = try source() { return (found, name) }
            } catch let why as Unavailable {
                tried.append("\(name): \(why.reason)")
            }
        }
        throw CredentialsError(message: "No AWS credentials found. Tried " + tried.joined(separator: "; ") + ".")
    }

    /// Why one source gave nothing.
    struct Unavailable: Error {
        let reason: String
    }

    private func fromEnvironment() throws -> AWSCredentials? {
        guard let key = environment["AWS_ACCESS_KEY_ID"], !key.isEmpty else {
            throw Unavailable(reason: "AWS_ACCESS_KEY_ID is not set")
        }
        guard let secret = environment["AWS_SECRET_ACCESS_KEY"], !secret.isEmpty else {
            throw Unavailable(reason: "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not")
        }
        let token = environment["AWS_SESSION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        return AWSCredentials(accessKeyID: key, secretAccessKey: secret, sessionToken: token)
    }

    private func fromSharedFiles() throws -> AWSCredentials? {
        let home = environment["HOME"] ?? NSHomeDirectory()
        let credentialsPath = environment["AWS_SHARED_CREDENTIALS_FILE"] ?? "\(home)/.aws/credentials"
        let config = SharedConfigFile.profileInConfig(environment)
        let profile = config.profile
        var notes: [String] = []
        // The credentials file names sections by profile, the config file as `config.section`.
        let places = [(credentialsPath, profile), (config.path, config.section)]
        for (path, section) in places {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                notes.append("\(path) not readable")
                continue
            }
            let values = SharedConfigFile.section(section, in: text)
            guard let values else {
                notes.append("no [\(section)] in \(path)")
                continue
            }
            guard let key = values["aws_access_key_id"], let secret = values["aws_secret_access_key"] else {
                notes.append("[\(section)] in \(path) has no aws_access_key_id/aws_secret_access_key")
                continue
            }
            return AWSCredentials(accessKeyID: key, secretAccessKey: secret, sessionToken: values["aws_session_token"])
        }
        throw Unavailable(reason: "profile \(profile): " + notes.joined(separator: ", "))
    }

    private func fromContainer() throws -> AWSCredentials? {
        let url: String
        if let relative = environment["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"] {
            url = "http://169.254.170.2" + relative
        } else if let full = environment["AWS_CONTAINER_CREDENTIALS_FULL_URI"] {
            url = full
        } else {
            throw Unavailable(reason: "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and _FULL_URI are not set")
        }
        var headers: [(String, String)] = []
        if let tokenFile = environment["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] {
            guard let token = try? String(contentsOfFile: tokenFile, encoding: .utf8) else {
                throw Unavailable(reason: "cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE \(tokenFile)")
            }
            headers.append(("Authorization", token.trimmingCharacters(in: .whitespacesAndNewlines)))
        } else if let token = environment["AWS_CONTAINER_AUTHORIZATION_TOKEN"] {
            headers.append(("Authorization", token))
        }
        let body = try fetch("GET", url, headers: headers, what: "container credentials at \(url)")
        return try parse(body, what: "container credentials at \(url)")
    }

    private func fromInstanceMetadata() throws -> AWSCredentials? {
        if environment["AWS_EC2_METADATA_DISABLED"]?.lowercased() == "true" {
            throw Unavailable(reason: "AWS_EC2_METADATA_DISABLED is true")
        }
        var base = environment["AWS_EC2_METADATA_SERVICE_ENDPOINT"] ?? "http://169.254.169.254"
        while base.hasSuffix("/") { base.removeLast() }
        let what = "instance metadata at \(base)"
        let token = String(decoding: try fetch("PUT", base + "/latest/api/token",
                                               headers: [("X-aws-ec2-metadata-token-ttl-seconds", "21600")], what: what), as: UTF8.self)
        let auth = [("X-aws-ec2-metadata-token", token)]
        let roles = String(decoding: try fetch("GET", base + "/latest/meta-data/iam/security-credentials/", headers: auth, what: what),
                           as: UTF8.self)
        guard let role = roles.split(whereSeparator: \.isNewline).first.map(String.init), !role.isEmpty else {
            throw Unavailable(reason: "\(what): the instance has no IAM role")
        }
        let body = try fetch("GET", base + "/latest/meta-data/iam/security-credentials/" + role, headers: auth, what: what)
        return try parse(body, what: "\(what) (role \(role))")
    }

    private func fetch(_ method: String, _ url: String, headers: [(String, String)], what: String) throws -> [UInt8] {
        let response: CurlSession.Response
        do {
            response = try session.perform(CurlSession.Request(method: method, url: url, headers: headers, timeoutSeconds: 2))
        } catch {
            throw Unavailable(reason: "\(what): \(error)")
        }
        guard response.status == 200 else { throw Unavailable(reason: "\(what): HTTP \(response.status)") }
        return response.body
    }

    /// The JSON both ECS and EC2 answer: AccessKeyId, SecretAccessKey, Token, Expiration.
    private func parse(_ body: [UInt8], what: String) throws -> AWSCredentials {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any],
              let key = object["AccessKeyId"] as? String, let secret = object["SecretAccessKey"] as? String else {
            throw Unavailable(reason: "\(what): the answer is not a credentials document")
        }
        var expiration: Double?
        if let text = object["Expiration"] as? String {
            guard let parsed = S3ObjectStore.parseISO8601(text) else {
                throw Unavailable(reason: "\(what): unreadable Expiration \(text)")
            }
            expiration = parsed
        }
        return AWSCredentials(accessKeyID: key, secretAccessKey: secret, sessionToken: object["Token"] as? String,
                              expiration: expiration)
    }
}

/// No source had credentials; the message says what was tried.
public struct CredentialsError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

/// The INI dialect of `~/.aws/credentials` and `~/.aws/config`.
enum SharedConfigFile {
    /// The config file (`AWS_CONFIG_FILE`, else `~/.aws/config`), the profile (`AWS_PROFILE`,
    /// else `AWS_DEFAULT_PROFILE`, else `default`) and its section there: "profile NAME",
    /// except for the default profile.
    static func profileInConfig(_ environment: [String: String]) -> (path: String, profile: String, section: String) {
        let home = environment["HOME"] ?? NSHomeDirectory()
        let profile = environment["AWS_PROFILE"] ?? environment["AWS_DEFAULT_PROFILE"] ?? "default"
        return (environment["AWS_CONFIG_FILE"] ?? "\(home)/.aws/config", profile, profile == "default" ? "default" : "profile \(profile)")
    }

    /// The key/value pairs of `[name]`, or nil when there is no such section.
    static func section(_ name: String, in text: String) -> [String: String]? {
        var current: String?
        var found: [String: String]?
        for rawLine in text.split(whereSeparator: \.isNewline) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") && line.hasSuffix("]") {
                current = line.dropFirst().dropLast().trimmingCharacters(in: .whitespaces)
                if current == name, found == nil { found = [:] }
                continue
            }
            guard current == name, let eq = line.firstIndex(of: "=") else { continue }
            let key = line[..<eq].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            found?[key] = value
        }
        return found
    }
}
