import CZlib
import Foundation

/// A fresh empty directory under the system temporary directory.
public func makeTemporaryDirectory(_ label: String = "distrain-test") -> String {
    let path = NSTemporaryDirectory() + "\(label)-\(UUID().uuidString)"
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// Writes bytes to a file, replacing it.
public func writeBytes(_ bytes: [UInt8], to path: String) {
    precondition(FileManager.default.createFile(atPath: path, contents: Data(bytes)), "cannot write \(path)")
}

/// gzip-compresses bytes (a real gzip stream, as the gzip tool writes).
public func gzipCompress(_ bytes: [UInt8]) -> [UInt8] {
    let path = NSTemporaryDirectory() + "gz-\(UUID().uuidString).gz"
    defer { try? FileManager.default.removeItem(atPath: path) }
    let file = gzopen(path, "wb")!
    bytes.withUnsafeBytes { _ = gzwrite(file, $0.baseAddress, UInt32($0.count)) }
    gzclose(file)
    return [UInt8](FileManager.default.contents(atPath: path)!)
}

/// Big-endian UInt32 bytes.
public func bigEndianBytes(_ value: UInt32) -> [UInt8] {
    [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
}

/// An IDX images file: magic 0x00000803, count, rows, columns, pixels.
public func idxImagesFile(count: Int, rows: Int, columns: Int, pixels: [UInt8]) -> [UInt8] {
    bigEndianBytes(0x803) + bigEndianBytes(UInt32(count)) + bigEndianBytes(UInt32(rows)) + bigEndianBytes(UInt32(columns)) + pixels
}

/// An IDX labels file: magic 0x00000801, count, labels.
public func idxLabelsFile(_ labels: [UInt8]) -> [UInt8] {
    bigEndianBytes(0x801) + bigEndianBytes(UInt32(labels.count)) + labels
}

/// A small learnable image set: class c lights up a class-specific band (plus seeded noise),
/// so a model that learns reaches high accuracy and one that does not stays near 10%.
public func syntheticImages(count: Int, rows: Int = 28, columns: Int = 28, classes: Int = 10, seed: UInt64 = 1) -> (pixels: [UInt8], labels: [UInt8]) {
    var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
    func next() -> UInt64 {
        state ^= state << 13; state ^= state >> 7; state ^= state << 17
        return state
    }
    var pixels = [UInt8](repeating: 0, count: count * rows * columns)
    var labels = [UInt8](repeating: 0, count: count)
    for i in 0..<count {
        let label = Int(next() % UInt64(classes))
        labels[i] = UInt8(label)
        for r in 0..<rows {
            for c in 0..<columns {
                let band = (r * classes / rows) == label || (c * classes / columns) == (label + 3) % classes
                let noise = Int(next() % 90)
                pixels[i * rows * columns + r * columns + c] = UInt8(min(255, (band ? 150 : 0) + noise))
            }
        }
    }
    return (pixels, labels)
}

/// Writes the four Fashion-MNIST-named IDX files (gzip) of a synthetic dataset into `directory`.
public func writeSyntheticIDXDataset(directory: String, trainCount: Int, testCount: Int, seed: UInt64 = 1) {
    let train = syntheticImages(count: trainCount, seed: seed)
    let test = syntheticImages(count: testCount, seed: seed + 1000)
    writeBytes(gzipCompress(idxImagesFile(count: trainCount, rows: 28, columns: 28, pixels: train.pixels)),
               to: "\(directory)/train-images-idx3-ubyte.gz")
    writeBytes(gzipCompress(idxLabelsFile(train.labels)), to: "\(directory)/train-labels-idx1-ubyte.gz")
    writeBytes(gzipCompress(idxImagesFile(count: testCount, rows: 28, columns: 28, pixels: test.pixels)),
               to: "\(directory)/t10k-images-idx3-ubyte.gz")
    writeBytes(gzipCompress(idxLabelsFile(test.labels)), to: "\(directory)/t10k-labels-idx1-ubyte.gz")
}

/// Where Debian's package puts the real Fashion-MNIST, if installed.
public let realFashionMNISTDirectory: String? = {
    let path = "/usr/share/datasets/fashion-mnist"
    return FileManager.default.fileExists(atPath: path + "/train-images-idx3-ubyte.gz") ? path : nil
}()

/// The tensor bytes of a checkpoint folder's model.safetensors, after the header (whose metadata names
/// the data source): equal bytes mean bitwise-equal parameters.
public func checkpointTensorBytes(_ folder: String) throws -> [UInt8] {
    let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(folder)/model.safetensors")))
    var length = 0
    for i in (0..<8).reversed() { length = length << 8 | Int(bytes[i]) }
    return Array(bytes[(8 + length)...])
}
