import Tensors

/// Stochastic gradient descent with momentum, Nesterov momentum and L2 weight decay, as torch.optim.SGD
/// (dampening 0):
///   g ← g + wd·p;  buf ← g on the first step, else μ·buf + g;  g ← g + μ·buf (nesterov) or buf;  p ← p − lr·g
public final class SGD: Optimizer {
    public let momentum: Float
    public let nesterov: Bool
    public let weightDecay: Float
    public var stepCount = 0
    /// Momentum buffer, one per parameter.
    private let velocity: UnsafeMutableBufferPointer<Float>

    public init(parameterCount: Int, momentum: Float = 0, nesterov: Bool = false, weightDecay: Float = 0) {
        precondition(!nesterov || momentum > 0, "Nesterov momentum needs momentum > 0")
        self.momentum = momentum
        self.nesterov = nesterov
        self.weightDecay = weightDecay
        velocity = allocateState(parameterCount)
    }

    deinit { velocity.deallocate() }

    public var name: String { "sgd" }

    public var stateBuffers: [(name: String, values: UnsafeMutableBufferPointer<Float>)] {
        momentum > 0 ? [("momentum_buffer", velocity)] : []
    }

    public func update(_ store: ParameterStore, learningRate lr: Float) {
        let p = store.values.baseAddress!, g = store.gradients.baseAddress!, v = velocity.baseAddress!
        let count = store.count, mu = momentum, wd = weightDecay
        let first = stepCount == 0
        if mu == 0 {
            for i in 0..<count { p[i] -= lr * (g[i] + wd * p[i]) }
        } else if nesterov {
            for i in 0..<count {
                let grad = g[i] + wd * p[i]
                let buf = first ? grad : mu * v[i] + grad
                v[i] = buf
                p[i] -= lr * (grad + mu * buf)
            }
        } else {
            for i in 0..<count {
                let grad = g[i] + wd * p[i]
                let buf = first ? grad : mu * v[i] + grad
                v[i] = buf
                p[i] -= lr * buf
            }
        }
        stepCount += 1
    }
}
