/// Reader for the official "CIFAR-10 binary version" (cifar-10-batches-bin).
///
/// Each file is a run of 3,073-byte records: one label byte, then 1,024 red, 1,024 green and 1,024
/// blue bytes, each plane a row-major 32x32 image — already the (C, H, W) layout the models use.
public enum CIFAR10 {
    /// Bytes per record: label + 3x32x32 pixels.
    public static let recordSize = 1 + imageSize
    /// Pixel bytes per image.
    public static let imageSize = 3 * 32 * 32
    /// The folder the official tarball unpacks to.
    public static let folderName = "cifar-10-batches-bin"
    public static let trainFiles = (1...5).map { "data_batch_\($0).bin" }
    public static let testFile = "test_batch.bin"
    /// Every file the reader needs.
    public static var requiredFiles: [String] { trainFiles + [testFile] }
    /// Class names when batches.meta.txt is absent (the official order).
    public static let defaultClassNames = ["airplane", "automobile", "bird", "cat", "deer",
                                           "dog", "frog", "horse", "ship", "truck"]

    /// The data folder for `--data-dir`: the folder itself when it holds the batches, else its
    /// `cifar-10-batches-bin` child (the tarball's parent), else nil.
    public static func resolveFolder(_ path: String) -> String? {
        let trimmed = path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
        if pathExists("\(trimmed)/\(testFile)") || pathExists("\(trimmed)/\(trainFiles[0])") { return trimmed }
        let child = "\(trimmed)/\(folderName)"
        return isDirectory(child) ? child : nil
    }

    /// Parses one batch file into pixels (count × 3072) and labels.
    public static func parseBatch(_ bytes: [UInt8], path: String) throws -> (pixels: [UInt8], labels: [UInt8]) {
        if bytes.isEmpty { throw DatasetError.malformed(path: path, problem: "is empty; expected records of \(recordSize) bytes") }
        if bytes.count % recordSize != 0 {
            throw DatasetError.malformed(path: path, problem: "size \(bytes.count) bytes is not a multiple of the \(recordSize)-byte CIFAR-10 record; the file is truncated or not CIFAR-10 binary data")
        }
        let count = bytes.count / recordSize
        var pixels = [UInt8](repeating: 0, count: count * imageSize)
        var labels = [UInt8](repeating: 0, count: count)
        try bytes.withUnsafeBufferPointer { source in
            try pixels.withUnsafeMutableBufferPointer { destination in
                for record in 0..<count {
                    let base = record * recordSize
                    let label = source[base]
                    if label > 9 {
                        throw DatasetError.malformed(path: path, problem: "record \(record) has label \(label); CIFAR-10 labels are 0...9")
                    }
                    labels[record] = label
                    (destination.baseAddress! + record * imageSize)
                        .update(from: source.baseAddress! + base + 1, count: imageSize)
                }
            }
        }
        return (pixels, labels)
    }

    /// Class names from batches.meta.txt (one per line), or the official names when it is absent.
    public static func classNames(folder: String) throws -> [String] {
        let path = "\(folder)/batches.meta.txt"
        guard pathExists(path) else { return defaultClassNames }
        let bytes = try readFileBytes(path)
        guard bytes.count < 65_536, let text = String(validating: bytes, as: UTF8.self) else {
            throw DatasetError.malformed(path: path, problem: "is not a short UTF-8 list of class names")
        }
        let names = text.split(whereSeparator: \.isNewline).map(trimmed).filter { !$0.isEmpty }
        guard names.count == 10 else {
            throw DatasetError.malformed(path: path, problem: "lists \(names.count) class names, expected 10")
        }
        return names
    }

    /// The command that fetches the data into the default place, for error messages.
    public static let downloadHint = "fetch it with 'distrain download cifar10' (into ./data) or 'distrain download cifar10 --to DIR' and pass --data-dir DIR"

    /// Loads the five training batches and the test batch from `directory` (the folder or its parent).
    public static func load(directory: String) throws -> DatasetSplits {
        guard let folder = resolveFolder(directory) else {
            throw DatasetError.missing(path: "\(directory)/\(folderName)",
                                       hint: "expected \(requiredFiles.joined(separator: ", ")); \(downloadHint)")
        }
        for name in requiredFiles where !pathExists("\(folder)/\(name)") {
            throw DatasetError.missing(path: "\(folder)/\(name)", hint: "expected \(requiredFiles.joined(separator: ", ")); \(downloadHint)")
        }
        let names = try classNames(folder: folder)
        var trainPixels: [UInt8] = [], trainLabels: [UInt8] = []
        // Reserve once: appending five 30 MB batches would otherwise double the buffer on the way.
        let records = trainFiles.reduce(0) { $0 + fileSize("\(folder)/\($1)") / recordSize }
        trainPixels.reserveCapacity(records * imageSize)
        trainLabels.reserveCapacity(records)
        for name in trainFiles {
            let path = "\(folder)/\(name)"
            let batch = try parseBatch(try readFileBytes(path), path: path)
            trainPixels += batch.pixels
            trainLabels += batch.labels
        }
        let testPath = "\(folder)/\(testFile)"
        let test = try parseBatch(try readFileBytes(testPath), path: testPath)
        return DatasetSplits(
            name: "cifar10",
            train: ImageDataset(shape: [3, 32, 32], pixels: trainPixels, labels: trainLabels, classNames: names),
            test: ImageDataset(shape: [3, 32, 32], pixels: test.pixels, labels: test.labels, classNames: names))
    }
}

/// The line without surrounding spaces, tabs or carriage returns (Datasets avoids Foundation).
private func trimmed(_ line: Substring) -> String {
    var view = line
    while let first = view.first, first == " " || first == "\t" || first == "\r" { view = view.dropFirst() }
    while let last = view.last, last == " " || last == "\t" || last == "\r" { view = view.dropLast() }
    return String(view)
}
