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

    func testPerImageLoweringBackwardMatchesFiniteDifferences() {
        checkLayerGradients(Conv2D(inputShape: [2, 6, 5], outputChannels: 3, kernelSize: 3, stride: 1, padding: 1,
                                   activation: .relu, name: "c", lowering: .perImage), batch: 3, seed: 6)
        checkLayerGradients(Conv2D(inputShape: [3, 7, 6], outputChannels: 4, kernelSize: 3, stride: 2, padding: 1,
                                   name: "c", lowering: .perImage), batch: 2, seed: 8)
    }

    /// Both lowerings compute the same function: outputs and every gradient agree.
    func testLoweringsAgree() {
        func run(_ lowering: Conv2D.Lowering) -> (y: [Float], dW: [Float], dx: [Float]) {
            let conv = Conv2D(inputShape: [3, 17, 16], outputChannels: 5, kernelSize: 5, padding: 2, activation: .relu,
                              name: "c", lowering: lowering)
            XCTAssertEqual(conv.lowering, lowering)
            // The conv's backward is called directly below, with its own input and a dx buffer.
            let model = Sequential(inputShape: [3, 17, 16], layers: [conv])
            model.parameters.initializeKaimingUniform(seed: 3)
            model.reserve(batchCapacity: 4)
            for i in 0..<(4 * 3 * 17 * 16) { model.input[i] = Float((i * 37) % 23) / 11 - 1 }
            let y = model.forward(batch: 4, context: .inference)
            let count = 4 * 5 * 17 * 16
            let output = Array(UnsafeBufferPointer(start: y, count: count))
            for i in 0..<count { model.outputGradient[i] = Float((i * 13) % 7) - 3 }
            model.parameters.zeroGradients()
            var dx = [Float](repeating: 0, count: 4 * 3 * 17 * 16)
            var dy = Array(UnsafeBufferPointer(start: model.outputGradient, count: count))
            dx.withUnsafeMutableBufferPointer { dxp in
                dy.withUnsafeMutableBufferPointer { dyp in
                    conv.backward(input: model.input, output: y, dOutput: dyp.baseAddress!, dInput: dxp.baseAddress!, batch: 4)
                }
            }
            return (output, Array(model.parameters.gradients), dx)
        }
        let batched = run(.batched), perImage = run(.perImage)
        assertClose(perImage.y, batched.y, relative: 1e-5, absolute: 1e-5)
        assertClose(perImage.dW, batched.dW, relative: 1e-4, absolute: 1e-4)
        assertClose(perImage.dx, batched.dx, relative: 1e-5, absolute: 1e-5)
        XCTAssertEqual(Conv2D(inputShape: [3, 32, 32], outputChannels: 6, kernelSize: 5, name: "a").lowering, .perImage)
        XCTAssertEqual(Conv2D(inputShape: [6, 14, 14], outputChannels: 16, kernelSize: 5, name: "b").lowering, .batched)
    }
}
