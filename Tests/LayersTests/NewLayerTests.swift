import Foundation
import Layers
import Tensors
import XCTest
import _TestSupport

/// Finite-difference checks and hand values for the activations and poolings model specs can name.
/// √(2/π)·(x + 0.044715·x³), GPT-2's GELU's argument of tanh.
private func geluTanhInner(_ x: Double) -> Double { (2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x) }

final class NewLayerTests: XCTestCase {
    func testPointwiseActivationsMatchFiniteDifferences() {
        for function in [PointwiseFunction.leakyReLU(slope: 0.1), .gelu, .geluTanh, .silu, .tanh, .sigmoid] {
            checkLayerGradients(Pointwise(function, shape: [3, 4, 4]), batch: 3, inputRange: 3)
        }
    }

    /// Values from PyTorch's definitions, worked by hand: GELU(1) = Φ(1) = 0.8413447…, SiLU(1) = 1/(1+e⁻¹)
    /// = 0.7310586…, LeakyReLU(−2) = −0.02, tanh(0.5) = 0.4621172, σ(0) = 0.5.
    func testPointwiseValues() {
        XCTAssertEqual(PointwiseFunction.gelu.valueForTesting(1), 0.8413447, accuracy: 1e-6)
        XCTAssertEqual(PointwiseFunction.gelu.valueForTesting(-1), -0.1586553, accuracy: 1e-6)
        XCTAssertEqual(PointwiseFunction.silu.valueForTesting(1), 0.7310586, accuracy: 1e-6)
        // PyTorch: F.gelu(torch.tensor(1.), approximate='tanh') = 0.8411920; at −1: −0.1588080.
        XCTAssertEqual(PointwiseFunction.geluTanh.valueForTesting(1), 0.8411920, accuracy: 1e-6)
        XCTAssertEqual(PointwiseFunction.geluTanh.valueForTesting(-1), -0.1588080, accuracy: 1e-6)
        XCTAssertEqual(PointwiseFunction.leakyReLU(slope: 0.01).valueForTesting(-2), -0.02, accuracy: 1e-7)
        XCTAssertEqual(PointwiseFunction.tanh.valueForTesting(0.5), 0.4621172, accuracy: 1e-6)
        XCTAssertEqual(PointwiseFunction.sigmoid.valueForTesting(0), 0.5)
    }

    /// The vectorized kernels against the formulas in Double (Foundation's erf and exp), on a fine grid
    /// over [−20, 20] plus tiny values: values and derivatives within a few float ulps (2e-6 relative,
    /// 1e-7 absolute near zero); a NaN stays a NaN; ±∞ give PyTorch's limits.
    func testPointwiseKernelsMatchDoublePrecisionFormulas() {
        let grid = (-4000...4000).map { Float($0) / 200 } + [1e-30, -1e-30, 1e-6, -1e-6, 3e-4, -3e-4]
        let reference: [(PointwiseFunction, (Double) -> Double, (Double) -> Double)] = [
            (.gelu, { 0.5 * $0 * erfc(-$0 / 2.0.squareRoot()) },
             { 0.5 * erfc(-$0 / 2.0.squareRoot()) + $0 * exp(-0.5 * $0 * $0) / (2 * Double.pi).squareRoot() }),
            (.geluTanh, { x in 0.5 * x * (1 + Foundation.tanh(geluTanhInner(x))) },
             { x in
                 let t = Foundation.tanh(geluTanhInner(x))
                 return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * (2 / Double.pi).squareRoot() * (1 + 3 * 0.044715 * x * x)
             }),
            (.silu, { $0 / (1 + exp(-$0)) }, { let s = 1 / (1 + exp(-$0)); return s * (1 + $0 * (1 - s)) }),
            (.tanh, { Foundation.tanh($0) }, { 1 - Foundation.tanh($0) * Foundation.tanh($0) }),
            (.sigmoid, { 1 / (1 + exp(-$0)) }, { let s = 1 / (1 + exp(-$0)); return s * (1 - s) }),
            (.leakyReLU(slope: 0.1), { $0 >= 0 ? $0 : 0.1 * $0 }, { $0 >= 0 ? 1 : 0.1 }),
        ]
        for (function, value, derivative) in reference {
            let layer = Pointwise(function, shape: [grid.count])
            let model = Sequential(inputShape: [grid.count], layers: [layer])
            model.reserve(batchCapacity: 1)
            for (i, x) in grid.enumerated() { model.input[i] = x }
            let y = model.forward(batch: 1, context: .inference)
            var dy = [Float](repeating: 1, count: grid.count), dx = [Float](repeating: 0, count: grid.count)
            layer.backward(input: model.input, output: y, dOutput: &dy, dInput: &dx, batch: 1)
            for (i, x) in grid.enumerated() {
                let expected = value(Double(x)), slope = derivative(Double(x))
                XCTAssertEqual(Double(y[i]), expected, accuracy: max(2e-6 * abs(expected), 1e-7), "\(function)(\(x))")
                // The derivative inherits the float rounding of y for tanh and sigmoid: 1e-6 absolute.
                XCTAssertEqual(Double(dx[i]), slope, accuracy: max(2e-6 * abs(slope), 1e-6), "\(function)′(\(x))")
            }
            for (x, limit) in [(Float.nan, Float.nan), (.infinity, function == .sigmoid || function == .tanh ? 1 : .infinity)] {
                model.input[0] = x
                let out = model.forward(batch: 1, context: .inference)[0]
                if limit.isNaN { XCTAssertTrue(out.isNaN, "\(function)(nan) = \(out)") } else { XCTAssertEqual(out, limit, "\(function)(inf)") }
            }
        }
    }

    func testAveragePoolingMatchesFiniteDifferencesAndHandValues() {
        checkLayerGradients(AveragePool2D(inputShape: [2, 6, 6], kernelSize: 2), batch: 2)
        checkLayerGradients(AveragePool2D(inputShape: [2, 7, 7], kernelSize: 3, stride: 2), batch: 2)
        checkLayerGradients(AveragePool2D(inputShape: [3, 7, 5], kernelSize: 2), batch: 2)  // the 2x2 kernel, odd sides
        // The 2x2 kernel on a 3x5 plane: the last row and column are in no window; backward writes
        // their zeros itself (dx starts as NaN here).
        let odd = AveragePool2D(inputShape: [1, 3, 5], kernelSize: 2)
        var x = (1...15).map(Float.init), y = [Float](repeating: 0, count: 2), dy: [Float] = [4, 8]
        var dx = [Float](repeating: .nan, count: 15)
        odd.forward(x, &y, batch: 1, context: .inference)
        XCTAssertEqual(y, [4, 6])  // (1+2+6+7)/4, (3+4+8+9)/4
        odd.backward(input: &x, output: y, dOutput: &dy, dInput: &dx, batch: 1)
        XCTAssertEqual(dx, [1, 1, 2, 2, 0, 1, 1, 2, 2, 0, 0, 0, 0, 0, 0])
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

/// BatchNorm in training mode (batch statistics, backward through them) and evaluation mode.
final class BatchNormTests: XCTestCase {
    func testTrainingModeBackwardMatchesFiniteDifferences() {
        checkLayerGradients(BatchNorm(inputShape: [3, 4, 4], name: "bn"), batch: 4, inputRange: 2, tolerance: 3e-2)
        checkLayerGradients(BatchNorm(inputShape: [6], name: "bn"), batch: 5, inputRange: 2, tolerance: 3e-2)
        checkLayerGradients(BatchNorm(inputShape: [2, 3, 3], name: "bn", affine: false), batch: 3, inputRange: 2, tolerance: 3e-2)
        // A fused ReLU: planes of 16 (whole vectors) and 5x5 (vectors and a tail), and BatchNorm1d.
        checkLayerGradients(BatchNorm(inputShape: [3, 4, 4], name: "bn", activation: .relu), batch: 4, inputRange: 2, tolerance: 3e-2)
        checkLayerGradients(BatchNorm(inputShape: [2, 5, 5], name: "bn", activation: .relu), batch: 3, inputRange: 2, tolerance: 3e-2)
        checkLayerGradients(BatchNorm(inputShape: [6], name: "bn", activation: .relu), batch: 5, inputRange: 2, tolerance: 3e-2)
    }

    /// BatchNorm with the ReLU fused gives the outputs, input gradients and parameter gradients of
    /// BatchNorm followed by a ReLU layer (the spec builder fuses every `BatchNorm2d` + `ReLU()` pair).
    func testFusedReLUEqualsASeparateReLULayer() {
        let shape = [3, 5, 6], batch = 4, count = batch * 90
        func run(fused: Bool) -> (y: [Float], dx: [Float], gradients: [Float]) {
            let layers: [Layer] = fused ? [BatchNorm(inputShape: shape, name: "bn", activation: .relu)]
                : [BatchNorm(inputShape: shape, name: "bn"), ReLU(shape: shape)]
            let model = Sequential(inputShape: shape, layers: layers)
            model.parameters.initializeKaimingUniform(seed: 1)
            for i in 0..<model.parameters.values.count { model.parameters.values[i] = 0.5 + 0.1 * Float(i % 7) - (i >= 3 ? 0.4 : 0) }
            model.reserve(batchCapacity: batch)
            var generator = SeededGenerator(seed: 3, keys: 1)
            for i in 0..<count { model.input[i] = generator.nextFloat(in: -2, 2) }
            let output = model.forward(batch: batch, context: ForwardContext(isTraining: true))
            let y = (0..<count).map { output[$0] }
            model.parameters.zeroGradients()
            // Backward layer by layer (Sequential does not compute its input's gradient).
            var dy = (0..<count).map { _ in generator.nextFloat(in: -1, 1) }
            var dx = [Float](repeating: 0, count: count), between = [Float](repeating: 0, count: count)
            dy.withUnsafeMutableBufferPointer { dyBuffer in
                dx.withUnsafeMutableBufferPointer { dxBuffer in
                    between.withUnsafeMutableBufferPointer { betweenBuffer in
                        var gradient = dyBuffer.baseAddress!
                        if !fused {
                            layers[1].backward(input: model.layerInput(1), output: output, dOutput: gradient,
                                               dInput: betweenBuffer.baseAddress!, batch: batch)
                            gradient = betweenBuffer.baseAddress!
                        }
                        layers[0].backward(input: model.layerInput(0), output: fused ? output : UnsafeMutablePointer(mutating: model.layerInput(1)),
                                           dOutput: gradient, dInput: dxBuffer.baseAddress!, batch: batch)
                    }
                }
            }
            return (y, dx, Array(model.parameters.gradients))
        }
        let fused = run(fused: true), separate = run(fused: false)
        XCTAssertGreaterThan(fused.y.filter { $0 == 0 }.count, count / 4, "the ReLU clips a good share of the outputs")
        for i in 0..<count {
            XCTAssertEqual(fused.y[i], separate.y[i], accuracy: 1e-6)
            XCTAssertEqual(fused.dx[i], separate.dx[i], accuracy: 1e-5)
        }
        XCTAssertEqual(fused.gradients.count, 6)
        for i in 0..<6 { XCTAssertEqual(fused.gradients[i], separate.gradients[i], accuracy: 1e-4) }
    }

    /// One channel, batch [1, 2, 3, 6] (BatchNorm1d(1)): mean 3, biased variance 3.5, unbiased 14/3.
    /// Training output (x − 3)/√(3.5 + 1e-5); running mean 0.9·0 + 0.1·3 = 0.3, running var 0.9·1 + 0.1·14/3.
    func testStatisticsAndRunningAveragesByHand() {
        let layer = BatchNorm(inputShape: [1], name: "bn")
        let model = Sequential(inputShape: [1], layers: [layer])
        model.parameters.initializeKaimingUniform(seed: 1)
        XCTAssertEqual(Array(model.parameters.values), [1, 0], "weight 1, bias 0")
        model.reserve(batchCapacity: 4)
        for (i, v) in [1, 2, 3, 6].enumerated() { model.input[i] = Float(v) }
        let y = model.forward(batch: 4, context: ForwardContext(isTraining: true))
        for (i, v) in [1.0, 2, 3, 6].enumerated() { XCTAssertEqual(Double(y[i]), (v - 3) / (3.5 + 1e-5).squareRoot(), accuracy: 1e-5) }
        let buffers = Array(model.parameters.buffers)
        XCTAssertEqual(model.parameters.bufferSlices.map(\.name), ["bn.running_mean", "bn.running_var", "bn.num_batches_tracked"])
        XCTAssertEqual(buffers[0], 0.3, accuracy: 1e-6)
        XCTAssertEqual(buffers[1], Float(0.9 + 0.1 * 14.0 / 3), accuracy: 1e-6)
        XCTAssertEqual(buffers[2], 1)
        // Evaluation uses the running statistics: (2 − 0.3)/√(running var + eps).
        model.input[0] = 2
        let evaluated = model.forward(batch: 1, context: .inference)[0]
        XCTAssertEqual(Double(evaluated), (2 - 0.3) / (Double(buffers[1]) + 1e-5).squareRoot(), accuracy: 1e-5)
    }

    /// Two "ranks" with two samples each, their sums added by the context's reduction, give exactly the
    /// outputs of one rank with all four samples (SyncBatchNorm).
    func testSummingOverRanksGivesTheGlobalBatchStatistics() {
        let values: [Float] = [1, 2, 3, 6, 0.5, -1, 4, 2]  // 4 samples × 2 features
        func run(_ rows: Range<Int>, reduce: ((UnsafeMutableBufferPointer<Double>) -> Void)?) -> [Float] {
            let model = Sequential(inputShape: [2], layers: [BatchNorm(inputShape: [2], name: "bn")])
            model.parameters.initializeKaimingUniform(seed: 1)
            model.reserve(batchCapacity: 4)
            for (i, r) in rows.enumerated() { model.input[2 * i] = values[2 * r]; model.input[2 * i + 1] = values[2 * r + 1] }
            let y = model.forward(batch: rows.count, context: ForwardContext(isTraining: true, sumOverRanks: reduce))
            return (0..<(2 * rows.count)).map { y[$0] }
        }
        let whole = run(0..<4, reduce: nil)
        // The other rank's sums for rows 2..<4, added the way an allreduce would.
        let other = BatchNormSums.of(values, rows: 2..<4, features: 2)
        let first = run(0..<2) { sums in for i in 0..<sums.count { sums[i] += other[i] } }
        for i in 0..<4 { XCTAssertEqual(first[i], whole[i], accuracy: 1e-6) }
    }
}

/// The per-feature sums, sums of squares and count BatchNorm reduces, for rows of a (B, F) batch.
private enum BatchNormSums {
    static func of(_ values: [Float], rows: Range<Int>, features: Int) -> [Double] {
        var sums = [Double](repeating: 0, count: 2 * features + 1)
        for r in rows {
            for f in 0..<features {
                let v = Double(values[r * features + f])
                sums[f] += v
                sums[features + f] += v * v
            }
        }
        sums[2 * features] = Double(rows.count)
        return sums
    }
}
