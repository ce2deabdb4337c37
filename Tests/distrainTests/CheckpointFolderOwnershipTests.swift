import XCTest
import _TestSupport

/// `--checkpoint-dir` in a folder of the user's own files (issue 34, class 1): distrain removes only what
/// its own interrupted writers leave, and refuses a folder whose `best` or `latest` it did not write.
final class CheckpointFolderOwnershipTests: XCTestCase {
    func testTheUsersFilesSurviveAndOnlyDistrainsLeftoversAreRemoved() throws {
        let distrain = builtProductsDirectory + "/distrain"
        let root = makeTemporaryDirectory("ownership")
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/data", withIntermediateDirectories: true)
        writeSyntheticIDXDataset(directory: root + "/data", trainCount: 20, testCount: 10)
        let folder = root + "/work"
        let manager = FileManager.default
        for directory in ["step-by-step-guide", "step-2", ".tmp-build", "step-00000009", ".tmp-step-00000003-4242",
                          "step-00000005"] {
            try manager.createDirectory(atPath: "\(folder)/\(directory)", withIntermediateDirectories: true)
        }
        writeBytes(Array("guide".utf8), to: folder + "/step-by-step-guide/README")
        writeBytes(Array("draft".utf8), to: folder + "/paper.tex.tmp-1")
        writeBytes(Array("{}".utf8), to: folder + "/step-00000009/state.json")  // a checkpoint a killed writer left
        writeBytes(Array("x".utf8), to: folder + "/.tmp-step-00000003-4242/model.safetensors")
        writeBytes(Array("mine".utf8), to: folder + "/step-00000005/notes.txt")  // named like ours, holds the user's file
        let train = try runProcess(distrain, ["fashion-mnist", "--data-dir", root + "/data", "--epochs", "1", "--threads", "1",
                                              "--no-progress", "--checkpoint-dir", folder], timeout: 120)
        XCTAssertEqual(train.exitCode, 0, train.standardError)
        for kept in ["step-by-step-guide/README", "step-2", ".tmp-build", "paper.tex.tmp-1", "step-00000005/notes.txt"] {
            XCTAssertTrue(manager.fileExists(atPath: "\(folder)/\(kept)"), "\(kept) was removed")
        }
        for removed in ["step-00000009", ".tmp-step-00000003-4242"] {
            XCTAssertFalse(manager.fileExists(atPath: "\(folder)/\(removed)"), "\(removed) is a leftover of distrain's")
        }

        let other = root + "/other"
        try manager.createDirectory(atPath: other, withIntermediateDirectories: true)
        writeBytes(Array("my best work".utf8), to: other + "/best")
        let refused = try runProcess(distrain, ["fashion-mnist", "--data-dir", root + "/data", "--epochs", "1", "--threads", "1",
                                                "--no-progress", "--checkpoint-dir", other], timeout: 120)
        XCTAssertEqual(refused.exitCode, 1, refused.standardOutput)
        XCTAssertTrue(refused.standardError.contains("holds a file named 'best' that distrain did not write"), refused.standardError)
        XCTAssertEqual(try String(contentsOfFile: other + "/best", encoding: .utf8), "my best work")
    }

    func testAFreshRunIntoAnotherRunsFolderIsRefusedUnlessOverwrite() throws {
        let distrain = builtProductsDirectory + "/distrain"
        let root = makeTemporaryDirectory("fresh-run")
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/data", withIntermediateDirectories: true)
        writeSyntheticIDXDataset(directory: root + "/data", trainCount: 20, testCount: 10)
        let flags = ["fashion-mnist", "--data-dir", root + "/data", "--epochs", "1", "--threads", "1", "--no-progress",
                     "--checkpoint-dir", root + "/ck"]
        XCTAssertEqual(try runProcess(distrain, flags, timeout: 120).exitCode, 0)
        let before = try checkpointTensorBytes(root + "/ck/step-00000001")
        let again = try runProcess(distrain, flags + ["--seed", "9"], timeout: 120)
        XCTAssertEqual(again.exitCode, 1, again.standardOutput)
        XCTAssertTrue(again.standardError.contains("holds another run's checkpoints (1, the last step-00000001); continue it "
            + "with --resume auto, start afresh with --overwrite"), again.standardError)
        XCTAssertEqual(try checkpointTensorBytes(root + "/ck/step-00000001"), before, "the finished run is untouched")
        let overwritten = try runProcess(distrain, flags + ["--seed", "9", "--overwrite"], timeout: 120)
        XCTAssertEqual(overwritten.exitCode, 0, overwritten.standardError)
        XCTAssertNotEqual(try checkpointTensorBytes(root + "/ck/step-00000001"), before)
    }
}
