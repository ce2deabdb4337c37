import Layers
import XCTest
import _TestSupport

final class LinearTests: XCTestCase {
    func testBackwardMatchesFiniteDifferences() {
        checkLayerGradients(Linear(inputFeatures: 5, outputFeatures: 4, name: "fc"), batch: 3)
    }

    func testFusedReLUBackwardMatchesFiniteDifferences() {
        checkLayerGradients(Linear(inputFeatures: 6, outputFeatures: 5, activation: .relu, name: "fc"), batch: 4, seed: 3)
    }

    func testForwardIsXTimesWTransposedPlusBias() {
        let layer = Linear(inputFeatures: 2, outputFeatures: 3, name: "0")
        let model = Sequential(inputShape: [2], layers: [layer])
        // weight (3, 2) then bias (3), PyTorch layout.
        let values: [Float] = [1, 2, 3, 4, 5, 6, 0.5, -0.5, 1]
        for (i, v) in values.enumerated() { model.parameters.values[i] = v }
        model.reserve(batchCapacity: 1)
        model.input[0] = 1; model.input[1] = -1
        let y = model.forward(batch: 1, context: .inference)
        let expected: [Float] = [-0.5, -1.5, 0]  // [1−2+0.5, 3−4−0.5, 5−6+1]
        XCTAssertEqual([y[0], y[1], y[2]], expected)
        XCTAssertEqual(model.parameters.slices.map(\.name), ["0.weight", "0.bias"])
        XCTAssertEqual(model.parameters.slices.map(\.shape), [[3, 2], [3]])
    }
}
