/// What a dataset's samples are to be predicted as.
public enum TargetKind: Sendable, Equatable {
    /// One class index per sample (`TargetBuffer.indices`), named by the list.
    case classes([String])
    /// One number per sample (`TargetBuffer.values`), the named column (a regression).
    case value(String)
    /// Several numbers per sample (`TargetBuffer.values`, one per name): multi-output regression, tags.
    case values([String])
    /// `positions` token ids per sample (`TargetBuffer.indices`): each position's next token, ids below `vocabulary`.
    case tokens(vocabulary: Int, positions: Int)

    /// The names of the model's outputs: the classes, the target column(s); none for tokens.
    public var names: [String] {
        switch self {
        case let .classes(names), let .values(names): return names
        case let .value(name): return [name]
        case .tokens: return []
        }
    }

    /// Targets each sample contributes (the positions a loss is averaged over).
    public var perSample: Int {
        switch self {
        case let .tokens(_, positions): return positions
        case let .values(names): return names.count
        case .classes, .value: return 1
        }
    }
}

/// One batch's targets as a dataset writes them and an objective reads them: class or token ids in
/// `indices`, numbers in `values`, `capacity` entries each (rows × targets per sample), and a scratch
/// area the dataset may use while gathering (one sample read from a file). Allocated once per trainer
/// (each rank-thread its own), so gathering a batch allocates nothing and ranks share no buffer.
public final class TargetBuffer: @unchecked Sendable {
    /// (rows, targets per sample) class or token ids.
    public let indices: UnsafeMutablePointer<Int32>
    /// (rows, targets per sample) numeric targets.
    public let values: UnsafeMutablePointer<Float>
    public let capacity: Int
    /// `scratchBytes` bytes of working space for the dataset's gather.
    public let scratch: UnsafeMutableRawPointer
    public let scratchBytes: Int

    /// Room for `capacity` targets and `scratchBytes` of gather scratch (a dataset's `gatherScratchBytes`).
    public init(capacity: Int, scratchBytes: Int = 0) {
        self.capacity = max(capacity, 1)
        self.scratchBytes = scratchBytes
        indices = .allocate(capacity: self.capacity)
        values = .allocate(capacity: self.capacity)
        indices.initialize(repeating: 0, count: self.capacity)
        values.initialize(repeating: 0, count: self.capacity)
        scratch = .allocate(byteCount: max(scratchBytes, 1), alignment: 16)
    }

    /// Room for `rows` samples of `dataset`.
    public convenience init(rows: Int, for dataset: any Dataset) {
        self.init(capacity: rows * dataset.targetKind.perSample, scratchBytes: dataset.gatherScratchBytes)
    }

    deinit {
        indices.deallocate()
        values.deallocate()
        scratch.deallocate()
    }
}

/// Per-sample random choices of training augmentation: keyed by (seed, epoch, sample index).
public struct AugmentationKey: Sendable {
    public let augmentation: Augmentation
    public let seed: UInt64
    public let epoch: Int

    public init(_ augmentation: Augmentation, seed: UInt64, epoch: Int) {
        self.augmentation = augmentation
        self.seed = seed
        self.epoch = epoch
    }
}

/// A source of samples the Trainer can learn from, whatever a sample is: an image and a class, a table
/// row and a number, a window of tokens and the next ones. Preprocessing (normalization) and augmentation
/// belong to the dataset; the Trainer only asks for batches.
public protocol Dataset: Sendable {
    /// Number of samples.
    var count: Int { get }
    /// One sample as the model's input sees it: (C, H, W), (D, 1, 1), (T).
    var sampleShape: [Int] { get }
    /// What each sample is to be predicted as.
    var targetKind: TargetKind { get }
    /// Writes samples `indices` as floats (rows, sampleShape) into `inputs` and their targets into
    /// `targets`, augmenting when `augmentation` is given. Throws only when file-backed data can no
    /// longer be read. Allocates nothing.
    func gather(_ indices: UnsafeBufferPointer<Int32>, into inputs: UnsafeMutablePointer<Float>,
                targets: TargetBuffer, augmentation: AugmentationKey?) throws
    /// The first `limit` samples (all when nil or larger).
    func firstSamples(_ limit: Int?) -> any Dataset
    /// The samples at `indices`, in that order.
    func samples(at indices: [Int]) throws -> any Dataset
    /// What to split by, class-stratified: one class per sample; nil splits a contiguous held-out range.
    var stratificationLabels: [UInt8]? { get }
    /// Bytes of `TargetBuffer.scratch` that `gather` needs.
    var gatherScratchBytes: Int { get }
    /// A 64-bit checksum of inputs and targets, for comparing data across ranks and hosts.
    func checksum() throws -> UInt64
    /// What a checkpoint records to read data for this model again the same way (shape, class names,
    /// normalization, …), as metadata strings.
    var checkpointMetadata: [String: String] { get }
}

extension Dataset {
    /// Input floats per sample.
    public var sampleSize: Int { sampleShape.reduce(1, *) }
    /// The class names of a classification's targets (empty otherwise).
    public var classNames: [String] {
        switch targetKind {
        case let .classes(names): return names
        case let .value(name): return [name]
        case let .values(names): return names
        case .tokens: return []
        }
    }
}
