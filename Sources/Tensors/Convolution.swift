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

/// Unfolds a batch of NCHW images into one matrix so a convolution becomes one GEMM.
///
/// - x: (B, C, H, W)
/// - columns: (C*kh*kw, B*OH*OW); row (c, ki, kj), column (b, oy, ox); zeros where the window hits padding.
public func im2col(_ x: UnsafePointer<Float>, batch: Int, geometry g: WindowGeometry,
                   columns: UnsafeMutablePointer<Float>) {
    let outH = g.outputHeight, outW = g.outputWidth, pixels = g.outputPixels
    let rowLength = batch * pixels
    for c in 0..<g.channels {
        for ki in 0..<g.kernelHeight {
            for kj in 0..<g.kernelWidth {
                let row = columns + ((c * g.kernelHeight + ki) * g.kernelWidth + kj) * rowLength
                // Output columns ox whose input column ix = ox*s - p + kj is inside the image.
                let (first, end) = validRange(offset: kj - g.padding, stride: g.stride, limit: g.width, count: outW)
                for b in 0..<batch {
                    let plane = x + (b * g.channels + c) * g.height * g.width
                    let out = row + b * pixels
                    for oy in 0..<outH {
                        let iy = oy * g.stride - g.padding + ki
                        let dst = out + oy * outW
                        if iy < 0 || iy >= g.height {
                            dst.update(repeating: 0, count: outW)
                            continue
                        }
                        let src = plane + iy * g.width - g.padding + kj
                        if first > 0 { dst.update(repeating: 0, count: first) }
                        if g.stride == 1 {
                            if end > first { (dst + first).update(from: src + first, count: end - first) }
                        } else {
                            var ox = first
                            while ox < end { dst[ox] = src[ox * g.stride]; ox += 1 }
                        }
                        if end < outW { (dst + end).update(repeating: 0, count: outW - end) }
                    }
                }
            }
        }
    }
}

/// The reverse of `im2col`: adds every column entry back into the image position it came from.
///
/// - columns: (C*kh*kw, B*OH*OW)
/// - dx: (B, C, H, W), accumulated into (callers zero it first when they want a fresh gradient).
public func col2imAccumulate(_ columns: UnsafePointer<Float>, batch: Int, geometry g: WindowGeometry,
                             dx: UnsafeMutablePointer<Float>) {
    let outH = g.outputHeight, outW = g.outputWidth, pixels = g.outputPixels
    let rowLength = batch * pixels
    for c in 0..<g.channels {
        for ki in 0..<g.kernelHeight {
            for kj in 0..<g.kernelWidth {
                let row = columns + ((c * g.kernelHeight + ki) * g.kernelWidth + kj) * rowLength
                let (first, end) = validRange(offset: kj - g.padding, stride: g.stride, limit: g.width, count: outW)
                if end <= first { continue }
                for b in 0..<batch {
                    let plane = dx + (b * g.channels + c) * g.height * g.width
                    let source = row + b * pixels
                    for oy in 0..<outH {
                        let iy = oy * g.stride - g.padding + ki
                        if iy < 0 || iy >= g.height { continue }
                        let src = source + oy * outW
                        let dst = plane + iy * g.width - g.padding + kj
                        var ox = first
                        while ox < end { dst[ox * g.stride] += src[ox]; ox += 1 }
                    }
                }
            }
        }
    }
}

/// The range first..<end of output positions o with 0 <= o*stride + offset < limit.
@inline(__always)
func validRange(offset: Int, stride: Int, limit: Int, count: Int) -> (Int, Int) {
    // first: smallest o with o*stride + offset >= 0
    var first = offset >= 0 ? 0 : (-offset + stride - 1) / stride
    // end: smallest o with o*stride + offset >= limit
    var end = limit - offset <= 0 ? 0 : (limit - offset + stride - 1) / stride
    first = min(first, count)
    end = min(max(end, first), count)
    return (first, end)
}
