import Layers
import XCTest
import _TestSupport

final class Conv2DTests: XCTestCase {
    func testBackwardWithPaddingMatchesFiniteDifferences() {
        checkLayerGradients(Conv2D(inputShape: [2, 5, 5], outputChannels: 3, kernelSize: 3, padding: 1, name: "c"), batch: 2)
    }

    func testBackwardWithStrideAndReLUMatchesFiniteDifferences() {
        checkLayerGradients(Conv2D(inputShape: [3, 7, 6], outputChannels: 4, kernelSize: 3, stride: 2, padding: 1,
                                   activation: .relu, name: "c"), batch: 2, seed: 4)
    }

    func testForwardMatchesADirectConvolution() {
        let conv = Conv2D(inputShape: [2, 4, 4], outputChannels: 2, kernelSize: 3, stride: 1, padding: 1, name: "c")
        let model = Sequential(inputShape: [2, 4, 4], layers: [conv])
        model.parameters.initializeKaimingUniform(seed: 2)
        model.reserve(batchCapacity: 2)
        for i in 0..<(2 * 32) { model.input[i] = Float((i * 7) % 11) - 5 }
        let y = model.forward(batch: 2, context: .inference)
        let w = Array(model.parameters.values)
        for b in 0..<2 { for o in 0..<2 { for oy in 0..<4 { for ox in 0..<4 {
            var sum = Double(w[2 * 2 * 9 + o])
            for c in 0..<2 { for ki in 0..<3 { for kj in 0..<3 {
                let iy = oy - 1 + ki, ix = ox - 1 + kj
                if iy < 0 || iy >= 4 || ix < 0 || ix >= 4 { continue }
                sum += Double(w[((o * 2 + c) * 3 + ki) * 3 + kj]) * Double(model.input[((b * 2 + c) * 4 + iy) * 4 + ix])
            } } }
            XCTAssertEqual(Double(y[((b * 2 + o) * 4 + oy) * 4 + ox]), sum, accuracy: 1e-4)
        } } } }
        XCTAssertEqual(model.parameters.slices.map(\.shape), [[2, 2, 3, 3], [2]])
    }
}
