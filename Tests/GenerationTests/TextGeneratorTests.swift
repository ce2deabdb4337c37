import Generation
import Layers
import Tensors
import XCTest
import _TestSupport

/// The KV-cache decoder against whole-window forward passes, and the generation loop around it.
final class TextGeneratorTests: XCTestCase {
    static let vocabulary = 37, context = 12

    /// A small GPT (biases, tanh GELU, tied head, dropout) with weights large enough that logits differ clearly.
    static func makeModel(seed: UInt64 = 5) throws -> Sequential {
        let spec = """
        wte = Embedding(\(vocabulary), 32, std=0.5)
        wpe = PositionEmbedding(16, 32)
        drop = Dropout(0.1)
        h0_attn = Residual(
            LayerNorm(32)
            CausalSelfAttention(32, 4, std=0.3, proj_std=0.3)
        )
        h0_mlp = Residual(
            LayerNorm(32)
            Linear(32, 128, std=0.3)
            GELU(approximate='tanh')
            Linear(128, 32, std=0.3)
        )
        h1_attn = Residual(
            LayerNorm(32, bias=False)
            CausalSelfAttention(32, 2, bias=False, std=0.3, proj_std=0.3)
        )
        ln_f = LayerNorm(32)
        lm_head = Linear(32, \(vocabulary), bias=False, tied_to='wte')
        """
        let model = try ModelSpec(parsing: spec, source: "test").build(inputShape: [context], outputShape: [context, vocabulary])
            .makeSequential(inputShape: [context])
        model.parameters.initializeKaimingUniform(seed: seed)
        model.reserve(batchCapacity: 1)
        return model
    }

    /// The logits at the last of `tokens` from one whole-window forward pass (positions after them are padding,
    /// which causal attention never lets earlier positions see).
    static func fullForwardLogits(_ model: Sequential, _ tokens: [Int32]) -> [Float] {
        precondition(tokens.count <= context)
        for t in 0..<context { model.input[t] = Float(t < tokens.count ? tokens[t] : 3) }
        let output = model.forward(batch: 1, context: .inference)
        let row = tokens.count - 1
        return Array(UnsafeBufferPointer(start: output + row * vocabulary, count: vocabulary))
    }

    /// nanoGPT's generate with top_k=1: a whole forward pass over the last `context` tokens per new token.
    static func plainGreedy(_ model: Sequential, prompt: [Int32], count: Int) -> [Int32] {
        var tokens = prompt, new: [Int32] = []
        for _ in 0..<count {
            let logits = fullForwardLogits(model, Array(tokens.suffix(context)))
            let next = logits.withUnsafeBufferPointer { Sampler.argmax($0.baseAddress!, count: vocabulary) }
            tokens.append(next)
            new.append(next)
        }
        return new
    }

    func testCachedLogitsEqualAWholeWindowForwardAtEveryPosition() throws {
        let model = try Self.makeModel(), reference = try Self.makeModel()
        let decoder = try IncrementalDecoder(model: model)
        let tokens: [Int32] = [1, 30, 7, 7, 0, 36, 12, 5, 9, 2, 33, 18]
        // A 4-token prompt in one pass, then one token at a time up to the context.
        var logits = Array(UnsafeBufferPointer(start: tokens.prefix(4).withUnsafeBufferPointer { decoder.append($0) },
                                               count: Self.vocabulary))
        for n in 4...tokens.count {
            let expected = Self.fullForwardLogits(reference, Array(tokens.prefix(n)))
            XCTAssertLessThan(maximumRelativeDifference(logits, expected), 1e-4, "position \(n - 1)")
            XCTAssertGreaterThan(expected.max()! - expected.min()!, 1, "logits must differ for the test to mean something")
            if n < tokens.count {
                let next = tokens[n]
                let pointer = withUnsafePointer(to: next) { decoder.append(UnsafeBufferPointer(start: $0, count: 1)) }
                logits = Array(UnsafeBufferPointer(start: pointer, count: Self.vocabulary))
            }
        }
        XCTAssertEqual(decoder.state.position, Self.context)
    }

    /// Greedy decoding with the cache gives nanoGPT's full-forward greedy tokens, also when the prompt is near
    /// the context limit and the window slides.
    func testGreedyEqualsPlainFullForwardGreedyAcrossTheContextLimit() throws {
        let model = try Self.makeModel(seed: 9), reference = try Self.makeModel(seed: 9)
        let generator = try TextGenerator(model: model)
        let nearTheLimit: [Int32] = (0..<10).map { Int32($0 * 3 % 37) }, full: [Int32] = (0..<12).map { Int32($0 + 20) }
        let prompts: [[Int32]] = [[4], [5, 6, 7], nearTheLimit, full]
        for prompt in prompts {
            var sampler = Sampler(settings: SamplingSettings(temperature: 0), vocabularySize: Self.vocabulary)
            let result = try generator.generate(prompt: prompt, maxNewTokens: 9, sampler: &sampler)
            XCTAssertEqual(result.tokens, Self.plainGreedy(reference, prompt: prompt, count: 9), "prompt of \(prompt.count)")
        }
    }

    func testSeededSamplingIsReproducibleAndSeedsDiffer() throws {
        let generator = try TextGenerator(model: try Self.makeModel())
        func sample(seed: UInt64, stream: UInt64 = 0) throws -> [Int32] {
            var sampler = Sampler(settings: SamplingSettings(temperature: 1.5, topK: 20, topP: 0.95, seed: seed),
                                  vocabularySize: Self.vocabulary, stream: stream)
            return try generator.generate(prompt: [1, 2], maxNewTokens: 20, sampler: &sampler).tokens
        }
        XCTAssertEqual(try sample(seed: 7), try sample(seed: 7))
        XCTAssertEqual(try sample(seed: 7, stream: 2), try sample(seed: 7, stream: 2))
        XCTAssertNotEqual(try sample(seed: 7), try sample(seed: 8))
        XCTAssertNotEqual(try sample(seed: 7), try sample(seed: 7, stream: 1))
    }

    func testStopTokenEndsGenerationAndTheCallbackCanStopIt() throws {
        let generator = try TextGenerator(model: try Self.makeModel())
        var sampler = Sampler(settings: SamplingSettings(temperature: 0), vocabularySize: Self.vocabulary)
        let free = try generator.generate(prompt: [3], maxNewTokens: 6, sampler: &sampler)
        var stopped = Sampler(settings: SamplingSettings(temperature: 0), vocabularySize: Self.vocabulary)
        let result = try generator.generate(prompt: [3], maxNewTokens: 6, sampler: &stopped, stopTokens: [free.tokens[2]])
        XCTAssertEqual(result.tokens, Array(free.tokens.prefix(upTo: free.tokens.firstIndex(of: free.tokens[2])! + 1)))
        XCTAssertTrue(result.stoppedAtStopToken)
        var seen = 0
        var again = Sampler(settings: SamplingSettings(temperature: 0), vocabularySize: Self.vocabulary)
        let early = try generator.generate(prompt: [3], maxNewTokens: 6, sampler: &again) { _ in seen += 1; return seen < 2 }
        XCTAssertEqual(early.tokens.count, 2)
    }

    func testAModelWithAnImageLayerIsRefused() throws {
        let model = try ModelSpec(parsing: "Conv2d(1, 2, 3)\nFlatten()\nLinear(8, 2)", source: "test")
            .build(inputShape: [1, 4, 4], classes: 2).makeSequential(inputShape: [1, 4, 4])
        XCTAssertThrowsError(try IncrementalDecoder(model: model)) { error in
            XCTAssertTrue("\(error)".contains("not a window of token ids"), "\(error)")
        }
    }
}
