/// Where an ImageDataset's pixel bytes live.
public enum PixelStorage: Sendable {
    /// (count, C, H, W) bytes in memory (IDX files, which are gzip-compressed, and tests).
    case memory([UInt8])
    /// Records in files, read per sample on demand (CIFAR-10: see RecordFiles for why).
    case files(RecordFiles)
    /// (count, C, H, W) floats: CSV features, normalized like bytes (x = (f/255 − mean)/std, which with
    /// the measured mean and std is plain standardization).
    case floats([Float])
}

/// Labeled images kept as bytes (4x smaller than floats); batches are normalized as they are gathered.
public struct ImageDataset: Sendable {
    /// Per-sample shape (channels, height, width).
    public let shape: [Int]
    /// The pixel bytes, (count, C, H, W) in sample order, 0...255.
    public let storage: PixelStorage
    /// One class index per sample, each < classNames.count.
    public let labels: [UInt8]
    /// Human-readable class names, index = label (a regression's one entry names its target).
    public let classNames: [String]
    /// Regression: the numeric target of each sample (nil for classification, whose labels are the targets).
    public private(set) var targets: [Float]?
    /// How `gather` maps bytes (or features) to model inputs: the training split's per-channel mean and
    /// deviation (nil until `normalized(by:)`; gathering needs it).
    public private(set) var normalization: Normalization?
    /// Its byte → float maps, made once.
    private(set) var normalizationTables: NormalizationTables?

    /// The same samples, gathered with `normalization`.
    public func normalized(by normalization: Normalization) -> ImageDataset {
        var copy = self
        copy.normalization = normalization
        copy.normalizationTables = NormalizationTables(normalization)
        return copy
    }

    public init(shape: [Int], pixels: [UInt8], labels: [UInt8], classNames: [String]) {
        precondition(shape.count == 3, "image shape must be (C, H, W), got \(shape)")
        precondition(pixels.count == labels.count * shape.reduce(1, *),
                     "\(pixels.count) pixel bytes do not make \(labels.count) images of \(shape)")
        self.shape = shape
        storage = .memory(pixels)
        self.labels = labels
        self.classNames = classNames
    }

    /// Float samples (CSV features as (D, 1, 1)); with `targets`, a regression dataset.
    public init(shape: [Int], features: [Float], labels: [UInt8], classNames: [String], targets: [Float]? = nil) {
        precondition(targets == nil || targets!.count == labels.count, "one target per sample")
        self.targets = targets
        precondition(shape.count == 3, "sample shape must be (C, H, W), got \(shape)")
        precondition(features.count == labels.count * shape.reduce(1, *), "\(features.count) values do not make "
            + "\(labels.count) samples of \(shape)")
        self.shape = shape
        storage = .floats(features)
        self.labels = labels
        self.classNames = classNames
    }

    /// A dataset whose pixels stay in `files` (one sample per record) and are read as batches need them.
    public init(shape: [Int], files: RecordFiles, labels: [UInt8], classNames: [String]) {
        precondition(shape.count == 3, "image shape must be (C, H, W), got \(shape)")
        precondition(files.payloadSize == shape.reduce(1, *) && files.count == labels.count,
                     "\(files.count) records of \(files.payloadSize) bytes do not make \(labels.count) images of \(shape)")
        self.shape = shape
        storage = .files(files)
        self.labels = labels
        self.classNames = classNames
    }

    /// Number of samples.
    public var count: Int { labels.count }
    /// Bytes per sample.
    public var sampleSize: Int { shape.reduce(1, *) }
    /// Number of classes.
    public var classCount: Int { classNames.count }

    /// The first `limit` samples (all of them when `limit` is nil or larger).
    public func prefix(_ limit: Int?) -> ImageDataset {
        guard let limit, limit < count else { return self }
        let prefix = unnormalizedPrefix(limit)
        return normalization.map(prefix.normalized(by:)) ?? prefix
    }

    private func unnormalizedPrefix(_ limit: Int) -> ImageDataset {
        let labels = Array(labels[0..<limit])
        switch storage {
        case let .memory(pixels):
            return ImageDataset(shape: shape, pixels: Array(pixels[0..<(limit * sampleSize)]), labels: labels, classNames: classNames)
        case let .files(files):
            return ImageDataset(shape: shape, files: files.prefix(limit), labels: labels, classNames: classNames)
        case let .floats(values):
            return ImageDataset(shape: shape, features: Array(values[0..<(limit * sampleSize)]), labels: labels, classNames: classNames,
                                targets: targets.map { Array($0[0..<limit]) })
        }
    }

    /// The pixel bytes of sample `index`.
    public func pixels(ofSample index: Int) throws -> [UInt8] {
        switch storage {
        case let .memory(pixels):
            return Array(pixels[(index * sampleSize)..<((index + 1) * sampleSize)])
        case let .files(files):
            var bytes = [UInt8](repeating: 0, count: sampleSize)
            try bytes.withUnsafeMutableBufferPointer { try files.read(sample: index, into: $0.baseAddress!) }
            return bytes
        case .floats:
            preconditionFailure("float samples have no bytes")
        }
    }

    /// Every pixel byte, (count, C, H, W) — a copy; for small sets and tests (not float samples).
    public func allPixels() throws -> [UInt8] {
        if case let .memory(pixels) = storage { return pixels }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count * sampleSize)
        try forEachSampleBlock { block, samples in bytes += UnsafeBufferPointer(start: block, count: samples * sampleSize) }
        return bytes
    }

    /// Calls `body` with consecutive blocks of whole samples in order: (pixels of the block, samples in it).
    /// Memory for file-backed data stays at one ~1 MiB block.
    public func forEachSampleBlock(_ body: (UnsafePointer<UInt8>, Int) throws -> Void) throws {
        switch storage {
        case let .memory(pixels):
            try pixels.withUnsafeBufferPointer { if count > 0 { try body($0.baseAddress!, count) } }
        case .floats:
            preconditionFailure("float samples have no bytes; read `storage` directly")
        case let .files(files):
            if files.recordSize == files.payloadSize {
                return try files.forEachRecordBlock(body)
            }
            // Drop each record's non-pixel bytes (the label) so the block is plain samples.
            let compact = UnsafeMutablePointer<UInt8>.allocate(capacity: ((1 << 20) / files.recordSize + 1) * sampleSize)
            defer { compact.deallocate() }
            try files.forEachRecordBlock { records, n in
                for r in 0..<n {
                    (compact + r * sampleSize).update(from: records + r * files.recordSize + files.payloadOffset, count: sampleSize)
                }
                try body(compact, n)
            }
        }
    }

    /// A 64-bit FNV-1a checksum of pixels and labels, for comparing data across ranks and hosts.
    public func checksum() throws -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        if case let .floats(values) = storage {
            for value in values { hash = (hash ^ UInt64(value.bitPattern)) &* 0x100_0000_01B3 }
            for label in labels { hash = (hash ^ UInt64(label)) &* 0x100_0000_01B3 }
            return hash
        }
        try forEachSampleBlock { block, samples in
            for byte in UnsafeBufferPointer(start: block, count: samples * sampleSize) {
                hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3
            }
        }
        for label in labels { hash = (hash ^ UInt64(label)) &* 0x100_0000_01B3 }
        return hash
    }
}

/// Training and test splits of one dataset.
public struct DatasetSplits: Sendable {
    public let name: String
    public let train: ImageDataset
    public let test: ImageDataset
    /// Held out from the training set for model selection (`--val-split`, `--kfold`), if any.
    public let validation: ImageDataset?
    /// How image files became samples (image folders), recorded in checkpoints for prediction.
    public var preprocessing: ImagePreprocessing?
    /// What the loader left out or assumed, for the coordinator to print (skipped files, …).
    public var notes: [String] = []
    /// CSV tables: the feature columns in sample order (recorded in checkpoints, for predicting on rows).
    public var featureNames: [String]?
    /// CSV tables: the label column.
    public var labelColumn: String?

    public init(name: String, train: ImageDataset, test: ImageDataset, validation: ImageDataset? = nil) {
        self.name = name
        self.train = train
        self.test = test
        self.validation = validation
    }
}
