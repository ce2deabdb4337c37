#if canImport(Glibc)
import Glibc
#endif

/// A fault to inject for tests and cluster checks: `DISTRAIN_FAULT=rank:step:kind`.
///
/// At global step `step` (1-based), rank `rank`: crash (a Swift trap), kill (SIGKILL), hang (sleeps
/// forever in forward), nan (NaN in its input batch), slow (sleeps 2 s in forward, then goes on).
public struct Fault: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable { case crash, kill, hang, nan, slow }

    public var rank: Int
    public var step: Int
    public var kind: Kind

    public init(rank: Int, step: Int, kind: Kind) {
        self.rank = rank
        self.step = step
        self.kind = kind
    }

    /// Parses "rank:step:kind"; the error text says what is wrong.
    public init(parsing text: String) throws {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 3, let rank = Int(parts[0]), rank >= 0, let step = Int(parts[1]), step >= 1,
              let kind = Kind(rawValue: parts[2]) else {
            throw FaultSpecificationError(text: text)
        }
        self.init(rank: rank, step: step, kind: kind)
    }

    /// The fault from the environment, if any.
    public static func fromEnvironment() throws -> Fault? {
        guard let pointer = getenv("DISTRAIN_FAULT") else { return nil }
        let text = String(cString: pointer)
        return text.isEmpty ? nil : try Fault(parsing: text)
    }
}

/// DISTRAIN_FAULT could not be parsed.
public struct FaultSpecificationError: Error, CustomStringConvertible {
    public let text: String
    public var description: String {
        "DISTRAIN_FAULT='\(text)' is not rank:step:kind (step ≥ 1, kind one of \(Fault.Kind.allCases.map(\.rawValue).joined(separator: ", "))), e.g. DISTRAIN_FAULT=1:20:crash"
    }
}

/// Training stopped because the loss or the gradients were not finite.
public struct NonFiniteError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

/// What to do when a step's loss or gradients are NaN or infinite (`--on-nonfinite`).
public enum NonFinitePolicy: String, Codable, Sendable, CaseIterable {
    /// End the job naming the rank, step and samples; the last checkpoint stays as it was.
    case stop
    /// Drop that update on every rank and go on; too many in a row stops.
    case skip
}
