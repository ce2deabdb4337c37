import CKernels
import Tensors

/// max(0, x), elementwise, as torch.nn.ReLU.
public final class ReLU: Layer {
    public let inputShape: [Int]
    public init(shape: [Int]) { inputShape = shape }
    public var summary: String { "ReLU" }
    public var outputShape: [Int] { inputShape }

    public func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int, context: ForwardContext) {
        reluForward(x, y, count: batch * inputCount)
    }

    public func backward(input x: UnsafePointer<Float>, output y: UnsafePointer<Float>,
                         dOutput dy: UnsafeMutablePointer<Float>, dInput dx: UnsafeMutablePointer<Float>?, batch: Int) {
        guard let dx else { return }
        reluBackward(output: y, dOutput: dy, dInput: dx, count: batch * inputCount)
    }
}

/// Reshapes (B, C, H, W) to (B, C*H*W) without copying, as torch.nn.Flatten.
public final class Flatten: Layer {
    public let inputShape: [Int]
    public init(inputShape: [Int]) { self.inputShape = inputShape }
    public var summary: String { "Flatten" }
    public private(set) lazy var outputShape: [Int] = [inputShape.reduce(1, *)]  // stored: read in every step
    public var aliasesInput: Bool { true }

    public func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int, context: ForwardContext) {
        // Sequential hands the same buffer in and out; nothing moves.
        if UnsafePointer(y) != x { y.update(from: x, count: batch * inputCount) }
    }

    public func backward(input x: UnsafePointer<Float>, output y: UnsafePointer<Float>,
                         dOutput dy: UnsafeMutablePointer<Float>, dInput dx: UnsafeMutablePointer<Float>?, batch: Int) {
        if let dx, dx != dy { dx.update(from: dy, count: batch * inputCount) }
    }
}

/// Inverted dropout, as torch.nn.Dropout: in training each element is zeroed with probability p
/// and the survivors scaled by 1/(1-p); in evaluation it is the identity.
///
/// The mask of a sample depends only on (seed, epoch, layer, global sample index), never on the rank.
public final class Dropout: Layer {
    public let inputShape: [Int]
    public let probability: Float
    private let layerKey: UInt64
    /// (B, features): 0 or 1/(1-p) per element from the last training forward.
    private var mask = Workspace<Float>()

    public init(shape: [Int], probability: Float, layerKey: UInt64) {
        precondition(probability >= 0 && probability < 1, "dropout probability must be in [0, 1), got \(probability)")
        inputShape = shape
        self.probability = probability
        self.layerKey = layerKey
    }

    deinit { mask.free() }

    public var summary: String { "Dropout(p=\(probability))" }
    public var outputShape: [Int] { inputShape }

    public func reserve(batchCapacity: Int) { mask.reserve(batchCapacity * inputCount) }
    public func workspaceBytes(batchCapacity: Int) -> Int { 4 * batchCapacity * inputCount }

    public func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int, context: ForwardContext) {
        let count = inputCount
        guard context.isTraining, probability > 0 else {
            y.update(from: x, count: batch * count)
            return
        }
        let keep = 1 - probability, scale = 1 / keep
        let mask = self.mask.base
        for s in 0..<batch {
            let sampleIndex = context.sampleIndices.map { UInt64($0[s]) } ?? UInt64(s)
            let generator = SeededGenerator(seed: context.seed, 0x4452_4F50, layerKey, UInt64(context.epoch), sampleIndex)
            var state = generator.state  // four UInt64s, contiguous: the C kernel continues the stream
            withUnsafeMutablePointer(to: &state) {
                $0.withMemoryRebound(to: UInt64.self, capacity: 4) {
                    distrain_dropout_forward($0, keep, scale, x + s * count, y + s * count, mask + s * count, count)
                }
            }
        }
    }

    public func backward(input x: UnsafePointer<Float>, output y: UnsafePointer<Float>,
                         dOutput dy: UnsafeMutablePointer<Float>, dInput dx: UnsafeMutablePointer<Float>?, batch: Int) {
        guard let dx else { return }
        if probability == 0 {
            if dx != dy { dx.update(from: dy, count: batch * inputCount) }
            return
        }
        let mask = self.mask.base
        for i in 0..<(batch * inputCount) { dx[i] = dy[i] * mask[i] }
    }
}

extension ReLU: PositionFreeLayer {
    public func forwardIncrement(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, state: DecodingState) {
        reluForward(x, y, count: rows * featuresPerPosition)
    }
}

extension Dropout: PositionFreeLayer {
    /// Generation is inference: no dropout.
    public func forwardIncrement(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, state: DecodingState) {
        y.update(from: x, count: rows * featuresPerPosition)
    }
}
