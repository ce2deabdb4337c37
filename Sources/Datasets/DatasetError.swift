/// Everything that can be wrong with a data file or directory, each naming the file.
public enum DatasetError: Error, CustomStringConvertible, Equatable {
    /// The file or directory does not exist or cannot be read.
    case unreadable(path: String, reason: String)
    /// A required file is absent; `hint` says how to get it.
    case missing(path: String, hint: String)
    /// The file's contents are malformed.
    case malformed(path: String, problem: String)
    /// Two files that must agree do not.
    case mismatch(first: String, second: String, problem: String)
    /// No dataset has this name; `choices` lists the names there are.
    case unknownDataset(name: String, choices: String)

    public var description: String {
        switch self {
        case let .unreadable(path, reason): return "cannot read \(path): \(reason)"
        case let .missing(path, hint): return "missing data file \(path): \(hint)"
        case let .malformed(path, problem): return "\(path): \(problem)"
        case let .mismatch(first, second, problem): return "\(first) and \(second) disagree: \(problem)"
        case let .unknownDataset(name, choices): return "unknown dataset '\(name)': use one of \(choices)"
        }
    }
}
