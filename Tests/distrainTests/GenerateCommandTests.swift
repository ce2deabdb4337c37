import XCTest
import _TestSupport

/// `generate`, `evaluate`, `export --pytorch` and `--init-from` on a language model, as a user meets them.
final class GenerateCommandTests: XCTestCase {
    private let distrain = builtProductsDirectory + "/distrain"

    private func trainedModel() throws -> (root: String, run: String, tokens: String) { try trainTinyGPT(distrain) }

    func testGenerateEvaluateAndExportALanguageModel() throws {
        let (root, run, tokens) = try trainedModel()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let greedy = ["generate", "--checkpoint", run, "--prompt", "And God", "--temperature", "0", "--max-new-tokens", "24"]
        let first = try runProcess(distrain, greedy, timeout: 60), second = try runProcess(distrain, greedy, timeout: 60)
        XCTAssertEqual(first.exitCode, 0, first.standardError)
        XCTAssertTrue(first.standardOutput.hasPrefix("And God"), first.standardOutput)
        XCTAssertGreaterThan(first.standardOutput.count, "And God".count + 10, "the continuation is printed")
        XCTAssertEqual(first.standardOutput, second.standardOutput)
        XCTAssertTrue(first.standardError.contains("tokens/s"), first.standardError)

        let sampled = greedy.map { $0 == "0" ? "1.2" : $0 } + ["--top-k", "10", "--top-p", "0.9", "--seed", "5", "--num-samples", "2"]
        let a = try runProcess(distrain, sampled, timeout: 60), b = try runProcess(distrain, sampled, timeout: 60)
        XCTAssertEqual(a.exitCode, 0, a.standardError)
        XCTAssertEqual(a.standardOutput, b.standardOutput, "the same seed gives the same text")
        XCTAssertTrue(a.standardOutput.contains("\n---\n"), a.standardOutput)
        let other = try runProcess(distrain, sampled.map { $0 == "5" ? "6" : $0 }, timeout: 60)
        XCTAssertNotEqual(a.standardOutput, other.standardOutput)
        if let mpirun = findOnPath("mpirun") {  // rank 0 generates, the same text; the others print nothing
            let ranks = try runProcess(mpirun, localMPIRunArguments(ranks: 2) + [distrain] + sampled, timeout: 120)
            XCTAssertEqual(ranks.exitCode, 0, ranks.standardError)
            XCTAssertEqual(ranks.standardOutput, a.standardOutput)
        }

        let long = try runProcess(distrain, ["generate", "--checkpoint", run, "--prompt", String(repeating: "light ", count: 10),
                                             "--max-new-tokens", "5", "--temperature", "0"], timeout: 60)
        XCTAssertEqual(long.exitCode, 0, long.standardError)
        XCTAssertTrue(long.standardError.contains("the prompt is 60 tokens, the model's context 16"), long.standardError)

        let evaluated = try runProcess(distrain, ["evaluate", "--checkpoint", run, tokens, "--json", "--threads", "1"], timeout: 60)
        XCTAssertEqual(evaluated.exitCode, 0, evaluated.standardError)
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(evaluated.standardOutput.utf8)) as? [String: Any])
        let loss = try XCTUnwrap(json["loss"] as? Double), perplexity = try XCTUnwrap(json["perplexity"] as? Double)
        XCTAssertEqual(perplexity, exp(loss), accuracy: 1e-9 * perplexity)
        XCTAssertNotNil(json["bits_per_byte"])
        XCTAssertEqual(json["tokens"] as? Int, (json["windows"] as? Int).map { $0 * 16 })
        if let mpirun = findOnPath("mpirun") {
            let two = try runProcess(mpirun, localMPIRunArguments(ranks: 2) + [distrain, "evaluate", "--checkpoint", run, tokens,
                                                                               "--json", "--threads", "1"], timeout: 120)
            XCTAssertEqual(two.exitCode, 0, two.standardError)
            let twoJSON = try JSONSerialization.jsonObject(with: Data(two.standardOutput.utf8)) as? [String: Any]
            XCTAssertEqual(try XCTUnwrap(twoJSON?["loss"] as? Double), loss, accuracy: 1e-12, "exact on 2 ranks")
        }

        let exported = try runProcess(distrain, ["export", "--pytorch", run], timeout: 60)
        XCTAssertEqual(exported.exitCode, 0, exported.standardError)
        for fragment in ["config = dict(block_size=64, vocab_size=", "n_layer=4, n_head=4, n_embd=128", "bias=False",
                         "\"h0_attn.body.1.c_attn.weight\": \"transformer.h.0.attn.c_attn.weight\"",
                         "\"lm_head.weight\": \"lm_head.weight\"", "def nanogpt_state_dict"] {
            XCTAssertTrue(exported.standardOutput.contains(fragment), fragment)
        }
    }

    func testBadGenerationInputsEndInOneLineAndExit64() throws {
        let (root, run, tokens) = try trainedModel()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let bad: [([String], String)] = [
            (["--top-p", "0"], "--top-p must be in (0, 1]"), (["--top-p", "1.5"], "--top-p must be in (0, 1]"),
            (["--temperature", "-1"], "--temperature must be 0 (greedy) or positive"), (["--top-k", "-3"], "--top-k must be at least 1"), (["--top-k", "0"], "--top-k must be at least 1"),
            (["--max-new-tokens", "0"], "--max-new-tokens must be in"), (["--num-samples", "0"], "--num-samples must be in"),
        ]
        for (flags, fragment) in bad {
            let failed = try runProcess(distrain, ["generate", "--checkpoint", run, "--prompt", "x"] + flags, timeout: 60)
            XCTAssertEqual(failed.exitCode, 64, "\(flags): \(failed.standardError)")
            XCTAssertTrue(failed.standardError.contains(fragment), "\(flags): \(failed.standardError)")
            XCTAssertTrue(failed.standardError.hasPrefix("distrain: error: " + fragment), "the first line names it: \(failed.standardError)")
        }
        // A file that is not a language model's checkpoint (a Hugging Face file, no distrain metadata).
        let foreign = root + "/foreign"
        try FileManager.default.createDirectory(atPath: foreign, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Self.fixture, toPath: foreign + "/model.safetensors")
        let notLM = try runProcess(distrain, ["generate", "--checkpoint", foreign, "--prompt", "x"], timeout: 60)
        XCTAssertEqual(notLM.exitCode, 64, notLM.standardError)
        XCTAssertTrue(notLM.standardError.contains("is not a language model"), notLM.standardError)
        let evaluatedOnImages = try runProcess(distrain, ["evaluate", "--checkpoint", run, "fashion-mnist", "--test-limit", "10"],
                                               timeout: 60)
        XCTAssertNotEqual(evaluatedOnImages.exitCode, 0)
        XCTAssertTrue(evaluatedOnImages.standardError.contains("is a language model: evaluate it on a token-shard folder"),
                      evaluatedOnImages.standardError)
        // --init-from a GPT-2 file of another size: the tensor and both shapes are named, nothing trains.
        let initFrom = try runProcess(distrain, ["train", tokens, "--model", "gpt-mini", "--context", "16", "--max-steps", "2",
                                                 "--threads", "1", "--no-progress", "--init-from", Self.fixture], timeout: 60)
        XCTAssertEqual(initFrom.exitCode, 1, initFrom.standardError)
        XCTAssertTrue(initFrom.standardError.contains("no place for (transformer.h.0.attn.c_attn.bias"), initFrom.standardError)
        let missing = try runProcess(distrain, ["train", tokens, "--init-from", root + "/nothing.safetensors"], timeout: 60)
        XCTAssertEqual(missing.exitCode, 64, missing.standardError)
        XCTAssertTrue(missing.standardError.contains("--init-from"), missing.standardError)
    }

    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().path
        + "/TrainingTests/Fixtures/gpt2-tiny/model.safetensors"
}

/// A tiny gpt-mini trained for 30 steps on a character-level corpus: (root, checkpoint dir, token folder).
func trainTinyGPT(_ distrain: String, steps: Int = 30, label: String = "run") throws -> (root: String, run: String, tokens: String) {
    let root = makeTemporaryDirectory("lm-cli")
    let folder = root + "/corpus"
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    let verses = ["In the beginning God created the heaven and the earth.", "And the earth was without form, and void.",
                  "And God said, Let there be light: and there was light.", "And God saw the light, that it was good."]
    for document in 0..<12 {
        writeBytes(Array((0..<6).map { verses[($0 + document) % 4] }.joined(separator: "\n").utf8), to: folder + "/\(document).txt")
    }
    let trained = try runProcess(distrain, ["train", folder, "--tokenizer", "char", "--model", "gpt-mini", "--context", "16",
                                            "--batch-size", "8", "--max-steps", "\(steps)", "--optimizer", "adamw", "--lr", "3e-3",
                                            "--threads", "1", "--no-progress", "--checkpoint-dir", root + "/" + label], timeout: 300)
    XCTAssertEqual(trained.exitCode, 0, trained.standardError)
    let tokens = try FileManager.default.contentsOfDirectory(atPath: root + "/" + label).first { $0.hasPrefix("tokens-") }
    return (root, root + "/" + label, root + "/" + label + "/" + (tokens ?? "missing"))
}
