import Foundation
import Tensors

/// One module's arguments as the spec resolved them, with the checks every layer kind shares.
struct ModuleArguments {
    let module: ModelSpec.Module
    /// The shape coming in.
    let shape: [Int]
    let numbers: [String: Double]
    let words: [String: String]
    /// ReLU fused into the layer when the spec follows it with one.
    let activation: Activation
    let fail: (String) -> ModelSpecError

    /// A whole number in 1...1000000.
    func size(_ key: String) throws -> Int {
        guard let v = numbers[key], v == v.rounded(), v >= 1, v <= 1_000_000 else {
            throw fail("\(key) must be a whole number in 1...1000000, got \(shortText(numbers[key] ?? .nan))")
        }
        return Int(v)
    }

    /// `std=σ`: weights from N(0, σ²) and zero biases (GPT-2's initialization); nil when not given.
    func normalStandardDeviation(_ key: String) throws -> Initializer? {
        guard let value = numbers[key], !value.isNaN else { return nil }
        guard value > 0, value.isFinite else { throw fail("\(key) must be positive, got \(shortText(value))") }
        return .normal(standardDeviation: Float(value))
    }

    /// The (channels, height, width) of an image input.
    func image() throws -> (c: Int, h: Int, w: Int) {
        guard shape.count == 3 else {
            throw fail("needs (channels, height, width) inputs but receives \(describe(shape)); move it before Flatten()")
        }
        return (shape[0], shape[1], shape[2])
    }

    var hasBias: Bool { numbers["bias"]! != 0 }
}

/// The layer kinds of a spec, one builder per family: each checks its arguments against the shape coming in,
/// makes the layer and its summary row (with PyTorch's spelling of the module).
extension ModelSpec {
    func convolution(_ a: ModuleArguments) throws -> (Layer?, ModelSummaryRow) {
        let (c, h, w) = try a.image()
        let (cin, cout, k, stride) = (try a.size("in_channels"), try a.size("out_channels"), try a.size("kernel_size"),
                                      try a.size("stride"))
        let padding = Int(a.numbers["padding"]!)
        guard padding >= 0, Double(padding) == a.numbers["padding"] else { throw a.fail("padding must be a whole number of at least 0") }
        guard cin == c else {
            throw a.fail("in_channels \(cin) does not match the \(c) channels coming in (\(describe(a.shape))); write Conv2d(\(c), …)")
        }
        guard h + 2 * padding >= k, w + 2 * padding >= k else {
            throw a.fail("its \(k)x\(k) window does not fit the \(h)x\(w) input with padding \(padding)")
        }
        let (outHeight, outWidth) = ((h + 2 * padding - k) / stride + 1, (w + 2 * padding - k) / stride + 1)
        guard cout * outHeight * outWidth <= 1 << 26 else {
            throw a.fail("its output would be \(cout)x\(outHeight)x\(outWidth) values per sample, more than 67108864; "
                + "use less padding (\(padding)) or a larger stride")
        }
        let layer = Conv2D(inputShape: a.shape, outputChannels: cout, kernelSize: k, stride: stride, padding: padding,
                           activation: a.activation, name: a.module.name, bias: a.hasBias)
        let options = (stride != 1 ? ", stride=\(stride)" : "") + (padding != 0 ? ", padding=\(padding)" : "")
            + (a.hasBias ? "" : ", bias=False")
        return (layer, row(a.module, "Conv2d(\(cin), \(cout), \(k)\(options))", layer))
    }

    func linear(_ a: ModuleArguments) throws -> (Layer?, ModelSummaryRow) {
        guard a.shape.count == 1 || a.shape.count == 2 else {
            throw a.fail("needs a flat (features) or per-position (positions, features) input but receives "
                + "\(describe(a.shape)); add Flatten() before it")
        }
        let (fin, fout) = (try a.size("in_features"), try a.size("out_features"))
        let features = a.shape.last!
        guard fin == features else {
            throw a.fail("in_features \(fin) does not match the \(features) features coming in; write Linear(\(features), \(fout))")
        }
        let tiedTo = a.words["tied_to"], std = try a.normalStandardDeviation("std")
        if tiedTo != nil && std != nil { throw a.fail("a tied head has the embedding's weights; drop std") }
        let layer = Linear(inputFeatures: fin, outputFeatures: fout, activation: a.activation, name: a.module.name,
                           bias: a.hasBias, positions: a.shape.count == 2 ? a.shape[0] : 0,
                           tiedTo: tiedTo.map { "\($0).weight" }, weightInitializer: std)
        var linearRow = row(a.module, "Linear(\(fin), \(fout)\(a.hasBias ? "" : ", bias=False"))", layer)
        linearRow.tiedTo = tiedTo
        return (layer, linearRow)
    }

    /// Token embeddings, and learned position embeddings added to them.
    func embedding(_ a: ModuleArguments) throws -> (Layer?, ModelSummaryRow) {
        if a.module.kind == "PositionEmbedding" {
            let (count, features) = (try a.size("num_positions"), try a.size("embedding_dim"))
            guard a.shape.count == 2, a.shape[1] == features, a.shape[0] <= count else {
                throw a.fail("needs at most (\(count), \(features)) inputs (positions, features) but receives "
                    + "\(describe(a.shape)); put it after Embedding(V, \(features)) with --context at most \(count)")
            }
            let layer = PositionEmbedding(positions: count, features: features, name: a.module.name, sequence: a.shape[0])
            return (layer, row(a.module, "PositionEmbedding(\(count), \(features))", layer))
        }
        guard a.shape.count == 1 else {
            throw a.fail("needs a sequence of token ids (positions) but receives \(describe(a.shape)); put it first, "
                + "on token data")
        }
        let (vocabulary, features) = (try a.size("num_embeddings"), try a.size("embedding_dim"))
        guard let std = a.numbers["std"], std > 0, std.isFinite else { throw a.fail("std must be positive") }
        let layer = Embedding(vocabularySize: vocabulary, features: features, positions: a.shape[0], name: a.module.name,
                              initializer: .normal(standardDeviation: Float(std)))
        return (layer, row(a.module, "Embedding(\(vocabulary), \(features))", layer))
    }

    func layerNorm(_ a: ModuleArguments) throws -> (Layer?, ModelSummaryRow) {
        let features = try a.size("normalized_shape"), eps = a.numbers["eps"]!
        guard features == a.shape.last else {
            throw a.fail("normalized_shape \(features) does not match the \(a.shape.last ?? 0) features coming in "
                + "(\(describe(a.shape)))")
        }
        guard eps > 0 else { throw a.fail("eps must be positive") }
        let layer = LayerNorm(shape: a.shape, epsilon: Float(eps), bias: a.hasBias, name: a.module.name)
        let extras = (eps != 1e-5 ? ", eps=\(eps)" : "") + (a.hasBias ? "" : ", bias=False")
        return (layer, row(a.module, "LayerNorm(\(features)\(extras))", layer))
    }

    func attention(_ a: ModuleArguments) throws -> (Layer?, ModelSummaryRow) {
        guard a.shape.count == 2 else {
            throw a.fail("needs a sequence (positions, features) but receives \(describe(a.shape)); put an Embedding first")
        }
        let (width, heads) = (try a.size("embed_dim"), try a.size("num_heads"))
        guard width == a.shape[1] else { throw a.fail("embed_dim \(width) does not match the \(a.shape[1]) features coming in") }
        guard width % heads == 0 else { throw a.fail("num_heads \(heads) does not divide embed_dim \(width)") }
        let std = try a.normalStandardDeviation("std"), projection = try a.normalStandardDeviation("proj_std")
        guard (std == nil) == (projection == nil) else {
            throw a.fail("give std and proj_std together (GPT-2: 0.02 and 0.02/√(2·layers))")
        }
        let layer = CausalSelfAttention(positions: a.shape[0], features: width, heads: heads, bias: a.hasBias,
                                        name: a.module.name, initializers: std.map { ($0, projection!) })
        return (layer, row(a.module, "CausalSelfAttention(\(width), \(heads)\(a.hasBias ? "" : ", bias=False"))", layer))
    }

    func batchNorm(_ a: ModuleArguments) throws -> (Layer?, ModelSummaryRow) {
        let features = try a.size("num_features"), image = a.module.kind == "BatchNorm2d"
        guard a.shape.count == (image ? 3 : 1) else {
            let wanted = image ? "(channels, height, width)" : "flat", other = image ? "1d" : "2d"
            throw a.fail("needs \(wanted) inputs but receives \(describe(a.shape)); use BatchNorm\(other)")
        }
        guard features == a.shape[0] else {
            throw a.fail("num_features \(features) does not match the \(a.shape[0]) \(image ? "channels" : "features") coming in")
        }
        let eps = a.numbers["eps"]!, momentum = a.numbers["momentum"]!, affine = a.numbers["affine"]! != 0
        guard eps > 0, momentum > 0, momentum <= 1 else { throw a.fail("eps must be positive and momentum in (0, 1]") }
        let layer = BatchNorm(inputShape: a.shape, name: a.module.name, epsilon: Float(eps), momentum: Float(momentum),
                              affine: affine, activation: a.activation)
        let extras = (eps != 1e-5 ? ", eps=\(eps)" : "") + (momentum != 0.1 ? ", momentum=\(momentum)" : "")
            + (affine ? "" : ", affine=False")
        return (layer, row(a.module, "\(a.module.kind)(\(features)\(extras))", layer))
    }

    func pointwise(_ a: ModuleArguments) -> (Layer?, ModelSummaryRow) {
        let kind = a.module.kind
        if kind == "ReLU" { return (ReLU(shape: a.shape), row(a.module, "ReLU()", nil, a.shape)) }
        let function: PointwiseFunction = kind == "LeakyReLU" ? .leakyReLU(slope: Float(a.numbers["negative_slope"]!))
            : kind == "GELU" ? (a.words["approximate"] == "tanh" ? .geluTanh : .gelu)
            : kind == "SiLU" ? .silu : kind == "Tanh" ? .tanh : .sigmoid
        let layer = Pointwise(function, shape: a.shape)
        return (layer, row(a.module, function.pytorch, layer))
    }

    func pooling(_ a: ModuleArguments) throws -> (Layer?, ModelSummaryRow) {
        let (_, h, w) = try a.image()
        if a.module.kind == "AdaptiveAvgPool2d" {
            guard a.numbers["output_size"] == 1 else { throw a.fail("only output_size 1 (global average pooling) is supported") }
            let layer = AveragePool2D(globalOver: a.shape)
            return (layer, row(a.module, "AdaptiveAvgPool2d(1)", layer))
        }
        let k = try a.size("kernel_size"), stride = a.numbers["stride"]!.isNaN ? k : try a.size("stride")
        guard h >= k, w >= k else {
            throw a.fail("its \(k)x\(k) window does not fit the \(h)x\(w) input; use fewer pooling layers or larger images")
        }
        let layer: Layer = a.module.kind == "MaxPool2d" ? MaxPool2D(inputShape: a.shape, kernelSize: k, stride: stride)
            : AveragePool2D(inputShape: a.shape, kernelSize: k, stride: stride)
        return (layer, row(a.module, "\(a.module.kind)(\(k)\(stride != k ? ", stride=\(stride)" : ""))", layer))
    }
}
