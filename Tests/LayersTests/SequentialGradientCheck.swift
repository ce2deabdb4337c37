import Layers
import XCTest
import _TestSupport

/// Checks every parameter gradient of `model` on `input` (`batch` samples) against central finite
/// differences of the loss Σ y·weights in Double; kinks are skipped, and at least 90% must be checked.
func assertParameterGradientsMatchFiniteDifferences(_ model: Sequential, input: [Float], weights: [Float], batch: Int,
                                                    tolerance: Double = 2e-3, file: StaticString = #filePath,
                                                    line: UInt = #line) {
    model.reserve(batchCapacity: batch)
    func loss() -> Double {
        model.input.update(from: input, count: input.count)
        let y = model.forward(batch: batch, context: .inference)
        return (0..<weights.count).reduce(0) { $0 + Double(y[$1]) * Double(weights[$1]) }
    }
    _ = loss()
    for i in weights.indices { model.outputGradient[i] = weights[i] }
    model.parameters.zeroGradients()
    _ = model.backward(batch: batch)
    let analytic = Array(model.parameters.gradients)
    let numeric = centralDifferences(count: model.parameters.count, epsilon: 1e-2,
                                     get: { model.parameters.values[$0] }, set: { model.parameters.values[$0] = $1 },
                                     loss: loss)
    var checked = 0
    for (i, expected) in numeric.enumerated() {
        guard let expected else { continue }
        XCTAssertEqual(Double(analytic[i]), expected, accuracy: tolerance + 10 * tolerance * abs(expected), "parameter \(i)",
                       file: file, line: line)
        checked += 1
    }
    XCTAssertGreaterThan(checked, model.parameters.count * 9 / 10, file: file, line: line)
}
