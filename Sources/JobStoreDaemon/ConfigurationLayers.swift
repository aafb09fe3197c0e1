import Foundation

/// Merges jobstored's three sources of settings — command line, `JOBSTORED_*` environment,
/// configuration file — into the one argument list ArgumentParser parses, highest first: a
/// setting given on the command line ignores the environment's and the file's; one in the
/// environment ignores the file's (for repeatable settings too: a higher layer replaces the
/// whole list). Remembers where each setting came from for `--print-config`.
public struct ConfigurationLayers: Sendable {
    /// Where a setting came from, as --print-config shows it.
    public enum Source: Equatable, Sendable, CustomStringConvertible {
        case commandLine
        case environment(String)
        case file(String, line: Int)

        public var description: String {
            switch self {
            case .commandLine: "flag"
            case .environment(let name): "env \(name)"
            case .file(let path, let line): "file \(path):\(line)"
            }
        }
    }

    /// The merged arguments: the lower layers' settings as options, then the command line.
    public var arguments: [String] = []
    public var sources: [String: Source] = [:]
    /// The configuration file read, if any.
    public var configFile: String?
    /// Unknown `JOBSTORED_*` variables and similar, for the log.
    public var warnings: [String] = []

    /// A configuration file or variable that cannot be read as settings (a usage error).
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public init(commandLine: [String], environment: [String: String], fileExists: (String) -> Bool = { FileManager.default.fileExists(atPath: $0) },
         readFile: (String) throws -> String = ConfigurationLayers.read) throws {
        let given = Self.namesGiven(commandLine)
        for name in given where DaemonSettings.byName[name] != nil { sources[name] = .commandLine }

        // Environment.
        var fromEnvironment: [(DaemonSettings.Setting, [String], String)] = []
        let known = Set(DaemonSettings.all.map(\.environmentName)).union(["JOBSTORED_CONFIG"])
        for (name, _) in environment where name.hasPrefix("JOBSTORED_") && !known.contains(name) {
            warnings.append("ignoring \(name): jobstored has no such setting")
        }
        for setting in DaemonSettings.all {
            guard let text = environment[setting.environmentName], !given.contains(setting.name) else { continue }
            let values = setting.shape == .repeated
                ? text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
                : [text]
            fromEnvironment.append((setting, values, setting.environmentName))
        }

        // The file.
        // --help and --version answer without reading any file.
        let informational = commandLine.contains { ["--help", "-h", "--version", "help"].contains($0) }
        var path = Self.value(of: "config", in: commandLine) ?? environment["JOBSTORED_CONFIG"]
        let explicit = path != nil
        // An empty name asks for no file at all (not even the default one).
        if path == "" { path = nil }
        if path == nil, !explicit, fileExists(DaemonSettings.defaultConfigFile) { path = DaemonSettings.defaultConfigFile }
        var fromFile: [String: (values: [String], line: Int)] = [:]
        if let chosen = path, !informational {
            var text: String?
            do {
                text = try readFile(chosen)
            } catch {
                let reason = (error as? Failure)?.description ?? "cannot read the configuration file \(chosen): \(error.localizedDescription)"
                // The implicit file may be the system service's, unreadable to this user.
                guard !explicit else { throw Failure(description: reason) }
                warnings.append("ignoring the default configuration file: \(reason)")
                path = nil
            }
            if let text {
                configFile = chosen
                fromFile = try Self.parseFile(text, path: chosen)
            }
        } else {
            path = nil
        }

        var lower: [String] = []
        let environmentNames = Set(fromEnvironment.map(\.0.name))
        for setting in DaemonSettings.all {
            if given.contains(setting.name) { continue }
            if let (_, values, variable) = fromEnvironment.first(where: { $0.0.name == setting.name }) {
                lower += try Self.options(setting, values, origin: variable)
                sources[setting.name] = .environment(variable)
            } else if !environmentNames.contains(setting.name), let (values, line) = fromFile[setting.name] {
                lower += try Self.options(setting, values, origin: "\(path!):\(line)")
                sources[setting.name] = .file(path!, line: line)
            }
        }
        arguments = lower + commandLine
    }

    /// A file's text, read to its end (works for /dev/null and pipes too).
    public static func read(_ path: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw Failure(description: "cannot read the configuration file \(path): \(String(cString: strerror(errno)))")
        }
        defer { try? handle.close() }
        let data = handle.readDataToEndOfFile()
        guard let text = String(data: data, encoding: .utf8) else {
            throw Failure(description: "the configuration file \(path) is not UTF-8 text")
        }
        return text
    }

    /// `key = value` lines; `#` starts a comment outside quotes; values may be TOML-style
    /// double-quoted strings; repeatable settings repeat their key.
    static func parseFile(_ text: String, path: String) throws -> [String: (values: [String], line: Int)] {
        var result: [String: (values: [String], line: Int)] = [:]
        // Lines end with LF or CRLF (a file edited on Windows); "\r\n" is one Character in Swift.
        for (index, raw) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let number = index + 1
            let line = stripComment(String(raw)).trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            guard let equals = line.firstIndex(of: "=") else {
                throw Failure(description: "\(path):\(number): expected `name = value`, found \(line.debugDescription)")
            }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "_", with: "-")
            var value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            guard let setting = DaemonSettings.byName[key] else {
                throw Failure(description: "\(path):\(number): unknown setting \(key.debugDescription) (see jobstored --help)")
            }
            if value.hasPrefix("\"") {
                guard let unquoted = unquote(value) else {
                    throw Failure(description: "\(path):\(number): unterminated or malformed quoted value")
                }
                value = unquoted
            }
            if let existing = result[key] {
                guard setting.shape == .repeated else {
                    throw Failure(description: "\(path):\(number): \(key) is set twice (first on line \(existing.line))")
                }
                result[key] = (existing.values + [value], existing.line)
            } else {
                result[key] = ([value], number)
            }
        }
        return result
    }

    /// The command-line options for one setting's values from a lower layer.
    static func options(_ setting: DaemonSettings.Setting, _ values: [String], origin: String) throws -> [String] {
        switch setting.shape {
        case .flag:
            switch values.last?.lowercased() ?? "" {
            case "true", "yes", "1", "on": return ["--\(setting.name)"]
            case "false", "no", "0", "off": return []
            default: throw Failure(description: "\(origin): \(setting.name) is a flag: true or false, not \(values.last ?? "")")
            }
        case .value:
            return ["--\(setting.name)=\(values.last ?? "")"]
        case .repeated:
            return values.flatMap { ["--\(setting.name)=\($0)"] }
        }
    }

    /// Long option names on a command line (`--name` and `--name=value`), up to a bare `--`.
    static func namesGiven(_ arguments: [String]) -> Set<String> {
        var names = Set<String>()
        for argument in arguments {
            if argument == "--" { break }
            guard argument.hasPrefix("--") else { continue }
            let body = argument.dropFirst(2)
            names.insert(String(body.split(separator: "=", maxSplits: 1).first ?? body))
        }
        return names
    }

    static func value(of name: String, in arguments: [String]) -> String? {
        var found: String?
        var i = 0
        while i < arguments.count {
            let argument = arguments[i]
            if argument == "--" { break }
            if argument == "--\(name)", i + 1 < arguments.count { found = arguments[i + 1]; i += 1 }
            else if argument.hasPrefix("--\(name)=") { found = String(argument.dropFirst(name.count + 3)) }
            i += 1
        }
        return found
    }

    static func stripComment(_ line: String) -> String {
        var quoted = false
        var escaped = false
        for (offset, c) in line.enumerated() {
            if escaped { escaped = false; continue }
            if c == "\\" && quoted { escaped = true; continue }
            if c == "\"" { quoted.toggle() }
            if c == "#" && !quoted { return String(line.prefix(offset)) }
        }
        return line
    }

    /// A TOML basic string: `"..."` with `\"`, `\\`, `\t`, `\n` escapes; nil if malformed.
    static func unquote(_ text: String) -> String? {
        guard text.count >= 2, text.hasPrefix("\""), text.hasSuffix("\"") else { return nil }
        var out = ""
        var escaped = false
        for c in text.dropFirst().dropLast() {
            if escaped {
                switch c {
                case "n": out.append("\n")
                case "t": out.append("\t")
                case "\\", "\"": out.append(c)
                default: return nil
                }
                escaped = false
            } else if c == "\\" {
                escaped = true
            } else if c == "\"" {
                return nil
            } else {
                out.append(c)
            }
        }
        return escaped ? nil : out
    }
}
