import Foundation
import Tensors

/// An elementwise activation with PyTorch's formula (torch.nn.LeakyReLU, GELU, SiLU, Tanh, Sigmoid).
public enum PointwiseFunction: Sendable, Equatable {
    /// x for x ≥ 0, slope·x otherwise (negative_slope, default 0.01).
    case leakyReLU(slope: Float)
    /// x·Φ(x) with the exact normal CDF Φ(x) = (1 + erf(x/√2))/2 (PyTorch's default, approximate='none').
    case gelu
    /// x·σ(x) (Swish).
    case silu
    case tanh
    case sigmoid

    /// y = f(x).
    @inline(__always)
    func value(_ x: Float) -> Float {
        switch self {
        case let .leakyReLU(slope): return x >= 0 ? x : slope * x
        case .gelu: return 0.5 * x * (1 + erf(x * 0.70710678118654752))
        case .silu: return x / (1 + exp(-x))
        case .tanh: return Foundation.tanh(x)
        case .sigmoid: return 1 / (1 + exp(-x))
        }
    }

    /// dy/dx at x (y = f(x) given, which tanh and sigmoid use).
    @inline(__always)
    func derivative(_ x: Float, _ y: Float) -> Float {
        switch self {
        case let .leakyReLU(slope): return x >= 0 ? 1 : slope
        case .gelu:
            let cdf = 0.5 * (1 + erf(x * 0.70710678118654752))
            let pdf = 0.39894228040143268 * exp(-0.5 * x * x)
            return cdf + x * pdf
        case .silu:
            let s = 1 / (1 + exp(-x))
            return s * (1 + x * (1 - s))
        case .tanh: return 1 - y * y
        case .sigmoid: return y * (1 - y)
        }
    }

    /// The torch.nn constructor that computes the same function.
    public var pytorch: String {
        switch self {
        case let .leakyReLU(slope): return slope == 0.01 ? "LeakyReLU()" : "LeakyReLU(negative_slope=\(slope))"
        case .gelu: return "GELU()"
        case .silu: return "SiLU()"
        case .tanh: return "Tanh()"
        case .sigmoid: return "Sigmoid()"
        }
    }
}

/// An elementwise activation layer; backward reads the layer's input and output.
public final class Pointwise: Layer {
    public let inputShape: [Int]
    public let function: PointwiseFunction

    public init(_ function: PointwiseFunction, shape: [Int]) {
        self.function = function
        inputShape = shape
    }

    public var summary: String { function.pytorch }
    public var outputShape: [Int] { inputShape }

    public func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int, context: ForwardContext) {
        let f = function
        for i in 0..<(batch * inputCount) { y[i] = f.value(x[i]) }
    }

    public func backward(input x: UnsafePointer<Float>, output y: UnsafePointer<Float>,
                         dOutput dy: UnsafeMutablePointer<Float>, dInput dx: UnsafeMutablePointer<Float>?, batch: Int) {
        guard let dx else { return }
        let f = function
        for i in 0..<(batch * inputCount) { dx[i] = dy[i] * f.derivative(x[i], y[i]) }
    }
}
