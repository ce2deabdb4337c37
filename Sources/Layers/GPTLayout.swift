import Tensors

/// A model recognized as a GPT in nanoGPT's and GPT-2's layout — token and position tables, blocks of
/// LayerNorm → attention and LayerNorm → Linear(C, 4C) → GELU → Linear(4C, C) on residual paths, a final
/// LayerNorm and a head tied to the token table — with each of its tensors' names in that layout.
///
/// nanoGPT's `GPT` and Hugging Face's `GPT2LMHeadModel` share the names (`transformer.h.0.attn.c_attn.weight`,
/// …); Hugging Face stores the four projections of a block as Conv1D, (in, out): the transpose of ours.
/// Dropout layers anywhere are skipped (they hold nothing and are identities in evaluation).
public struct GPTLayout: Sendable {
    /// One tensor: distrain's name, the interchange name, and whether Hugging Face stores it transposed.
    public struct Tensor: Sendable, Equatable {
        public let name: String
        public let interchangeName: String
        public let shape: [Int]
        public let isConv1D: Bool
    }

    public let layers: Int
    public let heads: Int
    public let width: Int
    public let vocabularySize: Int
    /// Rows of the position table (nanoGPT's block_size, GPT-2's n_positions).
    public let positions: Int
    public let hasBias: Bool
    /// GPT-2's tanh GELU (true) or the exact one (false).
    public let usesTanhGELU: Bool
    /// The LayerNorms' epsilon (the final one's; nanoGPT and GPT-2 use 1e-5 throughout).
    public let epsilon: Float
    /// Every parameter, in model order; the tied head's weight last, as `lm_head.weight`.
    public let tensors: [Tensor]

    /// The layout of `model`'s layers, or a GPTLayoutError naming the first layer that does not fit it.
    public init(_ model: [Layer]) throws {
        var reader = LayoutReader(model.filter { !($0 is Dropout) })
        let wte = try reader.take(Embedding.self, "the token table (Embedding)")
        let wpe = try reader.take(PositionEmbedding.self, "the position table (PositionEmbedding)")
        var tensors = [Tensor(wte.parameterSpecs[0], "transformer.wte.weight"), Tensor(wpe.parameterSpecs[0], "transformer.wpe.weight")]
        var blocks = 0, heads = 0, bias: Bool?, tanh: Bool?
        while let block = reader.peek as? Residual, block.shortcut.isEmpty {
            reader.skip()
            let prefix = "transformer.h.\(blocks)."
            let attention = try BlockReader(block, wte.features).attention()
            let mlp = try BlockReader(try reader.take(Residual.self, "block \(blocks)'s MLP (a Residual)"), wte.features).mlp()
            heads = attention.heads
            bias = bias ?? attention.hasBias
            tanh = tanh ?? mlp.tanh
            guard attention.hasBias == bias, mlp.tanh == tanh, mlp.hasBias == bias else {
                throw GPTLayoutError(reason: "block \(blocks) differs from the first in biases or GELU")
            }
            tensors += attention.tensors(prefix) + mlp.tensors(prefix)
            blocks += 1
        }
        guard blocks > 0 else { throw GPTLayoutError(reason: "it has no attention block after the position table") }
        let lnF = try reader.take(LayerNorm.self, "the final LayerNorm")
        let head = try reader.take(Linear.self, "the language-model head (a Linear)")
        guard head.tiedWeightName == wte.parameterSpecs[0].name, !head.hasBias, reader.isDone else {
            throw GPTLayoutError(reason: "its head must be the last layer, without bias, tied to \(wte.parameterSpecs[0].name)")
        }
        tensors += lnF.parameterSpecs.map { Tensor($0, "transformer.ln_f." + $0.name.split(separator: ".").last!) }
        tensors.append(Tensor(name: head.name + ".weight", interchangeName: "lm_head.weight", shape: wte.parameterSpecs[0].shape,
                              isConv1D: false))
        layers = blocks
        self.heads = heads
        width = wte.features
        vocabularySize = wte.vocabularySize
        positions = wpe.positions
        hasBias = bias ?? true
        usesTanhGELU = tanh ?? false
        epsilon = lnF.epsilon
        self.tensors = tensors
    }
}

extension GPTLayout.Tensor {
    init(_ spec: ParameterSpec, _ interchangeName: String, conv1D: Bool = false) {
        self.init(name: spec.name, interchangeName: interchangeName, shape: spec.shape, isConv1D: conv1D)
    }
}

/// Why a model is not in the GPT layout.
public struct GPTLayoutError: Error, CustomStringConvertible {
    public let reason: String
    public var description: String { "the model is not in GPT-2's layout: \(reason)" }
}

/// Takes a model's layers one at a time, by the kind expected.
private struct LayoutReader {
    private let layers: [Layer]
    private var index = 0

    init(_ layers: [Layer]) { self.layers = layers }

    var peek: Layer? { index < layers.count ? layers[index] : nil }
    var isDone: Bool { index == layers.count }
    mutating func skip() { index += 1 }

    mutating func take<L: Layer>(_ kind: L.Type, _ what: String) throws -> L {
        guard let layer = peek as? L else {
            throw GPTLayoutError(reason: "expected \(what) where it has \(peek?.summary ?? "nothing")")
        }
        index += 1
        return layer
    }
}

/// The two residual blocks of a GPT layer.
private struct BlockReader {
    let body: [Layer]
    let width: Int

    init(_ block: Residual, _ width: Int) throws {
        guard block.shortcut.isEmpty else { throw GPTLayoutError(reason: "a block has a projection on its shortcut") }
        body = block.body.filter { !($0 is Dropout) }
        self.width = width
    }

    struct Attention {
        let norm: LayerNorm, attention: CausalSelfAttention
        var heads: Int { attention.heads }
        var hasBias: Bool { attention.hasBias && norm.hasBias }
        func tensors(_ prefix: String) -> [GPTLayout.Tensor] {
            let specs = attention.parameterSpecs
            return norm.parameterSpecs.map { .init($0, prefix + "ln_1." + $0.name.split(separator: ".").last!) }
                + specs.map { spec in
                    let local = spec.name.split(separator: ".").suffix(2).joined(separator: ".")  // c_attn.weight
                    return .init(spec, prefix + "attn." + local, conv1D: spec.shape.count == 2)
                }
        }
    }

    struct MLP {
        let norm: LayerNorm, up: Linear, down: Linear, tanh: Bool
        var hasBias: Bool { norm.hasBias && up.hasBias && down.hasBias }
        func tensors(_ prefix: String) -> [GPTLayout.Tensor] {
            func named(_ layer: Linear, _ local: String) -> [GPTLayout.Tensor] {
                layer.parameterSpecs.map { .init($0, prefix + "mlp.\(local)." + $0.name.split(separator: ".").last!,
                                                  conv1D: $0.shape.count == 2) }
            }
            return norm.parameterSpecs.map { .init($0, prefix + "ln_2." + $0.name.split(separator: ".").last!) }
                + named(up, "c_fc") + named(down, "c_proj")
        }
    }

    func attention() throws -> Attention {
        guard body.count == 2, let norm = body[0] as? LayerNorm, let attention = body[1] as? CausalSelfAttention,
              attention.features == width else {
            throw GPTLayoutError(reason: "an attention block must be LayerNorm then CausalSelfAttention of width \(width), "
                + "it has \(body.map(\.summary).joined(separator: ", "))")
        }
        guard norm.hasBias == attention.hasBias else { throw GPTLayoutError(reason: "its LayerNorm and attention differ in bias") }
        return Attention(norm: norm, attention: attention)
    }

    func mlp() throws -> MLP {
        guard body.count == 4, let norm = body[0] as? LayerNorm, let up = body[1] as? Linear,
              let gelu = body[2] as? Pointwise, gelu.function == .gelu || gelu.function == .geluTanh,
              let down = body[3] as? Linear, up.inputFeatures == width, up.outputFeatures == 4 * width,
              down.inputFeatures == 4 * width, down.outputFeatures == width, up.activation == .identity else {
            throw GPTLayoutError(reason: "an MLP block must be LayerNorm, Linear(\(width), \(4 * width)), GELU, "
                + "Linear(\(4 * width), \(width)), it has \(body.map(\.summary).joined(separator: ", "))")
        }
        guard norm.hasBias == up.hasBias, up.hasBias == down.hasBias else {
            throw GPTLayoutError(reason: "its LayerNorm and Linears differ in bias")
        }
        return MLP(norm: norm, up: up, down: down, tanh: gelu.function == .geluTanh)
    }
}
