import Foundation

/// One step of the learning-rate range test: the rate used, the step's loss, and the smoothed loss.
public struct RateProbe: Sendable, Equatable {
    public var learningRate: Double
    public var loss: Double
    public var smoothedLoss: Double
}

/// The LR range test (Smith 2015; fastai's lr_find): the rate grows exponentially from `start` to `end`
/// over `steps` steps; the loss is smoothed by an exponential moving average with bias correction.
public struct LearningRateFinder: Sendable {
    public let start: Double
    public let end: Double
    public let steps: Int
    public let smoothing: Double
    public private(set) var probes: [RateProbe] = []
    private var average = 0.0

    public init(start: Double = 1e-7, end: Double = 10, steps: Int = 200, smoothing: Double = 0.98) {
        precondition(start > 0 && end > start && steps >= 2, "range \(start)...\(end) over \(steps) steps")
        self.start = start
        self.end = end
        self.steps = steps
        self.smoothing = smoothing
    }

    /// The rate of step `index` (0-based): start · (end/start)^(index / (steps − 1)).
    public func rate(at index: Int) -> Double { start * pow(end / start, Double(index) / Double(steps - 1)) }

    /// Records a step's loss; returns false when the test should stop: the loss is not finite or the
    /// smoothed loss has grown past 4× its minimum (the rate is too high to learn).
    public mutating func record(step index: Int, loss: Double) -> Bool {
        guard loss.isFinite else { return false }
        average = smoothing * average + (1 - smoothing) * loss
        let smoothed = average / (1 - pow(smoothing, Double(probes.count + 1)))
        probes.append(RateProbe(learningRate: rate(at: index), loss: loss, smoothedLoss: smoothed))
        let best = probes.map(\.smoothedLoss).min()!
        return smoothed <= 4 * best
    }

    /// Whether the smoothed loss was lowest within the first tenth of the probes: the range starts too high.
    public var lowestNearStart: Bool {
        guard let minimumIndex = probes.indices.min(by: { probes[$0].smoothedLoss < probes[$1].smoothedLoss }) else { return false }
        return minimumIndex <= probes.count / 10 + 1
    }

    /// The suggested rate: where the smoothed loss falls fastest against log(rate), before its minimum
    /// (fastai's "steepest" point), and the rate of the minimum itself.
    public var suggestion: (steepest: Double, minimum: Double)? {
        guard probes.count >= 10,
              let minimumIndex = probes.indices.min(by: { probes[$0].smoothedLoss < probes[$1].smoothedLoss }) else { return nil }
        let first = probes.count / 10  // the average is still settling at first
        guard minimumIndex > first + 1 else {
            // Lowest near the start: 10× below it, but never below the range tested (`lowestNearStart` says so).
            return (max(probes[minimumIndex].learningRate / 10, probes[0].learningRate), probes[minimumIndex].learningRate)
        }
        var steepest = first + 1, slope = Double.infinity
        for i in (first + 1)...minimumIndex {
            let s = (probes[i].smoothedLoss - probes[i - 1].smoothedLoss) / (log(probes[i].learningRate) - log(probes[i - 1].learningRate))
            if s < slope { slope = s; steepest = i }
        }
        return (probes[steepest].learningRate, probes[minimumIndex].learningRate)
    }
}
