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
