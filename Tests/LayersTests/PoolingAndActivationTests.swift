import Layers
import XCTest
import _TestSupport

final class PoolingAndActivationTests: XCTestCase {
    func testMaxPoolBackwardMatchesFiniteDifferences() {
        // Inputs spread over ±3 keep the maxima well apart from the finite-difference step.
        checkLayerGradients(MaxPool2D(inputShape: [2, 4, 6], kernelSize: 2), batch: 2, inputRange: 3)
    }

    /// The 2x2 C kernel on odd sizes (the last row and column are dropped, as in PyTorch), several
    /// channels and samples: outputs equal a naive max and gradients match finite differences.
    func testMaxPool2x2KernelOnOddSizes() {
        checkLayerGradients(MaxPool2D(inputShape: [3, 5, 7], kernelSize: 2), batch: 2, seed: 5, inputRange: 3)
        let shape = [3, 5, 7]
        let model = Sequential(inputShape: shape, layers: [MaxPool2D(inputShape: shape, kernelSize: 2)])
        model.reserve(batchCapacity: 2)
        for i in 0..<(2 * 105) { model.input[i] = Float((i * 29) % 31) - 15 }
        let y = model.forward(batch: 2, context: .inference)
        var index = 0
        for plane in 0..<6 { for oy in 0..<2 { for ox in 0..<3 {
            let at = { (r: Int, c: Int) in model.input[plane * 35 + r * 7 + c] }
            let expected = max(max(at(2 * oy, 2 * ox), at(2 * oy, 2 * ox + 1)), max(at(2 * oy + 1, 2 * ox), at(2 * oy + 1, 2 * ox + 1)))
            XCTAssertEqual(y[index], expected)
            index += 1
        } } }
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
