import CKernels
import Tensors

/// The direct (no GEMM) lowering of a stride-1 convolution, one image at a time, with the C kernels of
/// CKernels/direct_convolution.c. Each input plane is zero-padded into a scratch plane of width
/// Wp = W + 2p and read flat, so every (c, ki, kj) term is a contiguous vector load; outputs come out
/// in full-width rows and the valid columns are copied out. The input gradient is the same "valid"
/// correlation of dy padded by k-1-p on every side with the weights rotated by 180°.
///
/// Why it exists: with few channels (LeNet's 3→6 and 6→16) an im2col matrix is 25× the image and a
/// 6- or 16-row GEMM over it is bound by memory; here the image and the weights stay in L1.
struct DirectConvolution {
    let geometry: WindowGeometry
    let outputChannels: Int

    /// (C, Hp, Wp) + slack: one zero-padded input image.
    private var paddedInput = Workspace<Float>()
    /// (max(O, C), fullPlane): full-width output rows (forward) or input-gradient rows (backward).
    private var fullRows = Workspace<Float>()
    /// (O, fullPlane of OH × Wp): dy with zeros in the wrapped columns, for the weight gradient.
    private var gradientRows = Workspace<Float>()
    /// (O, OH + 2q, OW + 2q) + slack with q = k-1-p: dy padded for the input gradient.
    private var paddedGradient = Workspace<Float>()
    /// (C, O, k, k): the weights rotated by 180° for the input gradient.
    private var flippedWeights = Workspace<Float>()

    /// True when this lowering handles the geometry: stride 1, kernel ≤ 7, padding < kernel.
    static func supports(_ g: WindowGeometry) -> Bool {
        g.stride == 1 && g.kernelHeight == g.kernelWidth && g.kernelHeight <= 7 && g.padding < g.kernelHeight
    }

    init(geometry: WindowGeometry, outputChannels: Int) {
        precondition(Self.supports(geometry), "direct convolution needs stride 1 and a square kernel ≤ 7")
        self.geometry = geometry
        self.outputChannels = outputChannels
    }

    private var k: Int { geometry.kernelHeight }
    private var p: Int { geometry.padding }
    private var paddedHeight: Int { geometry.height + 2 * p }
    private var paddedWidth: Int { geometry.width + 2 * p }
    /// Padding of dy for the input gradient.
    private var gradientPadding: Int { k - 1 - p }
    private var gradientHeight: Int { geometry.outputHeight + 2 * gradientPadding }
    private var gradientWidth: Int { geometry.outputWidth + 2 * gradientPadding }
    private var outputFullPlane: Int { distrain_conv_full_plane(geometry.outputHeight, paddedWidth) }
    private var inputFullPlane: Int { distrain_conv_full_plane(geometry.height, gradientWidth) }

    /// Plans every buffer once; the slack after the padded planes must stay zero (the flat reads run into it).
    mutating func reserve() {
        let slack = distrain_conv_slack(k), c = geometry.channels, o = outputChannels
        paddedInput.reserveZeroed(c * paddedHeight * paddedWidth + slack)
        fullRows.reserveZeroed(max(o * outputFullPlane, c * inputFullPlane))
        gradientRows.reserveZeroed(o * outputFullPlane)
        paddedGradient.reserveZeroed(o * gradientHeight * gradientWidth + slack)
        flippedWeights.reserveZeroed(c * o * k * k)
    }

    func free() {
        paddedInput.free()
        fullRows.free()
        gradientRows.free()
        paddedGradient.free()
        flippedWeights.free()
    }

    /// y(B, O, OH, OW) = act(conv(x(B, C, H, W), w) + b).
    func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int,
                 weight w: UnsafePointer<Float>, bias b: UnsafePointer<Float>, relu: Bool) {
        let g = geometry, outputSize = outputChannels * g.outputPixels
        for s in 0..<batch {
            padInput(x + s * g.inputCount)
            distrain_conv_valid(paddedInput.base, w, fullRows.base, g.channels, paddedHeight, paddedWidth, k, outputChannels)
            distrain_conv_extract(fullRows.base, b, y + s * outputSize, outputChannels, g.outputHeight, g.outputWidth,
                                  paddedWidth, relu ? 1 : 0)
        }
    }

    /// Masks dy by the ReLU (in place), accumulates db and dW, and writes dx when asked.
    func backward(input x: UnsafePointer<Float>, output y: UnsafePointer<Float>, dOutput dy: UnsafeMutablePointer<Float>,
                  dInput dx: UnsafeMutablePointer<Float>?, batch: Int, weight w: UnsafePointer<Float>,
                  weightGradient dW: UnsafeMutablePointer<Float>, biasGradient db: UnsafeMutablePointer<Float>, relu: Bool) {
        let g = geometry, o = outputChannels, pixels = g.outputPixels, outputSize = o * pixels
        let q = gradientPadding
        if dx != nil { distrain_conv_flip_weights(w, flippedWeights.base, o, g.channels, k) }
        for s in 0..<batch {
            let dys = dy + s * outputSize
            for channel in 0..<o {
                let offset = channel * pixels
                db[channel] += distrain_mask_sum_inplace(y + s * outputSize + offset, dys + offset, pixels, relu ? 1 : 0)
            }
            padInput(x + s * g.inputCount)
            // Rows of width Wp with zeros in the wrapped columns and the rounding tail.
            distrain_pad_planes(dys, gradientRows.base, o, g.outputHeight, g.outputWidth, 0, 0, 0,
                                paddedWidth - g.outputWidth, outputFullPlane)
            distrain_conv_weight_gradient(paddedInput.base, gradientRows.base, dW, g.channels, paddedHeight, paddedWidth, k, o)
            guard let dx else { continue }
            distrain_pad_planes(dys, paddedGradient.base, o, g.outputHeight, g.outputWidth, q, q, q, q,
                                gradientHeight * gradientWidth)
            distrain_conv_valid(paddedGradient.base, flippedWeights.base, fullRows.base, o, gradientHeight, gradientWidth, k, g.channels)
            distrain_conv_extract(fullRows.base, nil, dx + s * g.inputCount, g.channels, g.height, g.width, gradientWidth, 0)
        }
    }

    private func padInput(_ image: UnsafePointer<Float>) {
        let g = geometry
        distrain_pad_planes(image, paddedInput.base, g.channels, g.height, g.width, p, p, p, p, paddedHeight * paddedWidth)
    }
}
