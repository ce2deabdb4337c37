import Layers
import XCTest
import _TestSupport

final class LossTests: XCTestCase {
    func testHandComputedValues() {
        // logits (1, 2, 3), label 2: loss = log(e¹+e²+e³) − 3 = 0.40760596
        let logits: [Float] = [1, 2, 3, 0, 0, 0]
        let labels: [Int32] = [2, 1]
        var grad = [Float](repeating: 0, count: 6)
        let totals = softmaxCrossEntropy(logits: logits, labels: labels, batch: 2, classes: 3, dLogits: &grad)
        assertClose(totals.lossSum, 0.40760596 + log(3.0), relative: 1e-6)
        XCTAssertEqual(totals.correct, 1)  // sample 1 ties: argmax is class 0, label 1
        let e = [exp(1.0), exp(2.0), exp(3.0)], s = e.reduce(0, +)
        assertClose(grad, [e[0] / s, e[1] / s, e[2] / s - 1, 1.0 / 3, 1.0 / 3 - 1, 1.0 / 3], relative: 1e-6)
        // Training's gradient scale (1 / global batch) multiplies dLogits and leaves the totals alone.
        var scaled = [Float](repeating: 0, count: 6)
        let same = softmaxCrossEntropy(logits: logits, labels: labels, batch: 2, classes: 3, dLogits: &scaled, gradientScale: 0.125)
        XCTAssertEqual(same, totals)
        assertClose(scaled, grad.map { $0 * 0.125 }, relative: 1e-6)
    }

    func testVeryLargeLogitsStayFinite() {
        let logits: [Float] = [1e30, -1e30, 0, 88.7, 1000, 999]
        let labels: [Int32] = [1, 2]
        var grad = [Float](repeating: 0, count: 6)
        let totals = softmaxCrossEntropy(logits: logits, labels: labels, batch: 2, classes: 3, dLogits: &grad)
        XCTAssert(totals.lossSum.isFinite)
        // Sample 0: loss = 2e30 in Float arithmetic; sample 1: log(e^-0.3 + 1 + e^-1.3) ≈ 1.29
        XCTAssertEqual(totals.lossSum, 2e30, accuracy: 1e25)
        XCTAssert(grad.allSatisfy(\.isFinite))
        assertClose(grad[0...2].map { Double($0) }, [1, -1, 0], absolute: 1e-6)
    }

    /// Label smoothing ε = 0.1 over 3 classes, logits (0, 0, 0) and label 1: p = 1/3 each, so both parts
    /// of the loss are log 3; the gradient is p − target = 1/3 − (0.9·onehot + 0.1/3).
    func testLabelSmoothingByHandAndAgainstFiniteDifferences() {
        var logits: [Float] = [0, 0, 0], gradient = [Float](repeating: 0, count: 3)
        let labels: [Int32] = [1]
        let totals = softmaxCrossEntropy(logits: logits, labels: labels, batch: 1, classes: 3, dLogits: &gradient, labelSmoothing: 0.1)
        XCTAssertEqual(totals.lossSum, log(3.0), accuracy: 1e-6)
        XCTAssertEqual(gradient[0], Float(1.0 / 3 - 0.1 / 3), accuracy: 1e-6)
        XCTAssertEqual(gradient[1], Float(1.0 / 3 - 0.9 - 0.1 / 3), accuracy: 1e-6)
        // Random logits: the analytic gradient equals central differences of the smoothed loss.
        logits = [0.3, -1.2, 2.0, 0.7, -0.4]
        var analytic = [Float](repeating: 0, count: 5)
        _ = softmaxCrossEntropy(logits: logits, labels: [2], batch: 1, classes: 5, dLogits: &analytic, labelSmoothing: 0.2)
        for c in 0..<5 {
            func loss(_ delta: Float) -> Double {
                var shifted = logits
                shifted[c] += delta
                return softmaxCrossEntropy(logits: shifted, labels: [2], batch: 1, classes: 5, dLogits: nil, labelSmoothing: 0.2).lossSum
            }
            XCTAssertEqual(Double(analytic[c]), (loss(1e-3) - loss(-1e-3)) / 2e-3, accuracy: 2e-3, "class \(c)")
        }
    }

    /// MSE by hand: outputs (1, 3), targets (0, 5): Σ (y − t)² = 1 + 4 = 5; dOutputs = 2 (y − t) · scale.
    func testMeanSquaredErrorByHand() {
        var gradient: [Float] = [0, 0]
        let totals = meanSquaredError(outputs: [1, 3], targets: [0, 5], batch: 2, dOutputs: &gradient, gradientScale: 0.5)
        XCTAssertEqual(totals.lossSum, 5)
        XCTAssertEqual(gradient, [1, -2])
    }
}
