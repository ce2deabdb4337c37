import Layers
import Tensors
import XCTest
import _TestSupport

/// LayerNorm and causal self-attention: backward against central finite differences (loss in Double),
/// attention against a plain double-precision reference, and causality.
final class TransformerLayerTests: XCTestCase {
    /// A deterministic value in [-1, 1) for index i.
    private func value(_ i: Int, _ salt: Int = 0) -> Float { Float(((i * 7919 + salt * 104_729) % 2000)) / 1000 - 1 }

    /// Checks the parameter gradients of `model` on `batch` samples of deterministic inputs.
    private func checkGradients(_ model: Sequential, batch: Int, file: StaticString = #filePath, line: UInt = #line) {
        model.parameters.initializeKaimingUniform(seed: 11)
        let inputCount = batch * model.inputShape.reduce(1, *), outputCount = batch * model.outputCount
        assertParameterGradientsMatchFiniteDifferences(model, input: (0..<inputCount).map { value($0, 1) },
                                                       weights: (0..<outputCount).map { value($0, 2) }, batch: batch,
                                                       file: file, line: line)
    }

    func testLayerNormMatchesFiniteDifferencesAndNormalizesEachPosition() {
        let norm = LayerNorm(shape: [3, 8], name: "ln")
        // A Linear before it, so the input gradient LayerNorm passes back is checked through its weights.
        let model = Sequential(inputShape: [3, 4], layers: [
            Linear(inputFeatures: 4, outputFeatures: 8, name: "0", positions: 3), norm,
            Linear(inputFeatures: 8, outputFeatures: 5, name: "2", positions: 3),
        ])
        checkGradients(model, batch: 2)
        let alone = Sequential(inputShape: [2, 6], layers: [LayerNorm(shape: [2, 6], name: "ln")])
        alone.parameters.initializeKaimingUniform(seed: 1)
        alone.reserve(batchCapacity: 1)
        let x: [Float] = [1, 2, 3, 4, 5, 6, -3, 0, 3, 0, 0, 0]
        alone.input.update(from: x, count: 12)
        let y = alone.forward(batch: 1, context: .inference)
        for row in 0..<2 {
            let values = (0..<6).map { Double(y[row * 6 + $0]) }
            let mean = values.reduce(0, +) / 6, variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 6
            XCTAssertEqual(mean, 0, accuracy: 1e-6)
            XCTAssertEqual(variance, 1, accuracy: 1e-4, "biased variance 1 (eps 1e-5)")
        }
    }

    func testAttentionMatchesFiniteDifferences() {
        let model = Sequential(inputShape: [5, 4], layers: [
            Linear(inputFeatures: 4, outputFeatures: 6, name: "0", positions: 5),
            PositionEmbedding(positions: 5, features: 6, name: "wpe"),
            CausalSelfAttention(positions: 5, features: 6, heads: 2, name: "attn"),
        ])
        checkGradients(model, batch: 2)
    }

    /// Widths and context lengths past the C kernels' 16 lanes (a full block plus a tail), without biases.
    func testWideRowsAndLongContextsWithoutBiasesMatchFiniteDifferences() {
        let norm = Sequential(inputShape: [3, 37], layers: [
            Linear(inputFeatures: 37, outputFeatures: 37, name: "0", bias: false, positions: 3),
            LayerNorm(shape: [3, 37], bias: false, name: "ln"),
            Linear(inputFeatures: 37, outputFeatures: 4, name: "2", bias: false, positions: 3),
        ])
        checkGradients(norm, batch: 2)
        let attention = Sequential(inputShape: [21, 4], layers: [
            Linear(inputFeatures: 4, outputFeatures: 6, name: "0", bias: false, positions: 21),
            CausalSelfAttention(positions: 21, features: 6, heads: 2, bias: false, name: "attn"),
        ])
        checkGradients(attention, batch: 1)
    }

    /// The layer's output against softmax(q·kᵀ/√d + causal mask)·v computed in Double from its own weights.
    func testAttentionMatchesADoublePrecisionReferenceAndIsCausal() {
        let t = 7, c = 8, h = 2, d = c / h
        let attention = CausalSelfAttention(positions: t, features: c, heads: h, name: "attn")
        let model = Sequential(inputShape: [t, c], layers: [attention])
        model.parameters.initializeKaimingUniform(seed: 3)
        model.reserve(batchCapacity: 1)
        let x = (0..<(t * c)).map { value($0, 5) }
        model.input.update(from: x, count: t * c)
        let y = Array(UnsafeBufferPointer(start: model.forward(batch: 1, context: .inference), count: t * c))
        let p = Array(model.parameters.values).map(Double.init)
        let wAttn = Array(p[0..<(3 * c * c)]), bAttn = Array(p[(3 * c * c)..<(3 * c * c + 3 * c)])
        let wProj = Array(p[(3 * c * c + 3 * c)..<(3 * c * c + 3 * c + c * c)]), bProj = Array(p[(4 * c * c + 3 * c)...])
        var qkv = [Double](repeating: 0, count: t * 3 * c)
        for i in 0..<t { for o in 0..<(3 * c) {
            qkv[i * 3 * c + o] = bAttn[o] + (0..<c).reduce(0) { $0 + wAttn[o * c + $1] * Double(x[i * c + $1]) }
        } }
        var heads = [Double](repeating: 0, count: t * c)
        for head in 0..<h { for i in 0..<t {
            let scores = (0...i).map { j in
                (0..<d).reduce(0.0) { $0 + qkv[i * 3 * c + head * d + $1] * qkv[j * 3 * c + c + head * d + $1] } / Double(d).squareRoot()
            }
            let top = scores.max()!, e = scores.map { exp($0 - top) }, sum = e.reduce(0, +)
            for k in 0..<d { heads[i * c + head * d + k] = (0...i).reduce(0) { $0 + e[$1] / sum * qkv[$1 * 3 * c + 2 * c + head * d + k] } }
        } }
        for i in 0..<t { for o in 0..<c {
            let expected = bProj[o] + (0..<c).reduce(0) { $0 + wProj[o * c + $1] * heads[i * c + $1] }
            XCTAssertEqual(Double(y[i * c + o]), expected, accuracy: 1e-5 * max(1, abs(expected)), "position \(i), feature \(o)")
        } }
        // Changing position 4 changes nothing before it.
        var changed = x
        for k in 0..<c { changed[4 * c + k] += 0.5 }
        model.input.update(from: changed, count: t * c)
        let z = model.forward(batch: 1, context: .inference)
        for i in 0..<(4 * c) { XCTAssertEqual(z[i], y[i], "position \(i / c) is before the change") }
        XCTAssertNotEqual(z[4 * c], y[4 * c])
    }
}
