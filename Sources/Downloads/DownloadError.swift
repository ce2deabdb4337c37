/// Everything that can go wrong fetching a dataset, each with what to do about it.
public enum DownloadError: Error, CustomStringConvertible, Equatable {
    case badURL(String)
    case network(url: String, reason: String)
    case httpStatus(url: String, status: Int)
    case checksumMismatch(url: String, actual: String, expected: String)
    case sizeMismatch(url: String, actual: Int64, expected: Int64)
    case badArchive(path: String, problem: String)
    case fileSystem(path: String, reason: String)

    public var description: String {
        switch self {
        case let .badURL(url): return "'\(url)' is not an http(s) URL"
        case let .network(url, reason): return "downloading \(url) failed: \(reason); check the network (or a proxy) and try again"
        case let .httpStatus(url, status): return "\(url) answered HTTP \(status); check the URL or try again later"
        case let .checksumMismatch(url, actual, expected):
            return "the file from \(url) has MD5 \(actual), expected \(expected); it is corrupt or not the official file, so nothing was kept — try again"
        case let .sizeMismatch(url, actual, expected):
            return "the file from \(url) has \(actual) bytes, expected \(expected); nothing was kept — try again"
        case let .badArchive(path, problem): return "\(path): \(problem)"
        case let .fileSystem(path, reason): return "cannot write \(path): \(reason); choose a writable directory with --to"
        }
    }
}
