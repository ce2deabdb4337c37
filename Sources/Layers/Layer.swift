import Tensors

/// What a forward pass needs to know besides its input.
public struct ForwardContext {
    /// Training mode turns dropout on.
    public var isTraining: Bool
    /// Seed of the run; dropout masks derive from it.
    public var seed: UInt64
    /// Epoch, so masks change every epoch.
    public var epoch: Int
    /// Global index of each sample in the batch (B values), so masks do not depend on the world size.
    public var sampleIndices: UnsafePointer<Int32>?
    /// In training with several ranks: sums the given values over all ranks in place (BatchNorm's
    /// per-channel sums, so it normalizes by the statistics of the global batch). Nil alone.
    public var sumOverRanks: ((UnsafeMutableBufferPointer<Double>) -> Void)?
    /// Whether this rank adds the gradients a layer computes from sums already reduced over ranks
    /// (BatchNorm's weight and bias): exactly one rank does, so the gradient sum over ranks counts them
    /// once and gives the same bits whatever the world size.
    public var addsReducedGradients: Bool
    /// `--exact-sums`: reductions over samples are taken as exact integer sums (`ExactSums`), so their bits do
    /// not depend on how the batch is split over ranks; `sumExactlyOverRanks` sums such integers over ranks
    /// (nil alone).
    public var sumsExactly: Bool
    public var sumExactlyOverRanks: ((UnsafeMutableBufferPointer<Int64>) -> Void)?

    public init(isTraining: Bool, seed: UInt64 = 0, epoch: Int = 0, sampleIndices: UnsafePointer<Int32>? = nil,
                sumOverRanks: ((UnsafeMutableBufferPointer<Double>) -> Void)? = nil, addsReducedGradients: Bool = true,
                sumsExactly: Bool = false, sumExactlyOverRanks: ((UnsafeMutableBufferPointer<Int64>) -> Void)? = nil) {
        self.isTraining = isTraining
        self.seed = seed
        self.epoch = epoch
        self.sampleIndices = sampleIndices
        self.sumOverRanks = sumOverRanks
        self.addsReducedGradients = addsReducedGradients
        self.sumsExactly = sumsExactly
        self.sumExactlyOverRanks = sumExactlyOverRanks
    }

    /// Evaluation mode: no dropout.
    public static var inference: ForwardContext { ForwardContext(isTraining: false) }
}

/// One stage of a model: a forward/backward pair over raw buffers of a whole batch.
///
/// Inputs and outputs are (B, per-sample shape) row-major. `backward` accumulates into the
/// layer's gradient slices and, when `dInput` is given, writes (not accumulates) the input gradient.
public protocol Layer: AnyObject {
    /// Short description for model summaries, e.g. "Linear(784 → 128) + ReLU".
    var summary: String { get }
    /// Per-sample shape of the input.
    var inputShape: [Int] { get }
    /// Per-sample shape of the output.
    var outputShape: [Int] { get }
    /// Parameters this layer owns, with their full (PyTorch-style) names.
    var parameterSpecs: [ParameterSpec] { get }
    /// True when the output is the input itself (Flatten): no buffer, no copy.
    var aliasesInput: Bool { get }
    /// Multiply-adds of one sample's forward pass in the layer's GEMM or convolution (0 for the cheap
    /// elementwise layers). Backward costs the same again for the weight gradient and once more for
    /// the input gradient; `distrain bench` turns this into GFLOP/s.
    var multiplyAccumulatesPerSample: Int { get }

    /// Non-trained tensors this layer keeps (BatchNorm's running statistics).
    var bufferSpecs: [BufferSpec] { get }
    /// True when training passes reduce over ranks inside the layer (BatchNorm): every rank must run
    /// them, also with an empty share of the batch.
    var synchronizesOverRanks: Bool { get }
    /// True when backward, given a store with `exactGradients`, adds its parameter gradients there sample by
    /// sample (`--exact-sums`); layers without parameters need nothing and say true.
    var sumsGradientsExactly: Bool { get }
    /// Hands the layer its buffer slices (in `bufferSpecs` order).
    func bindBuffers(to store: ParameterStore, slices: [ParameterSlice])
    /// Parameters of an earlier layer this one uses as its own (a language-model head tied to the token
    /// embedding): the name it exports the tensor under and the name of the parameter it is. Its gradient
    /// accumulates from both uses; the optimizer and the gradient sum see it once.
    var tiedParameters: [(name: String, tiedTo: String)] { get }
    /// Hands the layer the slices `tiedParameters` name, in that order, before the first `bind`.
    func bindTied(_ slices: [ParameterSlice])

    /// Hands the layer its slices (in `parameterSpecs` order) of the model's arenas. Called again whenever
    /// the arenas move (`Sequential.moveGradients`), so pointers taken here may be kept.
    func bind(to store: ParameterStore, slices: [ParameterSlice])
    /// Allocates workspace for batches of up to `batchCapacity` samples; called before any pass.
    func reserve(batchCapacity: Int)
    /// Bytes `reserve(batchCapacity:)` allocates (the memory preflight adds them up before anything is allocated).
    func workspaceBytes(batchCapacity: Int) -> Int
    /// y = f(x) for `batch` samples.
    func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int, context: ForwardContext)
    /// Accumulates parameter gradients; writes dInput when given. `dOutput` may be used as scratch.
    func backward(input x: UnsafePointer<Float>, output y: UnsafePointer<Float>,
                  dOutput dy: UnsafeMutablePointer<Float>, dInput dx: UnsafeMutablePointer<Float>?, batch: Int)
}

extension Layer {
    public var parameterSpecs: [ParameterSpec] { [] }
    public var bufferSpecs: [BufferSpec] { [] }
    public var synchronizesOverRanks: Bool { false }
    public var sumsGradientsExactly: Bool { parameterSpecs.isEmpty && tiedParameters.isEmpty }
    public func bindBuffers(to store: ParameterStore, slices: [ParameterSlice]) {}
    public var tiedParameters: [(name: String, tiedTo: String)] { [] }
    public func bindTied(_ slices: [ParameterSlice]) {}
    public var aliasesInput: Bool { false }
    public var multiplyAccumulatesPerSample: Int { 0 }
    public func bind(to store: ParameterStore, slices: [ParameterSlice]) {}
    public func reserve(batchCapacity: Int) {}
    public func workspaceBytes(batchCapacity: Int) -> Int { 0 }
    /// Elements of one input sample.
    public var inputCount: Int { elementCount(inputShape) }
    /// Elements of one output sample.
    public var outputCount: Int { elementCount(outputShape) }
}

/// The product of a shape's dimensions. An index loop, not `reduce`: layers call this inside the
/// training step, and the generic iteration behind `reduce` allocates in debug builds.
@inline(__always)
func elementCount(_ shape: [Int]) -> Int {
    var count = 1
    for index in 0..<shape.count { count *= shape[index] }
    return count
}

/// An activation fused into the output pass of a Linear, Conv2D or BatchNorm layer.
public enum Activation: String, Sendable {
    case identity, relu
}

/// Scratch memory owned by a layer, grown to the largest batch reserved.
package struct Workspace<Element> {
    package private(set) var pointer: UnsafeMutablePointer<Element>?
    package private(set) var capacity = 0

    package init() {}

    package mutating func reserve(_ count: Int) {
        if count <= capacity { return }
        pointer?.deallocate()
        pointer = .allocate(capacity: count)
        capacity = count
    }

    package var base: UnsafeMutablePointer<Element> { pointer! }

    package func free() { pointer?.deallocate() }
}

extension Workspace where Element: Numeric {
    /// Like `reserve`, but a newly allocated buffer starts all zero (for kernels that read past what they write).
    mutating func reserveZeroed(_ count: Int) {
        if count <= capacity { return }
        reserve(count)
        base.initialize(repeating: 0, count: count)
    }
}
