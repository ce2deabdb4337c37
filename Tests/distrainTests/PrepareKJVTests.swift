import XCTest
import _TestSupport

/// `launch/prepare-kjv.sh` (run by setup.sh): Debian's King James Bible as 66 text files, references stripped.
final class PrepareKJVTests: XCTestCase {
    private let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    func testTheBibleBecomesSixtySixBooksOfPlainText() throws {
        guard findOnPath("bible") != nil else { throw XCTSkip("bible-kjv is not installed (.ci/run and launch/setup.sh install it)") }
        let root = makeTemporaryDirectory("kjv")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let outcome = try runProcess("/bin/bash", [repository + "/launch/prepare-kjv.sh", root + "/kjv"], timeout: 120)
        XCTAssertEqual(outcome.exitCode, 0, outcome.standardError)
        let books = try FileManager.default.contentsOfDirectory(atPath: root + "/kjv").sorted()
        XCTAssertEqual(books.count, 66)
        XCTAssertEqual(books.first, "01-Ge.txt")
        let bytes = try books.reduce(0) { $0 + (try Data(contentsOf: URL(fileURLWithPath: "\(root)/kjv/\($1)"))).count }
        XCTAssertEqual(bytes, 4_137_850, "FACTS.md: the text without verse references")
        let genesis = try String(contentsOfFile: root + "/kjv/01-Ge.txt", encoding: .utf8)
        XCTAssertTrue(genesis.hasPrefix("In the beginning God created the heaven and the earth.\n"), String(genesis.prefix(80)))
        let again = try runProcess("/bin/bash", [repository + "/launch/prepare-kjv.sh", root + "/kjv"], timeout: 60)
        XCTAssertEqual(again.exitCode, 0)
        XCTAssertTrue(again.standardError.contains("exists and is not empty; leaving it"), again.standardError)
    }
}
