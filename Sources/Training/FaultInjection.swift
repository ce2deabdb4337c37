#if canImport(Glibc)
import Glibc
#endif

/// A fault to inject for tests and cluster checks: `DISTRAIN_FAULT=rank:step:kind`.
///
/// At global step `step` (1-based), rank `rank`: crash (a Swift trap), kill (SIGKILL), hang (sleeps
/// forever in forward), nan (NaN in its input batch), slow (sleeps 2 s in forward, then goes on),
/// allocate (one heap allocation in every step from `step` on: proves `distrain bench` counts them).
public struct Fault: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable { case crash, kill, hang, nan, slow, allocate }

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

    /// Misbehaves on purpose when `rank` reaches the fault's step, in the forward phase of that step;
    /// `input` holds the step's `batch` gathered samples.
    func injectIfDue(rank: Int, step: Int, input: UnsafeMutablePointer<Float>, batch: Int) {
        guard rank == self.rank, step == self.step || (kind == .allocate && step > self.step) else { return }
        switch kind {
        case .crash: fatalError("injected crash (DISTRAIN_FAULT) on rank \(rank) at step \(step)")
        case .kill: kill(getpid(), SIGKILL)
        case .hang: while true { sleep(1000) }
        case .slow: usleep(2_000_000)
        case .nan: if batch > 0 { input[0] = .nan }
        case .allocate:
            let block = UnsafeMutablePointer<Int>.allocate(capacity: 8)
            block.initialize(repeating: step, count: 8)
            Fault.allocationSink = block[7]  // used, so the allocation cannot be optimized away
            block.deallocate()
        }
    }

    nonisolated(unsafe) private static var allocationSink = 0
}

/// DISTRAIN_FAULT could not be parsed.
public struct FaultSpecificationError: Error, CustomStringConvertible {
    public let text: String
    public var description: String {
        "DISTRAIN_FAULT='\(text)' is not rank:step:kind (step ≥ 1, kind one of \(Fault.Kind.allCases.map(\.rawValue).joined(separator: ", "))), e.g. DISTRAIN_FAULT=1:20:crash"
    }
}
