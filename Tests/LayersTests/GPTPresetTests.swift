import Layers
import Tensors
import XCTest

/// The GPT presets: GPT-2's parameter counts, nanoGPT's layouts, GPT-2's initialization.
final class GPTPresetTests: XCTestCase {
    private func parameters(_ preset: GPTPreset, vocabulary: Int) throws -> Int {
        let built = try ModelSpec(parsing: preset.spec(vocabulary: vocabulary), source: preset.rawValue)
            .build(inputShape: [preset.blockSize], outputShape: [preset.blockSize, vocabulary])
        func total(_ rows: [ModelSummaryRow]) -> Int { rows.reduce(0) { $0 + ($1.isResidual ? total($1.body) : $1.parameters) } }
        return total(built.rows)
    }

    /// 124,439,808 and 354,823,168 are Hugging Face's GPT2LMHeadModel counts (tied head, 50,257 tokens).
    func testGPT2CountsAreHuggingFacesAndTheFormulaAgrees() throws {
        XCTAssertEqual(try parameters(.gpt2, vocabulary: 50257), 124_439_808)
        XCTAssertEqual(try parameters(.gpt2Medium, vocabulary: 50257), 354_823_168)
        for preset in GPTPreset.allCases {
            XCTAssertEqual(preset.parameterCount(vocabulary: 65), try parameters(preset, vocabulary: 65), preset.rawValue)
        }
        // 6N (N without the position table) + 6·L·C·T: gpt2 at T = 1024.
        XCTAssertEqual(GPTPreset.gpt2.trainingFlopsPerToken(vocabulary: 50257, context: 1024),
                       6 * Double(124_439_808 - 1024 * 768) + 6 * 12 * 768 * 1024)
    }

    /// Weights from N(0, 0.02²), the residual projections from N(0, (0.02/√(2·layers))²), LayerNorm at 1.
    func testInitializationIsGPT2s() throws {
        let preset = GPTPreset.gptMini, vocabulary = 64
        let model = try ModelSpec(parsing: preset.spec(vocabulary: vocabulary), source: "gpt-mini")
            .build(inputShape: [64], outputShape: [64, vocabulary]).makeSequential(inputShape: [64])
        model.parameters.initializeKaimingUniform(seed: 3)
        func deviation(_ name: String) throws -> Double {
            let slice = try XCTUnwrap(model.parameters.slice(named: name), name)
            let values = (0..<slice.count).map { Double(model.parameters.values[slice.offset + $0]) }
            let mean = values.reduce(0, +) / Double(values.count)
            return (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count)).squareRoot()
        }
        let residual = 0.02 / 8.0.squareRoot()
        XCTAssertEqual(try deviation("wte.weight"), 0.02, accuracy: 0.002)
        XCTAssertEqual(try deviation("wpe.weight"), 0.02, accuracy: 0.002)
        XCTAssertEqual(try deviation("h0_attn.body.1.c_attn.weight"), 0.02, accuracy: 0.001)
        XCTAssertEqual(try deviation("h3_attn.body.1.c_proj.weight"), residual, accuracy: 0.0007)
        XCTAssertEqual(try deviation("h0_mlp.body.1.weight"), 0.02, accuracy: 0.001)
        XCTAssertEqual(try deviation("h2_mlp.body.3.weight"), residual, accuracy: 0.0007)
        XCTAssertEqual(try deviation("ln_f.weight"), 0)
        XCTAssertEqual(model.parameters.values[model.parameters.slice(named: "ln_f.weight")!.offset], 1)
        XCTAssertNil(model.parameters.slice(named: "lm_head.weight"), "tied to wte")
        XCTAssertEqual(model.parameters.aliases.map(\.name), ["lm_head.weight"])
    }

    /// GPT-2's presets have biases and the tanh GELU (Hugging Face's gelu_new); nanoGPT's character-level ones neither.
    func testLayoutsFollowTheirReferences() {
        XCTAssertTrue(GPTPreset.gpt2.spec(vocabulary: 10).contains("GELU(approximate='tanh')"))
        XCTAssertFalse(GPTPreset.gpt2.spec(vocabulary: 10).contains("bias=False)\n    Causal"))
        XCTAssertTrue(GPTPreset.gptChar.spec(vocabulary: 10).contains("CausalSelfAttention(384, 6, bias=False"))
        XCTAssertTrue(GPTPreset.gptMini.spec(vocabulary: 10).contains("    GELU()\n"))
    }
}
