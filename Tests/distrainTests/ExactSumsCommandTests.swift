import XCTest
import _TestSupport

/// `--exact-sums` where the user meets it: the checkpoints of 1 rank and of 3 (in-process, and under mpirun) are
/// the same FILE, byte for byte, at a rate and momentum where float sums drift apart; runs it cannot hold are refused.
final class ExactSumsCommandTests: XCTestCase {
    private var distrain: String { builtProductsDirectory + "/distrain" }

    func testOneAndThreeRanksWriteTheSameCheckpointBytes() throws {
        let directory = makeTemporaryDirectory("exact-sums")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        writeSyntheticIDXDataset(directory: directory, trainCount: 97, testCount: 20)  // the last batch: 1 sample
        let common = ["fashion-mnist", "--data-dir", directory, "--model", "cnn-bn", "--epochs", "2", "--batch-size", "32",
                      "--optimizer", "sgd", "--lr", "0.05", "--momentum", "0.9", "--threads", "1", "--no-augment",
                      "--no-progress", "--exact-sums"]
        func checkpoint(_ name: String) throws -> Data {
            try Data(contentsOf: URL(fileURLWithPath: "\(directory)/\(name)/step-00000008/model.safetensors"))
        }
        let one = try runProcess(distrain, common + ["--checkpoint-dir", directory + "/one"], timeout: 300)
        XCTAssertEqual(one.exitCode, 0, one.standardError)
        let local = try runProcess(distrain, common + ["--local-ranks", "3", "--checkpoint-dir", directory + "/local"],
                                   timeout: 300)
        XCTAssertEqual(local.exitCode, 0, local.standardError)
        XCTAssertEqual(try checkpoint("local"), try checkpoint("one"), "3 in-process ranks")
        XCTAssertTrue(local.standardOutput.contains("gradients: exact integer sums (--exact-sums)"), local.standardOutput)
        let metrics = try String(contentsOfFile: directory + "/local/metrics.jsonl", encoding: .utf8)
        XCTAssertTrue(metrics.contains("\"gradient_sum\":\"exact integer sums (--exact-sums), an Int64 allreduce"), metrics)
        // The evaluations too: the same test loss and accuracy, to the last digit written.
        func testNumbers(_ name: String) throws -> [String] {
            try String(contentsOfFile: "\(directory)/\(name)/metrics.jsonl", encoding: .utf8).split(separator: "\n")
                .filter { $0.contains("\"event\":\"epoch\"") }.map { line in
                    line.split(separator: ",").filter { $0.contains("\"test_") }.joined(separator: ",")
                }
        }
        XCTAssertEqual(try testNumbers("local").count, 2)
        XCTAssertEqual(try testNumbers("local"), try testNumbers("one"))
        if let mpirun = findOnPath("mpirun") {
            let ranks = try runProcess(mpirun, localMPIRunArguments(ranks: 3) + [distrain] + common
                                           + ["--checkpoint-dir", directory + "/mpi"], timeout: 300)
            XCTAssertEqual(ranks.exitCode, 0, ranks.standardError)
            XCTAssertEqual(try checkpoint("mpi"), try checkpoint("one"), "mpirun -n 3")
        }
        // Float sums on 1 and 3 ranks are not the same bytes (the reason for the flag): the comparison above can fail.
        for (name, extra) in [("float-one", [String]()), ("float-three", ["--local-ranks", "3"])] {
            let float = try runProcess(distrain, common.dropLast() + extra + ["--checkpoint-dir", directory + "/" + name],
                                       timeout: 300)
            XCTAssertEqual(float.exitCode, 0, float.standardError)
        }
        XCTAssertNotEqual(try checkpoint("float-three"), try checkpoint("float-one"))
    }

    /// Refused before anything starts, in one line with exit 64: the options that only concern float sums.
    func testRunsItCannotHoldAreRefusedInOneLine() throws {
        let directory = makeTemporaryDirectory("exact-sums-refused")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        writeSyntheticIDXDataset(directory: directory, trainCount: 40, testCount: 10)
        for (extra, expected) in [(["--shard", "gradients"], "--exact-sums cannot be used with --shard gradients"),
                                  (["--shard", "parameters"], "--exact-sums cannot be used with --shard parameters"),
                                  (["--wire", "bf16"], "--wire bf16 applies to float sums only"),
                                  (["--overlap"], "--overlap applies to float sums only")] {
            let outcome = try runProcess(distrain, ["fashion-mnist", "--data-dir", directory, "--epochs", "1", "--no-progress",
                                                    "--exact-sums", "--local-ranks", "2"] + extra, timeout: 120)
            XCTAssertEqual(outcome.exitCode, 64, extra.joined(separator: " "))
            let lines = outcome.standardError.split(separator: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
            XCTAssertTrue(lines.first?.contains(expected) == true, outcome.standardError)
            XCTAssertTrue(lines.first?.hasPrefix("distrain: error:") == true, outcome.standardError)
        }
        let stageOne = try runProcess(distrain, ["fashion-mnist", "--data-dir", directory, "--epochs", "1", "--no-progress",
                                                 "--exact-sums", "--local-ranks", "2", "--shard", "optimizer"], timeout: 120)
        XCTAssertEqual(stageOne.exitCode, 0, "--shard optimizer sums whole gradients: " + stageOne.standardError)
    }
}
