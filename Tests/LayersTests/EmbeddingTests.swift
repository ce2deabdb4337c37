import Layers
import Tensors
import XCTest
import _TestSupport

/// Embedding and per-position Linear: forward against hand-computed values, backward against central
/// finite differences, and the initializers' statistics.
final class EmbeddingTests: XCTestCase {
    func testEmbeddingPicksRowsAndSumsTheGradientsOfRepeatedTokens() {
        let layer = Embedding(vocabularySize: 5, features: 3, positions: 4, name: "wte")
        let model = Sequential(inputShape: [4], layers: [layer])
        for i in 0..<15 { model.parameters.values[i] = Float(i) }
        let x: [Float] = [2, 0, 2, 4]
        model.reserve(batchCapacity: 1)
        model.input.update(from: x, count: 4)
        let y = model.forward(batch: 1, context: .inference)
        XCTAssertEqual(Array(UnsafeBufferPointer(start: y, count: 12)), [6, 7, 8, 0, 1, 2, 6, 7, 8, 12, 13, 14])
        for i in 0..<12 { model.outputGradient[i] = Float(i + 1) }
        model.parameters.zeroGradients()
        _ = model.backward(batch: 1)
        let gradients = Array(model.parameters.gradients)
        XCTAssertEqual(Array(gradients[0..<3]), [4, 5, 6], "token 0 at position 1")
        XCTAssertEqual(Array(gradients[6..<9]), [8, 10, 12], "token 2 at positions 0 and 2: (1,2,3) + (7,8,9)")
        XCTAssertEqual(Array(gradients[12..<15]), [10, 11, 12])
        XCTAssertEqual(Array(gradients[3..<6]), [0, 0, 0], "unseen token 1")
        XCTAssertEqual(Array(gradients[9..<12]), [0, 0, 0], "unseen token 3")
    }

    func testPerPositionLinearMatchesFiniteDifferences() {
        let embedding = Embedding(vocabularySize: 7, features: 4, positions: 3, name: "0")
        let linear = Linear(inputFeatures: 4, outputFeatures: 5, name: "1", positions: 3)
        XCTAssertEqual(linear.inputShape, [3, 4])
        XCTAssertEqual(linear.outputShape, [3, 5])
        let model = Sequential(inputShape: [3], layers: [embedding, Pointwise(.gelu, shape: [3, 4]), linear])
        model.parameters.initializeKaimingUniform(seed: 9)
        let batch = 2, tokens: [Float] = [1, 6, 1, 3, 0, 5]
        var weights = [Float](repeating: 0, count: batch * 15)
        for i in weights.indices { weights[i] = Float((i * 7) % 11) / 11 - 0.5 }
        assertParameterGradientsMatchFiniteDifferences(model, input: tokens, weights: weights, batch: batch, tolerance: 1e-3)
    }

    /// A head tied to the token embedding: one parameter, no second copy; its gradient is the sum of both uses
    /// (checked against finite differences of the loss in that one tensor) and the head's use alone is the
    /// transposed product dyᵀ·x, as an untied head with the same weight computes it.
    func testTiedHeadSharesTheEmbeddingTableAndSumsBothGradients() {
        let embedding = Embedding(vocabularySize: 7, features: 4, positions: 3, name: "wte")
        let head = Linear(inputFeatures: 4, outputFeatures: 7, name: "head", bias: false, positions: 3, tiedTo: "wte.weight")
        let model = Sequential(inputShape: [3], layers: [embedding, Pointwise(.geluTanh, shape: [3, 4]), head])
        XCTAssertEqual(model.parameters.slices.map(\.name), ["wte.weight"])
        XCTAssertEqual(model.parameters.count, 28)
        XCTAssertEqual(model.parameters.aliases.map(\.name), ["head.weight"])
        model.parameters.initializeKaimingUniform(seed: 9)
        let batch = 2, tokens: [Float] = [1, 6, 1, 3, 0, 5]
        var weights = [Float](repeating: 0, count: batch * 21)
        // Small output weights: the loss is quadratic in the shared table (it meets itself in the head), and a
        // curvature of ~0.5 would trip the finite differences' kink detector (slopes differing by > 2e-3).
        for i in weights.indices { weights[i] = (Float((i * 7) % 11) / 11 - 0.5) * 0.2 }
        assertParameterGradientsMatchFiniteDifferences(model, input: tokens, weights: weights, batch: batch, tolerance: 1e-3)

        // The same network untied, its head's weight a copy of the table: the tied gradient is the sum of the two.
        let untied = Sequential(inputShape: [3], layers: [
            Embedding(vocabularySize: 7, features: 4, positions: 3, name: "wte"), Pointwise(.geluTanh, shape: [3, 4]),
            Linear(inputFeatures: 4, outputFeatures: 7, name: "head", bias: false, positions: 3),
        ])
        for i in 0..<28 { untied.parameters.values[i] = model.parameters.values[i]; untied.parameters.values[28 + i] = model.parameters.values[i] }
        for network in [model, untied] {
            network.reserve(batchCapacity: batch)
            network.input.update(from: tokens, count: tokens.count)
            network.forward(batch: batch, context: .inference)
            network.outputGradient.update(from: weights, count: weights.count)
            network.parameters.zeroGradients()
            network.backward(batch: batch)
        }
        for i in 0..<28 {
            let sum = untied.parameters.gradients[i] + untied.parameters.gradients[28 + i]
            XCTAssertEqual(model.parameters.gradients[i], sum, accuracy: 1e-6, "element \(i)")
        }
        XCTAssertEqual(Array(UnsafeBufferPointer(start: model.output, count: 42)),
                       Array(UnsafeBufferPointer(start: untied.output, count: 42)))
    }

    func testInitializersHaveTheirStatedDistributions() {
        let store = ParameterStore(specs: [
            ParameterSpec(name: "n", shape: [100_000], initializer: .normal(standardDeviation: 0.02)),
            ParameterSpec(name: "z", shape: [10], initializer: .zeros),
            ParameterSpec(name: "k", shape: [10_000], fanIn: 25),
        ])
        store.initializeKaimingUniform(seed: 1)
        let normal = Array(store.values[0..<100_000]).map(Double.init)
        let mean = normal.reduce(0, +) / Double(normal.count)
        let deviation = (normal.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(normal.count)).squareRoot()
        XCTAssertEqual(mean, 0, accuracy: 3e-4)
        XCTAssertEqual(deviation, 0.02, accuracy: 3e-4)
        XCTAssertEqual(Array(store.values[100_000..<100_010]), [Float](repeating: 0, count: 10))
        let uniform = store.values[100_010...]
        XCTAssertLessThanOrEqual(uniform.map(abs).max()!, 0.2)
        XCTAssertGreaterThan(uniform.map(abs).max()!, 0.199)
    }
}
