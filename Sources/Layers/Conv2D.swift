import CKernels
import Tensors

/// 2-D convolution as torch.nn.Conv2d (square kernel, stride, zero padding), optionally with a fused ReLU.
///
/// Three lowerings, chosen by shape (`Conv2D.Lowering`):
/// - direct: no GEMM at all (DirectConvolution: C kernels over zero-padded flat planes) — best for
///   stride-1 layers with few input channels (LeNet's two convs, the CNN's first), whose im2col GEMM
///   has a tiny inner dimension (C·k² = 9 to 150) and is bound by memory;
/// - batched: the whole batch is unfolded by im2col and multiplied in ONE GEMM per pass — best when
///   each image has few output pixels (deep layers, 7×7), where per-image GEMMs would be tiny;
/// - per image: im2col and a GEMM per sample, whose (out, OH*OW) result is already the sample's NCHW
///   output — best for large images with few channels (LeNet's first layer: the batched column
///   matrix is 15 MB, 25× the input, and a 6-row GEMM over it is bound by memory, ~14 GFLOP/s).
/// weight: (out, in, k, k), bias: (out). x: (B, in, H, W), y: (B, out, OH, OW).
public final class Conv2D: Layer {
    /// How a pass is lowered to GEMM.
    public enum Lowering: Sendable {
        /// Direct for stride-1 layers with ≤ 16 input channels (few input channels make GEMMs thin),
        /// else per image when an image has at least 128 output pixels (its column matrix stays in L2),
        /// else batched. The thresholds and their measurements are in BENCHMARKS.md.
        case automatic
        case batched
        case perImage
        case direct
    }

    /// The lowering in use (resolved from `.automatic` by shape).
    public let lowering: Lowering
    public let geometry: WindowGeometry
    public let outputChannels: Int
    public let activation: Activation
    public let name: String
    private var store: ParameterStore!
    private var weight: ParameterSlice!
    private var bias: ParameterSlice?
    /// Whether the layer has a bias (PyTorch's bias=False leaves it out of the parameters).
    public let hasBias: Bool
    /// Zeros standing in for a missing bias, and a scratch sink for its gradient (cleared every backward).
    private let zeroBias: UnsafeMutablePointer<Float>
    /// (C*k*k, B*OH*OW): the unfolded input from forward; backward reuses it for dColumns.
    private var columns = Workspace<Float>()
    /// (out, B*OH*OW): GEMM output before the NCHW scatter; backward's transposed dy.
    private var channelMajor = Workspace<Float>()
    /// The direct lowering's buffers (nil for the GEMM lowerings).
    private var direct: DirectConvolution?

    public init(inputShape: [Int], outputChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
                activation: Activation = .identity, name: String, lowering: Lowering = .automatic, bias: Bool = true) {
        precondition(inputShape.count == 3, "Conv2D needs a (C, H, W) input, got \(inputShape)")
        precondition(outputChannels > 0, "Conv2D needs output channels, got \(outputChannels)")
        geometry = WindowGeometry(channels: inputShape[0], height: inputShape[1], width: inputShape[2],
                                  kernelHeight: kernelSize, kernelWidth: kernelSize, stride: stride, padding: padding)
        precondition(geometry.isValid, "kernel \(kernelSize) does not fit input \(inputShape) with padding \(padding)")
        self.outputChannels = outputChannels
        self.activation = activation
        self.name = name
        hasBias = bias
        zeroBias = .allocate(capacity: 2 * outputChannels)
        zeroBias.initialize(repeating: 0, count: 2 * outputChannels)
        switch lowering {
        case .automatic where DirectConvolution.supports(geometry) && geometry.channels <= 16:
            self.lowering = .direct
        case .automatic:
            self.lowering = geometry.outputPixels >= 128 ? .perImage : .batched
        default:
            self.lowering = lowering
        }
        if self.lowering == .direct { direct = DirectConvolution(geometry: geometry, outputChannels: outputChannels) }
    }

    deinit {
        zeroBias.deallocate()
        columns.free()
        channelMajor.free()
        direct?.free()
    }

    public var multiplyAccumulatesPerSample: Int { outputChannels * geometry.patchSize * geometry.outputPixels }
    public var summary: String {
        var text = "Conv2D(\(geometry.channels) → \(outputChannels), \(geometry.kernelHeight)x\(geometry.kernelWidth)"
        if geometry.stride != 1 { text += ", stride \(geometry.stride)" }
        if geometry.padding != 0 { text += ", padding \(geometry.padding)" }
        return text + ")" + (activation == .relu ? " + ReLU" : "")
    }
    public private(set) lazy var inputShape: [Int] = [geometry.channels, geometry.height, geometry.width]  // stored: read in every step
    // Stored: read in every step.
    public private(set) lazy var outputShape: [Int] = [outputChannels, geometry.outputHeight, geometry.outputWidth]
    public var parameterSpecs: [ParameterSpec] {
        let k = geometry.kernelHeight
        return [ParameterSpec(name: "\(name).weight", shape: [outputChannels, geometry.channels, k, k], fanIn: geometry.patchSize)]
            + (hasBias ? [ParameterSpec(name: "\(name).bias", shape: [outputChannels], fanIn: geometry.patchSize)] : [])
    }

    public func bind(to store: ParameterStore, slices: [ParameterSlice]) {
        self.store = store
        weight = slices[0]
        bias = hasBias ? slices[1] : nil
    }

    private var biasValues: UnsafeMutablePointer<Float> { bias.map { store.valuePointer($0) } ?? zeroBias }
    private var biasGradients: UnsafeMutablePointer<Float> {
        if let bias { return store.gradientPointer(bias) }
        (zeroBias + outputChannels).update(repeating: 0, count: outputChannels)
        return zeroBias + outputChannels
    }

    /// The im2col columns and the channel-major output (per image or for the batch); direct kernels: none counted.
    public func workspaceBytes(batchCapacity: Int) -> Int {
        if direct != nil { return 0 }
        let images = lowering == .perImage ? 1 : batchCapacity
        return 4 * (geometry.patchSize + outputChannels) * images * geometry.outputPixels
    }

    public func reserve(batchCapacity: Int) {
        if direct != nil { return direct!.reserve(batchCapacity: batchCapacity) }
        let images = lowering == .perImage ? 1 : batchCapacity
        columns.reserve(geometry.patchSize * images * geometry.outputPixels)
        channelMajor.reserve(outputChannels * images * geometry.outputPixels)
    }

    public func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int, context: ForwardContext) {
        if batch == 0 { return }
        if let direct {
            return direct.forward(x, y, batch: batch, weight: store.valuePointer(weight), bias: biasValues,
                                  relu: activation == .relu)
        }
        // Under --exact-sums a GEMM over the whole share could round a sample's values differently than one
        // over another share (OpenBLAS's results depend on the call's size): one image per GEMM instead.
        if lowering == .perImage || context.sumsExactly { return forwardPerImage(x, y, batch: batch) }
        precondition(columns.capacity >= geometry.patchSize * batch * geometry.outputPixels,
                     "Conv2D \(name): batch \(batch) exceeds reserved capacity")
        let pixels = geometry.outputPixels, n = batch * pixels
        im2col(x, batch: batch, geometry: geometry, columns: columns.base)
        // (out, B*P) = W(out, C*k*k) · columns(C*k*k, B*P)
        gemm(.none, .none, m: outputChannels, n: n, k: geometry.patchSize,
             a: store.valuePointer(weight), b: columns.base, beta: 0, c: channelMajor.base)
        // Scatter (out, B, P) → (B, out, P), adding the bias and the activation on the way.
        let b = biasValues, source = channelMajor.base
        let relu = activation == .relu
        for o in 0..<outputChannels {
            for s in 0..<batch {
                distrain_add_bias_copy(source + o * n + s * pixels, y + (s * outputChannels + o) * pixels, pixels, b[o], relu ? 1 : 0)
            }
        }
    }

    public func backward(input x: UnsafePointer<Float>, output y: UnsafePointer<Float>,
                         dOutput dy: UnsafeMutablePointer<Float>, dInput dx: UnsafeMutablePointer<Float>?, batch: Int) {
        if batch == 0 { return }
        if let exact = store.exactGradients { return backwardExactly(exact, input: x, output: y, dOutput: dy, dInput: dx, batch: batch) }
        if let direct {
            return direct.backward(input: x, output: y, dOutput: dy, dInput: dx, samples: 0..<batch,
                                   weight: store.valuePointer(weight), weightGradient: store.gradientPointer(weight),
                                   biasGradient: biasGradients, relu: activation == .relu)
        }
        if lowering == .perImage {
            return backwardPerImage(input: x, output: y, dOutput: dy, dInput: dx, samples: 0..<batch,
                                    weightGradient: store.gradientPointer(weight), biasGradient: biasGradients)
        }
        let pixels = geometry.outputPixels, n = batch * pixels
        let relu = activation == .relu
        // Gather dy (B, out, P) → (out, B*P), masking by the ReLU, and sum the bias gradient.
        let gathered = channelMajor.base
        let db = biasGradients
        for o in 0..<outputChannels {
            var biasSum: Float = 0
            for s in 0..<batch {
                let offset = (s * outputChannels + o) * pixels
                biasSum += distrain_mask_copy_sum(y + offset, dy + offset, gathered + o * n + s * pixels, pixels, relu ? 1 : 0)
            }
            db[o] += biasSum
        }
        // dW(out, C*k*k) += dy(out, B*P) · columns(C*k*k, B*P)ᵀ
        gemm(.none, .transposed, m: outputChannels, n: geometry.patchSize, k: n,
             a: gathered, b: columns.base, beta: 1, c: store.gradientPointer(weight))
        guard let dx else { return }
        // dColumns(C*k*k, B*P) = Wᵀ · dy, written over the columns (no longer needed), then folded back.
        gemm(.transposed, .none, m: geometry.patchSize, n: n, k: outputChannels,
             a: store.valuePointer(weight), b: gathered, beta: 0, c: columns.base)
        dx.update(repeating: 0, count: batch * geometry.inputCount)
        col2imAccumulate(columns.base, batch: batch, geometry: geometry, dx: dx)
    }

    /// Per image: columns (C*k*k, P) of sample s; y_s(out, P) = W · columns, then bias and ReLU in place.
    private func forwardPerImage(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int) {
        precondition(columns.capacity >= geometry.patchSize * geometry.outputPixels, "Conv2D \(name): reserve() was not called")
        let pixels = geometry.outputPixels, inputSize = geometry.inputCount, outputSize = outputChannels * pixels
        let w = store.valuePointer(weight), b = biasValues
        for s in 0..<batch {
            im2col(x + s * inputSize, batch: 1, geometry: geometry, columns: columns.base)
            let ys = y + s * outputSize
            gemm(.none, .none, m: outputChannels, n: pixels, k: geometry.patchSize, a: w, b: columns.base, beta: 0, c: ys)
            distrain_add_channel_bias(ys, b, outputChannels, pixels, activation == .relu ? 1 : 0)
        }
    }

    public var sumsGradientsExactly: Bool { true }

    /// `--exact-sums`: sample by sample, the sample's dW and db alone (in the exact sums' scratch) by the
    /// per-image or direct path, added as exact terms — the same terms whichever rank holds the sample.
    private func backwardExactly(_ exact: ExactSums, input x: UnsafePointer<Float>, output y: UnsafePointer<Float>,
                                 dOutput dy: UnsafeMutablePointer<Float>, dInput dx: UnsafeMutablePointer<Float>?, batch: Int) {
        let weightCount = outputChannels * geometry.patchSize
        precondition(exact.scratchCount >= weightCount + outputChannels, "Conv2D \(name): exact-sum scratch too small")
        let dW = exact.scratch, db = exact.scratch + weightCount  // (out, C*k*k), (out)
        for s in 0..<batch {
            dW.update(repeating: 0, count: weightCount + outputChannels)
            if let direct {
                direct.backward(input: x, output: y, dOutput: dy, dInput: dx, samples: s..<(s + 1),
                                weight: store.valuePointer(weight), weightGradient: dW, biasGradient: db,
                                relu: activation == .relu)
            } else {
                backwardPerImage(input: x, output: y, dOutput: dy, dInput: dx, samples: s..<(s + 1), weightGradient: dW,
                                 biasGradient: db)
            }
            exact.add(dW, count: weightCount, at: weight.offset)
            if let bias { exact.add(db, count: outputChannels, at: bias.offset) }
        }
    }

    /// Per image: mask dy_s by the ReLU (and sum the bias gradient), re-unfold x_s, dW += dy_s · columnsᵀ,
    /// and when asked dColumns = Wᵀ · dy_s folded back into dx_s.
    private func backwardPerImage(input x: UnsafePointer<Float>, output y: UnsafePointer<Float>,
                                  dOutput dy: UnsafeMutablePointer<Float>, dInput dx: UnsafeMutablePointer<Float>?,
                                  samples: Range<Int>, weightGradient dW: UnsafeMutablePointer<Float>,
                                  biasGradient db: UnsafeMutablePointer<Float>) {
        let pixels = geometry.outputPixels, inputSize = geometry.inputCount, outputSize = outputChannels * pixels
        let relu: Int32 = activation == .relu ? 1 : 0
        let masked = channelMajor.base  // (out, P)
        let w = store.valuePointer(weight)
        if let dx { (dx + samples.lowerBound * inputSize).update(repeating: 0, count: samples.count * inputSize) }
        for s in samples {
            for o in 0..<outputChannels {
                let offset = s * outputSize + o * pixels
                db[o] += distrain_mask_copy_sum(y + offset, dy + offset, masked + o * pixels, pixels, relu)
            }
            im2col(x + s * inputSize, batch: 1, geometry: geometry, columns: columns.base)
            gemm(.none, .transposed, m: outputChannels, n: geometry.patchSize, k: pixels,
                 a: masked, b: columns.base, beta: 1, c: dW)
            guard let dx else { continue }
            gemm(.transposed, .none, m: geometry.patchSize, n: pixels, k: outputChannels,
                 a: w, b: masked, beta: 0, c: columns.base)
            col2imAccumulate(columns.base, batch: 1, geometry: geometry, dx: dx + s * inputSize)
        }
    }
}
