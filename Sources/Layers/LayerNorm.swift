import CKernels
import Tensors

/// Layer normalization over the last axis, as torch.nn.LayerNorm(C, eps, bias): each row of C features
/// (each position of a (T, C) input) is shifted to mean 0 and scaled to variance 1 (biased), then
/// multiplied by `weight` and shifted by `bias`.
///
/// weight: (C) ones, bias: (C) zeros. x, y: (B, [T,] C). Keeps each row's mean and 1/σ for backward.
public final class LayerNorm: Layer {
    public let features: Int
    public let epsilon: Float
    public let hasBias: Bool
    public let name: String
    public let inputShape: [Int]
    private var store: ParameterStore!
    private var weight: ParameterSlice!
    private var bias: ParameterSlice?
    /// (rows) the mean and 1/sqrt(variance + eps) of each row of the last forward pass.
    private var means: UnsafeMutablePointer<Float>?
    private var inverseDeviations: UnsafeMutablePointer<Float>?
    private var capacityRows = 0

    public init(shape: [Int], epsilon: Float = 1e-5, bias: Bool = true, name: String) {
        precondition(!shape.isEmpty && shape.allSatisfy { $0 > 0 } && epsilon > 0, "LayerNorm needs a shape and eps > 0")
        features = shape.last!
        inputShape = shape
        rowsPerSample = shape.dropLast().reduce(1, *)
        self.epsilon = epsilon
        hasBias = bias
        self.name = name
    }

    deinit {
        means?.deallocate()
        inverseDeviations?.deallocate()
    }

    /// Rows of `features` in one sample (T for a (T, C) input). Stored: the step reads it, and the generic
    /// `reduce` that computes it allocates in debug builds.
    private let rowsPerSample: Int
    public var summary: String { "LayerNorm(\(features))" }
    public var outputShape: [Int] { inputShape }
    public var multiplyAccumulatesPerSample: Int { 0 }
    public var parameterSpecs: [ParameterSpec] {
        [ParameterSpec(name: "\(name).weight", shape: [features], initializer: .constant(1))]
            + (hasBias ? [ParameterSpec(name: "\(name).bias", shape: [features], initializer: .zeros)] : [])
    }

    public func bind(to store: ParameterStore, slices: [ParameterSlice]) {
        self.store = store
        weight = slices[0]
        bias = hasBias ? slices[1] : nil
    }

    public func reserve(batchCapacity: Int) {
        let rows = max(batchCapacity, 1) * rowsPerSample
        guard rows > capacityRows else { return }
        means?.deallocate()
        inverseDeviations?.deallocate()
        means = .allocate(capacity: rows)
        inverseDeviations = .allocate(capacity: rows)
        capacityRows = rows
    }

    /// The rows' means and inverse deviations.
    public func workspaceBytes(batchCapacity: Int) -> Int { 8 * max(batchCapacity, 1) * rowsPerSample }

    public func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int, context: ForwardContext) {
        let rows = batch * rowsPerSample
        precondition(rows <= capacityRows, "LayerNorm: \(rows) rows exceed the reserved \(capacityRows)")
        let b = bias.map { UnsafePointer(store.valuePointer($0)) }
        distrain_layer_norm_forward(x, store.valuePointer(weight), b, y, means!, inverseDeviations!, rows, features,
                                    epsilon)
    }

    public func backward(input x: UnsafePointer<Float>, output y: UnsafePointer<Float>,
                         dOutput dy: UnsafeMutablePointer<Float>, dInput dx: UnsafeMutablePointer<Float>?, batch: Int) {
        // dx = 1/σ · (dx̂ − mean(dx̂) − x̂ · mean(dx̂ · x̂)), with dx̂ = dy · weight.
        if let exact = store.exactGradients { return backwardExactly(exact, input: x, dOutput: dy, dInput: dx, batch: batch) }
        distrain_layer_norm_backward(x, store.valuePointer(weight), means!, inverseDeviations!, dy, dx,
                                     store.gradientPointer(weight), bias.map { store.gradientPointer($0) },
                                     batch * rowsPerSample, features)
    }

    public var sumsGradientsExactly: Bool { true }

    /// `--exact-sums`: sample by sample, its rows' Σ dy·x̂ and Σ dy alone (in the exact sums' scratch), added as
    /// exact terms; dx row by row as always.
    private func backwardExactly(_ exact: ExactSums, input x: UnsafePointer<Float>, dOutput dy: UnsafeMutablePointer<Float>,
                                 dInput dx: UnsafeMutablePointer<Float>?, batch: Int) {
        let dw = exact.scratch, db = exact.scratch + features, sample = rowsPerSample * features  // (C), (C)
        for s in 0..<batch {
            dw.update(repeating: 0, count: 2 * features)
            distrain_layer_norm_backward(x + s * sample, store.valuePointer(weight), means! + s * rowsPerSample,
                                         inverseDeviations! + s * rowsPerSample, dy + s * sample, dx.map { $0 + s * sample },
                                         dw, bias == nil ? nil : db, rowsPerSample, features)
            exact.add(dw, count: features, at: weight.offset)
            if let bias { exact.add(db, count: features, at: bias.offset) }
        }
    }
}

extension LayerNorm: PositionFreeLayer {
    public func forwardIncrement(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, state: DecodingState) {
        precondition(rows <= capacityRows, "LayerNorm: \(rows) rows exceed the reserved \(capacityRows)")
        let b = bias.map { UnsafePointer(store.valuePointer($0)) }
        distrain_layer_norm_forward(x, store.valuePointer(weight), b, y, means!, inverseDeviations!, rows, features, epsilon)
    }
}
