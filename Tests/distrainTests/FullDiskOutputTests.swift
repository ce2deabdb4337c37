import XCTest
import _TestSupport

/// Output that cannot be written ends in exit 1 with the reason (issue 34, "output that can lie"): before,
/// `summary` or `tokenizer encode` redirected to a full disk lost their output and exited 0.
final class FullDiskOutputTests: XCTestCase {
    func testCommandsWritingToAFullDeviceFailWithTheReason() throws {
        guard FileManager.default.fileExists(atPath: "/dev/full") else { throw XCTSkip("no /dev/full here") }
        let distrain = builtProductsDirectory + "/distrain"
        let root = makeTemporaryDirectory("full-disk")
        defer { try? FileManager.default.removeItem(atPath: root) }
        writeBytes(Array("In the beginning\n".utf8), to: root + "/text.txt")
        _ = try runProcess(distrain, ["tokenizer", "train", root + "/text.txt", "--vocab-size", "260", "--out", root + "/tok.json"],
                           timeout: 60)
        let commands = [
            "'\(distrain)' summary --model mlp",
            "'\(distrain)' tokenizer encode --tokenizer '\(root)/tok.json' '\(root)/text.txt'",
            "'\(distrain)' tokenizer decode --tokenizer '\(root)/tok.json' 73 110",
        ]
        for command in commands {
            let outcome = try runProcess("/bin/sh", ["-c", command + " > /dev/full"], timeout: 60)
            XCTAssertEqual(outcome.exitCode, 1, command)
            XCTAssertTrue(outcome.standardError.contains("cannot write the output"), "\(command): \(outcome.standardError)")
        }
    }
}

/// A checkpoint path with a newline and code in it stays inside a comment of the export (it used to run).
final class ExportInjectionTests: XCTestCase {
    func testAPathHoldingCodeNeverBecomesCodeInTheExport() throws {
        let distrain = builtProductsDirectory + "/distrain"
        let root = makeTemporaryDirectory("export-injection")
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/data", withIntermediateDirectories: true)
        writeSyntheticIDXDataset(directory: root + "/data", trainCount: 20, testCount: 10)
        let folder = root + "/run\nimport os; os.system('touch \(root)/pwned')\n#\""
        let train = try runProcess(distrain, ["fashion-mnist", "--data-dir", root + "/data", "--epochs", "1", "--threads", "1",
                                              "--no-progress", "--checkpoint-dir", folder], timeout: 120)
        XCTAssertEqual(train.exitCode, 0, train.standardError)
        let export = try runProcess(distrain, ["export", "--pytorch", folder], timeout: 60)
        XCTAssertEqual(export.exitCode, 0, export.standardError)
        let lines = export.standardOutput.split(separator: "\n", omittingEmptySubsequences: false)
        XCTAssertFalse(lines.contains { $0.hasPrefix("import os") }, export.standardOutput)
        XCTAssertTrue(export.standardOutput.contains("\\x0aimport os"), "the newline is escaped: \(export.standardOutput)")
        for line in lines where line.contains("os.system") { XCTAssertTrue(line.hasPrefix("#"), String(line)) }
    }
}
