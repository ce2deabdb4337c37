import CKernels
import Tensors

/// An elementwise activation with PyTorch's formula (torch.nn.LeakyReLU, GELU, SiLU, Tanh, Sigmoid).
public enum PointwiseFunction: Sendable, Equatable {
    /// x for x ≥ 0, slope·x otherwise (negative_slope, default 0.01).
    case leakyReLU(slope: Float)
    /// x·Φ(x) with the exact normal CDF Φ(x) = (1 + erf(x/√2))/2 (PyTorch's default, approximate='none').
    case gelu
    /// x/2·(1 + tanh(√(2/π)·(x + 0.044715·x³))): GPT-2's GELU (approximate='tanh').
    case geluTanh
    /// x·σ(x) (Swish).
    case silu
    case tanh
    case sigmoid

    /// The C kernels' function number and LeakyReLU's slope (CKernels/activations.h).
    var kernel: (function: Int32, slope: Float) {
        switch self {
        case let .leakyReLU(slope): return (Int32(DISTRAIN_LEAKY_RELU.rawValue), slope)
        case .gelu: return (Int32(DISTRAIN_GELU.rawValue), 0)
        case .geluTanh: return (Int32(DISTRAIN_GELU_TANH.rawValue), 0)
        case .silu: return (Int32(DISTRAIN_SILU.rawValue), 0)
        case .tanh: return (Int32(DISTRAIN_TANH.rawValue), 0)
        case .sigmoid: return (Int32(DISTRAIN_SIGMOID.rawValue), 0)
        }
    }

    /// The torch.nn constructor that computes the same function.
    public var pytorch: String {
        switch self {
        case let .leakyReLU(slope): return slope == 0.01 ? "LeakyReLU()" : "LeakyReLU(negative_slope=\(slope))"
        case .gelu: return "GELU()"
        case .geluTanh: return "GELU(approximate='tanh')"
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
        let (code, slope) = function.kernel
        distrain_pointwise_forward(code, slope, x, y, batch * inputCount)
    }

    public func backward(input x: UnsafePointer<Float>, output y: UnsafePointer<Float>,
                         dOutput dy: UnsafeMutablePointer<Float>, dInput dx: UnsafeMutablePointer<Float>?, batch: Int) {
        guard let dx else { return }
        let (code, slope) = function.kernel
        distrain_pointwise_backward(code, slope, x, y, dy, dx, batch * inputCount)
    }
}

extension Pointwise: PositionFreeLayer {
    public func forwardIncrement(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, state: DecodingState) {
        let (code, slope) = function.kernel
        distrain_pointwise_forward(code, slope, x, y, rows * featuresPerPosition)
    }
}
