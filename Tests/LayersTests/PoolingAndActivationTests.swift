import Tensors
import Layers
import XCTest
import _TestSupport

final class PoolingAndActivationTests: XCTestCase {
    func testMaxPoolBackwardMatchesFiniteDifferences() {
        // Inputs spread over ±3 keep the maxima well apart from the finite-difference step.
        checkLayerGradients(MaxPool2D(inputShape: [2, 4, 6], kernelSize: 2), batch: 2, inputRange: 3)
    }

    /// The 2x2 C kernel on odd sizes (the last row and column are dropped, as in PyTorch), rows long
    /// enough for its 8-wide vector path plus a scalar tail, several channels and samples: outputs equal
    /// a naive first-maximum scan, backward routes each gradient to that maximum (0 elsewhere, including
    /// the dropped row and column), and gradients match finite differences.
    func testMaxPool2x2KernelOnOddSizes() {
        checkLayerGradients(MaxPool2D(inputShape: [2, 3, 17], kernelSize: 2), batch: 2, seed: 5, inputRange: 3)
        let shape = [3, 5, 19], outH = 2, outW = 9, planeIn = 5 * 19
        let pool = MaxPool2D(inputShape: shape, kernelSize: 2)
        let model = Sequential(inputShape: shape, layers: [pool])
        model.reserve(batchCapacity: 2)
        // Repeated values make ties, so "first maximum" matters.
        for i in 0..<(2 * 3 * planeIn) { model.input[i] = Float((i * 29) % 7) - 3 }
        let y = model.forward(batch: 2, context: .inference)
        var expectedDx = [Float](repeating: 0, count: 2 * 3 * planeIn)
        var dy = [Float](repeating: 0, count: 2 * 3 * outH * outW)
        for plane in 0..<6 { for oy in 0..<outH { for ox in 0..<outW {
            let out = (plane * outH + oy) * outW + ox
            var best = -Float.infinity, bestIndex = -1
            for (r, c) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                let index = plane * planeIn + (2 * oy + r) * 19 + 2 * ox + c
                if model.input[index] > best { best = model.input[index]; bestIndex = index }
            }
            XCTAssertEqual(y[out], best, "output \(out)")
            dy[out] = Float(out + 1)
            expectedDx[bestIndex] = Float(out + 1)
        } } }
        var dx = [Float](repeating: .nan, count: expectedDx.count)
        dx.withUnsafeMutableBufferPointer { dxp in
            dy.withUnsafeMutableBufferPointer { dyp in
                pool.backward(input: model.input, output: y, dOutput: dyp.baseAddress!, dInput: dxp.baseAddress!, batch: 2)
            }
        }
        XCTAssertEqual(dx, expectedDx)
    }

    /// A NaN anywhere in a window wins it, as in PyTorch — in the vector path, the scalar tail and the general loop.
    func testMaxPool2x2PropagatesNaN() {
        let shape = [1, 2, 18]
        let model = Sequential(inputShape: shape, layers: [MaxPool2D(inputShape: shape, kernelSize: 2)])
        model.reserve(batchCapacity: 1)
        for i in 0..<36 { model.input[i] = Float(i) }
        model.input[18 + 3] = .nan   // window 1 (vector path), bottom-right
        model.input[16] = .nan       // window 8 (scalar tail), top-left
        let y = model.forward(batch: 1, context: .inference)
        XCTAssert(y[1].isNaN && y[8].isNaN)
        XCTAssertEqual(y[0], 19)
        XCTAssertEqual(y[7], 33)
        // The general loop (3x3 windows, stride 2) follows the same rule.
        let general = Sequential(inputShape: [1, 3, 5], layers: [MaxPool2D(inputShape: [1, 3, 5], kernelSize: 3, stride: 2)])
        general.reserve(batchCapacity: 1)
        for i in 0..<15 { general.input[i] = Float(i) }
        general.input[0] = .nan  // first candidate of window 0
        let pooled = general.forward(batch: 1, context: .inference)
        XCTAssert(pooled[0].isNaN)
        XCTAssertEqual(pooled[1], 14)
    }

    func testMaxPoolWithOverlappingStrideMatchesFiniteDifferences() {
        checkLayerGradients(MaxPool2D(inputShape: [1, 5, 5], kernelSize: 3, stride: 2), batch: 2, seed: 8, inputRange: 3)
    }

    func testMaxPoolForwardPicksTheMaximum() {
        let pool = MaxPool2D(inputShape: [1, 2, 4], kernelSize: 2)
        let model = Sequential(inputShape: [1, 2, 4], layers: [pool])
        model.reserve(batchCapacity: 1)
        let x: [Float] = [1, 5, -1, 0, 3, 2, -7, -2]
        for (i, v) in x.enumerated() { model.input[i] = v }
        let y = model.forward(batch: 1, context: .inference)
        XCTAssertEqual([y[0], y[1]], [5, 0])
    }

    func testReLUBackwardMatchesFiniteDifferences() {
        checkLayerGradients(ReLU(shape: [7]), batch: 3)
    }

    func testDropoutBackwardMatchesFiniteDifferencesAndScalesSurvivors() {
        let dropout = Dropout(shape: [50], probability: 0.4, layerKey: 1)
        checkLayerGradients(dropout, batch: 2)
        let model = Sequential(inputShape: [50], layers: [Dropout(shape: [50], probability: 0.4, layerKey: 1)])
        model.reserve(batchCapacity: 4)
        for i in 0..<200 { model.input[i] = 1 }
        let y = model.forward(batch: 4, context: ForwardContext(isTraining: true, seed: 3))
        let values = (0..<200).map { y[$0] }
        XCTAssert(values.allSatisfy { $0 == 0 || abs($0 - 1 / 0.6) < 1e-6 })
        let kept = Double(values.filter { $0 > 0 }.count) / 200
        XCTAssertEqual(kept, 0.6, accuracy: 0.12)
        let evaluation = model.forward(batch: 4, context: .inference)
        XCTAssert((0..<200).allSatisfy { evaluation[$0] == 1 })
    }

    /// The C kernel draws the numbers of the Swift generator: sample s's mask is
    /// SeededGenerator(seed, "DROP", layer key, epoch, global index)'s nextUnitFloat() < keep, in order.
    func testDropoutMasksAreTheSeededGeneratorsStream() {
        let model = Sequential(inputShape: [37], layers: [Dropout(shape: [37], probability: 0.3, layerKey: 7)])
        model.reserve(batchCapacity: 2)
        for i in 0..<74 { model.input[i] = Float(i) - 30 }
        let indices: [Int32] = [123, 4]
        let y = indices.withUnsafeBufferPointer { p -> [Float] in
            let out = model.forward(batch: 2, context: ForwardContext(isTraining: true, seed: 11, epoch: 3, sampleIndices: p.baseAddress))
            return (0..<74).map { out[$0] }
        }
        for (s, index) in indices.enumerated() {
            var generator = SeededGenerator(seed: 11, 0x4452_4F50, 7, 3, UInt64(index))
            for i in 0..<37 {
                let keepIt = generator.nextUnitFloat() < 0.7
                XCTAssertEqual(y[s * 37 + i], keepIt ? model.input[s * 37 + i] * (1 / Float(0.7)) : 0, "sample \(s) feature \(i)")
            }
        }
    }

    func testDropoutMaskDependsOnTheGlobalSampleIndexNotThePositionInTheBatch() {
        let model = Sequential(inputShape: [20], layers: [Dropout(shape: [20], probability: 0.5, layerKey: 1)])
        model.reserve(batchCapacity: 2)
        for i in 0..<40 { model.input[i] = 1 }
        let pair: [Int32] = [10, 11]
        let first = pair.withUnsafeBufferPointer { p -> [Float] in
            let y = model.forward(batch: 2, context: ForwardContext(isTraining: true, seed: 3, epoch: 1, sampleIndices: p.baseAddress))
            return (20..<40).map { y[$0] }  // sample 11
        }
        let single: [Int32] = [11]
        let second = single.withUnsafeBufferPointer { p -> [Float] in
            let y = model.forward(batch: 1, context: ForwardContext(isTraining: true, seed: 3, epoch: 1, sampleIndices: p.baseAddress))
            return (0..<20).map { y[$0] }
        }
        XCTAssertEqual(first, second)
    }

    func testFlattenSharesItsInputBuffer() {
        let model = Sequential(inputShape: [2, 3, 3], layers: [Flatten(inputShape: [2, 3, 3]), Linear(inputFeatures: 18, outputFeatures: 2, name: "1")])
        XCTAssertEqual(model.outputShape, [2])
        XCTAssertEqual(model.parameters.count, 38)
    }
}
