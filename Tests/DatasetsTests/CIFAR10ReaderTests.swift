import XCTest
@testable import Datasets
import _TestSupport

final class CIFAR10ReaderTests: XCTestCase {
    private var root = ""
    private var folder: String { root + "/cifar-10-batches-bin" }

    override func setUp() {
        root = makeTemporaryDirectory("cifar")
        writeSyntheticCIFAR10(folder: folder, perBatch: 7, testCount: 5)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    private func assertLoadFails(_ fragments: [String], directory: String? = nil, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try CIFAR10.load(directory: directory ?? root), file: file, line: line) { error in
            let message = "\(error)"
            XCTAssertFalse(message.contains("\n"), "one line: \(message)", file: file, line: line)
            for fragment in fragments {
                XCTAssertTrue(message.contains(fragment), "\"\(message)\" lacks \"\(fragment)\"", file: file, line: line)
            }
        }
    }

    func testReadsPixelsAndLabelsInRecordOrder() throws {
        let splits = try CIFAR10.load(directory: root)
        XCTAssertEqual(splits.train.count, 35)
        XCTAssertEqual(splits.test.count, 5)
        XCTAssertEqual(splits.train.shape, [3, 32, 32])
        // Record 0 of data_batch_2 is training sample 7: its label byte, then its 3072 pixels as written.
        let batch2 = syntheticCIFARBatch(count: 7, seed: 2)
        XCTAssertEqual(splits.train.labels[7], batch2.labels[0])
        XCTAssertEqual(try splits.train.pixels(ofSample: 7), Array(batch2.bytes[1..<3073]))
        XCTAssertEqual(try splits.train.pixels(ofSample: 34), Array(syntheticCIFARBatch(count: 7, seed: 5).bytes[(6 * 3073 + 1)..<(7 * 3073)]))
        XCTAssertEqual(splits.test.labels, syntheticCIFARBatch(count: 5, seed: 99).labels)
        XCTAssertEqual(splits.train.classNames[9], "truck")
    }

    /// The pixels stay in the files: blocks, checksums and prefixes read them back exactly as an
    /// in-memory copy of the same bytes would give them.
    func testFileBackedPixelsMatchAnInMemoryCopy() throws {
        let splits = try CIFAR10.load(directory: root)
        guard case .files = splits.train.storage else { return XCTFail("CIFAR-10 pixels should stay in the files") }
        var bytes: [UInt8] = []
        for seed in 1...5 {
            let batch = syntheticCIFARBatch(count: 7, seed: UInt64(seed)).bytes
            for record in 0..<7 { bytes += batch[(record * 3073 + 1)..<((record + 1) * 3073)] }
        }
        let copy = ImageDataset(shape: [3, 32, 32], pixels: bytes, labels: splits.train.labels, classNames: splits.train.classNames)
        var streamed: [UInt8] = []
        try splits.train.forEachSampleBlock { block, count in streamed += UnsafeBufferPointer(start: block, count: count * 3072) }
        XCTAssertEqual(streamed, bytes)
        XCTAssertEqual(try splits.train.checksum(), try copy.checksum())
        XCTAssertEqual(try Normalization.measured(on: splits.train), try Normalization.measured(on: copy))
        let prefix = splits.train.prefix(9)
        XCTAssertEqual(prefix.count, 9)
        XCTAssertEqual(try prefix.checksum(), try copy.prefix(9).checksum())
        XCTAssertEqual(try prefix.pixels(ofSample: 8), Array(bytes[(8 * 3072)..<(9 * 3072)]))
    }

    /// A file cut short after it was opened ends a read with a one-line error naming it, not a crash.
    func testFileTruncatedDuringTheRunIsAnError() throws {
        let splits = try CIFAR10.load(directory: root)
        let path = folder + "/data_batch_5.bin"
        XCTAssertEqual(truncate(path, 3073), 0)
        XCTAssertNoThrow(try splits.train.pixels(ofSample: 28))  // record 0 of batch 5 is still there
        XCTAssertThrowsError(try splits.train.pixels(ofSample: 30)) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains(path) && message.contains("truncated"), message)
            XCTAssertFalse(message.contains("\n"))
        }
    }

    func testAcceptsTheFolderItselfOrItsParent() throws {
        XCTAssertEqual(try CIFAR10.load(directory: folder).train.count, 35)
        XCTAssertEqual(try CIFAR10.load(directory: root + "/").train.count, 35)
    }

    func testClassNamesFromMetaFileOrDefaults() throws {
        writeBytes(Array("a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n".utf8), to: folder + "/batches.meta.txt")
        XCTAssertEqual(try CIFAR10.load(directory: root).train.classNames.first, "a")
        try FileManager.default.removeItem(atPath: folder + "/batches.meta.txt")
        XCTAssertEqual(try CIFAR10.load(directory: root).train.classNames, CIFAR10.defaultClassNames)
        writeBytes(Array("only\ntwo\n".utf8), to: folder + "/batches.meta.txt")
        assertLoadFails(["batches.meta.txt", "2 class names"])
    }

    func testSizeNotAMultipleOfTheRecord() {
        let path = folder + "/data_batch_3.bin"
        writeBytes(Array(syntheticCIFARBatch(count: 2, seed: 3).bytes.dropLast(10)), to: path)
        assertLoadFails([path, "not a multiple of the 3073-byte"])
    }

    func testLabelAboveNine() {
        let path = folder + "/test_batch.bin"
        var bytes = syntheticCIFARBatch(count: 3, seed: 4).bytes
        bytes[3073] = 10
        writeBytes(bytes, to: path)
        assertLoadFails([path, "record 1 has label 10"])
    }

    func testMissingFileNamesItAndTheDownloadCommand() throws {
        try FileManager.default.removeItem(atPath: folder + "/data_batch_4.bin")
        assertLoadFails(["data_batch_4.bin", "distrain download cifar10"])
    }

    func testMissingFolderNamesExpectedFilesAndTheCommand() {
        assertLoadFails(["cifar-10-batches-bin", "data_batch_1.bin", "test_batch.bin", "distrain download cifar10"],
                        directory: root + "/elsewhere")
    }

    func testUnreadableEntryIsAnError() throws {
        let path = folder + "/data_batch_1.bin"
        try FileManager.default.removeItem(atPath: path)
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        assertLoadFails([path, "not a regular file"])
    }
}

final class AugmentationTests: XCTestCase {
    /// A 1x4x4 image with distinct pixels, normalized by the identity-like table value = byte.
    private func augmented(_ choice: (dy: Int, dx: Int, flip: Bool), padding: Int) -> [Float] {
        let image: [UInt8] = Array(1...16)
        let table: [Float] = (0..<256).map(Float.init)
        var out = [Float](repeating: -1, count: 16)
        image.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                Augmentation(padding: padding).apply(source: src.baseAddress!, destination: dst.baseAddress!, channels: 1,
                                                     height: 4, width: 4, lookup: table, choice: choice)
            }
        }
        return out
    }

    func testCropAndFlipByHand() {
        // Centered crop without flip is the identity.
        XCTAssertEqual(augmented((1, 1, false), padding: 1), (1...16).map(Float.init))
        // Offset (0, 0) with padding 1: shifted down-right by one, zeros entering from the top-left.
        XCTAssertEqual(augmented((0, 0, false), padding: 1), [0, 0, 0, 0, 0, 1, 2, 3, 0, 5, 6, 7, 0, 9, 10, 11])
        // Padding 0 (--augment-padding 0): the only offset is (0, 0), so flips only.
        XCTAssertEqual(augmented((0, 0, false), padding: 0), (1...16).map(Float.init))
        XCTAssertEqual(augmented((0, 0, true), padding: 0), [4, 3, 2, 1, 8, 7, 6, 5, 12, 11, 10, 9, 16, 15, 14, 13])
        // Centered and flipped: each row reversed.
        XCTAssertEqual(augmented((1, 1, true), padding: 1), [4, 3, 2, 1, 8, 7, 6, 5, 12, 11, 10, 9, 16, 15, 14, 13])
    }

    func testChoicesAreKeyedBySeedEpochAndSampleAndCoverTheRange() {
        let augmentation = Augmentation()
        XCTAssertEqual(augmentation.choice(seed: 1, epoch: 2, sampleIndex: 3).dy, augmentation.choice(seed: 1, epoch: 2, sampleIndex: 3).dy)
        var offsets = Set<Int>(), flips = 0
        for sample in 0..<2000 {
            let choice = augmentation.choice(seed: 7, epoch: 0, sampleIndex: sample)
            XCTAssertTrue((0...8).contains(choice.dy) && (0...8).contains(choice.dx))
            offsets.insert(choice.dy * 9 + choice.dx)
            flips += choice.flip ? 1 : 0
        }
        XCTAssertEqual(offsets.count, 81)
        XCTAssertEqual(Double(flips) / 2000, 0.5, accuracy: 0.05)
        let flipsOnly = Augmentation(padding: 0)
        let choices = (0..<200).map { flipsOnly.choice(seed: 7, epoch: 0, sampleIndex: $0) }
        XCTAssertTrue(choices.allSatisfy { $0.dy == 0 && $0.dx == 0 })
        XCTAssertEqual(Double(choices.filter(\.flip).count) / 200, 0.5, accuracy: 0.1)
        let epochs = (0..<50).map { augmentation.choice(seed: 7, epoch: $0, sampleIndex: 5).dy }
        XCTAssertGreaterThan(Set(epochs).count, 1, "choices must change with the epoch")
    }
}
