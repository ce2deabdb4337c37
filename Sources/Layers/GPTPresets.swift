import Foundation

/// The GPT presets (`--model gpt-mini|gpt-char|gpt2|gpt2-medium`): nanoGPT's layout written as a spec, for the
/// data's vocabulary. Pre-LayerNorm blocks (attention, then a 4×-wide MLP, each on a residual path), a final
/// LayerNorm and a head tied to the token table; GPT-2's initialization: every weight N(0, 0.02²), the two
/// residual projections of each block N(0, (0.02/√(2·layers))²), biases 0.
public enum GPTPreset: String, CaseIterable, Sendable, Codable {
    /// nanoGPT's CPU recipe (README, "I only have a macbook"): 4 layers, 4 heads, 128 wide, context 64.
    case gptMini = "gpt-mini"
    /// nanoGPT's shakespeare_char: 6 layers, 6 heads, 384 wide, context 256.
    case gptChar = "gpt-char"
    /// GPT-2 small (124 M with its 50,257 tokens): 12 layers, 12 heads, 768 wide, context 1024.
    case gpt2
    /// GPT-2 medium (350 M): 24 layers, 16 heads, 1024 wide, context 1024.
    case gpt2Medium = "gpt2-medium"

    public var layers: Int { [4, 6, 12, 24][index] }
    public var heads: Int { [4, 6, 12, 16][index] }
    public var width: Int { [128, 384, 768, 1024][index] }
    /// Positions of the learned position table: the longest `--context` the preset takes.
    public var blockSize: Int { [64, 256, 1024, 1024][index] }
    /// nanoGPT's character-level configs train without biases (its train.py default); GPT-2 has them.
    public var hasBias: Bool { self == .gpt2 || self == .gpt2Medium }
    /// nanoGPT uses the exact GELU; GPT-2 the tanh form.
    public var gelu: String { hasBias ? "GELU(approximate='tanh')" : "GELU()" }

    private var index: Int { Self.allCases.firstIndex(of: self)! }

    /// The preset named `text`, or nil.
    public init?(named text: String) { self.init(rawValue: text) }

    /// The spec for a vocabulary of `vocabulary` tokens.
    public func spec(vocabulary: Int) -> String {
        let c = width, std = 0.02, projection = 0.02 / (2 * Double(layers)).squareRoot()
        let bias = hasBias ? "" : ", bias=False"
        var lines = ["wte = Embedding(\(vocabulary), \(c), std=\(std))", "wpe = PositionEmbedding(\(blockSize), \(c))"]
        for layer in 0..<layers {
            lines += ["h\(layer)_attn = Residual(", "    LayerNorm(\(c)\(bias))",
                      "    CausalSelfAttention(\(c), \(heads)\(bias), std=\(std), proj_std=\(projection))", ")",
                      "h\(layer)_mlp = Residual(", "    LayerNorm(\(c)\(bias))", "    Linear(\(c), \(4 * c)\(bias), std=\(std))",
                      "    \(gelu)", "    Linear(\(4 * c), \(c)\(bias), std=\(projection))", ")"]
        }
        lines += ["ln_f = LayerNorm(\(c)\(bias))", "lm_head = Linear(\(c), \(vocabulary), bias=False, tied_to='wte')"]
        return lines.joined(separator: "\n") + "\n"
    }

    /// Parameters with a vocabulary of `vocabulary` (the tied head counts once).
    public func parameterCount(vocabulary: Int) -> Int {
        let c = width, b = hasBias ? 1 : 0
        let block = 2 * (c + b * c) + (3 * c * c + b * 3 * c) + (c * c + b * c) + (4 * c * c + b * 4 * c) + (4 * c * c + b * c)
        return vocabulary * c + blockSize * c + layers * block + (c + b * c)
    }

    /// Training FLOPs per token at context `t`: 6 per parameter outside the embeddings (forward 2, backward 4) plus
    /// the attention's scores and weighted sums, 6·layers·width·t (PaLM's estimate, nanoGPT's `estimate_mfu`).
    public func trainingFlopsPerToken(vocabulary: Int, context t: Int) -> Double {
        let nonEmbedding = parameterCount(vocabulary: vocabulary) - blockSize * width
        return 6 * Double(nonEmbedding) + 6 * Double(layers * width * t)
    }
}
