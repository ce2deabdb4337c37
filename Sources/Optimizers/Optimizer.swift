import Tensors

/// Updates parameters from their gradients; sees only the flat arenas, never layers.
public protocol Optimizer: AnyObject {
    /// Short name for logs ("adam").
    var name: String { get }
    /// One update of every parameter with learning rate `learningRate`.
    func update(_ store: ParameterStore, learningRate: Float)
    /// Number of updates taken so far.
    var stepCount: Int { get set }
    /// Named state buffers (momentum, moments) for checkpoints; each holds `ownedRange.count` elements, the state of
    /// the parameters in `ownedRange`.
    var stateBuffers: [(name: String, values: UnsafeMutableBufferPointer<Float>)] { get }
    /// The parameters this optimizer updates and keeps state for: all of them, or this rank's slice of the arena
    /// (`--shard optimizer`: ZeRO stage 1).
    var ownedRange: Range<Int> { get }
}

/// Which optimizer `--optimizer` selects.
public enum OptimizerKind: String, CaseIterable, Sendable, Codable {
    case sgd, adam, adamw
}

/// Hyper-parameters shared by the optimizers (each reads the ones it uses).
public struct OptimizerSettings: Sendable, Equatable {
    public var kind: OptimizerKind
    public var momentum: Float
    public var nesterov: Bool
    public var weightDecay: Float
    public var beta1: Float
    public var beta2: Float
    public var epsilon: Float
    /// Adam/AdamW: the parameter ranges weight decay applies to (nil: all). nanoGPT's groups decay the matrices
    /// and embedding tables, never biases or LayerNorm weights.
    public var decayedRanges: [Range<Int>]?

    public init(kind: OptimizerKind, momentum: Float = 0, nesterov: Bool = false, weightDecay: Float = 0,
                beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8) {
        self.kind = kind
        self.momentum = momentum
        self.nesterov = nesterov
        self.weightDecay = weightDecay
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
    }
}

/// Creates the optimizer described by `settings` for a store of `parameterCount` values, updating `ownedRange` of
/// them (nil: all).
public func makeOptimizer(_ settings: OptimizerSettings, parameterCount: Int, ownedRange: Range<Int>? = nil) -> Optimizer {
    switch settings.kind {
    case .sgd:
        return SGD(parameterCount: parameterCount, momentum: settings.momentum, nesterov: settings.nesterov,
                   weightDecay: settings.weightDecay, ownedRange: ownedRange)
    case .adam, .adamw:
        return Adam(parameterCount: parameterCount, beta1: settings.beta1, beta2: settings.beta2,
                    epsilon: settings.epsilon, weightDecay: settings.weightDecay,
                    decoupled: settings.kind == .adamw, decayedRanges: settings.decayedRanges, ownedRange: ownedRange)
    }
}

/// A zero-filled buffer owned by an optimizer.
func allocateState(_ count: Int) -> UnsafeMutableBufferPointer<Float> {
    let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(count, 1))
    buffer.initialize(repeating: 0)
    return buffer
}
