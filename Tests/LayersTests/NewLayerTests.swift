import Layers
import Tensors
import XCTest
import _TestSupport

/// Finite-difference checks and hand values for the activations and poolings model specs can name.
final class NewLayerTests: XCTestCase {
    func testPointwiseActivationsMatchFiniteDifferences() {
        for function in [PointwiseFunction.leakyReLU(slope: 0.1), .gelu, .silu, .tanh, .sigmoid] {
            checkLayerGradients(Pointwise(function, shape: [3, 4, 4]), batch: 3, inputRange: 3)
        }
    }

    /// Values from PyTorch's definitions, worked by hand: GELU(1) = Φ(1) = 0.8413447…, SiLU(1) = 1/(1+e⁻¹)
    /// = 0.7310586…, LeakyReLU(−2) = −0.02, tanh(0.5) = 0.4621172, σ(0) = 0.5.
    func testPointwiseValues() {
        XCTAssertEqual(PointwiseFunction.gelu.valueForTesting(1), 0.8413447, accuracy: 1e-6)
        XCTAssertEqual(PointwiseFunction.gelu.valueForTesting(-1), -0.1586553, accuracy: 1e-6)
        XCTAssertEqual(PointwiseFunction.silu.valueForTesting(1), 0.7310586, accuracy: 1e-6)
        XCTAssertEqual(PointwiseFunction.leakyReLU(slope: 0.01).valueForTesting(-2), -0.02, accuracy: 1e-7)
        XCTAssertEqual(PointwiseFunction.tanh.valueForTesting(0.5), 0.4621172, accuracy: 1e-6)
        XCTAssertEqual(PointwiseFunction.sigmoid.valueForTesting(0), 0.5)
    }

    func testAveragePoolingMatchesFiniteDifferencesAndHandValues() {
        checkLayerGradients(AveragePool2D(inputShape: [2, 6, 6], kernelSize: 2), batch: 2)
        checkLayerGradients(AveragePool2D(inputShape: [2, 7, 7], kernelSize: 3, stride: 2), batch: 2)
        checkLayerGradients(AveragePool2D(globalOver: [3, 5, 4]), batch: 2)
        let pool = AveragePool2D(inputShape: [1, 2, 4], kernelSize: 2)
        let model = Sequential(inputShape: [1, 2, 4], layers: [pool])
        model.reserve(batchCapacity: 1)
        for (i, v) in [1, 2, 3, 4, 5, 6, 7, 8].enumerated() { model.input[i] = Float(v) }
        model.forward(batch: 1, context: .inference)
        XCTAssertEqual([model.output[0], model.output[1]], [3.5, 5.5])  // (1+2+5+6)/4, (3+4+7+8)/4
        let global = Sequential(inputShape: [1, 2, 4], layers: [AveragePool2D(globalOver: [1, 2, 4])])
        global.reserve(batchCapacity: 1)
        for i in 0..<8 { global.input[i] = Float(i + 1) }
        XCTAssertEqual(global.forward(batch: 1, context: .inference)[0], 4.5)
        XCTAssertEqual(global.outputShape, [1, 1, 1])
    }
}

extension PointwiseFunction {
    /// y = f(x) through a one-layer model (the function itself is internal to the module).
    func valueForTesting(_ x: Float) -> Float {
        let model = Sequential(inputShape: [1], layers: [Pointwise(self, shape: [1])])
        model.reserve(batchCapacity: 1)
        model.input[0] = x
        return model.forward(batch: 1, context: .inference)[0]
    }
}
