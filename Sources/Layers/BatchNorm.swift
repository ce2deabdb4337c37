import CKernels
import Tensors

/// Batch normalization, as torch.nn.BatchNorm2d on (C, H, W) inputs and BatchNorm1d on (F) inputs:
/// y = (x − mean) / √(var + eps) · weight + bias per channel, with the batch's statistics in training and
/// the running statistics in evaluation.
///
/// Under data parallelism it is SyncBatchNorm: the per-channel sums are reduced over ranks (through the
/// pass context), so every rank normalizes by the statistics of the whole global batch and N ranks give
/// the parameters of one rank with the same global batch. Running statistics follow PyTorch: momentum
/// 0.1 by default, the unbiased variance, `num_batches_tracked` counted.
public final class BatchNorm: Layer {
    public let inputShape: [Int]
    public let name: String
    public let epsilon: Float
    public let momentum: Float
    /// With `affine` false there is no weight or bias (PyTorch's affine=False).
    public let affine: Bool
    /// `.relu` when a ReLU that follows in the model is fused into this layer (one pass over the
    /// activations instead of two each way); the output is then the ReLU's.
    public let activation: Activation
    private let channels: Int
    private var store: ParameterStore!
    private var weight: ParameterSlice?, bias: ParameterSlice?
    private var runningMean: ParameterSlice!, runningVariance: ParameterSlice!, batchesTracked: ParameterSlice!
    /// From the last training forward: per channel mean and 1/√(var + eps) (channels each), the global
    /// sample count, and the reduction to use again in backward.
    private let mean: UnsafeMutableBufferPointer<Double>, inverseDeviation: UnsafeMutableBufferPointer<Double>
    private var globalCount = 0.0
    private var sumOverRanks: ((UnsafeMutableBufferPointer<Double>) -> Void)?
    private var addsReducedGradients = true
    /// `--exact-sums`: each sample's plane totals of `sums` become exact terms here (2 × channels + 1 values),
    /// summed over ranks as integers, so the statistics have the same bits whatever the world size.
    private let exactSums: ExactSums
    private var sumsExactly = false
    private var sumExactlyOverRanks: ((UnsafeMutableBufferPointer<Int64>) -> Void)?
    /// Per-channel sums reduced over ranks: 2 × channels doubles (+1 for the count in forward).
    private var sums: UnsafeMutableBufferPointer<Double>
    /// Per-channel coefficients of the elementwise kernels: center, scale, shift in forward (3 × channels).
    private let coefficients: UnsafeMutableBufferPointer<Float>
    /// Backward's: center, dy scale, centered scale, offset (4 × channels).
    private let gradientCoefficients: UnsafeMutableBufferPointer<Double>

    /// - Parameter name: the module's name in PyTorch ("1" gives "1.weight", "1.running_mean", …).
    public init(inputShape: [Int], name: String, epsilon: Float = 1e-5, momentum: Float = 0.1, affine: Bool = true,
                activation: Activation = .identity) {
        precondition(inputShape.count == 3 || inputShape.count == 1, "BatchNorm needs (C, H, W) or (F) inputs, got \(inputShape)")
        self.inputShape = inputShape
        self.name = name
        self.epsilon = epsilon
        self.momentum = momentum
        self.affine = affine
        self.activation = activation
        channels = inputShape[0]
        mean = .allocate(capacity: channels)
        mean.initialize(repeating: 0)
        inverseDeviation = .allocate(capacity: channels)
        inverseDeviation.initialize(repeating: 1)
        sums = .allocate(capacity: 2 * channels + 1)
        sums.initialize(repeating: 0)
        exactSums = ExactSums(count: 2 * channels + 1)
        coefficients = .allocate(capacity: 3 * channels)
        coefficients.initialize(repeating: 0)
        gradientCoefficients = .allocate(capacity: 4 * channels)
        gradientCoefficients.initialize(repeating: 0)
    }

    deinit {
        mean.deallocate()
        inverseDeviation.deallocate()
        sums.deallocate()
        coefficients.deallocate()
        gradientCoefficients.deallocate()
    }

    /// Row `index` (channels values) of the forward and backward coefficients.
    private func coefficientRow(_ index: Int) -> UnsafeMutablePointer<Float> { coefficients.baseAddress! + index * channels }
    private func gradientCoefficientRow(_ index: Int) -> UnsafeMutablePointer<Double> {
        gradientCoefficients.baseAddress! + index * channels
    }

    public var summary: String { "BatchNorm\(inputShape.count == 3 ? "2d" : "1d")(\(channels))" + (activation == .relu ? " + ReLU" : "") }
    public var outputShape: [Int] { inputShape }
    public var synchronizesOverRanks: Bool { true }
    public var parameterSpecs: [ParameterSpec] {
        guard affine else { return [] }
        // PyTorch initializes the weight to 1 and the bias to 0.
        return [ParameterSpec(name: "\(name).weight", shape: [channels], constant: 1),
            ParameterSpec(name: "\(name).bias", shape: [channels], constant: 0)]
    }
    public var bufferSpecs: [BufferSpec] {
        [BufferSpec(name: "\(name).running_mean", shape: [channels], initialValue: 0),
         BufferSpec(name: "\(name).running_var", shape: [channels], initialValue: 1),
         BufferSpec(name: "\(name).num_batches_tracked", shape: [], initialValue: 0)]
    }

    public func bind(to store: ParameterStore, slices: [ParameterSlice]) {
        self.store = store
        if affine { (weight, bias) = (slices[0], slices[1]) }
    }

    public func bindBuffers(to store: ParameterStore, slices: [ParameterSlice]) {
        (runningMean, runningVariance, batchesTracked) = (slices[0], slices[1], slices[2])
    }

    /// Elements of one channel in one sample.
    private var plane: Int { inputShape.count == 3 ? inputShape[1] * inputShape[2] : 1 }

    public func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int, context: ForwardContext) {
        if context.isTraining { updateBatchStatistics(x, batch: batch, context: context) }
        let w = weight.map { store.valuePointer($0) }, b = bias.map { store.valuePointer($0) }
        let rm = store.bufferPointer(runningMean), rv = store.bufferPointer(runningVariance)
        let center = coefficientRow(0), scale = coefficientRow(1), shift = coefficientRow(2)
        for c in 0..<channels {
            center[c] = context.isTraining ? Float(mean[c]) : rm[c]
            scale[c] = (context.isTraining ? Float(inverseDeviation[c]) : 1 / (rv[c] + epsilon).squareRoot()) * (w?[c] ?? 1)
            shift[c] = b?[c] ?? 0
        }
        distrain_bn_normalize(x, y, batch, channels, plane, center, scale, shift, activation == .relu ? 1 : 0)
    }

    /// Mean and variance of each channel over the global batch (local sums, reduced over ranks), and the
    /// running statistics' update. The sums are taken about the running mean — the same on every rank,
    /// and near the batch mean once training is under way — so the variance is well-conditioned.
    private func updateBatchStatistics(_ x: UnsafePointer<Float>, batch: Int, context: ForwardContext) {
        let rm = store.bufferPointer(runningMean), rv = store.bufferPointer(runningVariance)
        for c in 0..<channels { mean[c] = Double(rm[c]) }  // the shift, until the batch mean replaces it
        sumOverRanks = context.sumOverRanks
        addsReducedGradients = context.addsReducedGradients
        (sumsExactly, sumExactlyOverRanks) = (context.sumsExactly, context.sumExactlyOverRanks)
        if sumsExactly {
            exactSums.zero()
            distrain_bn_shifted_moments(x, batch, channels, plane, mean.baseAddress!, sums.baseAddress!,
                                        sums.baseAddress! + channels, exactSums.limbs(0), exactSums.stride,
                                        exactSums.outOfRangeCounter)
            exactSums.add(Double(batch * plane), at: 2 * channels)
            sumExactlyOverRanks?(exactSums.storage)
            exactSums.round(into: sums.baseAddress!)
        } else {
            distrain_bn_shifted_moments(x, batch, channels, plane, mean.baseAddress!,
                                        sums.baseAddress!, sums.baseAddress! + channels, nil, 0, nil)
            sums[2 * channels] = Double(batch * plane)
            sumOverRanks?(sums)
        }
        globalCount = sums[2 * channels]
        guard globalCount > 0 else { return }
        for c in 0..<channels {
            let offset = sums[c] / globalCount, variance = max(0, sums[channels + c] / globalCount - offset * offset)
            mean[c] += offset
            inverseDeviation[c] = 1 / (variance + Double(epsilon)).squareRoot()
            let unbiased = globalCount > 1 ? variance * globalCount / (globalCount - 1) : variance
            rm[c] = (1 - momentum) * rm[c] + momentum * Float(mean[c])
            rv[c] = (1 - momentum) * rv[c] + momentum * Float(unbiased)
        }
        store.bufferPointer(batchesTracked)[0] += 1
    }

    /// Training-mode backward: with x̂ = (x − mean)·invstd over the global batch of N values per channel,
    /// dx = weight·invstd/N · (N·dy − Σdy − x̂·Σ(dy·x̂)), the two sums taken over all ranks;
    /// d weight += Σ(dy·x̂), d bias += Σdy over the GLOBAL batch, added by one rank only: a float sum
    /// of per-rank partial sums that cancel would lose what the reduction in double keeps.
    public func backward(input x: UnsafePointer<Float>, output y: UnsafePointer<Float>,
                         dOutput dy: UnsafeMutablePointer<Float>, dInput dx: UnsafeMutablePointer<Float>?, batch: Int) {
        // Σdy and Σdy·(x − mean) (dy masked by a fused ReLU's output); the second times invstd is Σ(dy·x̂).
        let reluOutput = activation == .relu ? y : nil
        if sumsExactly {
            exactSums.zero()
            distrain_bn_gradient_sums(x, dy, reluOutput, batch, channels, plane, mean.baseAddress!, sums.baseAddress!,
                                      sums.baseAddress! + channels, exactSums.limbs(0), exactSums.stride,
                                      exactSums.outOfRangeCounter)
            sumExactlyOverRanks?(exactSums.storage)
            exactSums.round(into: sums.baseAddress!)
            for c in 0..<channels { sums[channels + c] *= inverseDeviation[c] }
        } else {
            distrain_bn_gradient_sums(x, dy, reluOutput, batch, channels, plane, mean.baseAddress!, sums.baseAddress!,
                                      sums.baseAddress! + channels, nil, 0, nil)
            for c in 0..<channels { sums[channels + c] *= inverseDeviation[c] }
            sums[2 * channels] = 0
            sumOverRanks?(sums)
        }
        if let weight, let bias, addsReducedGradients { addParameterGradients(weight: weight, bias: bias) }
        guard let dx, globalCount > 0 else { return }
        // dx = w·k/n·(n·dy − Σdy − x̂·Σdy·x̂) = (w·k)·dy − (w·k²·Σdy·x̂/n)·(x − mean) − w·k·Σdy/n.
        let w = weight.map { store.valuePointer($0) }
        let center = gradientCoefficientRow(0), dyScale = gradientCoefficientRow(1)
        let centeredScale = gradientCoefficientRow(2), offset = gradientCoefficientRow(3)
        for c in 0..<channels {
            let k = inverseDeviation[c], n = globalCount, scale = Double(w?[c] ?? 1) * k
            center[c] = mean[c]
            dyScale[c] = scale
            centeredScale[c] = -scale * k * sums[channels + c] / n
            offset[c] = -scale * sums[c] / n
        }
        distrain_bn_input_gradient(x, dy, reluOutput, dx, batch, channels, plane, center, dyScale, centeredScale, offset)
    }

    public var sumsGradientsExactly: Bool { true }

    /// d weight += Σ(dy·x̂), d bias += Σdy from the reduced sums (exact terms under `--exact-sums`).
    private func addParameterGradients(weight: ParameterSlice, bias: ParameterSlice) {
        if let exact = store.exactGradients {
            exact.add(sums.baseAddress! + channels, count: channels, at: weight.offset)
            exact.add(sums.baseAddress!, count: channels, at: bias.offset)
            return
        }
        let dw = store.gradientPointer(weight), db = store.gradientPointer(bias)
        for c in 0..<channels { dw[c] += Float(sums[channels + c]); db[c] += Float(sums[c]) }
    }
}
