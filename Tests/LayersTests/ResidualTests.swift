import XCTest
import Layers
import Tensors
import _TestSupport

/// The residual block against central differences: identity shortcut, and a strided 1x1 projection,
/// with BatchNorm in training mode on both paths.
final class ResidualTests: XCTestCase {
    func testIdentityShortcutMatchesFiniteDifferences() {
        let shape = [2, 5, 5]
        let block = Residual(inputShape: shape, body: [
            Conv2D(inputShape: shape, outputChannels: 2, kernelSize: 3, padding: 1, activation: .relu, name: "0.body.0", bias: false),
            BatchNorm(inputShape: shape, name: "0.body.2"),
            Conv2D(inputShape: shape, outputChannels: 2, kernelSize: 3, padding: 1, name: "0.body.3"),
        ])
        XCTAssertEqual(block.parameterSpecs.map(\.name), ["0.body.0.weight", "0.body.2.weight", "0.body.2.bias", "0.body.3.weight", "0.body.3.bias"])
        checkLayerGradients(block, batch: 3, inputRange: 2, tolerance: 3e-2)
    }

    func testProjectionShortcutMatchesFiniteDifferences() {
        let shape = [2, 6, 6]
        let body: [Layer] = [
            Conv2D(inputShape: shape, outputChannels: 3, kernelSize: 3, stride: 2, padding: 1, activation: .relu, name: "b0"),
            Conv2D(inputShape: [3, 3, 3], outputChannels: 3, kernelSize: 3, padding: 1, name: "b1"),
            BatchNorm(inputShape: [3, 3, 3], name: "b2"),
        ]
        let shortcut: [Layer] = [
            Conv2D(inputShape: shape, outputChannels: 3, kernelSize: 1, stride: 2, name: "s0", bias: false),
            BatchNorm(inputShape: [3, 3, 3], name: "s1"),
        ]
        let block = Residual(inputShape: shape, body: body, shortcut: shortcut)
        XCTAssertEqual(block.outputShape, [3, 3, 3])
        XCTAssertEqual(block.bufferSpecs.count, 6, "two BatchNorms' running mean, variance and count")
        checkLayerGradients(block, batch: 4, inputRange: 2, tolerance: 3e-2)
    }

    /// y = body(x) + x by hand: a 1x1 convolution with weight 2 and bias 1 gives 2x + 1, plus x.
    func testForwardAddsTheShortcut() {
        let conv = Conv2D(inputShape: [1, 1, 2], outputChannels: 1, kernelSize: 1, name: "c")
        let model = Sequential(inputShape: [1, 1, 2], layers: [Residual(inputShape: [1, 1, 2], body: [conv])])
        model.parameters.values[0] = 2
        model.parameters.values[1] = 1
        model.reserve(batchCapacity: 1)
        model.input[0] = 3
        model.input[1] = -1
        let y = model.forward(batch: 1, context: .inference)
        let expected: [Float] = [10, -2]  // 3·2 + 1 + 3 and −1·2 + 1 − 1
        XCTAssertEqual([y[0], y[1]], expected)
    }
}
