import Foundation

/// CIFAR-10 binary records whose classes differ visibly: class c has a bright square whose position
/// and color depend on c, plus seeded noise. Returns the file bytes and the labels.
public func syntheticCIFARBatch(count: Int, seed: UInt64) -> (bytes: [UInt8], labels: [UInt8]) {
    var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
    func next() -> UInt64 {
        state ^= state << 13; state ^= state >> 7; state ^= state << 17
        return state
    }
    var bytes: [UInt8] = []
    bytes.reserveCapacity(count * 3073)
    var labels: [UInt8] = []
    for _ in 0..<count {
        let label = Int(next() % 10)
        labels.append(UInt8(label))
        bytes.append(UInt8(label))
        let top = (label / 5) * 14 + 2, left = (label % 5) * 6
        for channel in 0..<3 {
            let lit = (label + channel) % 3 != 0
            for y in 0..<32 {
                for x in 0..<32 {
                    let inside = y >= top && y < top + 12 && x >= left && x < left + 6
                    let noise = Int(next() % 60)
                    bytes.append(UInt8(min(255, (inside && lit ? 180 : 20) + noise)))
                }
            }
        }
    }
    return (bytes, labels)
}

/// Writes the five training batches (`perBatch` records each) and the test batch (`testCount`) of a
/// synthetic CIFAR-10 into `folder`, plus batches.meta.txt when `meta` is true.
public func writeSyntheticCIFAR10(folder: String, perBatch: Int, testCount: Int, meta: Bool = true) {
    try! FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    for batch in 1...5 {
        writeBytes(syntheticCIFARBatch(count: perBatch, seed: UInt64(batch)).bytes, to: "\(folder)/data_batch_\(batch).bin")
    }
    writeBytes(syntheticCIFARBatch(count: testCount, seed: 99).bytes, to: "\(folder)/test_batch.bin")
    if meta {
        let names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
        writeBytes(Array((names.joined(separator: "\n") + "\n\n").utf8), to: "\(folder)/batches.meta.txt")
    }
}

/// A POSIX ustar archive of regular files (and directories, for names ending in "/").
public func tarArchive(_ entries: [(name: String, bytes: [UInt8])]) -> [UInt8] {
    var archive: [UInt8] = []
    for (name, bytes) in entries {
        var header = [UInt8](repeating: 0, count: 512)
        func put(_ text: String, at offset: Int) { for (i, b) in text.utf8.enumerated() { header[offset + i] = b } }
        let isDirectory = name.hasSuffix("/")
        put(name, at: 0)
        put("0000644\0", at: 100)
        put("0000000\0", at: 108)
        put("0000000\0", at: 116)
        put(String(format: "%011o\0", bytes.count), at: 124)
        put("00000000000\0", at: 136)
        put("        ", at: 148)
        header[156] = isDirectory ? UInt8(ascii: "5") : UInt8(ascii: "0")
        put("ustar\0", at: 257)
        put("00", at: 263)
        let sum = header.reduce(0) { $0 + Int($1) }
        put(String(format: "%06o\0 ", sum), at: 148)
        archive += header + bytes
        archive += [UInt8](repeating: 0, count: (512 - bytes.count % 512) % 512)
    }
    return archive + [UInt8](repeating: 0, count: 1024)
}
