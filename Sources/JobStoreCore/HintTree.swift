/// Toil's hinted file ids (HintedJobStore): files written with hints get readable ids like
/// `wf/task/files/out.txt` (or `.../files/3/out.txt`), claimed with create-only puts under
/// `files/`, and a deleted slot leaves a tombstone under `deleted/` so it is never reused.
enum HintTree {
    static let filesDirectory = "files"
    static let deletedDirectory = "deleted"
    static let banned: Set<String> = [".", "..", filesDirectory, deletedDirectory]

    /// Toil's `_sanitize_hint`: ASCII alphanumerics and `_.-`, at most 40 characters.
    static func sanitize(_ hint: String) -> String {
        let kept = hint.unicodeScalars.filter { s in
            s.isASCII && (Names.isAlnum(UInt8(s.value)) || s == "_" || s == "." || s == "-")
        }
        let cleaned = String(String.UnicodeScalarView(kept.prefix(40)))
        return banned.contains(cleaned) ? "" : cleaned
    }

    /// Toil's `hints_to_string`: sanitized hints joined by "/", at most 120 characters.
    static func hintsString(_ hints: [String]) -> String {
        var parts: [String] = []
        var total = 0
        for hint in hints {
            let cleaned = sanitize(hint)
            if cleaned.isEmpty { continue }
            let needed = cleaned.count + (parts.isEmpty ? 0 : 1)
            if total + needed > 120 { break }
            total += needed
            parts.append(cleaned)
        }
        return parts.joined(separator: "/")
    }

    /// The slot path for `slot` (nil: the bare slot) and its tombstone path.
    static func slot(_ hints: String, _ basename: String, _ slot: Int?) -> (path: String, tombstone: String) {
        if let slot {
            return ("\(hints)/\(filesDirectory)/\(slot)/\(basename)", "\(hints)/\(deletedDirectory)/\(slot)/\(basename)")
        }
        return ("\(hints)/\(filesDirectory)/\(basename)", "\(hints)/\(deletedDirectory)/\(basename)")
    }

    /// Toil's `tombstone`: the first "/files/" is the boundary (hints never contain "files").
    static func tombstone(of slotPath: String) -> String? {
        guard let range = slotPath.range(of: "/\(filesDirectory)/") else { return nil }
        return String(slotPath[..<range.lowerBound]) + "/\(deletedDirectory)/" + String(slotPath[range.upperBound...])
    }
}
