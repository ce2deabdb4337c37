#if canImport(Glibc)
import Glibc
#endif

/// How the learning rate changes over training (`--schedule`).
public enum ScheduleKind: String, CaseIterable, Sendable, Codable {
    /// The base rate throughout.
    case constant
    /// Multiplied by `gamma` every `stepEpochs` epochs (torch StepLR).
    case step
    /// Half-cosine from the base rate to `--min-lr` (0 by default) over the run after warmup (torch
    /// CosineAnnealingLR, per step).
    case cosine
    /// The base rate, reduced when the monitored validation metric stops improving (the Trainer applies
    /// the reduction: it depends on results, not on the step).
    case plateau
}

/// The learning rate at every step: optional linear warmup, then the chosen decay.
public struct LearningRateSchedule: Sendable, Equatable {
    public var kind: ScheduleKind
    public var baseRate: Float
    public var totalEpochs: Int
    public var warmupEpochs: Int
    /// StepLR's period in epochs.
    public var stepEpochs: Int
    /// StepLR's factor.
    public var gamma: Float
    /// Warm-up in steps (nanoGPT's warmup_iters), replacing `warmupEpochs` when set.
    public var warmupSteps: Int?
    /// The cosine's length in steps (`--max-steps`, nanoGPT's lr_decay_iters), replacing the epochs' when set.
    public var totalSteps: Int?
    /// Where the cosine ends (nanoGPT's min_lr); 0 by default.
    public var minimumRate: Float = 0

    public init(kind: ScheduleKind, baseRate: Float, totalEpochs: Int, warmupEpochs: Int = 0,
                stepEpochs: Int? = nil, gamma: Float = 0.1) {
        self.kind = kind
        self.baseRate = baseRate
        self.totalEpochs = totalEpochs
        self.warmupEpochs = warmupEpochs
        self.stepEpochs = stepEpochs ?? max(1, totalEpochs / 3)
        self.gamma = gamma
    }

    /// The rate for step `stepInEpoch` (0-based) of epoch `epoch` (0-based), with `stepsPerEpoch` steps per epoch.
    public func rate(epoch: Int, stepInEpoch: Int, stepsPerEpoch: Int) -> Float {
        let steps = max(stepsPerEpoch, 1)
        let globalStep = epoch * steps + stepInEpoch
        let warmupSteps = self.warmupSteps ?? warmupEpochs * steps
        if globalStep < warmupSteps {
            // Linear ramp that reaches the base rate on the first step after warmup.
            return baseRate * Float(globalStep + 1) / Float(warmupSteps + 1)
        }
        switch kind {
        case .constant, .plateau:
            return baseRate
        case .step:
            let decays = epoch / max(stepEpochs, 1)
            return baseRate * pow(gamma, Float(decays))
        case .cosine:
            let total = max((totalSteps ?? totalEpochs * steps) - warmupSteps, 1)
            let progress = Double(globalStep - warmupSteps) / Double(total)
            let floor = Double(minimumRate)
            return Float(floor + (Double(baseRate) - floor) * 0.5 * (1 + cos(Double.pi * min(progress, 1))))
        }
    }
}
