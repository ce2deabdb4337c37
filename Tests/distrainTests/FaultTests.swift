import XCTest
import _TestSupport

/// Injected faults (DISTRAIN_FAULT) in real 4-rank mpirun jobs: the job always ends, quickly, saying why.
final class FaultTests: XCTestCase {
    private var root = ""
    private var mpirun = ""
    private var distrain: String { builtProductsDirectory + "/distrain" }

    override func setUpWithError() throws {
        guard let path = findOnPath("mpirun") else { throw XCTSkip("mpirun is not installed") }
        mpirun = path
        root = makeTemporaryDirectory("faults")
        writeSyntheticIDXDataset(directory: root, trainCount: 400, testCount: 50)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    private func job(_ extra: [String], fault: String?, timeout: Double = 90) throws -> ProcessOutcome {
        let arguments = localMPIRunArguments(ranks: 4) + [distrain, "fashion-mnist", "--data-dir", root, "--batch-size", "40",
                                                          "--threads", "1", "--no-progress", "--epochs", "3"] + extra
        return try runProcess(mpirun, arguments, extraEnvironment: fault.map { ["DISTRAIN_FAULT": $0] } ?? [:], timeout: timeout)
    }

    /// Only complete checkpoints: no temporary folders, every step-* folder has its three files.
    private func assertOnlyCompleteCheckpoints(_ directory: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let entries = try FileManager.default.contentsOfDirectory(atPath: directory)
        XCTAssertFalse(entries.contains { $0.contains("tmp") }, "\(entries)", file: file, line: line)
        for entry in entries where entry.hasPrefix("step-") {
            for name in ["model.safetensors", "optimizer.safetensors", "state.json"] {
                XCTAssertTrue(FileManager.default.fileExists(atPath: "\(directory)/\(entry)/\(name)"), "\(entry)/\(name)", file: file, line: line)
            }
        }
        XCTAssertFalse(entries.filter { $0.hasPrefix("step-") }.isEmpty, file: file, line: line)
    }

    func testCrashAndKillEndTheJobFastAndResumeContinues() throws {
        for kind in ["crash", "kill"] {
            let checkpoints = "\(root)/ckpt-\(kind)"
            let outcome = try job(["--checkpoint-dir", checkpoints, "--checkpoint-every", "3"], fault: "1:15:\(kind)")
            XCTAssertFalse(outcome.timedOut, kind)
            XCTAssertLessThan(outcome.seconds, 30, kind)
            XCTAssertNotEqual(outcome.exitCode, 0, kind)
            try assertOnlyCompleteCheckpoints(checkpoints)
            let resumed = try job(["--checkpoint-dir", checkpoints, "--resume", "auto"], fault: nil)
            XCTAssertEqual(resumed.exitCode, 0, resumed.standardError)
            XCTAssertTrue(resumed.standardOutput.contains("resuming from \(checkpoints)/step-000000"), resumed.standardOutput)
        }
    }

    func testHangIsReportedWithTheStuckRanksPhaseWithinTheDeadline() throws {
        let outcome = try job(["--collective-timeout", "4"], fault: "2:5:hang", timeout: 60)
        XCTAssertFalse(outcome.timedOut, "the job hung: \(outcome.standardError)")
        XCTAssertLessThan(outcome.seconds, 4 + 12)
        XCTAssertNotEqual(outcome.exitCode, 0)
        XCTAssertTrue(outcome.standardError.contains("rank 2 stuck for"), outcome.standardError)
        XCTAssertTrue(outcome.standardError.contains("in forward at epoch 1, step 5"), outcome.standardError)
    }

    func testNaNStopsEveryRankAtTheSameStepAndSkipGoesOn() throws {
        let stopped = try job([], fault: "3:7:nan")
        XCTAssertEqual(stopped.exitCode, 1, stopped.standardError)
        XCTAssertTrue(stopped.standardError.contains("non-finite loss or gradients at epoch 1, step 7 from rank 3"), stopped.standardError)
        XCTAssertEqual(stopped.standardError.components(separatedBy: "non-finite loss").count - 1, 1, "printed once, by the coordinator")

        let metrics = "\(root)/skip.jsonl"
        let skipped = try job(["--on-nonfinite", "skip", "--metrics", metrics], fault: "3:7:nan")
        XCTAssertEqual(skipped.exitCode, 0, skipped.standardError)
        let epochs = try readMetrics(metrics).filter { $0["event"] as? String == "epoch" }
        XCTAssertEqual(epochs.map { $0["skipped_steps"] as? Int }, [1, 0, 0])
    }

    func testBadFaultSpecificationIsAUsageError() throws {
        let outcome = try runProcess(distrain, ["fashion-mnist", "--data-dir", root], extraEnvironment: ["DISTRAIN_FAULT": "1:x:crash"], timeout: 30)
        XCTAssertEqual(outcome.exitCode, 64)
        XCTAssertTrue(outcome.standardError.contains("DISTRAIN_FAULT"), outcome.standardError)
    }
}
