import Crypto
import XCTest
import Datasets
@testable import Downloads
import _TestSupport

/// `fetchCIFAR10` against a small tarball of the official layout served from 127.0.0.1.
final class CIFAR10DownloadTests: XCTestCase {
    private var root = ""
    override func setUp() { root = makeTemporaryDirectory("download") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    /// A .tar.gz with the official folder layout and 4 records per batch, plus hostile extras.
    private func smallTarball(extra: [(name: String, bytes: [UInt8])] = []) -> [UInt8] {
        var entries: [(name: String, bytes: [UInt8])] = [("cifar-10-batches-bin/", [])]
        for batch in 1...5 {
            entries.append(("cifar-10-batches-bin/data_batch_\(batch).bin", syntheticCIFARBatch(count: 4, seed: UInt64(batch)).bytes))
        }
        entries.append(("cifar-10-batches-bin/test_batch.bin", syntheticCIFARBatch(count: 3, seed: 9).bytes))
        entries.append(("cifar-10-batches-bin/batches.meta.txt", Array("airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n".utf8)))
        return gzipCompress(tarArchive(entries + extra))
    }

    private func md5(_ bytes: [UInt8]) -> String {
        Insecure.MD5.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
    }

    private func leftovers() -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
    }

    func testDownloadsVerifiesAndExtractsOnlyExpectedFiles() throws {
        let tarball = smallTarball(extra: [("../escape.bin", [1, 2, 3]), ("/etc/evil", [4]), ("cifar-10-batches-bin/other.bin", [5])])
        let server = try LocalHTTPServer(routes: ["/cifar.tgz": tarball])
        defer { server.stop() }
        var progressCalls = 0
        let result = try fetchCIFAR10(into: root, source: DownloadSource(url: server.url("/cifar.tgz"), md5: md5(tarball))) { _, _ in progressCalls += 1 }
        XCTAssertFalse(result.alreadyPresent)
        XCTAssertGreaterThan(progressCalls, 0)
        XCTAssertEqual(leftovers(), ["cifar-10-batches-bin"], "staging folder must be gone")
        let files = try FileManager.default.contentsOfDirectory(atPath: result.folder).sorted()
        XCTAssertEqual(files, ["batches.meta.txt", "data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                               "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/../escape.bin"))
        let splits = try CIFAR10.load(directory: root)
        XCTAssertEqual(splits.train.count, 20)
        XCTAssertEqual(splits.test.labels, syntheticCIFARBatch(count: 3, seed: 9).labels)

        // A second call finds it in place and downloads nothing.
        let again = try fetchCIFAR10(into: root, source: DownloadSource(url: server.url("/missing"), md5: md5(tarball))) { _, _ in }
        XCTAssertTrue(again.alreadyPresent)
    }

    func testWrongChecksumLeavesNothingBehind() throws {
        let tarball = smallTarball()
        let server = try LocalHTTPServer(routes: ["/cifar.tgz": tarball])
        defer { server.stop() }
        XCTAssertThrowsError(try fetchCIFAR10(into: root, source: DownloadSource(url: server.url("/cifar.tgz"), md5: String(repeating: "0", count: 32))) { _, _ in }) { error in
            XCTAssertTrue("\(error)".contains("MD5 \(self.md5(tarball))"), "\(error)")
            XCTAssertTrue("\(error)".contains("expected 00000000000000000000000000000000"), "\(error)")
        }
        XCTAssertEqual(leftovers(), [], "nothing may be left where the reader would look")
    }

    func testHTTPErrorIsReported() throws {
        let server = try LocalHTTPServer(routes: [:])
        defer { server.stop() }
        XCTAssertThrowsError(try fetchCIFAR10(into: root, source: DownloadSource(url: server.url("/nope"), md5: String(repeating: "a", count: 32))) { _, _ in }) { error in
            XCTAssertTrue("\(error)".contains("HTTP 404"), "\(error)")
        }
        XCTAssertEqual(leftovers(), [])
    }

    func testArchiveWithoutTheBatchesIsRejected() throws {
        let tarball = gzipCompress(tarArchive([("cifar-10-batches-bin/data_batch_1.bin", syntheticCIFARBatch(count: 2, seed: 1).bytes)]))
        let server = try LocalHTTPServer(routes: ["/t.tgz": tarball])
        defer { server.stop() }
        XCTAssertThrowsError(try fetchCIFAR10(into: root, source: DownloadSource(url: server.url("/t.tgz"), md5: md5(tarball))) { _, _ in }) { error in
            XCTAssertTrue("\(error)".contains("lacks cifar-10-batches-bin/data_batch_2.bin"), "\(error)")
        }
        XCTAssertEqual(leftovers(), [])
    }

    func testTruncatedArchiveIsAnError() throws {
        let tarball = smallTarball()
        let path = root + "/t.tgz"
        writeBytes(Array(tarball.prefix(tarball.count / 2)), to: path)
        let out = root + "/out"
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        XCTAssertThrowsError(try extractTarGz(path, into: out, wanted: ["cifar-10-batches-bin/test_batch.bin"], maximumFileBytes: 1 << 20)) { error in
            XCTAssertTrue("\(error)".contains(path), "\(error)")
        }
    }
}
