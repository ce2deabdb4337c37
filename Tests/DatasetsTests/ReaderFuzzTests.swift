import XCTest
@testable import Datasets
import _TestSupport

/// Seeded mutations of IDX (raw and gzip) and CIFAR-10 files through the readers: every outcome is a
/// parse or a thrown one-line error — no crash, no hang, no allocation a header can inflate.
final class ReaderFuzzTests: XCTestCase {
    private final class Tally: @unchecked Sendable {
        var parsed = 0, rejected = 0, badMessages: [String] = []
        func record(_ body: () throws -> Void) {
            do { try body(); parsed += 1 } catch {
                rejected += 1
                let message = "\(error)"
                if message.isEmpty || message.contains("\n") { badMessages.append(message) }
            }
        }
    }

    func testMutatedIDXAndCIFARFilesOnlyEverThrow() {
        let images = idxImagesFile(count: 5, rows: 4, columns: 3, pixels: (0..<60).map { UInt8($0) })
        let labels = idxLabelsFile([0, 3, 9, 1, 2])
        let cifar = syntheticCIFARBatch(count: 3, seed: 1).bytes
        let tally = Tally()
        withBoundedMemoryAndTime(headroomBytes: 512 << 20, timeoutSeconds: 300) {
            // IDX headers: magic, then big-endian dimensions.
            for bytes in seededMutations(of: images, count: 300, seed: 1, fieldOffsets: [0, 4, 8, 12]) {
                tally.record { _ = try IDX.parseImages(bytes, path: "images") }
            }
            for bytes in seededMutations(of: labels, count: 200, seed: 2, fieldOffsets: [0, 4]) {
                tally.record { _ = try IDX.parseLabels(bytes, path: "labels", classCount: 10) }
            }
            // gzip: the header, the deflate stream and the CRC/length trailer.
            let compressed = gzipCompress(images)
            for bytes in seededMutations(of: compressed, count: 300, seed: 3, fieldOffsets: [0, 4, compressed.count - 8, compressed.count - 4]) {
                tally.record { _ = try IDX.parseImages(try gunzip(bytes, path: "images.gz"), path: "images.gz") }
            }
            // CIFAR-10 is read from the file itself (the pixels stay there), so each mutation is written out.
            let folder = makeTemporaryDirectory("cifar-fuzz")
            defer { try? FileManager.default.removeItem(atPath: folder) }
            for bytes in seededMutations(of: cifar, count: 300, seed: 4, fieldOffsets: [0, 3073, 6146]) {
                let path = folder + "/data_batch_1.bin"
                writeBytes(bytes, to: path)
                tally.record {
                    let batch = try CIFAR10.openBatch(path: path)
                    // Every record that opened must also read back whole.
                    for sample in 0..<batch.records.count {
                        var pixels = [UInt8](repeating: 0, count: CIFAR10.imageSize)
                        try pixels.withUnsafeMutableBufferPointer { try batch.records.read(sample: sample, into: $0.baseAddress!) }
                    }
                }
            }
        }
        XCTAssertEqual(tally.parsed + tally.rejected, 1100)
        XCTAssertGreaterThan(tally.rejected, 500, "most mutations must be caught")
        XCTAssertEqual(tally.badMessages, [], "errors must be one non-empty line")
    }

    /// CSV tables (quotes, CRLF, a BOM) and NumPy arrays, mutated and read as training reads them.
    func testMutatedCSVAndNumPyFilesOnlyEverThrow() throws {
        let folder = makeTemporaryDirectory("table-fuzz")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let rows = (0..<12).map { "\($0),\"\(Double($0) / 3)\",\($0 % 3)" }
        let csv = Array(("\u{FEFF}a,\"b, quoted\",y\r\n" + rows.joined(separator: "\r\n") + "\r\n").utf8)
        let npy = npyFile(dtype: "<f4", shape: [4, 3], data: (0..<12).flatMap { withUnsafeBytes(of: Float($0)) { Array($0) } })
        let tally = Tally()
        withBoundedMemoryAndTime(headroomBytes: 512 << 20, timeoutSeconds: 300) {
            var options = SourceOptions()
            options.label = "y"
            for bytes in seededMutations(of: csv, count: 300, seed: 5, fieldOffsets: []) {
                writeBytes(bytes, to: folder + "/t.csv")
                tally.record { _ = try loadCSVDataset(folder + "/t.csv", options: options) }
            }
            for bytes in seededMutations(of: npy, count: 300, seed: 6, fieldOffsets: [6, 8]) {
                tally.record { _ = try NumPyArray(npy: bytes, path: "x.npy") }
            }
        }
        XCTAssertEqual(tally.parsed + tally.rejected, 600)
        XCTAssertGreaterThan(tally.rejected, 150, "most mutations must be caught")
        XCTAssertEqual(tally.badMessages, [], "errors must be one non-empty line")
    }
}
