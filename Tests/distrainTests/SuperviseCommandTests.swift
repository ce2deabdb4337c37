import XCTest
import _TestSupport

/// `distrain supervise`: a job killed mid-run is resumed to the same weights as an uninterrupted run; a
/// job that fails at start-up is not retried forever; hostfiles are rewritten for the hosts that answer.
final class SuperviseCommandTests: XCTestCase {
    private var root = ""
    private let distrain = builtProductsDirectory + "/distrain"
    override func setUp() {
        root = makeTemporaryDirectory("supervise")
        writeSyntheticIDXDataset(directory: root, trainCount: 200, testCount: 40)
    }
    override func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    private func latestWeights(_ directory: String) throws -> [UInt8] {
        let latest = try String(contentsOfFile: directory + "/latest", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        return try checkpointTensorBytes("\(directory)/\(latest)")
    }

    func testAJobKilledMidRunIsResumedToTheWeightsOfAnUninterruptedRun() throws {
        let training = ["fashion-mnist", "--data-dir", root, "--threads", "1", "--no-progress", "--epochs", "4"]
        let plain = try runProcess(distrain, training + ["--checkpoint-dir", root + "/plain"], timeout: 120)
        XCTAssertEqual(plain.exitCode, 0, plain.standardError)
        // The first attempt is SIGKILLed at step 10 of 16 (epoch 3; checkpoints after epochs 1 and 2), later ones are not.
        let once = "if [ ! -e \(root)/killed ]; then touch \(root)/killed; export DISTRAIN_FAULT=0:10:kill; fi; exec \"$@\""
        let supervised = try runProcess(distrain, ["supervise", "--max-restarts", "2", "--", "sh", "-c", once, "sh", distrain]
                                        + training + ["--checkpoint-dir", root + "/supervised"], timeout: 180)
        XCTAssertEqual(supervised.exitCode, 0, supervised.standardError)
        for line in ["attempt 1 failed (exit 137", "latest checkpoint: step-00000008 (written in this attempt)",
                     "restart 1 of 2:", "--resume auto", "the job finished after 1 restart"] {
            XCTAssertTrue(supervised.standardError.contains(line), "missing '\(line)': \(supervised.standardError)")
        }
        XCTAssertEqual(try latestWeights(root + "/supervised"), try latestWeights(root + "/plain"), "exact resume: the same bytes")
    }

    func testAJobThatFailsAtStartUpIsNotRetriedForever() throws {
        let outcome = try runProcess(distrain, ["supervise", "--max-restarts", "5", "--", distrain, "fashion-mnist", "--data-dir", root + "/missing",
                                                "--checkpoint-dir", root + "/ck"], timeout: 60)
        XCTAssertNotEqual(outcome.exitCode, 0)
        XCTAssertTrue(outcome.standardError.contains("giving up: 2 attempts in a row failed without writing a checkpoint"), outcome.standardError)
        XCTAssertFalse(outcome.standardError.contains("attempt 3"), "two failures without progress end it, not five restarts")
        let usage = try runProcess(distrain, ["supervise", "--max-restarts", "5", "--", distrain, "fashion-mnist", "--data-dir", root,
                                              "--lr", "-1", "--checkpoint-dir", root + "/ck"], timeout: 60)
        XCTAssertEqual(usage.exitCode, 64, usage.standardError)
        XCTAssertTrue(usage.standardError.contains("not restarting: exit 64 is a usage error"), usage.standardError)
        XCTAssertFalse(usage.standardError.contains("restart 1"), "a usage error is never restarted")
        let refusals: [([String], String)] = [
            (["supervise", "--max-restarts=-1", "--", distrain, "--checkpoint-dir", "x"], "--max-restarts must be 0 or more, got -1"),
            (["supervise", "--", distrain, "fashion-mnist"], "the job names no --checkpoint-dir"),
            (["supervise", "--hostfile", root + "/hosts", "--", distrain, "--checkpoint-dir", "x"], "the job must be an mpirun with --hostfile and -n"),
            (["supervise"], "give the job to supervise after --"),
        ]
        for (arguments, message) in refusals {
            let run = try runProcess(distrain, arguments, timeout: 30)
            XCTAssertEqual(run.exitCode, 64, arguments.joined(separator: " "))
            XCTAssertTrue(run.standardError.contains(message), "\(arguments.joined(separator: " ")): \(run.standardError)")
        }
    }

    func testAJobDoesNotOutliveASupervisorKilledBySIGKILL() throws {
        let pidFile = root + "/job.pid"
        let job = ["sh", "-c", "echo $$ > \(pidFile); exec sleep 120", "sh", "--checkpoint-dir", root + "/ck"]
        let supervisor = try BackgroundProcess(distrain, ["supervise", "--"] + job)
        var jobPID: Int32 = 0
        for _ in 0..<200 where jobPID == 0 {
            jobPID = Int32((try? String(contentsOfFile: pidFile, encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 0
            Thread.sleep(forTimeInterval: 0.05)
        }
        XCTAssertGreaterThan(jobPID, 0, supervisor.standardError)
        kill(supervisor.process.processIdentifier, SIGKILL)
        XCTAssertTrue(supervisor.waitForExit(seconds: 10))
        var alive = true
        for _ in 0..<100 where alive {
            alive = kill(jobPID, 0) == 0 && !isZombie(jobPID)
            Thread.sleep(forTimeInterval: 0.05)
        }
        XCTAssertFalse(alive, "the job got SIGTERM when its supervisor died")
        if alive { kill(jobPID, SIGKILL) }
    }

    private func isZombie(_ pid: Int32) -> Bool {
        ((try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? "").contains(") Z ")
    }

    /// The job (a stand-in for mpirun that records its hostfile and -n) runs on the hosts the probe finds up.
    func testTheHostfileAndRankCountAreRewrittenForTheHostsThatAnswer() throws {
        try "up1 slots=2\n# a comment\ndown slots=4\nup2 slots=3\n".write(toFile: root + "/hosts", atomically: true, encoding: .utf8)
        let record = "cat \"$2\" > \(root)/seen; echo \"n=$4\" >> \(root)/seen"
        let outcome = try runProcess(distrain, ["supervise", "--hostfile", root + "/hosts", "--probe", "test {host} != down", "--",
                                                "sh", "-c", record, "sh", "--hostfile", root + "/hosts", "-n", "9", "--checkpoint-dir", root + "/ck"], timeout: 30)
        XCTAssertEqual(outcome.exitCode, 0, outcome.standardError)
        XCTAssertEqual(try String(contentsOfFile: root + "/seen", encoding: .utf8), "up1 slots=2\nup2 slots=3\nn=5\n")
        XCTAssertTrue(outcome.standardError.contains("hosts answering: up1 (2), up2 (3); not answering: down — 5 ranks"), outcome.standardError)
        let none = try runProcess(distrain, ["supervise", "--hostfile", root + "/hosts", "--probe", "false", "--",
                                             "mpirun", "--hostfile", root + "/hosts", "-n", "9", "--checkpoint-dir", root + "/ck"], timeout: 30)
        XCTAssertEqual(none.exitCode, 69)
        XCTAssertTrue(none.standardError.contains("giving up: no host of"), none.standardError)
    }
}
