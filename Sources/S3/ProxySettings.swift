/// HTTP proxies of the S3 session, from the environment as botocore reads it (and curl, but for
/// curl's refusal of an upper-case `HTTP_PROXY`): `HTTPS_PROXY`/`https_proxy` for https URLs,
/// `HTTP_PROXY`/`http_proxy` for http ones, `ALL_PROXY` for both, `NO_PROXY`/`no_proxy` the
/// hosts (names, domains, addresses, `*`) reached directly. Set explicitly on every request, so
/// what `--print-config` shows is what is used.
public struct ProxySettings: Sendable, Equatable {
    public var http: String?
    public var https: String?
    public var noProxy: String?

    public init(http: String? = nil, https: String? = nil, noProxy: String? = nil) {
        self.http = http
        self.https = https
        self.noProxy = noProxy
    }

    public static func resolve(environment: [String: String]) -> ProxySettings {
        func first(_ names: String...) -> String? {
            names.lazy.compactMap { environment[$0] }.first { !$0.isEmpty }
        }
        return ProxySettings(http: first("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"),
                             https: first("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"),
                             noProxy: first("no_proxy", "NO_PROXY"))
    }

    /// The proxy for `url` (nil: none; NO_PROXY is applied by libcurl).
    func proxy(for url: String) -> String? {
        url.hasPrefix("https:") ? https : http
    }

    /// For `--print-config`: proxies without any userinfo (a password in a proxy URL).
    public var summary: String {
        func masked(_ url: String?) -> String {
            guard let url else { return "none" }
            guard let at = url.firstIndex(of: "@"), let scheme = url.range(of: "://") else { return url }
            return String(url[..<scheme.upperBound]) + "****@" + String(url[url.index(after: at)...])
        }
        return "https \(masked(https)), http \(masked(http)), no_proxy \(noProxy ?? "none")"
    }
}
