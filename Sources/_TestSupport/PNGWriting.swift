import CZlib
import Foundation

/// A PNG file of 8-bit grey (channels 1) or RGB (3) pixels, row-major and interleaved, every row filter 0.
public func pngFile(width: Int, height: Int, channels: Int, pixels: [UInt8]) -> [UInt8] {
    func u32(_ v: Int) -> [UInt8] { [UInt8((v >> 24) & 0xFF), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)] }
    func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let body = Array(type.utf8) + data
        let crc = body.withUnsafeBufferPointer { Int(crc32(0, $0.baseAddress, UInt32($0.count))) }
        return u32(data.count) + body + u32(crc)
    }
    var raw: [UInt8] = []
    for y in 0..<height { raw.append(0); raw += pixels[(y * width * channels)..<((y + 1) * width * channels)] }
    var compressedSize = compressBound(UInt(raw.count))
    var compressed = [UInt8](repeating: 0, count: Int(compressedSize))
    _ = compress(&compressed, &compressedSize, raw, UInt(raw.count))
    let header = u32(width) + u32(height) + [8, channels == 1 ? 0 : 2, 0, 0, 0]
    return [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + chunk("IHDR", header) + chunk("IDAT", Array(compressed.prefix(Int(compressedSize)))) + chunk("IEND", [])
}

/// The synthetic Fashion-MNIST-shaped dataset as image folders, DIR/train/classK/NNNNN.png and DIR/test/…,
/// and the same samples as IDX files in DIR/idx in folder order (class, then file name): the two must
/// train to the same parameters.
public func writeSyntheticImageFolders(directory: String, trainCount: Int, testCount: Int, seed: UInt64 = 1) {
    for (split, count, splitSeed) in [("train", trainCount, seed), ("test", testCount, seed + 1000)] {
        let data = syntheticImages(count: count, seed: splitSeed)
        let order = (0..<count).sorted { (data.labels[$0], $0) < (data.labels[$1], $1) }  // folder order
        var pixels: [UInt8] = [], labels: [UInt8] = []
        for index in order {
            let image = Array(data.pixels[(index * 784)..<((index + 1) * 784)])
            let folder = "\(directory)/\(split)/class\(data.labels[index])"
            try! FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            writeBytes(pngFile(width: 28, height: 28, channels: 1, pixels: image), to: "\(folder)/\(String(format: "%05d", index)).png")
            pixels += image
            labels.append(data.labels[index])
        }
        try! FileManager.default.createDirectory(atPath: "\(directory)/idx", withIntermediateDirectories: true)
        let prefix = split == "train" ? "train" : "t10k"
        writeBytes(gzipCompress(idxImagesFile(count: count, rows: 28, columns: 28, pixels: pixels)), to: "\(directory)/idx/\(prefix)-images-idx3-ubyte.gz")
        writeBytes(gzipCompress(idxLabelsFile(labels)), to: "\(directory)/idx/\(prefix)-labels-idx1-ubyte.gz")
    }
}
