import Foundation
#if canImport(Glibc)
import Glibc
#endif

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

    /// Where the data is looked for without `--data-dir`, and where `distrain download` puts it:
    /// `$DISTRAIN_DATA` when set, else `./data`.
    public static var defaultDirectory: String {
        if let root = ProcessInfo.processInfo.environment["DISTRAIN_DATA"], !root.isEmpty { return root }
        return "./data"
    }

    /// The data folder for `--data-dir`: the folder itself when it holds the batches, else its
    /// `cifar-10-batches-bin` child (the tarball's parent), else nil.
    public static func resolveFolder(_ path: String) -> String? {
        let trimmed = path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
        if pathExists("\(trimmed)/\(testFile)") || pathExists("\(trimmed)/\(trainFiles[0])") { return trimmed }
        let child = "\(trimmed)/\(folderName)"
        return isDirectory(child) ? child : nil
    }

    /// Opens one batch file and checks it: a regular, non-empty file of whole 3,073-byte records whose
    /// labels are all 0...9. Returns the open records and their labels; the pixels stay in the file.
    /// Reads in ~1 MiB blocks, so checking costs no more memory than that whatever the file's size.
    public static func openBatch(path: String) throws -> (records: RecordFiles, labels: [UInt8]) {
        var info = stat()
        guard stat(path, &info) == 0 else { throw DatasetError.unreadable(path: path, reason: String(cString: strerror(errno))) }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw DatasetError.unreadable(path: path, reason: "not a regular file") }
        let size = Int(info.st_size)
        if size == 0 { throw DatasetError.malformed(path: path, problem: "is empty; expected records of \(recordSize) bytes") }
        if size % recordSize != 0 {
            throw DatasetError.malformed(path: path, problem: "size \(size) bytes is not a multiple of the \(recordSize)-byte CIFAR-10 record; the file is truncated or not CIFAR-10 binary data")
        }
        let records = try RecordFiles(paths: [path], recordSize: recordSize, payloadOffset: 1, payloadSize: imageSize)
        if records.count != size / recordSize {
            throw DatasetError.malformed(path: path, problem: "changed size while it was opened; restore it and restart")
        }
        var labels: [UInt8] = []
        labels.reserveCapacity(records.count)
        try records.forEachRecordBlock { block, count in
            for r in 0..<count {
                let label = block[r * recordSize]
                if label > 9 {
                    throw DatasetError.malformed(path: path, problem: "record \(labels.count) has label \(label); CIFAR-10 labels are 0...9")
                }
                labels.append(label)
            }
        }
        return (records, labels)
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
        // Pixels stay in the files (read per batch, see RecordFiles); only the labels are kept in memory.
        var trainRecords: [RecordFiles] = [], trainLabels: [UInt8] = []
        for name in trainFiles {
            let batch = try openBatch(path: "\(folder)/\(name)")
            trainRecords.append(batch.records)
            trainLabels += batch.labels
        }
        let test = try openBatch(path: "\(folder)/\(testFile)")
        return DatasetSplits(
            name: "cifar10",
            train: ImageDataset(shape: [3, 32, 32], files: RecordFiles(concatenating: trainRecords), labels: trainLabels, classNames: names),
            test: ImageDataset(shape: [3, 32, 32], files: test.records, labels: test.labels, classNames: names))
    }
}

/// The line without surrounding spaces, tabs or carriage returns (Datasets avoids Foundation).
private func trimmed(_ line: Substring) -> String {
    var view = line
    while let first = view.first, first == " " || first == "\t" || first == "\r" { view = view.dropFirst() }
    while let last = view.last, last == " " || last == "\t" || last == "\r" { view = view.dropLast() }
    return String(view)
}
