import XCTest
import _TestSupport

/// The model-selection and measuring commands on language models: compare, lr-find, sweep, --eval-every-steps, bench.
final class LanguageModelCommandTests: XCTestCase {
    private let distrain = builtProductsDirectory + "/distrain"

    func testCompareLrFindSweepAndStepEvaluationsOnATokenFolder() throws {
        let (root, run, tokens) = try trainTinyGPT(distrain, steps: 40)
        defer { try? FileManager.default.removeItem(atPath: root) }
        // A second model: the same flags for 2 steps, trained on the same shards.
        let short = try runProcess(distrain, ["train", tokens, "--model", "gpt-mini", "--context", "16", "--batch-size", "8",
                                              "--max-steps", "2", "--threads", "1", "--no-progress", "--checkpoint-dir",
                                              root + "/short", "--eval-every-steps", "1", "--metrics", root + "/short.jsonl"],
                                   timeout: 120)
        XCTAssertEqual(short.exitCode, 0, short.standardError)
        XCTAssertTrue(short.standardOutput.contains("step 1 (epoch 1)  test loss"), short.standardOutput)
        let events = try String(contentsOfFile: root + "/short.jsonl", encoding: .utf8)
        XCTAssertTrue(events.contains(#""event":"eval","step":1"#), events)
        XCTAssertTrue(short.standardOutput.contains("MFU"), short.standardOutput)

        let compared = try runProcess(distrain, ["compare", run, root + "/short", tokens, "--json", "--threads", "1"], timeout: 120)
        XCTAssertEqual(compared.exitCode, 0, compared.standardError)
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(compared.standardOutput.utf8)) as? [String: Any])
        let lossA = try XCTUnwrap(json["loss_a"] as? Double), lossB = try XCTUnwrap(json["loss_b"] as? Double)
        XCTAssertEqual(try XCTUnwrap(json["difference"] as? Double), lossA - lossB, accuracy: 1e-9)
        XCTAssertLessThan(lossA, lossB, "40 steps predict better than 2")
        XCTAssertLessThanOrEqual(try XCTUnwrap(json["interval_low"] as? Double), lossA - lossB)
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(json["interval_high"] as? Double), lossA - lossB)
        // The loss per window averages to what evaluate reports over the same windows.
        let evaluated = try runProcess(distrain, ["evaluate", "--checkpoint", run, tokens, "--json", "--threads", "1"], timeout: 60)
        let evaluation = try JSONSerialization.jsonObject(with: Data(evaluated.standardOutput.utf8)) as? [String: Any]
        XCTAssertEqual(try XCTUnwrap(evaluation?["loss"] as? Double), lossA, accuracy: 1e-9)

        let found = try runProcess(distrain, ["lr-find", tokens, "--model", "gpt-mini", "--context", "16", "--batch-size", "8",
                                              "--steps", "20", "--optimizer", "adamw", "--threads", "1"], timeout: 120)
        XCTAssertEqual(found.exitCode, 0, found.standardError)
        XCTAssertTrue(found.standardOutput.contains("lr-find: "), found.standardOutput)

        let sweep = try runProcess(distrain, ["sweep", "--out", root + "/sweep", "--", tokens, "--model", "gpt-mini", "--context",
                                              "16", "--batch-size", "8", "--max-steps", "3", "--threads", "1", "--lr",
                                              "1e-3,3e-3"], timeout: 180)
        XCTAssertEqual(sweep.exitCode, 0, sweep.standardError)
        XCTAssertTrue(sweep.standardOutput.contains("ranked by best val_loss"), sweep.standardOutput)
        XCTAssertTrue(sweep.standardOutput.contains("best: distrain train \(tokens)"), sweep.standardOutput)
    }

    /// The memory preflight: `summary --ranks` prints the plan; a run that would not fit is refused before it allocates
    /// (here a host capped at 60 MiB), and every `--shard` stage trains under mpirun with the replicated run's numbers
    /// and writes its files.
    func testMemoryPreflightAndShardedTraining() throws {
        let summary = try runProcess(distrain, ["summary", "--model", "gpt2-medium", "--vocab-size", "4096", "--context", "128",
                                                "--ranks", "4", "--batch-size", "8", "--shard", "optimizer"], timeout: 60)
        XCTAssertEqual(summary.exitCode, 0, summary.standardError)
        XCTAssertTrue(summary.standardOutput.contains("memory per rank on 4 ranks of one host (global batch 8, --shard optimizer)"))
        XCTAssertTrue(summary.standardOutput.contains("optimizer state                  587 MiB"), summary.standardOutput)
        let (root, _, tokens) = try trainTinyGPT(distrain, steps: 1)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let flags = ["train", tokens, "--model", "gpt-mini", "--context", "16", "--batch-size", "8", "--max-steps", "6",
                     "--optimizer", "adamw", "--threads", "1", "--no-progress", "--eval-batches", "2"]
        let refused = try runProcess(distrain, flags, extraEnvironment: ["DISTRAIN_MEMORY_LIMIT_MB": "60"], timeout: 60)
        XCTAssertEqual(refused.exitCode, 1, refused.standardError)
        XCTAssertTrue(refused.standardError.contains("not started, nothing allocated") && refused.standardError.contains("--shard optimizer"),
                      refused.standardError)
        guard let mpirun = findOnPath("mpirun") else { return }
        // Replicated, then each ZeRO stage (the last through MPI's own reduce-scatter and all-gather, as between hosts).
        let runs: [(name: String, flags: [String], environment: [String: String], header: String)] = [
            ("replicated", [], [:], "gradients: shared memory"),
            ("optimizer", ["--shard", "optimizer"], [:], "optimizer state sharded over the ranks"),
            ("gradients", ["--shard", "gradients"], [:], "optimizer state and gradients sharded"),
            ("parameters", ["--shard", "parameters"], [:], "optimizer state, gradients and parameters sharded"),
            ("parameters-mpi", ["--shard", "parameters"], ["DISTRAIN_SHARD_VIA_MPI": "1"], "parameters sharded"),
        ]
        var losses: [Double] = []
        for run in runs {
            let result = try runProcess(mpirun, localMPIRunArguments(ranks: 2) + [distrain]
                                        + flags + run.flags + ["--metrics", "\(root)/\(run.name).jsonl", "--checkpoint-dir",
                                                               "\(root)/\(run.name)"],
                                        extraEnvironment: run.environment, timeout: 180)
            XCTAssertEqual(result.exitCode, 0, result.standardError)
            XCTAssertTrue(result.standardOutput.contains(run.header), result.standardOutput)
            let end = try String(contentsOfFile: "\(root)/\(run.name).jsonl", encoding: .utf8).split(separator: "\n").last!
            let object = try JSONSerialization.jsonObject(with: Data(end.utf8)) as? [String: Any]
            losses.append(try XCTUnwrap(object?["test_loss"] as? Double))
        }
        XCTAssertEqual(Set(losses).count, 1, "every stage = replicated, bitwise (two ranks' sums are exact): \(losses)")
        // Each rank wrote its slice of the sharded checkpoints in parallel: the replicated run's files, byte for byte.
        for run in runs.dropFirst() {
            for file in ["model.safetensors", "optimizer.safetensors"] {
                let written = try Data(contentsOf: URL(fileURLWithPath: "\(root)/\(run.name)/step-00000006/\(file)"))
                let replicated = try Data(contentsOf: URL(fileURLWithPath: "\(root)/replicated/step-00000006/\(file)"))
                XCTAssertEqual(written, replicated, "\(run.name): \(file)")
            }
        }
        // lr-find shards as train does (it said nothing and trained replicated before): the same probes, bitwise.
        var tables: [[Substring]] = []
        for shard in [[], ["--shard", "parameters"]] {
            let found = try runProcess(mpirun, localMPIRunArguments(ranks: 2) + [distrain, "lr-find", tokens, "--model", "gpt-mini",
                                       "--context", "16", "--batch-size", "8", "--steps", "10", "--threads", "1"] + shard, timeout: 120)
            XCTAssertEqual(found.exitCode, 0, found.standardError)
            let lines = found.standardOutput.split(separator: "\n")
            XCTAssertEqual(lines.first?.contains("--shard parameters over 2 ranks"), !shard.isEmpty, found.standardOutput)
            tables.append(Array(lines.dropFirst()))
        }
        XCTAssertEqual(tables[0], tables[1], "lr-find at stage 3 probes the replicated losses")
    }

    func testBenchTrainsAndGeneratesWithAGPTPreset() throws {
        let trained = try runProcess(distrain, ["bench", "--model", "gpt-mini", "--context", "16", "--steps", "3",
                                                "--repetitions", "1", "--threads", "1", "--json"], timeout: 120)
        XCTAssertEqual(trained.exitCode, 0, trained.standardError)
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(trained.standardOutput.utf8)) as? [String: Any])
        XCTAssertEqual(json["model"] as? String, "gpt-mini")
        XCTAssertEqual(json["context"] as? Int, 16)
        let tokens = try XCTUnwrap(json["tokens_per_second"] as? Double), windows = try XCTUnwrap(json["images_per_second"] as? Double)
        XCTAssertEqual(tokens, windows * 16, accuracy: 1e-6 * tokens)
        XCTAssertGreaterThan(try XCTUnwrap(json["mfu"] as? Double), 0)
        let generated = try runProcess(distrain, ["bench", "--generate", "--model", "gpt-mini", "--context", "32", "--new-tokens",
                                                  "8", "--repetitions", "1", "--threads", "1", "--json"], timeout: 120)
        XCTAssertEqual(generated.exitCode, 0, generated.standardError)
        let rates = try JSONSerialization.jsonObject(with: Data(generated.standardOutput.utf8)) as? [String: Any]
        XCTAssertGreaterThan(try XCTUnwrap(rates?["tokens_per_second"] as? Double), 0)
        let tooLong = try runProcess(distrain, ["bench", "--generate", "--model", "gpt-mini", "--context", "8",
                                                "--prompt-tokens", "16"], timeout: 60)
        XCTAssertEqual(tooLong.exitCode, 64, tooLong.standardError)
        XCTAssertTrue(tooLong.standardError.contains("--prompt-tokens 16 exceed the context 8"), tooLong.standardError)
    }
}
