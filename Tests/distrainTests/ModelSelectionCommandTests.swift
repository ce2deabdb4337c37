import XCTest
import _TestSupport

/// sweep, k-fold, compare and lr-find from the command line, on a small generated Fashion-MNIST.
final class ModelSelectionCommandTests: XCTestCase {
    private var root = ""
    private let distrain = builtProductsDirectory + "/distrain"
    override func setUp() {
        root = makeTemporaryDirectory("selection-cli")
        writeSyntheticIDXDataset(directory: root, trainCount: 300, testCount: 60)
    }
    override func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    private func run(_ arguments: [String]) throws -> ProcessOutcome { try runProcess(distrain, arguments, timeout: 300) }
    private var data: [String] { ["--data-dir", root, "--threads", "1", "--no-progress"] }

    func testASweepStoppedBySIGTERMSaysToResumeWithItsOwnFlag() throws {
        let command = ["sweep", "--out", root + "/stopped", "--", "fashion-mnist"] + data
            + ["--epochs", "2", "--lr", "1e-3,3e-3", "--batch-size", "64", "--checkpoint-every", "2"]
        // Step 2 of the first trial sleeps 2 s: the signal arrives while it runs.
        let sweep = try BackgroundProcess(distrain, command, extraEnvironment: ["DISTRAIN_FAULT": "0:2:slow"])
        XCTAssertTrue(sweep.waitForOutput("trial 1/2", seconds: 60), sweep.standardError)
        Thread.sleep(forTimeInterval: 0.5)
        kill(sweep.process.processIdentifier, SIGTERM)
        XCTAssertTrue(sweep.waitForExit(seconds: 60))
        XCTAssertEqual(sweep.process.terminationStatus, 128 + SIGTERM, sweep.standardError)
        XCTAssertTrue(sweep.standardError.contains("resume with the same sweep command plus --resume"), sweep.standardError)
        XCTAssertFalse(sweep.standardError.contains("--resume auto"), sweep.standardError)
        let resumed = try run(Array(command[0..<3]) + ["--resume"] + Array(command[3...]))
        XCTAssertEqual(resumed.exitCode, 0, resumed.standardError)
        let steps = try FileManager.default.contentsOfDirectory(atPath: root + "/stopped/trial-002").filter { $0.hasPrefix("step-") }
        XCTAssertFalse(steps.isEmpty, "--checkpoint-every works inside a sweep: \(steps)")
    }

    func testASweepRanksOnValidationAndResumes() throws {
        let command = ["sweep", "--out", root + "/sweep", "--", "fashion-mnist"] + data + ["--epochs", "2", "--lr", "1e-3,3e-3", "--batch-size", "32,64"]
        let first = try run(command)
        XCTAssertEqual(first.exitCode, 0, first.standardError)
        let rows = try String(contentsOfFile: root + "/sweep/summary.csv", encoding: .utf8).split(separator: "\n").dropFirst()
        XCTAssertEqual(rows.count, 4)
        let losses = rows.map { Double($0.split(separator: ",")[2])! }
        XCTAssertEqual(losses, losses.sorted(), "ranked by best val_loss")
        XCTAssertTrue(first.standardOutput.contains("best: distrain fashion-mnist"), first.standardOutput)
        let table = first.standardOutput.split(separator: "\n").map(String.init)
        let heading = try XCTUnwrap(table.first { $0.hasPrefix("rank  trial") })
        let top = try XCTUnwrap(table.first { $0.hasPrefix("1 ") })
        for column in ["best val_loss", "test acc", "values"] {  // each cell starts under its heading
            let offset = heading.distance(from: heading.startIndex, to: heading.range(of: column)!.lowerBound)
            XCTAssertNotEqual(top[top.index(top.startIndex, offsetBy: offset)], " ", "\(column) misaligned:\n\(heading)\n\(top)")
            XCTAssertEqual(top[top.index(top.startIndex, offsetBy: offset - 1)], " ", "\(column) misaligned:\n\(heading)\n\(top)")
        }
        let again = try run(command)
        XCTAssertEqual(again.exitCode, 1)
        XCTAssertTrue(again.standardError.contains("already holds sweep results; add --resume"), again.standardError)
        let resumed = try run(Array(command[0..<3]) + ["--resume"] + Array(command[3...]))
        XCTAssertEqual(resumed.exitCode, 0, resumed.standardError)
        XCTAssertEqual(resumed.standardOutput.components(separatedBy: "finished earlier").count - 1, 4)
        let bad = try run(["sweep", "--out", root + "/bad", "--", "fashion-mnist", "--lr", "1e-3,2e-3", "--learning-rate", "3"])
        XCTAssertEqual(bad.exitCode, 64)
        XCTAssertTrue(bad.standardError.contains("--learning-rate is not a training flag"), bad.standardError)
    }

    func testKFoldReportsEveryFoldAndTheMeanAndResumes() throws {
        let command = ["fashion-mnist"] + data + ["--epochs", "1", "--kfold", "3", "--checkpoint-dir", root + "/cv"]
        let first = try run(command)
        XCTAssertEqual(first.exitCode, 0, first.standardError)
        let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: root + "/cv/kfold.json"))) as! [String: Any]
        let accuracies = (summary["folds"] as! [[String: Any]]).map { $0["validationAccuracy"] as! Double }
        XCTAssertEqual(accuracies.count, 3)
        XCTAssertEqual(summary["meanValidationAccuracy"] as! Double, accuracies.reduce(0, +) / 3, accuracy: 1e-12)
        XCTAssertTrue(first.standardOutput.contains("mean "), first.standardOutput)
        let resumed = try run(command + ["--resume", "auto"])
        XCTAssertEqual(resumed.exitCode, 0, resumed.standardError)
        XCTAssertEqual(resumed.standardOutput.components(separatedBy: "finished earlier").count - 1, 3)
    }

    func testCompareTwoCheckpointsAndRefuseDifferentClassSets() throws {
        for model in ["mlp", "lenet"] {
            XCTAssertEqual(try run(["fashion-mnist"] + data + ["--epochs", "1", "--model", model, "--checkpoint-dir", "\(root)/\(model)"]).exitCode, 0)
        }
        let outcome = try run(["compare", root + "/mlp", root + "/lenet", "fashion-mnist", "--data-dir", root, "--json"])
        XCTAssertEqual(outcome.exitCode, 0, outcome.standardError)
        let object = try JSONSerialization.jsonObject(with: Data(outcome.standardOutput.utf8)) as! [String: Any]
        let a = object["accuracy_a"] as! Double, b = object["accuracy_b"] as! Double
        let n01 = object["n01"] as! Int, n10 = object["n10"] as! Int
        XCTAssertEqual(a - b, Double(n01 - n10) / 60, accuracy: 1e-12, "the difference is (n01 − n10) / n")
        XCTAssertEqual(object["difference"] as! Double, a - b, accuracy: 1e-12)
        let interval = object["ci95"] as! [Double]
        XCTAssertTrue(interval[0] <= a - b && a - b <= interval[1], "\(interval)")
        XCTAssertTrue((0...1).contains(object["mcnemar_p"] as! Double))

        // A checkpoint of CIFAR-10-shaped data with other classes cannot be compared with these.
        let cifar = root + "/cifar"
        try FileManager.default.createDirectory(atPath: cifar, withIntermediateDirectories: true)
        writeSyntheticCIFAR10(folder: cifar, perBatch: 20, testCount: 20)
        XCTAssertEqual(try run(["cifar10", "--data-dir", cifar, "--threads", "1", "--no-progress", "--epochs", "1", "--checkpoint-dir", root + "/c"]).exitCode, 0)
        let refused = try run(["compare", root + "/mlp", root + "/c", "fashion-mnist", "--data-dir", root])
        XCTAssertEqual(refused.exitCode, 1)
        XCTAssertTrue(refused.standardError.contains("cannot compare:") && refused.standardError.contains("compare models of the same dataset and classes"), refused.standardError)
    }

    func testLRFindSuggestsARateAndWritesNothing() throws {
        let outcome = try run(["lr-find", "fashion-mnist"] + data + ["--steps", "60", "--batch-size", "32"])
        XCTAssertEqual(outcome.exitCode, 0, outcome.standardError)
        XCTAssertTrue(outcome.standardOutput.contains("suggested --lr ") || outcome.standardOutput.contains("no suggestion"), outcome.standardOutput)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root).filter { !$0.hasSuffix(".gz") }, [])
    }

    func testSelectionFlagsThatMakeNoSenseAreUsageErrors() throws {
        for (flags, expected) in [(["--val-split", "1"], "--val-split must be a fraction in (0, 1)"),
                                  (["--early-stop", "3"], "--early-stop needs --val-split F or --kfold K"),
                                  (["--schedule", "plateau"], "--schedule plateau needs --val-split F or --kfold K"),
                                  (["--kfold", "3", "--val-split", "0.1", "--checkpoint-dir", root + "/x"], "--kfold and --val-split both choose"),
                                  (["--val-split", "0.001"], "with no validation samples")] {
            let outcome = try run(["fashion-mnist"] + data + ["--epochs", "1"] + flags)
            XCTAssertNotEqual(outcome.exitCode, 0, "\(flags)")
            XCTAssertTrue(outcome.standardError.contains(expected), "\(flags): \(outcome.standardError)")
        }
    }
}
