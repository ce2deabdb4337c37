import XCTest
@testable import Selection

final class ComparisonTests: XCTestCase {
    /// Worked by hand. n01 = 1, n10 = 6: n = 7, p = 2·(C(7,0) + C(7,1))/2^7 = 2·8/128 = 0.125.
    /// n01 = 10, n10 = 2: p = 2·(1 + 12 + 66)/4096 = 0.0385742…; equal counts give 1; no disagreement 1.
    func testMcNemarExactAgainstHandComputedValues() {
        XCTAssertEqual(mcNemarExactPValue(onlyA: 1, onlyB: 6), 0.125, accuracy: 1e-12)
        XCTAssertEqual(mcNemarExactPValue(onlyA: 6, onlyB: 1), 0.125, accuracy: 1e-12)
        XCTAssertEqual(mcNemarExactPValue(onlyA: 10, onlyB: 2), 158.0 / 4096, accuracy: 1e-12)
        XCTAssertEqual(mcNemarExactPValue(onlyA: 5, onlyB: 5), 1)
        XCTAssertEqual(mcNemarExactPValue(onlyA: 0, onlyB: 0), 1)
        // Large n stays finite and small: 430 against 200 disagreements.
        let p = mcNemarExactPValue(onlyA: 430, onlyB: 200)
        XCTAssertTrue(p > 0 && p < 1e-15, "\(p)")
    }

    /// A 2×2 disagreement table worked out: 10 samples, A right on 1–8, B right on 1–5 and 9.
    /// Accuracies 0.8 and 0.6, n01 = 3 (samples 6–8), n10 = 1 (sample 9): p = 2·(1 + 4)/16 = 0.625.
    func testPairedComparisonOfATableWorkedByHand() {
        let labels = Array(repeating: 1, count: 10)
        let a = (0..<10).map { $0 < 8 ? 1 : 0 }, b = (0..<10).map { $0 < 5 || $0 == 8 ? 1 : 0 }
        let c = PairedComparison(labels: labels, predictionsA: a, predictionsB: b, resamples: 2000, seed: 3)
        XCTAssertEqual(c.accuracyA, 0.8, accuracy: 1e-12)
        XCTAssertEqual(c.accuracyB, 0.6, accuracy: 1e-12)
        XCTAssertEqual(c.difference, 0.2, accuracy: 1e-12)
        XCTAssertEqual(c.onlyA, 3)
        XCTAssertEqual(c.onlyB, 1)
        XCTAssertEqual(c.mcNemarP, 0.625, accuracy: 1e-12)
        // The bootstrap's differences are means of 10 draws from {+1 ×3, −1 ×1, 0 ×6}: multiples of 0.1
        // between −1 and 1, and the interval holds the observed difference.
        XCTAssertTrue(c.interval.low <= 0.2 && 0.2 <= c.interval.high, "\(c.interval)")
        XCTAssertTrue(c.interval.low >= -0.2 && c.interval.high <= 0.6, "\(c.interval)")
        XCTAssertEqual((c.interval.low * 10).rounded(), c.interval.low * 10, accuracy: 1e-9)
        let again = PairedComparison(labels: labels, predictionsA: a, predictionsB: b, resamples: 2000, seed: 3)
        XCTAssertEqual(again.interval.low, c.interval.low)
        XCTAssertEqual(again.interval.high, c.interval.high)
        let same = PairedComparison(labels: labels, predictionsA: a, predictionsB: a)
        XCTAssertEqual(same.interval.low, 0)
        XCTAssertEqual(same.interval.high, 0)
    }

    func testMeanAndSampleStandardDeviation() {
        let (mean, sd) = meanAndStandardDeviation([0.90, 0.92, 0.94])
        XCTAssertEqual(mean, 0.92, accuracy: 1e-12)
        XCTAssertEqual(sd, 0.02, accuracy: 1e-12)  // sqrt((0.0004 + 0 + 0.0004) / 2)
    }

    /// Language models: the paired per-window loss difference, against hand-computed means and counts.
    func testPairedLossComparisonOfTwoLanguageModels() {
        let a = [1.0, 2.0, 3.0, 4.0], b = [2.0, 2.0, 2.0, 2.0]
        let mixed = PairedLossComparison(lossesA: a, lossesB: b, resamples: 500, seed: 3)
        XCTAssertEqual(mixed.meanLossA, 2.5)
        XCTAssertEqual(mixed.meanLossB, 2.0)
        XCTAssertEqual(mixed.difference, 0.5)
        XCTAssertEqual(mixed.windowsABetter, 1)
        XCTAssertEqual(mixed.windowsBBetter, 2)
        XCTAssertTrue(mixed.interval.low >= -1 && mixed.interval.high <= 2 && mixed.interval.low <= 0.5 && 0.5 <= mixed.interval.high)
        XCTAssertFalse(mixed.isSignificant, "deltas −1, 0, 1, 2: the interval holds 0")
        let better = PairedLossComparison(lossesA: a.map { $0 - 3 }, lossesB: a, resamples: 500, seed: 3)
        XCTAssertEqual(better.interval.low, -3)
        XCTAssertEqual(better.interval.high, -3, "every delta is −3")
        XCTAssertTrue(better.isSignificant)
        let again = PairedLossComparison(lossesA: a, lossesB: b, resamples: 500, seed: 3)
        XCTAssertEqual(again.interval.low, mixed.interval.low, "seeded")
    }
}
