import CKernels
import Tensors

/// The direct (no GEMM) lowering of a stride-1 convolution, one image at a time, with the C kernels of
/// CKernels/direct_convolution.c. Each input plane is zero-padded into a scratch plane (Hp, Wp) =
/// (H + 2p, W + 2p) and read flat, so every (c, ki, kj) term is one contiguous vector load; outputs come
/// out as full-width rows q = oy*Wp + ox (columns ox ≥ OW are garbage) and the valid columns are copied out.
///
/// Backward lays dy out the same flat way — OH rows of width Wp with zeros in the garbage columns —
/// behind F = (k-1)*(Wp+1) zeros. Then
/// - dW[o,c,ki,kj] = Σ_q dy[o, q] · xpad[c, q + ki*Wp + kj], and
/// - dxpad[c, P] = Σ w[o,c,ki,kj] · dy[o, P - ki*Wp - kj], which is again a "valid" correlation of the
///   dy planes (read from their start, F zeros early) with the weights rotated by 180°; the zeros in
///   front, in the garbage columns and after the rows are exactly the zero padding it needs.
///
/// Why it exists: with few channels (LeNet's 3→6 and 6→16) an im2col matrix is 25× the image and a
/// 6- or 16-row GEMM over it is bound by memory; here the image and the weights stay in L1.
struct DirectConvolution {
    let geometry: WindowGeometry
    let outputChannels: Int
    /// Images whose weight gradients are summed in one kernel call: the register sums are reduced once
    /// per group, and a group's padded planes (≤ ~40 KB per LeNet image) stay in L2.
    static let imagesPerGroup = 8

    /// (B, C, Hp*Wp) + slack: the zero-padded input images of the last forward pass, which backward
    /// reuses (as the batched GEMM lowering reuses its im2col columns).
    private var paddedInput = Workspace<Float>()
    /// (O, outputFullPlane) full-width output rows in forward; (C, inputFullPlane) dxpad rows in backward.
    private var fullRows = Workspace<Float>()
    /// (G, O, gradientPlane): each plane F zeros, dy as OH rows of width Wp (zero garbage columns), zeros.
    private var gradientPlanes = Workspace<Float>()
    /// (C, O, k, k): the weights rotated by 180° for the input gradient.
    private var flippedWeights = Workspace<Float>()

    /// True when this lowering handles the geometry: stride 1, a square kernel ≤ 7.
    static func supports(_ g: WindowGeometry) -> Bool {
        g.stride == 1 && g.kernelHeight == g.kernelWidth && g.kernelHeight <= 7
    }

    init(geometry: WindowGeometry, outputChannels: Int) {
        precondition(Self.supports(geometry), "direct convolution needs stride 1 and a square kernel ≤ 7")
        self.geometry = geometry
        self.outputChannels = outputChannels
    }

    private var k: Int { geometry.kernelHeight }
    private var p: Int { geometry.padding }
    private var paddedPlane: Int { (geometry.height + 2 * p) * paddedWidth }
    private var paddedWidth: Int { geometry.width + 2 * p }
    private var outputFullPlane: Int { distrain_conv_full_plane(geometry.outputHeight, paddedWidth) }
    private var inputFullPlane: Int { distrain_conv_full_plane(geometry.height + 2 * p, paddedWidth) }
    /// Zeros in front of each dy plane: the farthest an input position reaches back, (k-1) rows and k-1 columns.
    private var gradientFront: Int { (k - 1) * (paddedWidth + 1) }
    private var gradientPlane: Int { gradientFront + inputFullPlane }

    /// Plans every buffer once; the slack after the padded planes must stay zero (the flat reads run into it).
    mutating func reserve(batchCapacity: Int) {
        let c = geometry.channels, o = outputChannels
        paddedInput.reserveZeroed(batchCapacity * c * paddedPlane + distrain_conv_slack(k))
        fullRows.reserveZeroed(max(o * outputFullPlane, c * inputFullPlane))
        gradientPlanes.reserveZeroed(Self.imagesPerGroup * o * gradientPlane)
        flippedWeights.reserveZeroed(c * o * k * k)
    }

    func free() {
        paddedInput.free()
        fullRows.free()
        gradientPlanes.free()
        flippedWeights.free()
    }

    /// y(B, O, OH, OW) = act(conv(x(B, C, H, W), w) + b).
    func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int,
                 weight w: UnsafePointer<Float>, bias b: UnsafePointer<Float>, relu: Bool) {
        let g = geometry, o = outputChannels, outputSize = o * g.outputPixels
        precondition(paddedInput.capacity >= batch * g.channels * paddedPlane + distrain_conv_slack(k),
                     "direct convolution: batch \(batch) exceeds the reserved capacity")
        for s in 0..<batch {
            padInput(x + s * g.inputCount, slot: s)
            // Rows of zero padding above and below the image: kernel rows reading only those are skipped.
            distrain_conv_valid(paddedInput.base + s * g.channels * paddedPlane, paddedPlane, paddedWidth, w, fullRows.base,
                                outputFullPlane, g.channels, k, o, p * paddedWidth, (p + g.height) * paddedWidth)
            distrain_conv_extract(fullRows.base, outputFullPlane, 0, paddedWidth, b, y + s * outputSize, o,
                                  g.outputHeight, g.outputWidth, relu ? 1 : 0)
        }
    }

    /// Masks dy by the ReLU, accumulates db and dW, and writes dx when asked, for the batch's `samples`
    /// (all of them, or one at a time under `--exact-sums`). `x` must be the input of the last forward
    /// pass, whose padded copy is reused.
    func backward(input x: UnsafePointer<Float>, output y: UnsafePointer<Float>, dOutput dy: UnsafeMutablePointer<Float>,
                  dInput dx: UnsafeMutablePointer<Float>?, samples: Range<Int>, weight w: UnsafePointer<Float>,
                  weightGradient dW: UnsafeMutablePointer<Float>, biasGradient db: UnsafeMutablePointer<Float>, relu: Bool) {
        let g = geometry, o = outputChannels, outputSize = o * g.outputPixels
        let front = gradientFront, inputImage = g.channels * paddedPlane, gradientImage = o * gradientPlane
        if dx != nil { distrain_conv_flip_weights(w, flippedWeights.base, o, g.channels, k) }
        for group in 0..<((samples.count + Self.imagesPerGroup - 1) / Self.imagesPerGroup) {
            let groupStart = samples.lowerBound + group * Self.imagesPerGroup
            let images = min(Self.imagesPerGroup, samples.upperBound - groupStart)
            for slot in 0..<images {
                let s = groupStart + slot
                let planes = gradientPlanes.base + slot * gradientImage
                // dy masked by the ReLU, laid out flat with zero garbage columns; db summed on the way.
                distrain_conv_gradient_planes(y + s * outputSize, dy + s * outputSize, planes, db, o, g.outputHeight,
                                              g.outputWidth, paddedWidth, front, gradientPlane, relu ? 1 : 0)
                guard let dx else { continue }
                // dy is nonzero only in its OH rows after the F front zeros.
                distrain_conv_valid(planes, gradientPlane, paddedWidth, flippedWeights.base, fullRows.base,
                                    inputFullPlane, o, k, g.channels, front, front + g.outputHeight * paddedWidth)
                distrain_conv_extract(fullRows.base, inputFullPlane, p * paddedWidth + p, paddedWidth, nil,
                                      dx + s * g.inputCount, g.channels, g.height, g.width, 0)
            }
            distrain_conv_weight_gradient(paddedInput.base + groupStart * inputImage, inputImage, paddedPlane, paddedWidth,
                                          gradientPlanes.base + front, gradientImage, gradientPlane, outputFullPlane,
                                          images, dW, g.channels, k, o)
        }
    }

    /// Zero-pads one image into slot `slot` of the padded batch.
    private func padInput(_ image: UnsafePointer<Float>, slot: Int) {
        let g = geometry
        distrain_pad_planes(image, paddedInput.base + slot * g.channels * paddedPlane, g.channels, g.height, g.width, p)
    }
}
