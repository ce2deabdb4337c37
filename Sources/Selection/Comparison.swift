import Foundation
import Tensors

/// McNemar's exact test on the samples two classifiers disagree on: with `onlyA` samples only A got right
/// and `onlyB` only B, the two-sided p-value of the binomial test that each disagreement is a fair coin,
/// p = min(1, 2 · Σ_{i ≤ min(onlyA, onlyB)} C(n, i) / 2^n), n = onlyA + onlyB (1 when they never disagree).
public func mcNemarExactPValue(onlyA: Int, onlyB: Int) -> Double {
    let n = onlyA + onlyB, k = min(onlyA, onlyB)
    guard n > 0 else { return 1 }
    // Σ C(n, i) 2^-n in log space: n can be 10,000.
    var logFactorial = [Double](repeating: 0, count: n + 1)  // log(i!)
    for i in stride(from: 1, through: n, by: 1) { logFactorial[i] = logFactorial[i - 1] + log(Double(i)) }
    let logAllOutcomes = Double(n) * log(2.0)
    let logTerms: [Double] = (0...k).map { i -> Double in
        logFactorial[n] - logFactorial[i] - logFactorial[n - i] - logAllOutcomes
    }
    let largest = logTerms.max()!
    let tail = exp(largest) * logTerms.reduce(0) { $0 + exp($1 - largest) }
    return min(1, 2 * tail)
}

/// The paired bootstrap's 95% interval of accuracy(A) − accuracy(B): `resamples` draws of n samples with
/// replacement (seeded), the 2.5th and 97.5th percentiles of the difference.
public func bootstrapDifferenceInterval(correctA: [Bool], correctB: [Bool], resamples: Int = 2000,
                                        seed: UInt64 = 1) -> (low: Double, high: Double) {
    precondition(correctA.count == correctB.count && !correctA.isEmpty, "paired samples needed")
    // Per sample: +1 only A right, −1 only B right, 0 agree; the difference of accuracies is their mean.
    let delta = zip(correctA, correctB).map { Double(($0 ? 1 : 0) - ($1 ? 1 : 0)) }
    return bootstrapMeanInterval(delta, resamples: resamples, seed: seed, stream: 0x424F_4F54)
}

/// The 95% interval of the mean of `values` by the bootstrap: `resamples` draws of n values with replacement
/// (seeded by `seed` and `stream`), the 2.5th and 97.5th percentiles of their means.
func bootstrapMeanInterval(_ values: [Double], resamples: Int, seed: UInt64, stream: UInt64) -> (low: Double, high: Double) {
    let n = values.count
    var means: [Double] = []
    means.reserveCapacity(resamples)
    for draw in 0..<resamples {
        var generator = SeededGenerator(seed: seed, keys: stream, UInt64(draw))
        var sum = 0.0
        for _ in 0..<n { sum += values[Int(generator.next() % UInt64(n))] }
        means.append(sum / Double(n))
    }
    means.sort()
    func percentile(_ p: Double) -> Double { means[min(resamples - 1, max(0, Int((p * Double(resamples - 1)).rounded())))] }
    return (percentile(0.025), percentile(0.975))
}

/// Two classifiers on the same samples: agreement counts, the accuracy difference with its bootstrap
/// interval and McNemar's p-value.
public struct PairedComparison: Sendable {
    public let samples: Int
    public let accuracyA: Double
    public let accuracyB: Double
    /// Samples only A (n01) and only B (n10) classified correctly.
    public let onlyA: Int
    public let onlyB: Int
    public let interval: (low: Double, high: Double)
    public let mcNemarP: Double

    public var difference: Double { accuracyA - accuracyB }

    public init(labels: [Int], predictionsA: [Int], predictionsB: [Int], resamples: Int = 2000, seed: UInt64 = 1) {
        let correctA = zip(predictionsA, labels).map { $0 == $1 }, correctB = zip(predictionsB, labels).map { $0 == $1 }
        samples = labels.count
        accuracyA = Double(correctA.filter { $0 }.count) / Double(max(samples, 1))
        accuracyB = Double(correctB.filter { $0 }.count) / Double(max(samples, 1))
        onlyA = zip(correctA, correctB).filter { $0 && !$1 }.count
        onlyB = zip(correctA, correctB).filter { !$0 && $1 }.count
        interval = bootstrapDifferenceInterval(correctA: correctA, correctB: correctB, resamples: resamples, seed: seed)
        mcNemarP = mcNemarExactPValue(onlyA: onlyA, onlyB: onlyB)
    }
}

/// Two language models on the same windows: each one's mean loss, the mean paired difference A − B with its
/// bootstrap 95% interval (windows resampled with replacement, seeded: the tokens of a window are not
/// independent, the windows nearly are), and how often each is the better one.
public struct PairedLossComparison: Sendable {
    public let windows: Int
    public let meanLossA: Double
    public let meanLossB: Double
    /// meanLossA − meanLossB: negative when A predicts the text better.
    public let difference: Double
    public let interval: (low: Double, high: Double)
    /// Windows where A's loss is lower, and where B's is.
    public let windowsABetter: Int
    public let windowsBBetter: Int

    public init(lossesA: [Double], lossesB: [Double], resamples: Int = 2000, seed: UInt64 = 1) {
        precondition(lossesA.count == lossesB.count && !lossesA.isEmpty, "paired windows needed")
        let deltas = zip(lossesA, lossesB).map { $0 - $1 }, n = deltas.count
        windows = n
        meanLossA = lossesA.reduce(0, +) / Double(n)
        meanLossB = lossesB.reduce(0, +) / Double(n)
        difference = deltas.reduce(0, +) / Double(n)
        windowsABetter = deltas.filter { $0 < 0 }.count
        windowsBBetter = deltas.filter { $0 > 0 }.count
        interval = bootstrapMeanInterval(deltas, resamples: resamples, seed: seed, stream: 0x4C4F_5353)
    }

    /// Whether the interval excludes 0: the difference is unlikely to be chance.
    public var isSignificant: Bool { interval.low > 0 || interval.high < 0 }
}
