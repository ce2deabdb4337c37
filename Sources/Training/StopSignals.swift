import Foundation

/// Preemption: SIGTERM (SLURM, Kubernetes), SIGINT (Ctrl-C) and SIGUSR1 (`sbatch --signal`) ask training
/// to stop. Every rank finishes its current step, the ranks agree on one step, a checkpoint is written
/// there, and the job exits with 128 + the signal's number. A second SIGINT exits at once.
public enum StopSignals {
    /// The signal received (0: none). Written by the handler, read by the training thread.
    nonisolated(unsafe) static var received: Int32 = 0

    /// Installs the handlers for this process.
    public static func install() {
        received = 0
        for signalNumber in [SIGTERM, SIGINT, SIGUSR1] {
            signal(signalNumber) { number in
                if number == SIGINT && StopSignals.received != 0 { _exit(128 + SIGINT) }  // a second Ctrl-C
                StopSignals.received = number
            }
        }
    }

    /// How the stop message says to continue: the command that resumes this job (a sweep resumes with its own
    /// `--resume`, not a training run's `--resume auto`).
    nonisolated(unsafe) public static var resumeHint = "the same command plus --resume auto"

    /// The signal received so far on this rank, if any (0 otherwise).
    public static var pending: Int32 { received }

    /// "SIGTERM"-style name.
    static func name(_ number: Int32) -> String {
        switch number {
        case SIGTERM: return "SIGTERM"
        case SIGINT: return "SIGINT"
        case SIGUSR1: return "SIGUSR1"
        default: return "signal \(number)"
        }
    }
}

/// Training stopped on a signal after checkpointing at an agreed step (thrown on every rank alike).
public struct TrainingStopped: Error, CustomStringConvertible {
    public let signal: Int32
    /// Epoch (1-based) and global step the job stopped after.
    public let epoch: Int
    public let step: Int
    /// The checkpoint written at that step, if checkpointing is on.
    public let checkpoint: String?
    /// Whether the run writes checkpoints (a signal before its first step has none to write).
    public var checkpointing = true

    public init(signal: Int32, epoch: Int, step: Int, checkpoint: String?, checkpointing: Bool = true) {
        self.signal = signal
        self.epoch = epoch
        self.step = step
        self.checkpoint = checkpoint
        self.checkpointing = checkpointing
    }

    /// The process's exit code: 128 + the signal's number, as a shell reports a death by that signal.
    public var exitCode: Int32 { 128 + signal }

    public var description: String {
        if step == 0 && checkpoint == nil {  // nothing trained, whatever the folder: no "after epoch 0, step 0"
            return "stopped by \(StopSignals.name(signal)) before the first step, so there was nothing to save; run the "
                + "command again"
        }
        let saved = checkpoint.map { "checkpoint \($0) written; resume with \(StopSignals.resumeHint)" }
            ?? (checkpointing ? "it stopped before its first step, so there was nothing to save; run the command again"
                : "no --checkpoint-dir, so nothing was saved")
        return "stopped by \(StopSignals.name(signal)) after epoch \(epoch), step \(step) (every rank finished that step); \(saved)"
    }
}
