import XCTest
@testable import Datasets
import _TestSupport

/// The IDX reader on generated files, raw and gzip, and one test per kind of corruption.
final class IDXReaderTests: XCTestCase {
    private var directory = ""

    override func setUp() { directory = makeTemporaryDirectory("idx") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }

    /// Writes a 3-image 2x2 train split and a 2-image test split, raw or compressed.
    private func writeDataset(compressed: Bool, trainImages: [UInt8]? = nil, trainLabels: [UInt8]? = nil) {
        let suffix = compressed ? ".gz" : ""
        func put(_ bytes: [UInt8], _ name: String) {
            writeBytes(compressed ? gzipCompress(bytes) : bytes, to: "\(directory)/\(name)\(suffix)")
        }
        put(trainImages ?? idxImagesFile(count: 3, rows: 2, columns: 2, pixels: Array(0..<12)), "train-images-idx3-ubyte")
        put(trainLabels ?? idxLabelsFile([0, 9, 4]), "train-labels-idx1-ubyte")
        put(idxImagesFile(count: 2, rows: 2, columns: 2, pixels: [255, 254, 253, 252, 1, 2, 3, 4]), "t10k-images-idx3-ubyte")
        put(idxLabelsFile([7, 1]), "t10k-labels-idx1-ubyte")
    }

    private func load() throws -> DatasetSplits {
        try loadIDXDataset(name: "test", directory: directory, classNames: mnistClassNames, hint: "generate it")
    }

    /// Asserts loading fails with a message containing every fragment.
    private func assertLoadFails(_ fragments: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try load(), file: file, line: line) { error in
            let message = "\(error)"
            XCTAssertFalse(message.contains("\n"), "error must be one line: \(message)", file: file, line: line)
            for fragment in fragments {
                XCTAssertTrue(message.contains(fragment), "\"\(message)\" lacks \"\(fragment)\"", file: file, line: line)
            }
        }
    }

    func testReadsRawFiles() throws {
        writeDataset(compressed: false)
        let splits = try load()
        XCTAssertEqual(splits.train.shape, [1, 2, 2])
        XCTAssertEqual(try splits.train.allPixels(), Array(0..<12))
        XCTAssertEqual(splits.train.labels, [0, 9, 4])
        XCTAssertEqual(try splits.test.allPixels(), [255, 254, 253, 252, 1, 2, 3, 4])
        XCTAssertEqual(splits.test.labels, [7, 1])
    }

    func testReadsGzipFilesIdentically() throws {
        writeDataset(compressed: true)
        let splits = try load()
        XCTAssertEqual(try splits.train.allPixels(), Array(0..<12))
        XCTAssertEqual(splits.test.labels, [7, 1])
    }

    func testWrongMagic() {
        var bytes = idxImagesFile(count: 3, rows: 2, columns: 2, pixels: Array(0..<12))
        bytes[3] = 0x01
        writeDataset(compressed: false, trainImages: bytes)
        assertLoadFails(["train-images-idx3-ubyte", "wrong magic number 0x00000801"])
    }

    func testDimensionsDisagreeWithLength() {
        writeDataset(compressed: true, trainImages: idxImagesFile(count: 4, rows: 2, columns: 2, pixels: Array(0..<12)))
        assertLoadFails(["train-images-idx3-ubyte.gz", "4x2x2 = 16 bytes", "holds 12"])
    }

    func testHugeDeclaredCountIsRejectedWithoutAllocating() {
        // 4 billion images of 65535x65535 would overflow or exhaust memory if trusted.
        writeDataset(compressed: false, trainImages: idxImagesFile(count: 0xFFFF_FFFF, rows: 0xFFFF, columns: 0xFFFF, pixels: [1, 2, 3]))
        assertLoadFails(["train-images-idx3-ubyte"])
    }

    func testImageLabelCountMismatch() {
        writeDataset(compressed: false, trainLabels: idxLabelsFile([1, 2]))
        assertLoadFails(["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "3 images but 2 labels"])
    }

    func testLabelOutOfRange() {
        writeDataset(compressed: false, trainLabels: idxLabelsFile([1, 10, 2]))
        assertLoadFails(["train-labels-idx1-ubyte", "label 10 at index 1"])
    }

    func testTruncatedGzip() {
        writeDataset(compressed: true)
        let path = "\(directory)/train-images-idx3-ubyte.gz"
        let whole = [UInt8](FileManager.default.contents(atPath: path)!)
        writeBytes(Array(whole.prefix(whole.count - 12)), to: path)
        assertLoadFails([path, "truncated gzip"])
    }

    func testCorruptGzip() {
        writeDataset(compressed: true)
        let path = "\(directory)/train-labels-idx1-ubyte.gz"
        var bytes = [UInt8](FileManager.default.contents(atPath: path)!)
        for i in 10..<min(bytes.count, 20) { bytes[i] ^= 0xA5 }
        writeBytes(bytes, to: path)
        assertLoadFails([path, "corrupt gzip"])
    }

    func testMissingFileNamesItAndTheHint() {
        writeDataset(compressed: false)
        try? FileManager.default.removeItem(atPath: "\(directory)/t10k-labels-idx1-ubyte")
        assertLoadFails(["t10k-labels-idx1-ubyte", "generate it"])
    }

    func testMissingDirectory() {
        directory += "-absent"
        assertLoadFails(["-absent", "generate it"])
    }

    func testEmptyFile() {
        writeDataset(compressed: false, trainLabels: [])
        assertLoadFails(["train-labels-idx1-ubyte", "too short"])
    }
}

final class GzipTests: XCTestCase {
    func testRoundTripAndMultipleMembers() throws {
        let a: [UInt8] = Array(repeating: 7, count: 1000), b: [UInt8] = Array(0..<200)
        XCTAssertEqual(try gunzip(gzipCompress(a), path: "x"), a)
        XCTAssertEqual(try gunzip(gzipCompress(a) + gzipCompress(b), path: "x"), a + b)
    }

    func testOutputCapIsEnforced() {
        let zeros = [UInt8](repeating: 0, count: 1 << 20)
        XCTAssertThrowsError(try gunzip(gzipCompress(zeros), path: "bomb.gz", limit: 1000)) { error in
            XCTAssertTrue("\(error)".contains("bomb.gz"))
            XCTAssertTrue("\(error)".contains("more than 1000 bytes"))
        }
    }

    func testTrailingGarbageIsAnError() {
        XCTAssertThrowsError(try gunzip(gzipCompress([1, 2, 3]) + [0x42, 0x43], path: "g.gz"))
    }

    /// A gzip labels file whose stream inflates far beyond what its header declares (10 labels, then
    /// 200 MB of zeros, ~200 KB compressed) stops at the declared size, with memory bounded well below
    /// what deflate's 1032:1 limit would have allowed.
    func testGzipBombStopsAtTheDeclaredSize() {
        let bomb = gzipCompress(idxLabelsFile([UInt8](repeating: 1, count: 10)) + [UInt8](repeating: 0, count: 200 << 20))
        let directory = makeTemporaryDirectory("gzip-bomb")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = "\(directory)/train-labels-idx1-ubyte.gz"
        writeBytes(bomb, to: path)
        var message = ""
        withBoundedMemoryAndTime(headroomBytes: 64 << 20, timeoutSeconds: 30) {
            do { _ = try IDX.read(path); message = "read" } catch { message = "\(error)" }
        }
        XCTAssertTrue(message.contains(path) && message.contains("more than 18 bytes, the size its header declares"), message)
    }

    /// A FIFO where a data file should be is named at once instead of blocking in open() for a writer.
    func testAFIFOIsRefusedWithoutBlocking() throws {
        let directory = makeTemporaryDirectory("fifo")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = "\(directory)/train-images-idx3-ubyte"
        XCTAssertEqual(mkfifo(path, 0o644), 0)
        let start = Date()
        XCTAssertThrowsError(try readFileBytes(path)) { error in
            XCTAssertTrue("\(error)".contains(path) && "\(error)".contains("FIFO"), "\(error)")
        }
        XCTAssertThrowsError(try fileChecksum(path))
        XCTAssertLessThan(Date().timeIntervalSince(start), 1)
    }
}
