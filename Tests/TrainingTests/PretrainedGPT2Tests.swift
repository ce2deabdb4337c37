import Foundation
import Generation
import Layers
import SafeTensors
import Training
import XCTest
import _TestSupport

/// `--init-from`: a Hugging Face GPT2LMHeadModel file (Fixtures/make_gpt2_fixture.py) gives Hugging Face's numbers.
final class PretrainedGPT2Tests: XCTestCase {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().path + "/Fixtures/gpt2-tiny"

    struct Expected: Decodable {
        let window: [Int32], loss: Double, last_logits: [Float], prompt: [Int32], greedy: [Int32]
    }

    /// GPT-2's layout at the fixture's size: 2 layers, 2 heads, 16 wide, 16 positions, 40 tokens.
    static func spec(width: Int = 16, vocabulary: Int = 40, layers: Int = 2) -> String {
        var lines = ["wte = Embedding(\(vocabulary), \(width))", "wpe = PositionEmbedding(16, \(width))"]
        for layer in 0..<layers {
            lines += ["h\(layer)_attn = Residual(", "LayerNorm(\(width))", "CausalSelfAttention(\(width), 2)", ")",
                      "h\(layer)_mlp = Residual(", "LayerNorm(\(width))", "Linear(\(width), \(4 * width))",
                      "GELU(approximate='tanh')", "Linear(\(4 * width), \(width))", ")"]
        }
        return (lines + ["ln_f = LayerNorm(\(width))", "lm_head = Linear(\(width), \(vocabulary), bias=False, tied_to='wte')"])
            .joined(separator: "\n")
    }

    static func model(_ spec: String = spec(), vocabulary: Int = 40) throws -> Sequential {
        let model = try ModelSpec(parsing: spec, source: "test").build(inputShape: [16], outputShape: [16, vocabulary])
            .makeSequential(inputShape: [16])
        model.parameters.initializeKaimingUniform(seed: 1)
        model.reserve(batchCapacity: 1)
        return model
    }

    func expected() throws -> Expected {
        try JSONDecoder().decode(Expected.self, from: Data(contentsOf: URL(fileURLWithPath: Self.fixture + "/expected.json")))
    }

    func testLoadedWeightsGiveHuggingFacesLossLogitsAndGreedyContinuation() throws {
        let model = try Self.model(), expected = try expected()
        try PretrainedGPT2.load(Self.fixture + "/model.safetensors", into: model)
        for t in 0..<16 { model.input[t] = Float(expected.window[t]) }
        let logits = model.forward(batch: 1, context: .inference)
        // Hugging Face's loss: positions 0…14 predicting 1…15.
        var loss = 0.0
        for t in 0..<15 {
            let row = (0..<40).map { Double(logits[t * 40 + $0]) }, top = row.max()!
            let logSum = top + log(row.map { exp($0 - top) }.reduce(0, +))
            loss += logSum - row[Int(expected.window[t + 1])]
        }
        XCTAssertEqual(loss / 15, expected.loss, accuracy: 1e-4 * expected.loss)
        let last = Array(UnsafeBufferPointer(start: logits + 15 * 40, count: 40))
        XCTAssertLessThan(maximumRelativeDifference(last, expected.last_logits), 1e-4)
        var sampler = Sampler(settings: SamplingSettings(temperature: 0), vocabularySize: 40)
        let generated = try TextGenerator(model: model).generate(prompt: expected.prompt, maxNewTokens: 11, sampler: &sampler)
        XCTAssertEqual(generated.tokens, expected.greedy)
    }

    /// `--init-from` at `--shard parameters`: a rank loads its slice only — the whole load's values there, the rest
    /// untouched — for slices that start and end inside a transposed Conv1D weight and inside the token table.
    func testLoadingASliceGivesTheWholeLoadsValuesThere() throws {
        let whole = try Self.model()
        try PretrainedGPT2.load(Self.fixture + "/model.safetensors", into: whole)
        let count = whole.parameters.count
        for slice in [0..<(count / 3), (count / 3)..<(2 * count / 3), 1000..<(count - 7), 5..<6] {
            let part = try Self.model()
            part.parameters.values.update(repeating: -7)
            try PretrainedGPT2.load(Self.fixture + "/model.safetensors", into: part, in: slice)
            for i in 0..<count where part.parameters.values[i] != (slice ~= i ? whole.parameters.values[i] : -7) {
                XCTFail("value \(i), slice \(slice): \(part.parameters.values[i])")
                break
            }
        }
    }

    func testMismatchedShapesAndModelsNameTheTensor() throws {
        let path = Self.fixture + "/model.safetensors"
        XCTAssertThrowsError(try PretrainedGPT2.load(path, into: try Self.model(Self.spec(width: 32)))) {
            XCTAssertTrue("\($0)".contains("transformer.wte.weight has shape [40, 16]") && "\($0)".contains("[40, 32]"), "\($0)")
        }
        XCTAssertThrowsError(try PretrainedGPT2.load(path, into: try Self.model(Self.spec(vocabulary: 41), vocabulary: 41))) {
            XCTAssertTrue("\($0)".contains("[41, 16]"), "\($0)")
        }
        XCTAssertThrowsError(try PretrainedGPT2.load(path, into: try Self.model(Self.spec(layers: 1)))) {
            XCTAssertTrue("\($0)".contains("no place for") && "\($0)".contains("transformer.h.1."), "\($0)")
        }
        XCTAssertThrowsError(try PretrainedGPT2.load(path, into: try Self.model(Self.spec(layers: 3)))) {
            XCTAssertTrue("\($0)".contains("lacks tensor transformer.h.2.ln_1.weight"), "\($0)")
        }
        let bigram = try Self.model("Embedding(40, 16)\nLinear(16, 40)")
        XCTAssertThrowsError(try PretrainedGPT2.load(path, into: bigram)) {
            XCTAssertTrue("\($0)".contains("not in GPT-2's layout"), "\($0)")
        }
    }

    /// Files without the `transformer.` prefix (GPT2Model's) load the same; a mask buffer is skipped; a head that is
    /// not the token table is refused.
    func testUnprefixedNamesMaskBuffersAndAnUntiedHead() throws {
        let source = try SafeTensors.decode(try readFixture(), path: "fixture")
        func rewrite(_ rename: (String) -> String, extra: [(String, [Float], [Int])]) throws -> String {
            var arrays: [(String, [Float], [Int])] = try source.entries.keys.sorted().map { (rename($0), try source.values($0),
                                                                                            source.entries[$0]!.shape) }
            arrays += extra
            let path = NSTemporaryDirectory() + "gpt2-\(UUID().uuidString).safetensors"
            let bytes = arrays.withTensors { SafeTensors.encode($0, metadata: [:]) }
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            return path
        }
        let wte = try source.values("transformer.wte.weight")
        let plain = try rewrite({ String($0.dropFirst(12)) }, extra: [("h.0.attn.bias", [1, 0, 1, 1], [1, 1, 2, 2])])
        defer { try? FileManager.default.removeItem(atPath: plain) }
        let a = try Self.model(), b = try Self.model()
        try PretrainedGPT2.load(plain, into: a)
        try PretrainedGPT2.load(Self.fixture + "/model.safetensors", into: b)
        XCTAssertEqual(Array(a.parameters.values), Array(b.parameters.values))
        let untied = try rewrite({ $0 }, extra: [("lm_head.weight", wte.map { $0 + 1 }, [40, 16])])
        defer { try? FileManager.default.removeItem(atPath: untied) }
        XCTAssertThrowsError(try PretrainedGPT2.load(untied, into: try Self.model())) {
            XCTAssertTrue("\($0)".contains("lm_head.weight differs from the token table"), "\($0)")
        }
    }

    private func readFixture() throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: Self.fixture + "/model.safetensors"))) }
}

private extension Array where Element == (String, [Float], [Int]) {
    /// The arrays as TensorToWrite values, valid inside `body`.
    func withTensors<R>(_ body: ([TensorToWrite]) -> R) -> R {
        var pointers: [UnsafeMutableBufferPointer<Float>] = []
        defer { pointers.forEach { $0.deallocate() } }
        let tensors = map { name, values, shape -> TensorToWrite in
            let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: values.count)
            _ = buffer.initialize(from: values)
            pointers.append(buffer)
            return TensorToWrite(name: name, shape: shape, values: UnsafeBufferPointer(buffer))
        }
        return body(tensors)
    }
}
