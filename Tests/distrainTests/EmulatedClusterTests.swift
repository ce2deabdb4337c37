import Foundation
import SafeTensors
import XCTest
import _TestSupport

/// Three emulated hosts (network namespaces) × two ranks over TCP: the same epoch metrics as one host.
final class EmulatedClusterTests: XCTestCase {
    private let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    private var distrain: String { builtProductsDirectory + "/distrain" }

    /// Runs launch/emulated-cluster.sh; skips (saying why) where namespaces cannot be made.
    private func emulated(_ arguments: [String], cluster: [String] = ["--hosts", "3", "--slots", "2"]) throws -> ProcessOutcome {
        guard findOnPath("mpirun") != nil else { throw XCTSkip("mpirun is not installed") }
        guard getuid() == 0 else { throw XCTSkip("emulated hosts need root (network namespaces); not root here, so this multi-host test did not run") }
        let outcome = try runProcess("/bin/bash", [repository + "/launch/emulated-cluster.sh"] + cluster + ["--"] + arguments,
                                     extraEnvironment: ["DISTRAIN": distrain], timeout: 300)
        if outcome.exitCode == 77 {
            throw XCTSkip("cannot emulate hosts on this machine: \(outcome.standardError.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        return outcome
    }

    func testThreeHostsTimesTwoRanksMatchTheSingleHostRun() throws {
        // Hierarchical: each emulated host sums in shared memory, slices are allreduced between hosts.
        try checkClusterMatchesSingleHostRun(cluster: ["--hosts", "3", "--slots", "2"], ranks: 6,
                                             gradientSum: "shared memory (2 ranks per host) + allreduce across 3 hosts")
    }

    /// Hosts with different rank counts (2 + 1) cannot split the sum into equal host slices: the plain
    /// allreduce takes over, with the same results.
    func testUnevenHostsFallBackToAllreduceWithTheSameResults() throws {
        try checkClusterMatchesSingleHostRun(cluster: ["--hosts", "2", "--slots", "2", "--ranks", "3"], ranks: 3,
                                             gradientSum: "allreduce")
    }

    private func checkClusterMatchesSingleHostRun(cluster options: [String], ranks: Int, gradientSum: String) throws {
        let directory = makeTemporaryDirectory("emulated")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        writeSyntheticIDXDataset(directory: directory, trainCount: 600, testCount: 120)
        let common = ["fashion-mnist", "--data-dir", directory, "--epochs", "2", "--batch-size", "60", "--threads", "1", "--no-progress"]
        let cluster = try emulated(common + ["--metrics", directory + "/cluster.jsonl"], cluster: options)
        XCTAssertEqual(cluster.exitCode, 0, cluster.standardError)
        let local = try runProcess(distrain, common + ["--metrics", directory + "/local.jsonl"], timeout: 120)
        XCTAssertEqual(local.exitCode, 0, local.standardError)
        let start = try readMetrics(directory + "/cluster.jsonl")[0]
        XCTAssertEqual(start["world_size"] as? Int, ranks)
        XCTAssertEqual(start["communicator"] as? String, "MPI")
        XCTAssertEqual(start["gradient_sum"] as? String, gradientSum)
        let clusterEpochs = try readMetrics(directory + "/cluster.jsonl").filter { $0["event"] as? String == "epoch" }
        let localEpochs = try readMetrics(directory + "/local.jsonl").filter { $0["event"] as? String == "epoch" }
        XCTAssertEqual(clusterEpochs.count, 2)
        for (a, b) in zip(clusterEpochs, localEpochs) {
            for key in ["train_accuracy", "test_accuracy"] { XCTAssertEqual(a[key] as? Double, b[key] as? Double, key) }
            for key in ["train_loss", "test_loss"] {
                XCTAssertEqual(a[key] as! Double, b[key] as! Double, accuracy: 1e-5 * abs(b[key] as! Double), key)
            }
        }
    }

    /// A GPT (tied head, attention, LayerNorm) on token shards: 3 hosts × 2 ranks give one process's losses, also with
    /// the optimizer state sharded over the 6 ranks (the all-gather crosses hosts over TCP).
    func testAGPTOnThreeHostsMatchesOneProcess() throws {
        let (root, _, tokens) = try trainTinyGPT(distrain, steps: 1)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let common = ["train", tokens, "--model", "gpt-mini", "--context", "16", "--batch-size", "12", "--max-steps", "8",
                      "--optimizer", "sgd", "--lr", "0.05", "--threads", "1", "--no-progress", "--eval-batches", "2"]
        let cluster = try emulated(common + ["--metrics", root + "/cluster.jsonl"])
        XCTAssertEqual(cluster.exitCode, 0, cluster.standardError)
        let sharded = try emulated(common + ["--metrics", root + "/sharded.jsonl", "--shard", "optimizer"])
        XCTAssertEqual(sharded.exitCode, 0, sharded.standardError)
        // ZeRO-3 across hosts: MPI's reduce-scatter and all-gather over TCP, and a checkpoint every rank writes its slice of.
        let zero3 = try emulated(common + ["--metrics", root + "/zero3.jsonl", "--shard", "parameters", "--checkpoint-dir",
                                           root + "/zero3"])
        XCTAssertEqual(zero3.exitCode, 0, zero3.standardError)
        let local = try runProcess(distrain, common + ["--metrics", root + "/local.jsonl", "--checkpoint-dir", root + "/local"],
                                   timeout: 120)
        XCTAssertEqual(local.exitCode, 0, local.standardError)
        XCTAssertEqual(try readMetrics(root + "/cluster.jsonl")[0]["world_size"] as? Int, 6)
        XCTAssertEqual(try readMetrics(root + "/sharded.jsonl")[0]["shard"] as? String, "optimizer")
        XCTAssertEqual(try readMetrics(root + "/zero3.jsonl")[0]["shard"] as? String, "parameters")
        let ends = try ["cluster", "sharded", "zero3", "local"].map { name in
            try XCTUnwrap(try readMetrics("\(root)/\(name).jsonl").first { $0["event"] as? String == "end" })
        }
        for key in ["test_loss", "test_perplexity"] {
            let a = try XCTUnwrap(ends[0][key] as? Double), s = try XCTUnwrap(ends[1][key] as? Double)
            let z = try XCTUnwrap(ends[2][key] as? Double), b = try XCTUnwrap(ends[3][key] as? Double)
            XCTAssertEqual(a, b, accuracy: 1e-5 * b, key)
            XCTAssertEqual(s, a, "\(key): sharded = replicated on the cluster, bitwise")
            XCTAssertEqual(z, b, accuracy: 1e-5 * b, "\(key): ZeRO-3 on 3 hosts = one process")
        }
        func load(_ path: String) throws -> SafeTensorsFile {
            try SafeTensors.decode(Array(try Data(contentsOf: URL(fileURLWithPath: path))), path: path)
        }
        let written = try load(root + "/zero3/step-00000008/model.safetensors")
        let alone = try load(root + "/local/step-00000008/model.safetensors")
        XCTAssertEqual(written.entries.keys.sorted(), alone.entries.keys.sorted())
        for name in alone.entries.keys {
            let a = try written.values(name), b = try alone.values(name)
            let scale = b.map(abs).max() ?? 1
            XCTAssertLessThan(zip(a, b).map { abs($0 - $1) }.max() ?? 0, 1e-5 * max(scale, 1e-3), name)
        }
    }

    /// Host 3 dies after the first checkpoint (its ranks killed, its namespace removed: no FIN reaches the
    /// others); `distrain supervise` finds two hosts answering and finishes the job there on 4 ranks, with
    /// the results of an uninterrupted run (N ranks ≡ 1 rank, and exact resume on another world size).
    func testASupervisedJobThatLosesAHostFinishesOnTheOthers() throws {
        let directory = makeTemporaryDirectory("emulated-loss")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        writeSyntheticIDXDataset(directory: directory, trainCount: 600, testCount: 120)
        // 10 epochs: the host dies once the first checkpoint exists, well before the end (it is polled every 0.2 s).
        let common = ["fashion-mnist", "--data-dir", directory, "--epochs", "10", "--batch-size", "60", "--threads", "1", "--no-progress"]
        let cluster = try emulated(common + ["--checkpoint-dir", directory + "/ck", "--metrics", directory + "/cluster.jsonl", "--collective-timeout", "30"],
                                   cluster: ["--hosts", "3", "--slots", "2", "--supervise", "2", "--end-host", "3",
                                             "--when-exists", directory + "/ck/latest"])
        XCTAssertEqual(cluster.exitCode, 0, cluster.standardError)
        for line in ["6 ranks", "not answering: 10.213.", "— 4 ranks", "the job finished after 1 restart"] {
            XCTAssertTrue(cluster.standardError.contains(line) || cluster.standardOutput.contains(line), "missing '\(line)': \(cluster.standardError)")
        }
        let local = try runProcess(distrain, common + ["--metrics", directory + "/local.jsonl"], timeout: 120)
        XCTAssertEqual(local.exitCode, 0, local.standardError)
        let starts = try readMetrics(directory + "/cluster.jsonl").filter { $0["world_size"] != nil }.map { $0["world_size"] as? Int }
        XCTAssertEqual(starts.first, 6)
        XCTAssertEqual(starts.last, 4, "the restart ran on the two hosts left")
        let last = try readMetrics(directory + "/cluster.jsonl").last { $0["event"] as? String == "epoch" }!
        let expected = try readMetrics(directory + "/local.jsonl").last { $0["event"] as? String == "epoch" }!
        XCTAssertEqual(last["epoch"] as? Int, 10)
        XCTAssertEqual(last["test_accuracy"] as? Double, expected["test_accuracy"] as? Double)
        for key in ["train_loss", "test_loss"] {
            XCTAssertEqual(last[key] as! Double, expected[key] as! Double, accuracy: 1e-5 * abs(expected[key] as! Double), key)
        }
    }

    /// fp16 and bf16 between hosts: the header says the sum is lossy, the run trains to nearly the fp32
    /// run's losses (not bitwise: every partial sum between hosts is rounded to 16 bits).
    func testSixteenBitWireFormatsTrainCloseToFP32() throws {
        let directory = makeTemporaryDirectory("emulated-wire")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        writeSyntheticIDXDataset(directory: directory, trainCount: 600, testCount: 120)
        let common = ["fashion-mnist", "--data-dir", directory, "--epochs", "2", "--batch-size", "60", "--threads", "1", "--no-progress"]
        var finalLoss: [String: Double] = [:]
        for wire in ["fp32", "fp16", "bf16"] {
            let run = try emulated(common + ["--wire", wire, "--metrics", "\(directory)/\(wire).jsonl"])
            XCTAssertEqual(run.exitCode, 0, run.standardError)
            XCTAssertEqual(run.standardOutput.contains("\(wire) on the wire (lossy: not bitwise equal to 1 rank)"), wire != "fp32", run.standardOutput)
            finalLoss[wire] = try readMetrics("\(directory)/\(wire).jsonl").last { $0["event"] as? String == "epoch" }?["train_loss"] as? Double
        }
        XCTAssertEqual(finalLoss["fp16"]!, finalLoss["fp32"]!, accuracy: 0.02 * finalLoss["fp32"]!)
        XCTAssertEqual(finalLoss["bf16"]!, finalLoss["fp32"]!, accuracy: 0.05 * finalLoss["fp32"]!)
        XCTAssertNotEqual(finalLoss["bf16"]!, finalLoss["fp32"]!, "bf16 rounds: the sums differ from fp32's")
    }

    /// --overlap starts each bucket's sum between hosts during backward: the weights are the same to the
    /// bit as without it (same calls on the same buckets), in fp32 and in fp16, and fp32 matches one process.
    func testOverlappedBucketsGiveTheSameBitsAsSummingAfterBackward() throws {
        let directory = makeTemporaryDirectory("emulated-overlap")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        writeSyntheticIDXDataset(directory: directory, trainCount: 600, testCount: 120)
        // Three Linear layers; 0.01 MiB buckets (2,621 floats): [Linear(64,64) + Linear(64,10)] then [Linear(784,64)].
        try "Flatten()\nLinear(784, 64)\nReLU()\nLinear(64, 64)\nReLU()\nLinear(64, 10)\n".write(toFile: directory + "/three.spec", atomically: true, encoding: .utf8)
        let common = ["fashion-mnist", "--data-dir", directory, "--model", directory + "/three.spec", "--epochs", "2", "--batch-size", "60",
                      "--threads", "1", "--no-progress", "--bucket-mb", "0.01"]
        func weights(_ name: String) throws -> [UInt8] {
            let latest = try String(contentsOfFile: "\(directory)/\(name)/latest", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            return try checkpointTensorBytes("\(directory)/\(name)/\(latest)")
        }
        for wire in ["fp32", "fp16"] {
            for overlap in [false, true] {
                let run = try emulated(common + ["--wire", wire, "--checkpoint-dir", "\(directory)/\(wire)-\(overlap)"] + (overlap ? ["--overlap"] : []))
                XCTAssertEqual(run.exitCode, 0, run.standardError)
                XCTAssertEqual(run.standardOutput.contains("2 buckets overlapped with backward"), overlap, run.standardOutput)
            }
            XCTAssertEqual(try weights("\(wire)-true"), try weights("\(wire)-false"), "\(wire): overlap changes when, not what")
        }
        let local = try runProcess(distrain, common + ["--checkpoint-dir", directory + "/local"], timeout: 120)
        XCTAssertEqual(local.exitCode, 0, local.standardError)
        let a = try weights("fp32-true"), b = try weights("local")
        func floats(_ bytes: [UInt8]) -> [Float] { stride(from: 0, to: bytes.count, by: 4).map { i in Float(bitPattern: UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24) } }
        let largest = zip(floats(a), floats(b)).map { abs($0 - $1) / max(abs($1), 1e-3) }.max() ?? 1
        XCTAssertLessThan(largest, 1e-4, "6 ranks on 3 hosts = 1 process, within float rounding")
    }

    func testDoctorOnTheEmulatedClusterSaysGo() throws {
        let directory = makeTemporaryDirectory("doctor")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        writeSyntheticIDXDataset(directory: directory, trainCount: 50, testCount: 20)
        let outcome = try emulated(["doctor", "--dataset", "fashion-mnist", "--data-dir", directory])
        XCTAssertEqual(outcome.exitCode, 0, outcome.standardError)
        for host in ["h1", "h2", "h3"] { XCTAssertTrue(outcome.standardOutput.contains(host), outcome.standardOutput) }
        XCTAssertTrue(outcome.standardOutput.contains("6 ranks (MPI)"), outcome.standardOutput)
        XCTAssertTrue(outcome.standardOutput.contains("GO: every rank can train"), outcome.standardOutput)
    }
}

/// Ranks running different executables, or seeing different data, refuse to train and name the hosts.
final class MismatchTests: XCTestCase {
    func testDifferentExecutablesAreRefusedNamingHosts() throws {
        guard let mpirun = findOnPath("mpirun") else { throw XCTSkip("mpirun is not installed") }
        let directory = makeTemporaryDirectory("mismatch")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        writeSyntheticIDXDataset(directory: directory, trainCount: 100, testCount: 20)
        let original = builtProductsDirectory + "/distrain", copy = directory + "/distrain-other"
        // A copy with one byte appended: still runs, but is not the same file.
        var bytes = [UInt8](FileManager.default.contents(atPath: original)!)
        bytes.append(0)
        writeBytes(bytes, to: copy)
        chmod(copy, 0o755)
        let arguments = ["fashion-mnist", "--data-dir", directory, "--epochs", "1", "--no-progress"]
        var mpi = localMPIRunArguments(ranks: 2)
        mpi.removeFirst(2)
        let outcome = try runProcess(mpirun, mpi + ["-n", "1", original] + arguments + [":", "-n", "1", copy] + arguments, timeout: 60)
        XCTAssertNotEqual(outcome.exitCode, 0)
        XCTAssertTrue(outcome.standardError.contains("ranks disagree on the executable"), outcome.standardError)
        XCTAssertTrue(outcome.standardError.contains("rank 0 on ") && outcome.standardError.contains("rank 1 on "), outcome.standardError)

        let doctor = try runProcess(mpirun, mpi + ["-n", "1", original, "doctor", ":", "-n", "1", copy, "doctor"], timeout: 60)
        XCTAssertEqual(doctor.exitCode, 1, doctor.standardError)
        XCTAssertTrue(doctor.standardOutput.contains("NO-GO"), doctor.standardOutput)
        XCTAssertTrue(doctor.standardOutput.contains("executables differ"), doctor.standardOutput)
    }
}
