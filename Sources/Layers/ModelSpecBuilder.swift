import Foundation
import Tensors

/// One row of a model's summary: a spec module with its output shape, parameters and cost.
public struct ModelSummaryRow: Sendable {
    public let name: String
    /// The torch.nn constructor with every size spelled out: what the PyTorch export writes.
    public let pytorch: String
    public let outputShape: [Int]
    public let parameters: Int
    /// Multiply-adds of one sample's forward pass.
    public let multiplyAccumulates: Int
    /// A residual block's rows (its `pytorch` is "Residual"); an empty shortcut is the identity.
    public var body: [ModelSummaryRow] = []
    public var shortcut: [ModelSummaryRow] = []
    /// For a Linear whose weight is an Embedding's table: that module's name (`tied_to='wte'` in the spec).
    public var tiedTo: String?

    public var isResidual: Bool { !body.isEmpty }

    /// Modules PyTorch lacks, whose classes the export defines.
    static let definedByExport = ["CausalSelfAttention(", "PositionEmbedding("]

    /// Whether this row or a row inside it is one of `definedByExport` (the export defines their classes).
    var usesAttention: Bool {
        Self.definedByExport.contains { pytorch.hasPrefix($0) } || (body + shortcut).contains { $0.usesAttention }
    }

    /// What a spec writes for the module: its line, or a block's lines.
    public var specText: String {
        if let tiedTo { return pytorch.dropLast() + ", tied_to='\(tiedTo)')" }
        guard isResidual else { return pytorch }
        return "Residual(\n" + body.map { "    \($0.pytorch)\n" }.joined()
            + (shortcut.isEmpty ? "" : "shortcut:\n" + shortcut.map { "    \($0.pytorch)\n" }.joined()) + ")"
    }

    /// The torch.nn expression that builds it (a block: the export's `Residual` class).
    public var pytorchExpression: String {
        guard isResidual else { return Self.definedByExport.contains { pytorch.hasPrefix($0) } ? pytorch : "nn.\(pytorch)" }
        return "Residual(\(Self.sequential(body)), \(shortcut.isEmpty ? "None" : Self.sequential(shortcut)))"
    }

    /// nn.Sequential of rows named "<block>.<path>.<i>", under their last name component.
    static func sequential(_ rows: [ModelSummaryRow]) -> String {
        let entries = rows.map { "(\"\($0.name.split(separator: ".").last!)\", \($0.pytorchExpression))" }
        return "nn.Sequential(OrderedDict([" + entries.joined(separator: ", ") + "]))"
    }
}

extension Array where Element == ModelSummaryRow {
    /// The spec again with every size spelled out and every module named: what checkpoints record, so
    /// `evaluate`, `--resume` and the export rebuild exactly this model.
    public var canonicalSpec: String { map { "\($0.name) = \($0.specText)" }.joined(separator: "\n") + "\n" }

    /// Python source binding `model` to the equivalent torch.nn.Sequential (module names as the state_dict's),
    /// preceded by the `Residual` module when the model has residual blocks.
    public var pytorchSource: String {
        (contains { $0.isResidual } ? residualModuleSource : "") + (contains { $0.usesAttention } ? attentionModuleSource : "")
            + "model = nn.Sequential(OrderedDict([\n" + map { "    (\"\($0.name)\", \($0.pytorchExpression)),\n" }.joined() + "]))\n"
            + compactMap { row in row.tiedTo.map { "model.get_submodule(\"\(row.name)\").weight = "
                + "model.get_submodule(\"\($0)\").weight  # tied: one parameter, two uses\n" } }.joined()
    }
}

/// PyTorch has no residual module; the export defines distrain's (state_dict names "<i>.body.<j>…").
let residualModuleSource = """
class Residual(nn.Module):
    \"\"\"distrain's residual block: body(x) + shortcut(x), the shortcut the identity when None.\"\"\"
    def __init__(self, body, shortcut=None):
        super().__init__()
        self.body = body
        self.shortcut = shortcut

    def forward(self, x):
        return self.body(x) + (x if self.shortcut is None else self.shortcut(x))


"""

/// PyTorch has no causal self-attention module of nanoGPT's layout; the export defines it (no dropout).
let attentionModuleSource = """
import torch
import torch.nn.functional as F

class CausalSelfAttention(nn.Module):
    \"\"\"distrain's causal self-attention (nanoGPT's layout): fused c_attn, softmax over earlier positions, c_proj.\"\"\"
    def __init__(self, embed_dim, num_heads, bias=True):
        super().__init__()
        self.c_attn = nn.Linear(embed_dim, 3 * embed_dim, bias=bias)
        self.c_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.num_heads = num_heads

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.num_heads, C // self.num_heads).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))


class PositionEmbedding(nn.Module):
    \"\"\"distrain's learned position vectors (GPT-2's wpe), added to the token embeddings.\"\"\"
    def __init__(self, num_positions, embedding_dim):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(num_positions, embedding_dim))

    def forward(self, x):
        return x + self.weight[: x.size(1)]


"""

/// A spec built for an input shape: the layers (Conv2d/Linear/BatchNorm + ReLU fused into one layer) and a summary
/// row per module.
public struct BuiltModel {
    public let layers: [Layer]
    public let rows: [ModelSummaryRow]

    /// Parameters, counted from the shapes (a tied head counts once).
    public var parameterCount: Int { layers.flatMap(\.parameterSpecs).reduce(0) { $0 + $1.shape.reduce(1, *) } }

    /// Training FLOPs of one sample as `Sequential.trainingFlopsPerSample` counts them, without allocating the model.
    public var trainingFlopsPerSample: Int {
        var multiplyAccumulates = 0, seenParameters = false
        for layer in layers {
            let forward = layer.multiplyAccumulatesPerSample
            multiplyAccumulates += 2 * forward + (seenParameters ? forward : 0)
            if !layer.parameterSpecs.isEmpty || !layer.tiedParameters.isEmpty { seenParameters = true }
        }
        return 2 * multiplyAccumulates
    }

    /// The summary table, without allocating the model (a 400 M-parameter spec costs no memory to describe).
    public func summary(inputShape: [Int]) -> String {
        summaryTable(rows, inputShape: inputShape, trainingFlops: trainingFlopsPerSample)
    }
}

extension ModelSpec {
    /// The arguments each module takes, in PyTorch's positional order, with defaults (nil: required).
    private static let schemas: [String: [(String, Double?)]] = [
        "Conv2d": [("in_channels", nil), ("out_channels", nil), ("kernel_size", nil), ("stride", 1), ("padding", 0), ("bias", 1)],
        "Linear": [("in_features", nil), ("out_features", nil), ("bias", 1), ("std", .nan)],
        "Embedding": [("num_embeddings", nil), ("embedding_dim", nil), ("std", 1)],
        "PositionEmbedding": [("num_positions", nil), ("embedding_dim", nil)],
        "LayerNorm": [("normalized_shape", nil), ("eps", 1e-5), ("bias", 1)],
        "CausalSelfAttention": [("embed_dim", nil), ("num_heads", nil), ("bias", 1), ("std", .nan), ("proj_std", .nan)],
        "BatchNorm2d": [("num_features", nil), ("eps", 1e-5), ("momentum", 0.1), ("affine", 1)],
        "BatchNorm1d": [("num_features", nil), ("eps", 1e-5), ("momentum", 0.1), ("affine", 1)],
        "ReLU": [("inplace", 0)], "LeakyReLU": [("negative_slope", 0.01), ("inplace", 0)],
        "GELU": [], "SiLU": [("inplace", 0)], "Tanh": [], "Sigmoid": [],
        "MaxPool2d": [("kernel_size", nil), ("stride", .nan)], "AvgPool2d": [("kernel_size", nil), ("stride", .nan)],
        "AdaptiveAvgPool2d": [("output_size", nil)], "Flatten": [], "Dropout": [("p", 0.5), ("inplace", 0)],
    ]

    /// The arguments given as quoted words, with the words each accepts (the first is the default).
    /// An empty list takes any word (a module's name).
    private static let wordSchemas: [String: [String: [String]]] = [
        "GELU": ["approximate": ["none", "tanh"]], "Linear": ["tied_to": []],
    ]

    /// The module kinds a spec may use.
    public static var kinds: [String] { schemas.keys.sorted() }

    /// Builds the layers for per-sample inputs of `inputShape` and a `classes`-way output, checking every
    /// module against the shape that reaches it; errors name the line and say what would fit.
    public func build(inputShape: [Int], classes: Int) throws -> BuiltModel {
        try build(inputShape: inputShape, outputShape: [classes]) { shape in
            "the model ends with output shape \(describe(shape)), the data has \(classes) classes; end with Flatten() "
                + "and Linear(…, \(classes))"
        }
    }

    /// Builds the layers for per-sample inputs of `inputShape` that must end in `outputShape` (an objective's:
    /// [classes], [1], [T, vocabulary]).
    public func build(inputShape: [Int], outputShape: [Int]) throws -> BuiltModel {
        try build(inputShape: inputShape, outputShape: outputShape) { shape in
            "the model ends with output shape \(describe(shape)), the task needs \(describe(outputShape))"
                + (outputShape.count == 2 ? "; end with Linear(…, \(outputShape[1]))" : "")
        }
    }

    private func build(inputShape: [Int], outputShape: [Int], mismatch: ([Int]) -> String) throws -> BuiltModel {
        try checkTies()
        let (layers, rows, shape) = try buildChain(modules, shape: inputShape, dropoutKeys: 0)
        guard shape == outputShape else {
            throw ModelSpecError(source: source, line: modules.last!.line, message: mismatch(shape))
        }
        let parameters = rows.reduce(0) { $0 + $1.parameters }
        guard parameters <= 500_000_000 else {
            throw ModelSpecError(source: source, line: nil, message: "has \(parameters) parameters: values, gradients and "
                + "Adam's two moments take \(String(format: "%.1f", Double(parameters) * 16 / 1e9)) GB; at most 500 "
                + "million parameters are trained here")
        }
        guard !layers.isEmpty else { throw ModelSpecError(source: source, line: nil, message: "computes nothing") }
        return BuiltModel(layers: layers, rows: rows)
    }

    /// Every `Linear(…, tied_to='name')` is at the top level, after an `Embedding(V, C)` called `name`, and is
    /// `Linear(C, V)`: the table's (V, C) is then the head's (out, in) weight.
    private func checkTies() throws {
        for block in modules where block.kind == "Residual" {
            if let inner = (block.body + block.shortcut).first(where: { $0.words["tied_to"] != nil }) {
                throw ModelSpecError(source: source, line: inner.line, message: "\(inner.text): tied_to works at the "
                    + "top level only (a head after the blocks), not inside a Residual block")
            }
        }
        for (index, m) in modules.enumerated() {
            guard m.kind == "Linear", let target = m.words["tied_to"] else { continue }
            func fail(_ message: String) -> ModelSpecError {
                ModelSpecError(source: source, line: m.line, message: "\(m.text): \(message)")
            }
            guard let table = modules[..<index].first(where: { $0.name == target }) else {
                let embeddings = modules[..<index].filter { $0.kind == "Embedding" }.map { "'\($0.name)'" }
                throw fail("tied_to='\(target)' names no module before it; " + (embeddings.isEmpty
                    ? "tie to an Embedding, e.g. wte = Embedding(V, C) on the first line"
                    : "the embeddings are \(embeddings.joined(separator: ", "))"))
            }
            guard table.kind == "Embedding", let schema = Self.schemas["Embedding"], let own = Self.schemas["Linear"] else {
                throw fail("tied_to='\(target)' names a \(table.kind), not an Embedding")
            }
            let e = try resolve(table, schema: schema, fail: fail), l = try resolve(m, schema: own, fail: fail)
            guard e["num_embeddings"] == l["out_features"], e["embedding_dim"] == l["in_features"] else {
                throw fail("a head tied to Embedding(\(shortText(e["num_embeddings"]!)), \(shortText(e["embedding_dim"]!))) "
                    + "must be Linear(\(shortText(e["embedding_dim"]!)), \(shortText(e["num_embeddings"]!)))")
            }
        }
    }

    /// Layers and rows for consecutive modules (Conv2d/Linear/BatchNorm + ReLU fused), from `shape`; Dropout masks
    /// are keyed by `dropoutKeys` + the module's position (blocks' inner modules get keys of their own).
    private func buildChain(_ chain: [Module], shape start: [Int], dropoutKeys: UInt64) throws -> ([Layer], [ModelSummaryRow], [Int]) {
        var layers: [Layer] = [], rows: [ModelSummaryRow] = []
        var shape = start
        var index = 0
        while index < chain.count {
            let module = chain[index]
            if module.kind == "Residual" {
                let (layer, row) = try buildResidual(module, shape: shape, dropoutKeys: (dropoutKeys + UInt64(index) + 1) << 16)
                layers.append(layer)
                rows.append(row)
                shape = layer.outputShape
                index += 1
                continue
            }
            let fuseReLU = index + 1 < chain.count && chain[index + 1].kind == "ReLU" && ["Conv2d", "Linear",
                "BatchNorm2d", "BatchNorm1d"].contains(module.kind)
            let (layer, row) = try buildModule(module, shape: shape, fusedReLU: fuseReLU, dropoutKey: dropoutKeys + UInt64(index))
            if let layer { layers.append(layer); shape = layer.outputShape }
            rows.append(row)
            if fuseReLU {
                rows.append(ModelSummaryRow(name: chain[index + 1].name, pytorch: "ReLU()", outputShape: shape,
                    parameters: 0, multiplyAccumulates: 0))
                index += 1
            }
            index += 1
        }
        return (layers, rows, shape)
    }

    /// A residual block: both paths built from the block's input shape, which must agree on their output.
    private func buildResidual(_ m: Module, shape: [Int], dropoutKeys: UInt64) throws -> (Layer, ModelSummaryRow) {
        let (body, bodyRows, bodyShape) = try buildChain(m.body, shape: shape, dropoutKeys: dropoutKeys)
        let (shortcut, shortcutRows, shortcutShape) = try buildChain(m.shortcut, shape: shape, dropoutKeys: dropoutKeys + 0x8000)
        guard shortcutShape == bodyShape else {
            let other = m.shortcut.isEmpty ? "the identity shortcut passes the input's \(describe(shape))"
                : "the shortcut gives \(describe(shortcutShape))"
            throw ModelSpecError(source: source, line: m.line, message: "Residual: the body gives "
                + "\(describe(bodyShape)) but \(other); the two are added, so they must match (a projection: "
                + "shortcut: Conv2d(\(shape.first ?? 0), \(bodyShape.first ?? 0), 1, stride=…))")
        }
        guard !body.isEmpty else { throw ModelSpecError(source: source, line: m.line, message: "Residual: the body computes nothing") }
        let layer = Residual(inputShape: shape, body: body, shortcut: shortcut)
        var row = ModelSummaryRow(name: m.name, pytorch: "Residual", outputShape: bodyShape,
                                  parameters: (bodyRows + shortcutRows).reduce(0) { $0 + $1.parameters },
                                  multiplyAccumulates: layer.multiplyAccumulatesPerSample)
        row.body = bodyRows
        row.shortcut = shortcutRows
        return (layer, row)
    }

    private func buildModule(_ m: Module, shape: [Int], fusedReLU: Bool, dropoutKey: UInt64) throws -> (Layer?, ModelSummaryRow) {
        guard let schema = Self.schemas[m.kind] else {
            throw ModelSpecError(source: source, line: m.line,
                message: "unknown module '\(m.kind)'; use one of \(Self.kinds.joined(separator: ", "))")
        }
        let fail = { (message: String) in ModelSpecError(source: self.source, line: m.line, message: "\(m.text): \(message)") }
        let words = try resolveWords(m, fail: fail)  // first: a word given as a number is named as such
        let arguments = ModuleArguments(module: m, shape: shape, numbers: try resolve(m, schema: schema, fail: fail),
                                        words: words, activation: fusedReLU ? Activation.relu : Activation.identity, fail: fail)
        switch m.kind {
        case "Conv2d": return try convolution(arguments)
        case "Linear": return try linear(arguments)
        case "Embedding", "PositionEmbedding": return try embedding(arguments)
        case "LayerNorm": return try layerNorm(arguments)
        case "CausalSelfAttention": return try attention(arguments)
        case "BatchNorm2d", "BatchNorm1d": return try batchNorm(arguments)
        case "ReLU", "LeakyReLU", "GELU", "SiLU", "Tanh", "Sigmoid": return pointwise(arguments)
        case "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d": return try pooling(arguments)
        case "Flatten":
            let layer = Flatten(inputShape: shape)
            return (layer, row(m, "Flatten()", layer))
        default:  // Dropout
            let p = arguments.numbers["p"]!
            guard p >= 0, p < 1 else { throw fail("p must be in [0, 1), got \(shortText(p))") }
            let layer = Dropout(shape: shape, probability: Float(p), layerKey: dropoutKey)
            return (layer, row(m, "Dropout(\(p == 0.5 ? "" : "p=\(p)"))", layer))
        }
    }

    func row(_ m: Module, _ pytorch: String, _ layer: Layer?, _ shape: [Int] = []) -> ModelSummaryRow {
        ModelSummaryRow(name: m.name, pytorch: pytorch, outputShape: layer?.outputShape ?? shape,
                        parameters: layer.map { $0.parameterSpecs.reduce(0) { $0 + $1.shape.reduce(1, *) } } ?? 0,
                        multiplyAccumulates: layer?.multiplyAccumulatesPerSample ?? 0)
    }

    /// The quoted-word arguments by name, defaults filled in; an unknown argument or word is an error.
    private func resolveWords(_ m: Module, fail: (String) -> ModelSpecError) throws -> [String: String] {
        let schema = Self.wordSchemas[m.kind] ?? [:]
        for key in m.keywords.keys where schema[key] != nil {
            throw fail("\(key) takes a quoted word: one of \(schema[key]!.map { "'\($0)'" }.joined(separator: ", "))")
        }
        var values = schema.compactMapValues(\.first)
        for (key, word) in m.words {
            guard let allowed = schema[key] else {
                throw fail("'\(key)' does not take a quoted word" + (Self.schemas[m.kind]?.contains { $0.0 == key } == true
                    ? "; give it a number or True/False" : "; \(m.kind) has no argument '\(key)'"))
            }
            guard allowed.isEmpty || allowed.contains(word) else {
                throw fail("\(key)='\(word)' is not supported; use one of \(allowed.map { "'\($0)'" }.joined(separator: ", "))")
            }
            values[key] = word
        }
        return values
    }

    /// Each argument by name: positional in schema order, then keywords; unknown or missing ones are errors.
    private func resolve(_ m: Module, schema: [(String, Double?)], fail: (String) -> ModelSpecError) throws -> [String: Double] {
        guard m.positional.count <= schema.count else {
            let names = schema.map(\.0).joined(separator: ", ")
            throw fail("takes at most \(schema.count) positional argument\(schema.count == 1 ? "" : "s") (\(names))")
        }
        var values: [String: Double] = [:]
        for (index, value) in m.positional.enumerated() { values[schema[index].0] = value }
        for (key, value) in m.keywords {
            guard schema.contains(where: { $0.0 == key }) else {
                let takes = schema.isEmpty ? "; it takes none" : "; it takes \(schema.map(\.0).joined(separator: ", "))"
                throw fail("unknown argument '\(key)'\(takes)")
            }
            guard values[key] == nil else { throw fail("\(key) is given twice") }
            values[key] = value
        }
        for (key, fallback) in schema where values[key] == nil {
            guard let fallback else { throw fail("needs \(key)") }
            values[key] = fallback
        }
        return values
    }
}

/// "1x28x28", or "(10)" for flat shapes.
func describe(_ shape: [Int]) -> String { shape.count == 1 ? "(\(shape[0]))" : shape.map(String.init).joined(separator: "x") }

func shortText(_ value: Double) -> String { value == value.rounded() && abs(value) < 1e9 ? String(Int(value)) : "\(value)" }

/// A Keras-style table of a spec's modules: name, module, output shape, parameters, share of the forward
/// multiply-adds; then the totals.
public func summaryTable(_ rows: [ModelSummaryRow], inputShape: [Int], trainingFlops: Int) -> String {
    let totalMACs = max(1, rows.reduce(0) { $0 + $1.multiplyAccumulates })
    let everyRow = rows + rows.flatMap { $0.body + $0.shortcut }
    let nameWidth = max(5, everyRow.map(\.name.count).max() ?? 0) + 2, moduleWidth = max(6, everyRow.map(\.pytorch.count).max() ?? 0)
    func pad(_ text: String, _ width: Int) -> String { text + String(repeating: " ", count: max(0, width - text.count)) }
    var lines = [pad("layer", nameWidth) + "  " + pad("module", moduleWidth) + "  " + pad("output",
        12) + "  " + pad("parameters", 11) + "  FLOPs",
                 pad("input", nameWidth) + "  " + pad("", moduleWidth) + "  " + describe(inputShape)]
    // A block's own line carries its totals; its modules follow, indented by their longer names.
    let shown = rows.flatMap { row in [row] + (row.body + (row.shortcut.isEmpty ? [] : row.shortcut)).map { inner in
        ModelSummaryRow(name: "  " + inner.name, pytorch: inner.pytorch, outputShape: inner.outputShape, parameters: inner.parameters,
                        multiplyAccumulates: inner.multiplyAccumulates)
    } }
    for row in shown {
        let share = row.multiplyAccumulates > 0 ? String(format: "%5.1f%%", 100 * Double(row.multiplyAccumulates) / Double(totalMACs)) : ""
        lines.append(pad(row.name, nameWidth) + "  " + pad(row.pytorch, moduleWidth) + "  " + pad(describe(row.outputShape), 12) + "  "
                     + pad(row.parameters > 0 ? String(row.parameters) : "", 11) + "  " + share)
    }
    let parameters = rows.reduce(0) { $0 + $1.parameters }
    lines.append("\(parameters) parameters, \(String(format: "%.2f", Double(trainingFlops) / 1e6)) MFLOP per training "
        + "sample (forward + backward)")
    return lines.joined(separator: "\n")
}

extension BuiltModel {
    /// The spec again with every size spelled out and every module named (see `canonicalSpec`).
    public var canonicalText: String { rows.canonicalSpec }

    /// Python source binding `model` to the equivalent torch.nn.Sequential (see `pytorchSource`).
    public var pytorchSource: String { rows.pytorchSource }

    /// The layers as one model, its summary table attached.
    public func makeSequential(inputShape: [Int]) -> Sequential {
        let model = Sequential(inputShape: inputShape, layers: layers)
        model.specRows = rows
        return model
    }
}
