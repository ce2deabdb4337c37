import DurableFiles
import Foundation
import XCTest
import _TestSupport

/// The one whole-file writer: replaces atomically, refuses what is not a regular file, leaves nothing behind.
final class AtomicFileTests: XCTestCase {
    private var root = ""
    override func setUp() { root = makeTemporaryDirectory("atomic") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    func testReplacesWholeAndLeavesNoTemporary() throws {
        let path = root + "/out.txt"
        try writeFileAtomically("first\n", to: path)
        let large = [UInt8](repeating: 7, count: 3 << 20)  // beyond the 1 MiB buffer: flushed in pieces
        try writeFileAtomically(large, to: path)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), Data(large))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root), ["out.txt"])
    }

    func testADeviceOrFIFOIsNeverReplaced() throws {
        let fifo = root + "/pipe"
        XCTAssertEqual(mkfifo(fifo, 0o644), 0)
        XCTAssertThrowsError(try writeFileAtomically("x", to: fifo)) { error in
            XCTAssertTrue("\(error)".contains("not a regular file"), "\(error)")
        }
        var status = stat()
        XCTAssertEqual(stat(fifo, &status), 0)
        XCTAssertEqual(status.st_mode & S_IFMT, S_IFIFO, "still a FIFO")
        XCTAssertThrowsError(try writeFileAtomically("x", to: root)) { XCTAssertTrue("\($0)".contains("not a regular file")) }
    }

    func testAnUncommittedFileLeavesNothingAndErrorsNameThePath() throws {
        do {
            let file = try AtomicFile(path: root + "/half.bin")
            try file.append([1, 2, 3])
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root), [], "dropped without commit: no file")
        XCTAssertThrowsError(try writeFileAtomically("x", to: root + "/no/such/folder/f")) { error in
            XCTAssertTrue("\(error)".hasPrefix("cannot write \(self.root)/no/such/folder/f: "), "\(error)")
        }
    }

    func testTemporaryNamesAreRecognized() {
        XCTAssertEqual(baseOfTemporaryName(URL(fileURLWithPath: temporaryName(for: "/a/best")).lastPathComponent), "best")
        XCTAssertNil(baseOfTemporaryName("paper.tex.tmp-"))
        XCTAssertNil(baseOfTemporaryName(".tmp-12"))
        XCTAssertNil(baseOfTemporaryName("notes.tmp-1a"))
    }
}
