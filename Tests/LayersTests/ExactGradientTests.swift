import Layers
import Tensors
import XCTest
import _TestSupport

/// `--exact-sums` in the layers: each layer adds each sample's gradient as exact terms, so a batch's gradient
/// has the same bits as the same samples' gradients taken in parts and summed as integers (what ranks do),
/// and it is the gradient the float path computes, to rounding.
final class ExactGradientTests: XCTestCase {
    /// Models covering every layer with exact terms: the three convolution lowerings (with bias and ReLU,
    /// stride 2, bias-free), flat Linear layers (with ReLU, and the input gradient between layers), and
    /// Linear layers applied per position.
    private let models: [(name: String, inputShape: [Int], build: () -> [Layer])] = [
        ("transformer", [4], {  // token ids in: embeddings, LayerNorm, attention, a tied head
            [Embedding(vocabularySize: 7, features: 6, positions: 4, name: "wte"),
             PositionEmbedding(positions: 4, features: 6, name: "wpe"),
             LayerNorm(shape: [4, 6], name: "ln"), CausalSelfAttention(positions: 4, features: 6, heads: 2, name: "attn"),
             Linear(inputFeatures: 6, outputFeatures: 7, name: "head", bias: false, positions: 4, tiedTo: "wte.weight")]
        }),
        ("direct conv", [2, 6, 5], {
            [Conv2D(inputShape: [2, 6, 5], outputChannels: 7, kernelSize: 3, padding: 1, activation: .relu, name: "0",
                    lowering: .direct), Flatten(inputShape: [7, 6, 5]), Linear(inputFeatures: 210, outputFeatures: 5, name: "2")]
        }),
        ("per-image conv", [3, 7, 6], {
            [Conv2D(inputShape: [3, 7, 6], outputChannels: 4, kernelSize: 3, stride: 2, padding: 1, name: "0",
                    lowering: .perImage), Flatten(inputShape: [4, 4, 3]), Linear(inputFeatures: 48, outputFeatures: 5, name: "2")]
        }),
        ("batched conv", [3, 5, 5], {
            [Conv2D(inputShape: [3, 5, 5], outputChannels: 6, kernelSize: 3, name: "0", lowering: .batched, bias: false),
             Flatten(inputShape: [6, 3, 3]), Linear(inputFeatures: 54, outputFeatures: 8, activation: .relu, name: "2"),
             Linear(inputFeatures: 8, outputFeatures: 5, name: "3")]
        }),
        ("per-position linear", [4, 6], {
            [Linear(inputFeatures: 6, outputFeatures: 3, activation: .relu, name: "0", positions: 4),
             Linear(inputFeatures: 3, outputFeatures: 2, name: "1", positions: 4)]
        }),
    ]

    private let batch = 7

    /// Gradients of Σ y·dOut over the samples in `parts` (one backward per part), as exact sums or in float.
    private func gradients(_ model: Sequential, input: [Float], dOut: [Float], parts: [Range<Int>], exactly: Bool)
        -> (sums: ExactSums?, floats: [Float]) {
        let exact = exactly ? ExactSums(count: model.parameters.count, scratchCount: model.exactSumsScratchCount) : nil
        model.parameters.exactGradients = exact
        model.parameters.zeroGradients()
        let inputCount = model.inputShape.reduce(1, *), outputCount = model.outputCount
        for part in parts {
            for i in 0..<(part.count * inputCount) { model.input[i] = input[part.lowerBound * inputCount + i] }
            _ = model.forward(batch: part.count, context: ForwardContext(isTraining: true, sumsExactly: exactly))
            for i in 0..<(part.count * outputCount) { model.outputGradient[i] = dOut[part.lowerBound * outputCount + i] }
            _ = model.backward(batch: part.count)
        }
        exact?.round(into: model.parameters.gradients.baseAddress!)
        model.parameters.exactGradients = nil
        return (exact, Array(model.parameters.gradients))
    }

    func testABatchInPartsGivesTheSameBitsAndTheFloatGradient() {
        var generator = SeededGenerator(seed: 5)
        for (name, inputShape, build) in models {
            let model = Sequential(inputShape: inputShape, layers: build())
            model.parameters.initializeKaimingUniform(seed: 3)
            model.reserve(batchCapacity: batch)
            let input = (0..<(batch * inputShape.reduce(1, *))).map { _ in
                name == "transformer" ? Float(Int.random(in: 0..<7, using: &generator)) : Float.random(in: -1...1, using: &generator)
            }
            let dOut = (0..<(batch * model.outputCount)).map { _ in Float.random(in: -1...1, using: &generator) / 7 }
            let whole = gradients(model, input: input, dOut: dOut, parts: [0..<batch], exactly: true)
            let float = gradients(model, input: input, dOut: dOut, parts: [0..<batch], exactly: false)
            assertClose(whole.floats, float.floats, relative: 1e-5, absolute: 1e-7, "\(name): exact and float gradients")
            XCTAssertNotEqual(whole.floats, [Float](repeating: 0, count: whole.floats.count), name)
            for parts in [[0..<3, 3..<7], [0..<1, 1..<2, 2..<5, 5..<7], [0..<0, 0..<7]] {
                let split = parts.map { gradients(model, input: input, dOut: dOut, parts: [$0], exactly: true).sums! }
                var summed = [Int64](repeating: 0, count: split[0].storage.count)
                for sums in split { for i in summed.indices { summed[i] += sums.storage[i] } }
                let differing = zip(summed, whole.sums!.storage).filter { $0 != $1 }.count
                XCTAssertEqual(differing, 0, "\(name): limbs differing between \(parts) summed and the whole batch")
            }
        }
    }

    /// A layer with parameters that does not say it adds exact terms (a library user's own) is named; every
    /// layer distrain has does.
    func testLayersWithoutExactTermsAreNamed() {
        let model = Sequential(inputShape: [6], layers: [Linear(inputFeatures: 6, outputFeatures: 6, name: "0"), OwnScale(name: "1")])
        XCTAssertEqual(model.firstLayerWithoutExactSums, "OwnScale")
        for (_, inputShape, build) in models {
            XCTAssertNil(Sequential(inputShape: inputShape, layers: build()).firstLayerWithoutExactSums)
        }
    }
}

/// A layer of a library user's: y = x · w elementwise over 6 features, with no exact path of its own.
final class OwnScale: Layer {
    let name: String
    init(name: String) { self.name = name }
    var summary: String { "OwnScale" }
    var inputShape: [Int] { [6] }
    var outputShape: [Int] { [6] }
    var parameterSpecs: [ParameterSpec] { [ParameterSpec(name: "\(name).weight", shape: [6], constant: 1)] }
    func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int, context: ForwardContext) {
        y.update(from: x, count: 6 * batch)
    }
    func backward(input x: UnsafePointer<Float>, output y: UnsafePointer<Float>, dOutput dy: UnsafeMutablePointer<Float>,
                  dInput dx: UnsafeMutablePointer<Float>?, batch: Int) {}
}
