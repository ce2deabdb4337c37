import CKernels

/// Geometry of a 2-D convolution or pooling window over one NCHW sample.
public struct WindowGeometry: Sendable, Equatable {
    public let channels: Int
    public let height: Int
    public let width: Int
    public let kernelHeight: Int
    public let kernelWidth: Int
    public let stride: Int
    public let padding: Int

    public init(channels: Int, height: Int, width: Int, kernelHeight: Int, kernelWidth: Int, stride: Int, padding: Int) {
        precondition(channels > 0 && height > 0 && width > 0, "empty input \(channels)x\(height)x\(width)")
        precondition(kernelHeight > 0 && kernelWidth > 0 && stride > 0 && padding >= 0,
                     "bad window k=\(kernelHeight)x\(kernelWidth) stride=\(stride) padding=\(padding)")
        self.channels = channels
        self.height = height
        self.width = width
        self.kernelHeight = kernelHeight
        self.kernelWidth = kernelWidth
        self.stride = stride
        self.padding = padding
    }

    /// Output rows: floor((H + 2p - kh) / s) + 1.
    public var outputHeight: Int { (height + 2 * padding - kernelHeight) / stride + 1 }
    /// Output columns: floor((W + 2p - kw) / s) + 1.
    public var outputWidth: Int { (width + 2 * padding - kernelWidth) / stride + 1 }
    /// Output pixels per channel.
    public var outputPixels: Int { outputHeight * outputWidth }
    /// Rows of the im2col matrix: C * kh * kw.
    public var patchSize: Int { channels * kernelHeight * kernelWidth }
    /// Elements of one input sample.
    public var inputCount: Int { channels * height * width }
    /// True when the window fits the padded input at least once.
    public var isValid: Bool { height + 2 * padding >= kernelHeight && width + 2 * padding >= kernelWidth }
}

/// Unfolds a batch of NCHW images into one matrix so a convolution becomes one GEMM (in C: the row
/// copies vectorize there).
///
/// - x: (B, C, H, W)
/// - columns: (C*kh*kw, B*OH*OW); row (c, ki, kj), column (b, oy, ox); zeros where the window hits padding.
public func im2col(_ x: UnsafePointer<Float>, batch: Int, geometry g: WindowGeometry,
                   columns: UnsafeMutablePointer<Float>) {
    distrain_im2col(x, batch, g.channels, g.height, g.width, g.kernelHeight, g.kernelWidth, g.stride, g.padding, columns)
}

/// The reverse of `im2col`: adds every column entry back into the image position it came from.
///
/// - columns: (C*kh*kw, B*OH*OW)
/// - dx: (B, C, H, W), accumulated into (callers zero it first when they want a fresh gradient).
public func col2imAccumulate(_ columns: UnsafePointer<Float>, batch: Int, geometry g: WindowGeometry,
                             dx: UnsafeMutablePointer<Float>) {
    distrain_col2im_accumulate(columns, batch, g.channels, g.height, g.width, g.kernelHeight, g.kernelWidth,
                               g.stride, g.padding, dx)
}
