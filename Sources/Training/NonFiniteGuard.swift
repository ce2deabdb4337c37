import Foundation

/// What to do when a step's loss or gradients are NaN or infinite (`--on-nonfinite`).
public enum NonFinitePolicy: String, Codable, Sendable, CaseIterable {
    /// End the job naming the rank, step and samples; the last checkpoint stays as it was.
    case stop
    /// Drop that update on every rank and go on; too many in a row stops.
    case skip
}

/// Training stopped because the loss or the gradients were not finite.
public struct NonFiniteError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

/// Applies `--on-nonfinite` to steps whose summed gradients are not finite, identically on every rank
/// (every rank sees the same sum, so every rank reaches the same verdict), and counts skipped updates.
struct NonFiniteGuard {
    /// More skipped updates in a row than this stops training.
    static let maximumConsecutiveSkips = 10

    let policy: NonFinitePolicy
    let isCoordinator: Bool
    /// Updates dropped in total, and in a row up to the last step.
    private(set) var skippedSteps = 0
    private var consecutiveSkips = 0

    init(policy: NonFinitePolicy, isCoordinator: Bool) {
        self.policy = policy
        self.isCoordinator = isCoordinator
    }

    /// A step whose update went through.
    mutating func stepWasFinite() { consecutiveSkips = 0 }

    /// Decides a non-finite step: throws to stop (the default), or returns normally to skip its update.
    ///
    /// - Parameter location: "at epoch 2, step 340"; `culprits`: which ranks and samples produced it.
    mutating func skipOrStop(location: String, culprits: String) throws {
        switch policy {
        case .stop:
            throw NonFiniteError(message: "non-finite loss or gradients \(location) from \(culprits); stopped before the update, so the parameters and the last checkpoint are intact (try a lower --lr, or --on-nonfinite skip)")
        case .skip:
            skippedSteps += 1
            consecutiveSkips += 1
            if consecutiveSkips > Self.maximumConsecutiveSkips {
                throw NonFiniteError(message: "\(consecutiveSkips) non-finite steps in a row (last \(location) from \(culprits)); stopping — lower --lr or check the data")
            }
            if isCoordinator {
                FileHandle.standardError.write(Data("distrain: warning: skipped the update \(location): non-finite values from \(culprits)\n".utf8))
            }
        }
    }
}
