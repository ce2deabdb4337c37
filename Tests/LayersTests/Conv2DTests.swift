import CKernels
import Layers
import Tensors
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

    func testDirectLoweringBackwardMatchesFiniteDifferences() {
        // Padding, ReLU, a width that is not a multiple of the 8-float vector, more than 6 output channels
        // (two channel tiles), no padding, and 1x1, 7x7 and 2x2 kernels.
        checkLayerGradients(Conv2D(inputShape: [2, 6, 5], outputChannels: 7, kernelSize: 3, padding: 1,
                                   activation: .relu, name: "c", lowering: .direct), batch: 3, seed: 6)
        checkLayerGradients(Conv2D(inputShape: [3, 9, 11], outputChannels: 4, kernelSize: 5,
                                   name: "c", lowering: .direct), batch: 2, seed: 9)
        checkLayerGradients(Conv2D(inputShape: [3, 4, 5], outputChannels: 2, kernelSize: 1,
                                   name: "c", lowering: .direct), batch: 2, seed: 10)
        checkLayerGradients(Conv2D(inputShape: [2, 8, 9], outputChannels: 3, kernelSize: 7, padding: 3,
                                   activation: .relu, name: "c", lowering: .direct), batch: 2, seed: 11)
        // An even kernel with padding as wide as the kernel.
        checkLayerGradients(Conv2D(inputShape: [2, 4, 3], outputChannels: 3, kernelSize: 2, padding: 2,
                                   name: "c", lowering: .direct), batch: 2, seed: 12)
    }

    /// The direct kernel skips kernel rows that read only the zero rows above and below the declared
    /// nonzero range; every valid output must be what the full sum gives (exactly: the skipped terms are
    /// products with zeros) and what a naive correlation gives.
    func testDirectKernelSkipsOnlyRowsOfZeros() {
        var rng = SeededGenerator(seed: 21, keys: 1)
        let cases = [1, 3, 5].flatMap { k in [5, 14, 23].flatMap { width in
            [(0, 0), (1, 0), (0, 2), (4, 4), (7, 6)].map { (k: k, width: width, top: $0.0, bottom: $0.1) } } }
        for (k, width, top, bottom) in cases {
            let rows = 3, channels = 2, outputs = 7
            let height = top + rows + bottom, plane = height * width
            guard height >= k else { continue }
            let outRows = height - k + 1, outWidth = width - k + 1
            let fullPlane = distrain_conv_full_plane(outRows, width)
            var x = [Float](repeating: 0, count: channels * plane + distrain_conv_slack(k))
            for c in 0..<channels { for i in (top * width)..<((top + rows) * width) { x[c * plane + i] = Float(rng.next() % 200) / 50 - 2 } }
            let w = (0..<(outputs * channels * k * k)).map { _ in Float(rng.next() % 200) / 50 - 2 }
            var skipping = [Float](repeating: .nan, count: outputs * fullPlane), full = skipping
            distrain_conv_valid(x, plane, width, w, &skipping, fullPlane, channels, k, outputs, top * width, (top + rows) * width)
            distrain_conv_valid(x, plane, width, w, &full, fullPlane, channels, k, outputs, 0, plane)
            for o in 0..<outputs { for oy in 0..<outRows { for ox in 0..<outWidth {
                let q = o * fullPlane + oy * width + ox
                var naive = 0.0
                for c in 0..<channels { for ki in 0..<k { for kj in 0..<k {
                    naive += Double(w[((o * channels + c) * k + ki) * k + kj]) * Double(x[c * plane + (oy + ki) * width + ox + kj])
                } } }
                let place = "k \(k) width \(width) top \(top) bottom \(bottom) at (\(o), \(oy), \(ox))"
                XCTAssertEqual(skipping[q], full[q], place)
                XCTAssertEqual(Double(skipping[q]), naive, accuracy: 1e-4, place)
            } } }
        }
    }

    /// Every lowering computes the same function: outputs and every gradient agree, for LeNet's shapes
    /// (no padding) and a padded one, over 11 images (the direct lowering sums weight gradients in
    /// groups of 8, so this covers a full and a partial group).
    func testLoweringsAgree() {
        for (shape, outputs, padding) in [([3, 17, 16], 5, 2), ([3, 32, 32], 6, 0), ([6, 14, 14], 16, 0)] {
            let batched = convolutionResults(.batched, shape: shape, outputs: outputs, padding: padding)
            for lowering in [Conv2D.Lowering.perImage, .direct] {
                let other = convolutionResults(lowering, shape: shape, outputs: outputs, padding: padding)
                assertClose(other.y, batched.y, relative: 1e-5, absolute: 1e-5)
                assertClose(other.dW, batched.dW, relative: 1e-4, absolute: 1e-4)
                assertClose(other.db, batched.db, relative: 1e-4, absolute: 1e-4)
                assertClose(other.dx, batched.dx, relative: 1e-5, absolute: 1e-5)
            }
        }
        XCTAssertEqual(Conv2D(inputShape: [3, 32, 32], outputChannels: 6, kernelSize: 5, name: "a").lowering, .direct)
        XCTAssertEqual(Conv2D(inputShape: [6, 14, 14], outputChannels: 16, kernelSize: 5, name: "b").lowering, .direct)
        XCTAssertEqual(Conv2D(inputShape: [1, 28, 28], outputChannels: 32, kernelSize: 3, padding: 1, name: "c").lowering, .direct)
        XCTAssertEqual(Conv2D(inputShape: [32, 14, 14], outputChannels: 64, kernelSize: 3, padding: 1, name: "f").lowering, .perImage)
        XCTAssertEqual(Conv2D(inputShape: [32, 11, 11], outputChannels: 64, kernelSize: 3, padding: 1, name: "h").lowering, .batched)
        XCTAssertEqual(Conv2D(inputShape: [32, 28, 28], outputChannels: 32, kernelSize: 3, padding: 1, name: "g").lowering, .perImage)
        XCTAssertEqual(Conv2D(inputShape: [64, 7, 7], outputChannels: 128, kernelSize: 3, padding: 1, name: "d").lowering, .batched)
        XCTAssertEqual(Conv2D(inputShape: [3, 9, 9], outputChannels: 4, kernelSize: 3, stride: 2, name: "e").lowering, .batched)
    }

    /// One forward and backward of a fresh ReLU conv with fixed inputs and output gradients, by `lowering`.
    private func convolutionResults(_ lowering: Conv2D.Lowering, shape: [Int], outputs: Int, padding: Int, batch: Int = 11)
        -> (y: [Float], dW: [Float], db: [Float], dx: [Float]) {
        let conv = Conv2D(inputShape: shape, outputChannels: outputs, kernelSize: 5, padding: padding, activation: .relu,
                          name: "c", lowering: lowering)
        XCTAssertEqual(conv.lowering, lowering)
        // The conv's backward is called directly below, with its own input and a dx buffer.
        let model = Sequential(inputShape: shape, layers: [conv])
        model.parameters.initializeKaimingUniform(seed: 3)
        model.reserve(batchCapacity: batch)
        let inputCount = batch * shape.reduce(1, *), count = batch * conv.outputCount
        for i in 0..<inputCount { model.input[i] = Float((i * 37) % 23) / 11 - 1 }
        let y = model.forward(batch: batch, context: .inference)
        let output = Array(UnsafeBufferPointer(start: y, count: count))
        for i in 0..<count { model.outputGradient[i] = Float((i * 13) % 7) - 3 }
        model.parameters.zeroGradients()
        var dx = [Float](repeating: 0, count: inputCount)
        var dy = Array(UnsafeBufferPointer(start: model.outputGradient, count: count))
        dx.withUnsafeMutableBufferPointer { dxp in
            dy.withUnsafeMutableBufferPointer { dyp in
                conv.backward(input: model.input, output: y, dOutput: dyp.baseAddress!, dInput: dxp.baseAddress!, batch: batch)
            }
        }
        let gradients = Array(model.parameters.gradients), weights = conv.parameterSpecs[0].shape.reduce(1, *)
        return (output, Array(gradients[..<weights]), Array(gradients[weights...]), dx)
    }
}
