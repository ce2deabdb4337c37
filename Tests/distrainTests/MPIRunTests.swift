import XCTest
import _TestSupport

/// `mpirun` jobs spawned from the test: the same results as local mode, and failures that end the job.
final class MPIRunTests: XCTestCase {
    var distrain: String { builtProductsDirectory + "/distrain" }
    private var directory = ""

    override func setUpWithError() throws {
        guard findOnPath("mpirun") != nil else {
            throw XCTSkip("mpirun is not installed (apt-get install openmpi-bin)")
        }
        directory = makeTemporaryDirectory("mpirun")
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }

    /// A real Fashion-MNIST subset when Debian's package is installed (as in CI), else a synthetic one.
    private var dataArguments: [String] {
        if let real = realFashionMNISTDirectory { return ["--data-dir", real, "--train-limit", "1500", "--test-limit", "500"] }
        writeSyntheticIDXDataset(directory: directory, trainCount: 1500, testCount: 500)
        return ["--data-dir", directory]
    }

    private func mpirun(_ ranks: Int, _ arguments: [String], timeout: Double = 180) throws -> ProcessOutcome {
        try runProcess(findOnPath("mpirun")!, localMPIRunArguments(ranks: ranks) + [distrain] + arguments, timeout: timeout)
    }

    func testTwoAndFourRanksGiveTheLocalRunsEpochMetrics() throws {
        let common = ["fashion-mnist", "--epochs", "2", "--batch-size", "60", "--threads", "1", "--no-progress"] + dataArguments
        let local = try runProcess(distrain, common + ["--metrics", directory + "/local.jsonl"], timeout: 180)
        XCTAssertEqual(local.exitCode, 0, local.standardError)
        let reference = try readMetrics(directory + "/local.jsonl").filter { $0["event"] as? String == "epoch" }
        XCTAssertEqual(reference.count, 2)
        for ranks in [2, 4] {
            let path = directory + "/ranks\(ranks).jsonl"
            let outcome = try mpirun(ranks, common + ["--metrics", path])
            XCTAssertEqual(outcome.exitCode, 0, "mpirun -n \(ranks): \(outcome.standardError)")
            let events = try readMetrics(path)
            XCTAssertEqual(events.first?["world_size"] as? Int, ranks)
            XCTAssertEqual(events.first?["per_rank_batch"] as? Int, 60 / ranks)
            // One host: the gradient sum goes through shared memory, not MPI_Allreduce.
            XCTAssertEqual(events.first?["gradient_sum"] as? String, "shared memory (\(ranks) ranks per host)")
            let epochs = events.filter { $0["event"] as? String == "epoch" }
            XCTAssertEqual(epochs.count, 2)
            for (mine, theirs) in zip(epochs, reference) {
                // Parameters agree to float rounding (summation order differs), so accuracies are
                // the same counts and losses agree to many digits.
                for key in ["train_accuracy", "test_accuracy"] {
                    XCTAssertEqual(mine[key] as! Double, theirs[key] as! Double, accuracy: 1e-9, "-n \(ranks) \(key)")
                }
                for key in ["train_loss", "test_loss"] {
                    let a = mine[key] as! Double, b = theirs[key] as! Double
                    XCTAssertEqual(a, b, accuracy: 1e-5 * abs(b), "-n \(ranks) \(key)")
                }
                XCTAssertNotNil(mine["communication_seconds"] as? Double)
            }
            // Only the coordinator prints: one header, not one per rank.
            XCTAssertEqual(outcome.standardOutput.components(separatedBy: "BLAS:").count - 1, 1, outcome.standardOutput)
        }
    }

    /// `--gradient-sum allreduce` takes MPI_Allreduce with the same results; asked by one rank only
    /// (MPMD), every rank takes it, so the job cannot split into two kinds of collective.
    func testAllreduceGradientSumGivesTheSameMetricsAndIsAgreedByAllRanks() throws {
        writeSyntheticIDXDataset(directory: directory, trainCount: 300, testCount: 60)
        let common = ["fashion-mnist", "--data-dir", directory, "--epochs", "2", "--batch-size", "60", "--threads", "1", "--no-progress"]
        let shared = try mpirun(2, common + ["--metrics", directory + "/shared.jsonl"])
        XCTAssertEqual(shared.exitCode, 0, shared.standardError)
        var arguments = localMPIRunArguments(ranks: 2)
        arguments.removeFirst(2)  // MPMD: "-n k program args" per rank group, separated by ":"
        arguments += ["-n", "1", distrain] + common + ["--metrics", directory + "/allreduce.jsonl"]
            + [":", "-n", "1", distrain] + common + ["--gradient-sum", "allreduce"]
        let mixed = try runProcess(findOnPath("mpirun")!, arguments, timeout: 120)
        XCTAssertFalse(mixed.timedOut, "the job hung")
        XCTAssertEqual(mixed.exitCode, 0, mixed.standardError)
        let sharedEvents = try readMetrics(directory + "/shared.jsonl"), allreduceEvents = try readMetrics(directory + "/allreduce.jsonl")
        XCTAssertEqual(sharedEvents.first?["gradient_sum"] as? String, "shared memory (2 ranks per host)")
        XCTAssertEqual(allreduceEvents.first?["gradient_sum"] as? String, "allreduce")
        let a = sharedEvents.filter { $0["event"] as? String == "epoch" }, b = allreduceEvents.filter { $0["event"] as? String == "epoch" }
        XCTAssertEqual(a.count, 2)
        XCTAssertEqual(b.count, 2)
        for (x, y) in zip(a, b) {
            XCTAssertEqual(x["test_accuracy"] as? Double, y["test_accuracy"] as? Double)
            XCTAssertEqual(x["train_loss"] as! Double, y["train_loss"] as! Double, accuracy: 1e-5 * abs(y["train_loss"] as! Double))
        }
    }

    func testOneRanksBadDataEndsTheWholeJobWithItsMessage() throws {
        writeSyntheticIDXDataset(directory: directory, trainCount: 200, testCount: 50)
        let bad = directory + "/bad"
        try FileManager.default.createDirectory(atPath: bad, withIntermediateDirectories: true)
        writeSyntheticIDXDataset(directory: bad, trainCount: 200, testCount: 50)
        let corrupt = bad + "/train-images-idx3-ubyte.gz"
        let bytes = [UInt8](FileManager.default.contents(atPath: corrupt)!)
        writeBytes(Array(bytes.prefix(bytes.count / 2)), to: corrupt)
        let good = ["fashion-mnist", "--epochs", "1", "--no-progress", "--data-dir", directory]
        let wrong = ["fashion-mnist", "--epochs", "1", "--no-progress", "--data-dir", bad]
        var arguments = localMPIRunArguments(ranks: 4)
        arguments.removeFirst(2)  // MPMD: "-n k program args" per rank group, separated by ":"
        arguments += ["-n", "2", distrain] + good + [":", "-n", "1", distrain] + wrong + [":", "-n", "1", distrain] + good
        let outcome = try runProcess(findOnPath("mpirun")!, arguments, timeout: 60)
        XCTAssertFalse(outcome.timedOut, "the job hung")
        XCTAssertLessThan(outcome.seconds, 30)
        XCTAssertNotEqual(outcome.exitCode, 0)
        XCTAssertTrue(outcome.standardError.contains("rank 2"), outcome.standardError)
        XCTAssertTrue(outcome.standardError.contains(corrupt), outcome.standardError)
        XCTAssertTrue(outcome.standardError.contains("truncated gzip"), outcome.standardError)
    }

    func testRanksStartedWithDifferentFlagsRefuseToTrain() throws {
        writeSyntheticIDXDataset(directory: directory, trainCount: 200, testCount: 50)
        var arguments = localMPIRunArguments(ranks: 2)
        arguments.removeFirst(2)
        let base = ["fashion-mnist", "--epochs", "1", "--no-progress", "--data-dir", directory]
        arguments += ["-n", "1", distrain] + base + [":", "-n", "1", distrain] + base + ["--lr", "0.5"]
        let outcome = try runProcess(findOnPath("mpirun")!, arguments, timeout: 60)
        XCTAssertFalse(outcome.timedOut)
        XCTAssertNotEqual(outcome.exitCode, 0)
        XCTAssertTrue(outcome.standardError.contains("ranks disagree on the configuration: --lr differs"), outcome.standardError)
        XCTAssertTrue(outcome.standardError.contains(": 0.001") && outcome.standardError.contains(": 0.5"), outcome.standardError)
    }

    /// --overlap and --wire change the collective calls' timing or format: a mix would hang or add
    /// garbage, so it is refused on every rank.
    func testRanksDisagreeingOnOverlapOrWireRefuseToTrain() throws {
        writeSyntheticIDXDataset(directory: directory, trainCount: 200, testCount: 50)
        let base = ["fashion-mnist", "--epochs", "1", "--no-progress", "--data-dir", directory]
        for (flag, message) in [(["--overlap"], "--overlap"), (["--wire", "fp16"], "ranks disagree on --wire (fp32 and fp16)")] {
            var arguments = localMPIRunArguments(ranks: 2)
            arguments.removeFirst(2)
            arguments += ["-n", "1", distrain] + base + [":", "-n", "1", distrain] + base + flag
            let outcome = try runProcess(findOnPath("mpirun")!, arguments, timeout: 60)
            XCTAssertFalse(outcome.timedOut)
            XCTAssertNotEqual(outcome.exitCode, 0)
            XCTAssertTrue(outcome.standardError.contains(message), outcome.standardError)
        }
    }
}

/// `mpirun -n 4 distrain cifar10` on generated files in the official format.
final class CIFAR10MPIRunTests: XCTestCase {
    func testFourRanksTrainCIFAR10EndToEndWithCoordinatorMetrics() throws {
        guard let mpirun = findOnPath("mpirun") else { throw XCTSkip("mpirun is not installed") }
        let root = makeTemporaryDirectory("cifar-mpirun")
        defer { try? FileManager.default.removeItem(atPath: root) }
        writeSyntheticCIFAR10(folder: root + "/cifar-10-batches-bin", perBatch: 40, testCount: 60)
        let metrics = root + "/m.jsonl"
        let outcome = try runProcess(mpirun, localMPIRunArguments(ranks: 4) + [
            builtProductsDirectory + "/distrain", "cifar10", "--data-dir", root, "--model", "lenet", "--epochs", "2",
            "--batch-size", "20", "--threads", "1", "--no-progress", "--metrics", metrics], timeout: 240)
        XCTAssertEqual(outcome.exitCode, 0, outcome.standardError)
        let events = try readMetrics(metrics)
        XCTAssertEqual(events.map { $0["event"] as? String }, ["start", "epoch", "epoch", "end"])
        XCTAssertEqual(events[0]["world_size"] as? Int, 4)
        XCTAssertEqual(events[0]["train_samples"] as? Int, 200)
        XCTAssertEqual(events[0]["augment"] as? Bool, true)
        XCTAssertEqual((events[3]["confusion_matrix"] as? [[Int]])?.flatMap { $0 }.reduce(0, +), 60)
        XCTAssertTrue(outcome.standardOutput.contains("airplane"), outcome.standardOutput)
    }

    func testMissingCIFARDataNamesFilesAndTheCommand() throws {
        let root = makeTemporaryDirectory("cifar-missing")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let outcome = try runProcess(builtProductsDirectory + "/distrain", ["cifar10", "--data-dir", root], timeout: 60)
        XCTAssertEqual(outcome.exitCode, 1)
        XCTAssertTrue(outcome.standardError.contains("data_batch_1.bin"), outcome.standardError)
        XCTAssertTrue(outcome.standardError.contains("distrain download cifar10"), outcome.standardError)
    }
}
