import Tensors

/// A learned vector per position added to its input, as GPT-2's `wpe`: y[b, t] = x[b, t] + weight[t].
///
/// weight: (P, C) with P ≥ T, N(0, 0.02²) as GPT-2 initializes it; the first T rows are used (GPT-2's table
/// has 1024 rows, trained at any shorter context). x, y: (B, T, C).
public final class PositionEmbedding: Layer {
    /// Rows of the table (P).
    public let positions: Int
    /// Positions of each input (T ≤ P).
    public let sequence: Int
    public let features: Int
    public let name: String
    private var store: ParameterStore!
    private var weight: ParameterSlice!

    public init(positions: Int, features: Int, name: String, sequence: Int? = nil) {
        precondition(positions > 0 && features > 0 && (sequence ?? positions) <= positions && (sequence ?? 1) > 0,
                     "a position embedding needs positive sizes and at most as many positions as its table")
        self.positions = positions
        self.sequence = sequence ?? positions
        self.features = features
        self.name = name
    }

    public var summary: String { "PositionEmbedding(\(positions), \(features))" }
    public private(set) lazy var inputShape: [Int] = [sequence, features]
    public var outputShape: [Int] { inputShape }
    public var multiplyAccumulatesPerSample: Int { 0 }
    public var parameterSpecs: [ParameterSpec] {
        [ParameterSpec(name: "\(name).weight", shape: [positions, features], initializer: .normal(standardDeviation: 0.02))]
    }

    public func bind(to store: ParameterStore, slices: [ParameterSlice]) {
        self.store = store
        weight = slices[0]
    }

    public func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int, context: ForwardContext) {
        let w = store.valuePointer(weight), count = sequence * features
        for b in 0..<batch {
            let input = x + b * count, output = y + b * count
            for i in 0..<count { output[i] = input[i] + w[i] }
        }
    }

    public func backward(input x: UnsafePointer<Float>, output y: UnsafePointer<Float>,
                         dOutput dy: UnsafeMutablePointer<Float>, dInput dx: UnsafeMutablePointer<Float>?, batch: Int) {
        let dw = store.gradientPointer(weight), count = sequence * features
        for b in 0..<batch {
            let gradient = dy + b * count
            if let exact = store.exactGradients {  // --exact-sums: each sample's rows as exact terms
                exact.add(gradient, count: count, at: weight.offset)
            } else {
                for i in 0..<count { dw[i] += gradient[i] }
            }
        }
        dx?.update(from: dy, count: batch * count)
    }

    public var sumsGradientsExactly: Bool { true }
}

extension PositionEmbedding: IncrementalLayer {
    /// Adds the table's rows of the positions these rows sit at.
    public func forwardIncrement(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, state: DecodingState) {
        precondition(state.position + rows <= positions, "position \(state.position + rows - 1) beyond the table's \(positions)")
        let w = store.valuePointer(weight) + state.position * features
        for i in 0..<(rows * features) { y[i] = x[i] + w[i] }
    }
}
