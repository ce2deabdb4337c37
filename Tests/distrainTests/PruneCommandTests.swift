import XCTest
import _TestSupport

/// `distrain prune` from the command line: the sparsity reached, the mask in the metadata, zeros kept
/// through fine-tuning and a resumed run, 2 ranks = 1 rank, and bad requests refused.
final class PruneCommandTests: XCTestCase {
    private var root = ""
    private let distrain = builtProductsDirectory + "/distrain"
    override func setUp() {
        root = makeTemporaryDirectory("prune-cli")
        writeSyntheticIDXDataset(directory: root, trainCount: 200, testCount: 50)
    }
    override func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    private var data: [String] { ["--data-dir", root, "--threads", "1"] }

    /// The weights of the MLP's two linear layers (784x128 = 100,352 and 128x10 = 1,280 values), and the
    /// model metadata of a checkpoint directory's latest checkpoint.
    private func weightsAndMetadata(_ directory: String) throws -> (weights: [Float], metadata: [String: String]) {
        let latest = try String(contentsOfFile: directory + "/latest", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(directory)/\(latest)/model.safetensors")))
        let headerLength = Int(bytes[0..<8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
        let header = try JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + headerLength)])) as! [String: Any]
        var weights: [Float] = []
        for name in ["1.weight", "3.weight"] {
            let offsets = (header[name] as! [String: Any])["data_offsets"] as! [Int]
            let start = 8 + headerLength + offsets[0], end = 8 + headerLength + offsets[1]
            weights += stride(from: start, to: end, by: 4).map { i in
                Float(bitPattern: UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24)
            }
        }
        return (weights, header["__metadata__"] as! [String: String])
    }

    func testPruningReachesTheSparsityKeepsZerosThroughFineTuningAndMatchesOnTwoRanks() throws {
        let train = try runProcess(distrain, ["fashion-mnist"] + data + ["--epochs", "2", "--no-progress", "--checkpoint-dir", root + "/base"], timeout: 120)
        XCTAssertEqual(train.exitCode, 0, train.standardError)
        let prune = ["prune", "--checkpoint", root + "/base", "fashion-mnist"] + data + ["--sparsity", "0.5,0.9", "--finetune-epochs", "2"]
        let local = try runProcess(distrain, prune + ["--out", root + "/local"], timeout: 180)
        XCTAssertEqual(local.exitCode, 0, local.standardError)
        XCTAssertTrue(local.standardOutput.contains("sparsity  achieved  before   pruned   fine-tuned"), local.standardOutput)
        XCTAssertTrue(local.standardOutput.contains("sparsity 0.90 per layer: 1.weight"), local.standardOutput)
        let prunable = 784 * 128 + 128 * 10
        let curve = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: root + "/local/pruning.json"))) as! [[String: Any]]
        XCTAssertEqual(curve.map { $0["sparsity"] as! Double }, [0.5, 0.9])
        XCTAssertEqual(curve[1]["achievedSparsity"] as! Double, Double(Int(0.9 * Double(prunable))) / Double(prunable), accuracy: 1e-12)
        XCTAssertEqual(curve[0]["accuracyBefore"] as! Double, curve[1]["accuracyBefore"] as! Double, "both start from the same checkpoint")
        for sparsity in [0.5, 0.9] {
            let (weights, metadata) = try weightsAndMetadata(root + "/local/sparsity-" + String(format: "%.2f", sparsity))
            XCTAssertEqual(weights.filter { $0 == 0 }.count, Int(sparsity * Double(prunable)), "exactly the pruned weights are zero after fine-tuning")
            XCTAssertEqual(metadata["pruning_sparsity"], String(sparsity))
            XCTAssertEqual(metadata["pruning_scope"], "global")
            // The mask's bits (over all parameters, in the store's order: 1.weight first) say which are zero.
            let mask = [UInt8](Data(base64Encoded: metadata["pruning_mask"] ?? "") ?? Data())
            let keptFirstLayer = (0..<(784 * 128)).map { mask[$0 / 8] & (1 << UInt8($0 % 8)) != 0 }
            XCTAssertTrue(zip(keptFirstLayer, weights).allSatisfy { kept, weight in kept == (weight != 0) })
        }
        let evaluate = try runProcess(distrain, ["evaluate", "--checkpoint", root + "/local/sparsity-0.90", "fashion-mnist", "--data-dir", root], timeout: 60)
        XCTAssertEqual(evaluate.exitCode, 0, evaluate.standardError)
        // The report draws the curve from the --out folder, and the fine-tuning from a sparsity folder.
        let report = try runProcess(distrain, ["report", root + "/local", root + "/local/sparsity-0.90", "--out", root + "/report.html"], timeout: 60)
        XCTAssertEqual(report.exitCode, 0, report.standardError)
        XCTAssertTrue(report.standardOutput.contains("1 run, 1 pruning curve"), report.standardOutput)
        let page = try String(contentsOfFile: root + "/report.html", encoding: .utf8)
        XCTAssertTrue(page.contains("Test accuracy against sparsity") && page.contains("<td>0.9000</td>"))
        try Data("[{\"sparsity\": \"half\"}]".utf8).write(to: URL(fileURLWithPath: root + "/local/pruning.json"))
        let bad = try runProcess(distrain, ["report", root + "/local", "--out", root + "/bad.html"], timeout: 60)
        XCTAssertEqual(bad.exitCode, 1)
        XCTAssertTrue(bad.standardError.contains("pruning.json has a row without a number"), bad.standardError)
        // Training on from a pruned checkpoint keeps its mask (the zeros would grow back without it).
        let resumed = try runProcess(distrain, ["fashion-mnist"] + data + ["--epochs", "4", "--lr", "1e-4", "--no-progress",
                                                "--resume", root + "/local/sparsity-0.90", "--checkpoint-dir", root + "/resumed"], timeout: 120)
        XCTAssertEqual(resumed.exitCode, 0, resumed.standardError)
        let after = try weightsAndMetadata(root + "/resumed")
        XCTAssertEqual(after.weights.filter { $0 == 0 }.count, Int(0.9 * Double(prunable)))
        XCTAssertEqual(after.metadata["pruning_sparsity"], "0.9")

        guard let mpirun = findOnPath("mpirun") else { throw XCTSkip("mpirun is not installed") }
        let twoRanks = try runProcess(mpirun, localMPIRunArguments(ranks: 2) + [distrain] + prune + ["--out", root + "/mpi"], timeout: 240)
        XCTAssertEqual(twoRanks.exitCode, 0, twoRanks.standardError)
        let one = try weightsAndMetadata(root + "/local/sparsity-0.90").weights, two = try weightsAndMetadata(root + "/mpi/sparsity-0.90").weights
        assertClose(two, one, relative: 1e-5)
    }

    func testBadRequestsAreRefused() throws {
        let train = try runProcess(distrain, ["fashion-mnist"] + data + ["--epochs", "1", "--no-progress", "--checkpoint-dir", root + "/base"], timeout: 120)
        XCTAssertEqual(train.exitCode, 0, train.standardError)
        let prune = ["prune", "--checkpoint", root + "/base", "fashion-mnist"] + data + ["--out", root + "/out"]
        for bad in ["1", "-0.1", "0.5,,0.8", "half"] {
            let outcome = try runProcess(distrain, prune + ["--sparsity=" + bad], timeout: 60)
            XCTAssertEqual(outcome.exitCode, 64, bad)
            XCTAssertTrue(outcome.standardError.contains("--sparsity takes fractions in [0, 1)"), outcome.standardError)
        }
        let twice = try runProcess(distrain, prune + ["--sparsity", "0.5,0.501"], timeout: 60)
        XCTAssertEqual(twice.exitCode, 64)
        XCTAssertTrue(twice.standardError.contains("--sparsity names 0.50 twice"), twice.standardError)
        XCTAssertEqual(try runProcess(distrain, prune + ["--sparsity", "0.5"], timeout: 120).exitCode, 0)
        // Another sparsity into the same --out adds its row to pruning.json instead of replacing the curve.
        XCTAssertEqual(try runProcess(distrain, prune + ["--sparsity", "0.3"], timeout: 120).exitCode, 0)
        let curve = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: root + "/out/pruning.json")))
            as! [[String: Any]]
        XCTAssertEqual(curve.map { $0["sparsity"] as! Double }, [0.3, 0.5])
        // A damaged mask (same length, not base64) is named when training resumes from the checkpoint.
        let pruned = root + "/out/sparsity-0.50/" + (try String(contentsOfFile: root + "/out/sparsity-0.50/latest", encoding: .utf8)).trimmingCharacters(in: .whitespacesAndNewlines)
        var file = try Data(contentsOf: URL(fileURLWithPath: pruned + "/model.safetensors"))
        let key = Data("\"pruning_mask\":\"".utf8)
        let start = file.range(of: key)!.upperBound, end = file[start...].firstIndex(of: UInt8(ascii: "\""))!
        file.replaceSubrange(start..<end, with: Data(repeating: UInt8(ascii: "!"), count: end - start))
        try file.write(to: URL(fileURLWithPath: pruned + "/model.safetensors"))
        let damaged = try runProcess(distrain, ["fashion-mnist"] + data + ["--epochs", "2", "--lr", "1e-4", "--no-progress", "--resume", pruned, "--checkpoint-dir", root + "/damaged"], timeout: 60)
        XCTAssertEqual(damaged.exitCode, 1)
        XCTAssertTrue(damaged.standardError.contains("has a pruning_mask that does not fit"), damaged.standardError)
        let again = try runProcess(distrain, prune + ["--sparsity", "0.5"], timeout: 60)
        XCTAssertEqual(again.exitCode, 1)
        XCTAssertTrue(again.standardError.contains("already holds checkpoints; choose another --out"), again.standardError)
        let missing = try runProcess(distrain, ["prune", "--checkpoint", root + "/nothing", "fashion-mnist"] + data + ["--sparsity", "0.5", "--out", root + "/x"], timeout: 60)
        XCTAssertEqual(missing.exitCode, 1)
    }
}
