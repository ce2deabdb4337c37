import CKernels
import Tensors

/// Average pooling over square windows, as torch.nn.AvgPool2d (no padding, stride defaults to the
/// window); with `global`, the window is the whole plane: torch.nn.AdaptiveAvgPool2d(1).
///
/// x: (B, C, H, W), y: (B, C, OH, OW). Backward spreads each output's gradient evenly over its window.
public final class AveragePool2D: Layer {
    public let geometry: WindowGeometry
    /// AdaptiveAvgPool2d(1): one output per channel.
    public let isGlobal: Bool

    public init(inputShape: [Int], kernelSize: Int, stride: Int? = nil) {
        precondition(inputShape.count == 3, "AvgPool2d needs a (C, H, W) input, got \(inputShape)")
        geometry = WindowGeometry(channels: inputShape[0], height: inputShape[1], width: inputShape[2],
                                  kernelHeight: kernelSize, kernelWidth: kernelSize, stride: stride ?? kernelSize, padding: 0)
        precondition(geometry.isValid, "pool \(kernelSize) does not fit input \(inputShape)")
        isGlobal = false
    }

    /// Global average pooling (AdaptiveAvgPool2d(1)).
    public init(globalOver inputShape: [Int]) {
        precondition(inputShape.count == 3, "AdaptiveAvgPool2d needs a (C, H, W) input, got \(inputShape)")
        geometry = WindowGeometry(channels: inputShape[0], height: inputShape[1], width: inputShape[2],
                                  kernelHeight: inputShape[1], kernelWidth: inputShape[2], stride: 1, padding: 0)
        isGlobal = true
    }

    /// AvgPool2d(2): the C kernels (the general loops below sum in the same order, so both agree bitwise).
    private var isTwoByTwo: Bool { !isGlobal && geometry.kernelHeight == 2 && geometry.stride == 2 }

    public var summary: String {
        isGlobal ? "AdaptiveAvgPool2d(1)" : "AvgPool2d(\(geometry.kernelHeight)\(geometry.stride != geometry.kernelHeight ? ", stride=\(geometry.stride)" : ""))"
    }
    public private(set) lazy var inputShape: [Int] = [geometry.channels, geometry.height, geometry.width]  // stored: read in every step
    public private(set) lazy var outputShape: [Int] = [geometry.channels, geometry.outputHeight, geometry.outputWidth]  // stored: read in every step

    public func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int, context: ForwardContext) {
        let g = geometry, outH = g.outputHeight, outW = g.outputWidth, planeIn = g.height * g.width
        if isTwoByTwo { return distrain_avgpool2x2(x, y, batch * g.channels, g.height, g.width) }
        let scale = 1 / Float(g.kernelHeight * g.kernelWidth)
        for plane in 0..<(batch * g.channels) {
            let src = x + plane * planeIn, dst = y + plane * outH * outW
            for oy in 0..<outH {
                for ox in 0..<outW {
                    var sum: Float = 0
                    for ki in 0..<g.kernelHeight {
                        let row = src + (oy * g.stride + ki) * g.width + ox * g.stride
                        for kj in 0..<g.kernelWidth { sum += row[kj] }
                    }
                    dst[oy * outW + ox] = sum * scale
                }
            }
        }
    }

    public func backward(input x: UnsafePointer<Float>, output y: UnsafePointer<Float>,
                         dOutput dy: UnsafeMutablePointer<Float>, dInput dx: UnsafeMutablePointer<Float>?, batch: Int) {
        guard let dx else { return }
        let g = geometry, outH = g.outputHeight, outW = g.outputWidth, planeIn = g.height * g.width
        if isTwoByTwo { return distrain_avgpool2x2_backward(dy, dx, batch * g.channels, g.height, g.width) }
        let scale = 1 / Float(g.kernelHeight * g.kernelWidth)
        dx.update(repeating: 0, count: batch * g.channels * planeIn)
        for plane in 0..<(batch * g.channels) {
            let target = dx + plane * planeIn, source = dy + plane * outH * outW
            for oy in 0..<outH {
                for ox in 0..<outW {
                    let share = source[oy * outW + ox] * scale
                    for ki in 0..<g.kernelHeight {
                        let row = target + (oy * g.stride + ki) * g.width + ox * g.stride
                        for kj in 0..<g.kernelWidth { row[kj] += share }
                    }
                }
            }
        }
    }
}
