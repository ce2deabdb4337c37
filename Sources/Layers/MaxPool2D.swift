import CKernels
import Tensors

/// Max pooling over square windows, as torch.nn.MaxPool2d (no padding; stride defaults to the window).
///
/// x: (B, C, H, W), y: (B, C, OH, OW). The winning input index of each output is kept for backward.
/// The common 2x2 stride-2 window runs a C kernel; other windows the general loop below.
public final class MaxPool2D: Layer {
    public let geometry: WindowGeometry
    /// (B, C, OH, OW): flat input offset (within the sample) of each output's maximum.
    private var winners = Workspace<Int32>()

    public init(inputShape: [Int], kernelSize: Int, stride: Int? = nil) {
        precondition(inputShape.count == 3, "MaxPool2D needs a (C, H, W) input, got \(inputShape)")
        geometry = WindowGeometry(channels: inputShape[0], height: inputShape[1], width: inputShape[2],
                                  kernelHeight: kernelSize, kernelWidth: kernelSize,
                                  stride: stride ?? kernelSize, padding: 0)
        precondition(geometry.isValid, "pool \(kernelSize) does not fit input \(inputShape)")
    }

    deinit { winners.free() }

    public var summary: String { "MaxPool2D(\(geometry.kernelHeight)x\(geometry.kernelWidth), stride \(geometry.stride))" }
    public private(set) lazy var inputShape: [Int] = [geometry.channels, geometry.height, geometry.width]  // stored: read in every step
    // Stored: read in every step.
    public private(set) lazy var outputShape: [Int] = [geometry.channels, geometry.outputHeight, geometry.outputWidth]

    public func workspaceBytes(batchCapacity: Int) -> Int { 4 * batchCapacity * outputCount }

    public func reserve(batchCapacity: Int) {
        winners.reserve(batchCapacity * outputCount)
    }

    public func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int, context: ForwardContext) {
        let g = geometry, outH = g.outputHeight, outW = g.outputWidth
        let planeIn = g.height * g.width, planeOut = outH * outW
        let winners = self.winners.base
        if g.kernelHeight == 2 && g.kernelWidth == 2 && g.stride == 2 {
            return distrain_maxpool2x2(x, y, winners, batch * g.channels, g.channels, g.height, g.width)
        }
        for plane in 0..<(batch * g.channels) {
            let src = x + plane * planeIn
            let dst = y + plane * planeOut
            let win = winners + plane * planeOut
            let sampleOffset = Int32((plane % g.channels) * planeIn)
            for oy in 0..<outH {
                for ox in 0..<outW {
                    var bestIndex = oy * g.stride * g.width + ox * g.stride
                    var best = src[bestIndex]
                    for ki in 0..<g.kernelHeight {
                        let rowStart = (oy * g.stride + ki) * g.width + ox * g.stride
                        for kj in 0..<g.kernelWidth {
                            let value = src[rowStart + kj]
                            // As PyTorch: larger, or a NaN, takes over — a NaN anywhere in the window wins.
                            if value > best || value.isNaN { best = value; bestIndex = rowStart + kj }
                        }
                    }
                    dst[oy * outW + ox] = best
                    win[oy * outW + ox] = sampleOffset + Int32(bestIndex)
                }
            }
        }
    }

    public func backward(input x: UnsafePointer<Float>, output y: UnsafePointer<Float>,
                         dOutput dy: UnsafeMutablePointer<Float>, dInput dx: UnsafeMutablePointer<Float>?, batch: Int) {
        guard let dx else { return }
        // Counts from the geometry: the protocol's shape-product properties allocate in debug builds.
        let g = geometry, perSampleIn = g.inputCount, perSampleOut = g.channels * g.outputPixels
        let winners = self.winners.base
        if g.kernelHeight == 2 && g.kernelWidth == 2 && g.stride == 2 {
            return distrain_maxpool2x2_backward(dy, winners, dx, batch * g.channels, g.channels, g.height, g.width)
        }
        dx.update(repeating: 0, count: batch * perSampleIn)
        for s in 0..<batch {
            let base = s * perSampleOut
            distrain_maxpool_backward(dy + base, winners + base, dx + s * perSampleIn, perSampleOut)
        }
    }
}
