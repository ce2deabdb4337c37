import Foundation

/// What a rank is doing, for messages about stuck or failing ranks.
public enum TrainingPhase: Int, Sendable {
    case loading, startup, data, forward, backward, gradientSum, optimizer, evaluation, checkpoint, finished

    public var isCollective: Bool { self == .gradientSum || self == .startup }

    public var name: String {
        switch self {
        case .loading: return "loading data"
        case .startup: return "start-up agreement"
        case .data: return "data"
        case .forward: return "forward"
        case .backward: return "backward"
        case .gradientSum: return "gradient sum"
        case .optimizer: return "optimizer"
        case .evaluation: return "evaluation"
        case .checkpoint: return "checkpoint"
        case .finished: return "finished"
        }
    }
}

/// Where this rank is: phase, bucket, epoch, step and since when. Written by the training thread,
/// read by the watchdog thread.
public final class PhaseTracker: @unchecked Sendable {
    public struct Snapshot: Sendable {
        public var phase: TrainingPhase
        /// Gradient bucket index during the gradient sum, else -1.
        public var bucket: Int
        public var epoch: Int
        /// Global optimizer step being computed (1-based).
        public var step: Int
        public var since: Double

        /// "gradient sum (bucket 2) at epoch 1, step 37".
        public var description: String {
            let what = phase == .gradientSum && bucket >= 0 ? "gradient sum (bucket \(bucket))" : phase.name
            return "\(what) at epoch \(epoch + 1), step \(step)"
        }
    }

    private let lock = NSLock()
    private var current = Snapshot(phase: .loading, bucket: -1, epoch: 0, step: 0, since: monotonicSeconds())
    /// Seconds spent in each phase (indexed by raw value) since the tracker was made.
    private var durations = [Double](repeating: 0, count: TrainingPhase.finished.rawValue + 1)

    public init() {}

    /// Marks the start of `phase` (and the end of the previous one).
    public func enter(_ phase: TrainingPhase, bucket: Int = -1) {
        let now = monotonicSeconds()
        lock.lock()
        durations.withUnsafeMutableBufferPointer { $0[current.phase.rawValue] += now - current.since }
        current.phase = phase
        current.bucket = bucket
        current.since = now
        lock.unlock()
    }

    /// Records the epoch (0-based) and global step (1-based) being worked on.
    public func setPosition(epoch: Int, step: Int) {
        lock.lock()
        current.epoch = epoch
        current.step = step
        lock.unlock()
    }

    /// Seconds spent in each phase since the tracker was made, the current phase counted up to now.
    /// Cumulative, so several readers (the epoch metrics, `distrain bench`) can each take differences.
    public func totalSeconds() -> PhaseSeconds {
        let now = monotonicSeconds()
        lock.lock(); defer { lock.unlock() }
        durations[current.phase.rawValue] += now - current.since
        current.since = now
        return PhaseSeconds(seconds: durations)
    }

    public var snapshot: Snapshot {
        lock.lock(); defer { lock.unlock() }
        return current
    }
}

/// Seconds per phase, from `PhaseTracker.totalSeconds()`; subtract two readings for an interval.
public struct PhaseSeconds: Sendable {
    /// Indexed by `TrainingPhase.rawValue`.
    fileprivate var seconds: [Double]

    public subscript(phase: TrainingPhase) -> Double { seconds[phase.rawValue] }

    /// The seconds spent between `earlier` and this reading.
    public func since(_ earlier: PhaseSeconds) -> PhaseSeconds {
        PhaseSeconds(seconds: zip(seconds, earlier.seconds).map { $0 - $1 })
    }
}

/// A thread that ends the process when its rank stays in one phase longer than the deadline, after
/// saying which rank, phase and step — so a hung job never hangs silently.
///
/// Waiting in a collective gets a few seconds of grace on top, so that the rank that is actually stuck
/// (in forward, say) reports first, naming its own phase.
public final class Watchdog: @unchecked Sendable {
    public let deadlineSeconds: Double
    public static let collectiveGraceSeconds = 3.0
    private let tracker: PhaseTracker
    private let rank: Int
    private let fire: (String) -> Void

    /// - Parameter fire: prints the message and ends the process (never returns in practice).
    public init(tracker: PhaseTracker, rank: Int, deadlineSeconds: Double, fire: @escaping (String) -> Void) {
        self.tracker = tracker
        self.rank = rank
        self.deadlineSeconds = deadlineSeconds
        self.fire = fire
    }

    public func start() {
        let thread = Thread { [self] in
            while true {
                Thread.sleep(forTimeInterval: min(0.25, deadlineSeconds / 4))
                let now = monotonicSeconds()
                let snapshot = tracker.snapshot
                if snapshot.phase == .finished { return }
                let waited = now - snapshot.since
                let limit = deadlineSeconds + (snapshot.phase.isCollective ? Self.collectiveGraceSeconds : 0)
                if waited > limit {
                    let what = snapshot.phase.isCollective
                        ? "waited \(format(waited, 1)) s for the other ranks in \(snapshot.description); a rank is stuck or gone"
                        : "stuck for \(format(waited, 1)) s in \(snapshot.description)"
                    fire("rank \(rank) \(what) (--collective-timeout \(format(deadlineSeconds, 0)) s); ending the job")
                    return
                }
            }
        }
        thread.name = "distrain-watchdog"
        thread.start()
    }
}
