/// Reader for the IDX format of MNIST and Fashion-MNIST (gzip or raw).
///
/// An IDX file is a 4-byte magic (0, 0, type 0x08 = unsigned byte, number of dimensions), one
/// big-endian UInt32 per dimension, then the data. Every inconsistency is a `DatasetError` naming the file.
public enum IDX {
    /// Parses an images file: dimensions (count, rows, columns); returns the shape and the pixel bytes.
    public static func parseImages(_ bytes: [UInt8], path: String) throws -> (count: Int, rows: Int, columns: Int, pixels: [UInt8]) {
        let dimensions = try parseHeader(bytes, path: path, expectedDimensions: 3, what: "images")
        let (count, rows, columns) = (dimensions[0], dimensions[1], dimensions[2])
        if rows == 0 || columns == 0 {
            throw DatasetError.malformed(path: path, problem: "images of \(rows)x\(columns) pixels are empty")
        }
        let header = 4 + 4 * 3
        return (count, rows, columns, Array(bytes[header...]))
    }

    /// Parses a labels file: one dimension (count); every label must be below `classCount`.
    public static func parseLabels(_ bytes: [UInt8], path: String, classCount: Int) throws -> [UInt8] {
        _ = try parseHeader(bytes, path: path, expectedDimensions: 1, what: "labels")
        let labels = Array(bytes[8...])
        if let index = labels.firstIndex(where: { Int($0) >= classCount }) {
            throw DatasetError.malformed(path: path, problem: "label \(labels[index]) at index \(index) is not a class in 0...\(classCount - 1)")
        }
        return labels
    }

    /// Validates magic and dimensions against the file length; returns the dimensions.
    static func parseHeader(_ bytes: [UInt8], path: String, expectedDimensions: Int, what: String) throws -> [Int] {
        let header = 4 + 4 * expectedDimensions
        let expectedMagic = 0x0800 | UInt32(expectedDimensions)
        if bytes.count < 4 {
            throw DatasetError.malformed(path: path, problem: "\(bytes.count) bytes is too short for an IDX header; is this an IDX \(what) file?")
        }
        let magic = readBigEndian(bytes, at: 0)
        if magic != expectedMagic {
            throw DatasetError.malformed(path: path, problem: "wrong magic number \(hexWord(magic)), expected \(hexWord(expectedMagic)) for IDX \(what); is this the right file?")
        }
        if bytes.count < header {
            throw DatasetError.malformed(path: path, problem: "\(bytes.count) bytes is too short for an IDX \(what) header of \(header) bytes")
        }
        let dimensions = (0..<expectedDimensions).map { Int(readBigEndian(bytes, at: 4 + 4 * $0)) }
        // Products of three UInt32 fit in Int64 only barely; check overflow anyway.
        var expected = 1
        for dimension in dimensions {
            let (product, overflow) = expected.multipliedReportingOverflow(by: dimension)
            if overflow { throw DatasetError.malformed(path: path, problem: "dimensions \(dimensions) overflow") }
            expected = product
        }
        if dimensions[0] == 0 {
            throw DatasetError.malformed(path: path, problem: "holds no \(what) (count is 0)")
        }
        let actual = bytes.count - header
        if actual != expected {
            let shape = dimensions.map(String.init).joined(separator: "x")
            throw DatasetError.malformed(path: path, problem: "header declares \(shape) = \(expected) bytes of \(what) but the file holds \(actual); the file is truncated or not what it claims")
        }
        return dimensions
    }

    /// The size in bytes an IDX file's header declares for the whole file (header included), from its
    /// first 16 bytes; nil when they are not an IDX header of 1 to 3 dimensions.
    public static func declaredFileSize(header bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4, bytes[0] == 0, bytes[1] == 0, bytes[2] == 0x08, (1...3).contains(bytes[3]) else { return nil }
        let dimensions = Int(bytes[3]), header = 4 + 4 * dimensions
        guard bytes.count >= header else { return nil }
        var size = 1
        for index in 0..<dimensions {
            let (product, overflow) = size.multipliedReportingOverflow(by: Int(readBigEndian(bytes, at: 4 + 4 * index)))
            if overflow { return nil }
            size = product
        }
        return header + size
    }

    /// Reads an IDX file, raw or gzip; a gzip stream is inflated no further than its header declares.
    public static func read(_ path: String) throws -> [UInt8] {
        try readPossiblyCompressed(path, headerBytes: 16, declaredSize: declaredFileSize(header:))
    }

    @inline(__always)
    static func readBigEndian(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8 | UInt32(bytes[offset + 3])
    }
}

/// "0x00000803"-style hex for magic numbers in messages.
func hexWord(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
}

/// The classic file names of an MNIST-style IDX dataset.
public struct IDXFileNames: Sendable {
    public var trainImages = "train-images-idx3-ubyte"
    public var trainLabels = "train-labels-idx1-ubyte"
    public var testImages = "t10k-images-idx3-ubyte"
    public var testLabels = "t10k-labels-idx1-ubyte"
    public init() {}
}

/// Loads an MNIST-style dataset from a directory holding the four IDX files (each raw or `.gz`).
///
/// - Parameter hint: what to tell the user when files are missing (how to install or where to point).
public func loadIDXDataset(name: String, directory: String, classNames: [String], hint: String) throws -> DatasetSplits {
    if !isDirectory(directory) {
        throw DatasetError.missing(path: directory, hint: hint)
    }
    let names = IDXFileNames()
    func locate(_ base: String) throws -> String {
        for candidate in ["\(directory)/\(base).gz", "\(directory)/\(base)"] where pathExists(candidate) {
            return candidate
        }
        throw DatasetError.missing(path: "\(directory)/\(base)[.gz]", hint: hint)
    }
    func loadSplit(images imageName: String, labels labelName: String) throws -> ImageDataset {
        let imagePath = try locate(imageName), labelPath = try locate(labelName)
        let images = try IDX.parseImages(try IDX.read(imagePath), path: imagePath)
        let labels = try IDX.parseLabels(try IDX.read(labelPath), path: labelPath, classCount: classNames.count)
        if images.count != labels.count {
            throw DatasetError.mismatch(first: imagePath, second: labelPath,
                                        problem: "\(images.count) images but \(labels.count) labels")
        }
        return ImageDataset(shape: [1, images.rows, images.columns], pixels: images.pixels, labels: labels, classNames: classNames)
    }
    let train = try loadSplit(images: names.trainImages, labels: names.trainLabels)
    let test = try loadSplit(images: names.testImages, labels: names.testLabels)
    if train.shape != test.shape {
        throw DatasetError.mismatch(first: "\(directory)/\(names.trainImages)", second: "\(directory)/\(names.testImages)",
                                    problem: "training images are \(train.shape[1])x\(train.shape[2]), test images \(test.shape[1])x\(test.shape[2])")
    }
    return DatasetSplits(name: name, train: train, test: test)
}

/// Fashion-MNIST's class names, index = label.
public let fashionMNISTClassNames = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                     "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
/// MNIST's class names.
public let mnistClassNames = (0..<10).map(String.init)
/// Where Debian's dataset-fashion-mnist package installs the files.
public let debianFashionMNISTDirectory = "/usr/share/datasets/fashion-mnist"
