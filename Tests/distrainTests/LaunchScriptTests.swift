import XCTest
import _TestSupport

/// The launch scripts refuse bad input with one clear line before starting anything.
final class LaunchScriptTests: XCTestCase {
    private let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    func testBadHostfileLineIsNamed() throws {
        let directory = makeTemporaryDirectory("hosts")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let hostfile = directory + "/hosts"
        writeBytes(Array("# cluster\nnode01 slots=4\nnode02 slots=four\n".utf8), to: hostfile)
        let outcome = try runProcess("/bin/bash", [repository + "/launch/cluster.sh", hostfile, "8", "fashion-mnist"], timeout: 30)
        XCTAssertEqual(outcome.exitCode, 65)
        XCTAssertTrue(outcome.standardError.contains("\(hostfile) line 3: 'node02 slots=four'"), outcome.standardError)

        let missing = try runProcess("/bin/bash", [repository + "/launch/cluster.sh", directory + "/none", "8", "fashion-mnist"], timeout: 30)
        XCTAssertEqual(missing.exitCode, 66)
        XCTAssertTrue(missing.standardError.contains("cannot read hostfile"), missing.standardError)
    }

    func testExampleHostfilesAreValid() throws {
        // The shipped examples pass the same check (run with a binary that only echoes).
        for name in ["localhost", "cluster.example"] {
            let outcome = try runProcess("/bin/bash", [repository + "/launch/cluster.sh", repository + "/hostfiles/" + name, "1", "--version"],
                                         extraEnvironment: ["DISTRAIN": "/bin/true"], timeout: 60)
            XCTAssertFalse(outcome.standardError.contains("is not 'HOST"), outcome.standardError)
        }
    }

    func testLocalScriptRejectsBadRankCounts() throws {
        let outcome = try runProcess("/bin/bash", [repository + "/launch/local.sh", "-n", "zero", "fashion-mnist"], timeout: 30)
        XCTAssertEqual(outcome.exitCode, 64)
        XCTAssertTrue(outcome.standardError.contains("-n needs a positive number"), outcome.standardError)
    }

    /// `--ranks` must fit the emulated hosts' slots; checked before anything is created (no root needed).
    func testEmulatedClusterRejectsBadRankCounts() throws {
        for ranks in ["7", "0", "two"] {
            let outcome = try runProcess("/bin/bash", [repository + "/launch/emulated-cluster.sh", "--hosts", "3", "--slots", "2",
                                                       "--ranks", ranks, "--", "doctor"], timeout: 30)
            XCTAssertEqual(outcome.exitCode, 64, ranks)
            XCTAssertEqual(outcome.standardError.split(separator: "\n").count, 1, outcome.standardError)
            XCTAssertTrue(outcome.standardError.contains("--ranks must be 1..6 (hosts × slots), got '\(ranks)'"), outcome.standardError)
        }
    }
}
