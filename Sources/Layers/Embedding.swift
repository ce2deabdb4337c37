import Tensors

/// A lookup table of token vectors, as torch.nn.Embedding: each position's id picks a row of the weight.
///
/// weight: (vocabulary, C), N(0, 1) as PyTorch initializes it unless a spec says otherwise.
/// x: (B, T) token ids stored as floats (exact below 2^24), y: (B, T, C).
public final class Embedding: Layer {
    public let vocabularySize: Int
    public let features: Int
    public let positions: Int
    public let name: String
    public let initializer: Initializer
    private var store: ParameterStore!
    private var weight: ParameterSlice!

    public init(vocabularySize: Int, features: Int, positions: Int, name: String,
                initializer: Initializer = .normal(standardDeviation: 1)) {
        precondition(vocabularySize > 0 && vocabularySize <= 1 << 24 && features > 0 && positions > 0,
                     "Embedding needs positive sizes and ids below 2^24, got \(vocabularySize)×\(features) over \(positions)")
        self.vocabularySize = vocabularySize
        self.features = features
        self.positions = positions
        self.name = name
        self.initializer = initializer
    }

    public var summary: String { "Embedding(\(vocabularySize), \(features))" }
    public private(set) lazy var inputShape: [Int] = [positions]
    public private(set) lazy var outputShape: [Int] = [positions, features]
    public var multiplyAccumulatesPerSample: Int { 0 }
    public var parameterSpecs: [ParameterSpec] {
        [ParameterSpec(name: "\(name).weight", shape: [vocabularySize, features], initializer: initializer)]
    }

    public func bind(to store: ParameterStore, slices: [ParameterSlice]) {
        self.store = store
        weight = slices[0]
    }

    @inline(__always) private func row(_ id: Float) -> Int {
        let index = Int(id)
        precondition(index >= 0 && index < vocabularySize && Float(index) == id,
                     "token id \(id) outside the embedding's \(vocabularySize) rows (the dataset checks ids before training)")
        return index
    }

    public func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int, context: ForwardContext) {
        let w = store.valuePointer(weight)
        for r in 0..<(batch * positions) {
            (y + r * features).update(from: w + row(x[r]) * features, count: features)
        }
    }

    public func backward(input x: UnsafePointer<Float>, output y: UnsafePointer<Float>,
                         dOutput dy: UnsafeMutablePointer<Float>, dInput dx: UnsafeMutablePointer<Float>?, batch: Int) {
        if let exact = store.exactGradients {  // --exact-sums: each row's gradient an exact term of its token's row
            for r in 0..<(batch * positions) {
                exact.add(dy + r * features, count: features, at: weight.offset + row(x[r]) * features)
            }
            dx?.update(repeating: 0, count: batch * positions)
            return
        }
        let dw = store.gradientPointer(weight)
        // Rows in order, so a token seen at several positions sums its gradients in one fixed order.
        for r in 0..<(batch * positions) {
            let target = dw + row(x[r]) * features, source = dy + r * features
            for c in 0..<features { target[c] += source[c] }
        }
        // Ids have no gradient: an Embedding inside a model passes zeros back.
        dx?.update(repeating: 0, count: batch * positions)
    }
}

extension Embedding {
    public var sumsGradientsExactly: Bool { true }
}

extension Embedding: PositionFreeLayer {
    public func forwardIncrement(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, state: DecodingState) {
        let w = store.valuePointer(weight)
        for r in 0..<rows { (y + r * features).update(from: w + row(x[r]) * features, count: features) }
    }
}
