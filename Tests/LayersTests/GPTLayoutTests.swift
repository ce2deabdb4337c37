import Foundation
import Layers
import XCTest

/// GPT-2's layout recognized in specs, with nanoGPT's state_dict names (Fixtures/make_nanogpt_names.py).
final class GPTLayoutTests: XCTestCase {
    static let names = URL(fileURLWithPath: #filePath).deletingLastPathComponent().path + "/Fixtures/nanogpt-state-dict.json"

    static func spec(bias: Bool, dropout: Bool = false) -> String {
        let b = bias ? "" : ", bias=False", drop = dropout ? "Dropout(0.1)\n" : ""
        var lines = ["wte = Embedding(40, 16)", "wpe = PositionEmbedding(16, 16)", drop]
        for layer in 0..<2 {
            lines += ["h\(layer)_attn = Residual(", "LayerNorm(16\(b))", "CausalSelfAttention(16, 2\(b))", drop + ")",
                      "h\(layer)_mlp = Residual(", "LayerNorm(16\(b))", "Linear(16, 64\(b))", "GELU()", "Linear(64, 16\(b))",
                      drop + ")"]
        }
        return (lines + ["ln_f = LayerNorm(16\(b))", "lm_head = Linear(16, 40, bias=False, tied_to='wte')"]).joined(separator: "\n")
    }

    static func layout(_ spec: String) throws -> GPTLayout {
        try GPTLayout(try ModelSpec(parsing: spec, source: "test").build(inputShape: [8], outputShape: [8, 40]).layers)
    }

    func testNamesAndShapesAreNanoGPTsStateDict() throws {
        let reference = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Self.names))) as! [String: [[Any]]]
        for (key, bias) in [("bias", true), ("no_bias", false)] {
            for dropout in [false, true] {
                let layout = try Self.layout(Self.spec(bias: bias, dropout: dropout))
                let expected = reference[key]!.map { "\($0[0] as! String) \(($0[1] as! [Int]))" }
                XCTAssertEqual(layout.tensors.map { "\($0.interchangeName) \($0.shape)" }, expected, key)
                XCTAssertEqual([layout.layers, layout.heads, layout.width, layout.vocabularySize, layout.positions], [2, 2, 16, 40, 16])
                XCTAssertEqual(layout.hasBias, bias)
                XCTAssertFalse(layout.usesTanhGELU)
            }
        }
        // Hugging Face stores exactly the four projections per block as Conv1D.
        let conv1D = try Self.layout(Self.spec(bias: true)).tensors.filter(\.isConv1D).map(\.interchangeName)
        XCTAssertEqual(conv1D.count, 8)
        XCTAssertTrue(conv1D.allSatisfy { $0.hasSuffix("c_attn.weight") || $0.hasSuffix("c_proj.weight") || $0.hasSuffix("c_fc.weight") })
    }

    func testOtherModelsAreRefusedWithTheLayerThatDoesNotFit() throws {
        let untied = Self.spec(bias: true).replacingOccurrences(of: ", tied_to='wte'", with: "")
        XCTAssertThrowsError(try Self.layout(untied)) { XCTAssertTrue("\($0)".contains("tied to wte.weight"), "\($0)") }
        let relu = Self.spec(bias: true).replacingOccurrences(of: "GELU()", with: "ReLU()")
        XCTAssertThrowsError(try Self.layout(relu)) { XCTAssertTrue("\($0)".contains("an MLP block must be"), "\($0)") }
        XCTAssertThrowsError(try Self.layout("Embedding(40, 16)\nLinear(16, 40)")) {
            XCTAssertTrue("\($0)".contains("position table"), "\($0)")
        }
    }
}
