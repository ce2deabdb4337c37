import Tensors

/// Stochastic gradient descent with momentum, Nesterov momentum and L2 weight decay, as torch.optim.SGD
/// (dampening 0):
///   g ← g + wd·p;  buf ← g on the first step, else μ·buf + g;  g ← g + μ·buf (nesterov) or buf;  p ← p − lr·g
public final class SGD: Optimizer {
    public let momentum: Float
    public let nesterov: Bool
    public let weightDecay: Float
    public var stepCount = 0
    public let ownedRange: Range<Int>
    /// Momentum buffer, one per owned parameter.
    private let velocity: UnsafeMutableBufferPointer<Float>

    public init(parameterCount: Int, momentum: Float = 0, nesterov: Bool = false, weightDecay: Float = 0,
                ownedRange: Range<Int>? = nil) {
        precondition(!nesterov || momentum > 0, "Nesterov momentum needs momentum > 0")
        self.momentum = momentum
        self.nesterov = nesterov
        self.weightDecay = weightDecay
        self.ownedRange = ownedRange ?? 0..<parameterCount
        velocity = allocateState(self.ownedRange.count)
    }

    deinit { velocity.deallocate() }

    public var name: String { "sgd" }

    public var stateBuffers: [(name: String, values: UnsafeMutableBufferPointer<Float>)] {
        momentum > 0 ? [("momentum_buffer", velocity)] : []
    }

    public func update(_ store: ParameterStore, learningRate lr: Float) {
        let o = ownedRange.lowerBound
        let p = store.values.baseAddress! + o, g = store.gradients.baseAddress! + o, v = velocity.baseAddress!
        let count = ownedRange.count, mu = momentum, wd = weightDecay
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
