/// Labeled images kept as bytes (4x smaller than floats); batches are normalized as they are gathered.
public struct ImageDataset: Sendable {
    /// Per-sample shape (channels, height, width).
    public let shape: [Int]
    /// (count, C, H, W) pixel bytes, 0...255.
    public let pixels: [UInt8]
    /// One class index per sample, each < classNames.count.
    public let labels: [UInt8]
    /// Human-readable class names, index = label.
    public let classNames: [String]

    public init(shape: [Int], pixels: [UInt8], labels: [UInt8], classNames: [String]) {
        precondition(shape.count == 3, "image shape must be (C, H, W), got \(shape)")
        precondition(pixels.count == labels.count * shape.reduce(1, *),
                     "\(pixels.count) pixel bytes do not make \(labels.count) images of \(shape)")
        self.shape = shape
        self.pixels = pixels
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
        return ImageDataset(shape: shape, pixels: Array(pixels[0..<(limit * sampleSize)]),
                            labels: Array(labels[0..<limit]), classNames: classNames)
    }

    /// A 64-bit FNV-1a checksum of pixels and labels, for comparing data across ranks and hosts.
    public var checksum: UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        pixels.withUnsafeBufferPointer { buffer in
            for byte in buffer { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
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

    public init(name: String, train: ImageDataset, test: ImageDataset) {
        self.name = name
        self.train = train
        self.test = test
    }
}
