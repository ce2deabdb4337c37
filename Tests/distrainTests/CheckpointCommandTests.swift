import XCTest
import _TestSupport

/// Stop and resume a 4-rank job from the command line, then evaluate the checkpoint.
final class CheckpointCommandTests: XCTestCase {
    func testStopResumeAndEvaluateAFourRankJob() throws {
        guard let mpirun = findOnPath("mpirun") else { throw XCTSkip("mpirun is not installed") }
        let root = makeTemporaryDirectory("ckpt-cli")
        defer { try? FileManager.default.removeItem(atPath: root) }
        writeSyntheticIDXDataset(directory: root, trainCount: 400, testCount: 100)
        let distrain = builtProductsDirectory + "/distrain"
        let common = ["fashion-mnist", "--data-dir", root, "--batch-size", "40", "--threads", "1", "--no-progress"]
        func mpi(_ arguments: [String]) throws -> ProcessOutcome {
            let outcome = try runProcess(mpirun, localMPIRunArguments(ranks: 4) + [distrain] + common + arguments, timeout: 180)
            XCTAssertEqual(outcome.exitCode, 0, outcome.standardError)
            return outcome
        }
        try mpi(["--epochs", "3", "--metrics", root + "/straight.jsonl"]).discard()
        // The "stopped" job: one epoch with checkpoints; then resume to three.
        try mpi(["--epochs", "1", "--checkpoint-dir", root + "/ckpt"]).discard()
        let resumed = try mpi(["--epochs", "3", "--checkpoint-dir", root + "/ckpt", "--resume", "auto", "--metrics", root + "/resumed.jsonl"])
        XCTAssertTrue(resumed.standardOutput.contains("resuming from \(root)/ckpt/step-00000010"), resumed.standardOutput)
        let straight = try readMetrics(root + "/straight.jsonl").filter { $0["event"] as? String == "epoch" }
        let continued = try readMetrics(root + "/resumed.jsonl").filter { $0["event"] as? String == "epoch" }
        XCTAssertEqual(continued.map { $0["epoch"] as? Int }, [2, 3])
        for (a, b) in zip(continued, straight.suffix(2)) {
            for key in ["train_loss", "test_loss", "test_accuracy"] {
                XCTAssertEqual(a[key] as? Double, b[key] as? Double, "\(key) after resume")
            }
        }
        // Evaluate the best checkpoint, locally and on 2 ranks: the same numbers.
        let local = try runProcess(distrain, ["evaluate", "--checkpoint", root + "/ckpt", "fashion-mnist", "--data-dir", root, "--json"], timeout: 60)
        XCTAssertEqual(local.exitCode, 0, local.standardError)
        let object = try JSONSerialization.jsonObject(with: Data(local.standardOutput.utf8)) as! [String: Any]
        XCTAssertEqual(object["samples"] as? Int, 100)
        XCTAssertNotNil(object["f1_macro"] as? Double)
        XCTAssertEqual((object["per_class"] as? [Any])?.count, 10)
        let ranks = try runProcess(mpirun, localMPIRunArguments(ranks: 2) + [distrain, "evaluate", "--checkpoint", root + "/ckpt",
                                                                         "fashion-mnist", "--data-dir", root, "--json"], timeout: 60)
        let other = try JSONSerialization.jsonObject(with: Data(ranks.standardOutput.utf8)) as! [String: Any]
        XCTAssertEqual(other["accuracy"] as? Double, object["accuracy"] as? Double)
        XCTAssertEqual(other["confusion_matrix"] as? [[Int]], object["confusion_matrix"] as? [[Int]])
        // The human report.
        let text = try runProcess(distrain, ["evaluate", "--checkpoint", root + "/ckpt", "fashion-mnist", "--data-dir", root], timeout: 60)
        XCTAssertTrue(text.standardOutput.contains("confusion matrix"), text.standardOutput)
        // A resume with another model is refused on every rank with one message.
        let refused = try runProcess(mpirun, localMPIRunArguments(ranks: 2) + [distrain] + common + ["--model", "lenet", "--checkpoint-dir", root + "/ckpt", "--resume", "auto"], timeout: 60)
        XCTAssertNotEqual(refused.exitCode, 0)
        XCTAssertTrue(refused.standardError.contains("cannot resume: the checkpoint was trained with --model mlp"), refused.standardError)
        // So is one with augmentation the checkpoint was not trained with (the padding is part of it).
        let augmented = try runProcess(distrain, common + ["--augment-padding", "0", "--checkpoint-dir", root + "/ckpt", "--resume", "auto"], timeout: 60)
        XCTAssertNotEqual(augmented.exitCode, 0)
        XCTAssertTrue(augmented.standardError.contains("trained with --augment false but this run asks for pad 0 + flip"), augmented.standardError)
    }
}

extension ProcessOutcome {
    func discard() {}
}
