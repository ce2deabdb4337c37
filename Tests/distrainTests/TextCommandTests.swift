import XCTest
import _TestSupport

/// The text commands as a user meets them: train a tokenizer, tokenize a corpus, train a language model
/// on the shards under mpirun and resume it; bad inputs end in one line and a non-zero exit.
final class TextCommandTests: XCTestCase {
    private let distrain = builtProductsDirectory + "/distrain"

    /// A folder of 12 small documents.
    private func corpus(_ root: String) -> String {
        let folder = root + "/corpus"
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let words = ["in", "the", "beginning", "was", "word", "and", "light", "darkness", "waters", "heaven"]
        for document in 0..<12 {
            let text = (0..<150).map { words[($0 * 7 + document * 3 + $0 / 5) % words.count] }.joined(separator: " ") + ".\n"
            writeBytes(Array(text.utf8), to: folder + "/\(document + 10).txt")
        }
        return folder
    }

    func testTokenizeTrainOnTwoRanksAndResume() throws {
        let root = makeTemporaryDirectory("text-cli")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let corpus = corpus(root)
        let trained = try runProcess(distrain, ["tokenizer", "train", corpus, "--vocab-size", "300", "--out", root + "/tok.json"],
                                     timeout: 60)
        XCTAssertEqual(trained.exitCode, 0, trained.standardError)
        XCTAssertTrue(trained.standardOutput.contains("byte-level BPE tokenizer: 300 tokens"), trained.standardOutput)
        let again = try runProcess(distrain, ["tokenizer", "train", corpus, "--out", root + "/tok.json"], timeout: 60)
        XCTAssertEqual(again.exitCode, 64, "an existing --out is never replaced")
        XCTAssertTrue(again.standardError.contains("exists; distrain does not replace it"), again.standardError)

        let tokenize = try runProcess(distrain, ["tokenize", "--tokenizer", root + "/tok.json", corpus, "--out", root + "/tokens",
                                                 "--val-fraction", "0.25", "--seed", "0"], timeout: 60)
        XCTAssertEqual(tokenize.exitCode, 0, tokenize.standardError)
        XCTAssertTrue(tokenize.standardOutput.contains("train: ") && tokenize.standardOutput.contains("val: "), tokenize.standardOutput)

        let encoded = try runProcess(distrain, ["tokenizer", "encode", "--tokenizer", root + "/tok.json", corpus + "/10.txt"], timeout: 60)
        let ids = encoded.standardOutput.split(separator: " ").map { String($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        let decoded = try runProcess(distrain, ["tokenizer", "decode", "--tokenizer", root + "/tok.json"] + ids, timeout: 60)
        XCTAssertEqual(decoded.standardOutput, try String(contentsOfFile: corpus + "/10.txt", encoding: .utf8))

        guard let mpirun = findOnPath("mpirun") else { throw XCTSkip("mpirun is not installed") }
        let flags = [root + "/tokens", "--context", "8", "--batch-size", "8", "--epochs", "2", "--threads", "1", "--no-progress",
                     "--optimizer", "sgd", "--lr", "0.05", "--seed", "3"]
        let alone = try runProcess(distrain, ["train"] + flags + ["--checkpoint-dir", root + "/one"], timeout: 120)
        XCTAssertEqual(alone.exitCode, 0, alone.standardError)
        XCTAssertTrue(alone.standardOutput.contains("token-mlp on tokens"), alone.standardOutput)
        XCTAssertTrue(alone.standardOutput.contains("perplexity") && alone.standardOutput.contains("bits_per_byte"), alone.standardOutput)
        let two = try runProcess(mpirun, localMPIRunArguments(ranks: 2) + [distrain, "train"] + flags
                                    + ["--checkpoint-dir", root + "/two"], timeout: 180)
        XCTAssertEqual(two.exitCode, 0, two.standardError)
        func weights(_ name: String) throws -> [UInt8] {
            let latest = try String(contentsOfFile: "\(root)/\(name)/latest",
                encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            return try checkpointTensorBytes("\(root)/\(name)/\(latest)")
        }
        let one = try weights("one"), many = try weights("two")
        XCTAssertEqual(one.count, many.count)
        let a = floats(one), b = floats(many)
        assertClose(b, a, relative: 1e-5, "2 ranks against 1")

        let resumed = try runProcess(distrain, ["train"] + flags.map { $0 == "2" ? "3" : $0 }
                                        + ["--checkpoint-dir", root + "/one", "--resume", "auto"], timeout: 120)
        XCTAssertEqual(resumed.exitCode, 0, resumed.standardError)
        XCTAssertTrue(resumed.standardOutput.contains("resuming from"), resumed.standardOutput)
    }

    private func floats(_ bytes: [UInt8]) -> [Float] {
        stride(from: 0, to: bytes.count - 3, by: 4).map { i in
            Float(bitPattern: UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24)
        }
    }

    /// `--recipe kjv-char` on a corpus with `--tokenizer char`: the gpt-mini preset on two local ranks by steps;
    /// the language-model flags' usage errors exit 64 naming the flag.
    func testTheKJVRecipeTrainsAGPTByStepsAndItsFlagsAreChecked() throws {
        let root = makeTemporaryDirectory("text-recipe")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let corpus = corpus(root)
        let outcome = try runProcess(distrain, ["train", corpus, "--tokenizer", "char", "--recipe", "kjv-char", "--max-steps",
                                                "5", "--context", "16", "--no-progress", "--metrics", root + "/m.jsonl",
                                                "--checkpoint-dir", root + "/run"], timeout: 300)
        XCTAssertEqual(outcome.exitCode, 0, outcome.standardError)
        XCTAssertTrue(outcome.standardOutput.contains("gpt-mini"), outcome.standardOutput)
        XCTAssertTrue(outcome.standardOutput.contains("lm_head") && outcome.standardOutput.contains("2 ranks"), outcome.standardOutput)
        let checkpoint = try String(contentsOfFile: root + "/run/latest", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(checkpoint, "step-00000005", "--max-steps 5 (from the recipe's 1650) ends at step 5")
        let tokens = root + "/run/" + (try FileManager.default.contentsOfDirectory(atPath: root + "/run").first { $0.hasPrefix("tokens-") } ?? "")
        let bad: [([String], String)] = [
            (["--max-steps", "0"], "--max-steps must be at least 1"),
            (["--min-lr", "0.1", "--lr", "0.01", "--schedule", "cosine"], "--min-lr 0.1 is above --lr 0.01"),
            (["--beta2", "1"], "--beta2 must be in [0, 1)"),
            (["--beta1", "0.8", "--optimizer", "sgd"], "--beta1 is Adam's"),
            (["--clip-grad-norm", "0"], "--clip-grad-norm must be a positive number"),
            (["--accumulate", "0"], "--accumulate must be in 1...4096"), (["--eval-every-steps", "0"], "--eval-every-steps must be at least 1"),
            (["--model", "gpt-mini", "--context", "128"], "--context 128 is longer than gpt-mini's 64 positions"),
        ]
        for (flags, fragment) in bad {
            let failed = try runProcess(distrain, ["train", tokens, "--threads", "1", "--no-progress", "--optimizer", "adamw"] + flags,
                                        timeout: 60)
            XCTAssertEqual(failed.exitCode, 64, "\(flags): \(failed.standardError)")
            XCTAssertTrue(failed.standardError.contains(fragment), "\(flags): \(failed.standardError)")
        }
    }

    func testBadTextInputsEndInOneLineAndANonZeroExit() throws {
        let root = makeTemporaryDirectory("text-bad")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let corpus = corpus(root)
        writeBytes(Array("{\"model\": {\"type\": \"WordPiece\"}}".utf8), to: root + "/bert.json")
        try FileManager.default.createDirectory(atPath: root + "/taken", withIntermediateDirectories: true)
        writeBytes(Array("mine".utf8), to: root + "/taken/notes.txt")
        writeBytes([0x66, 0xFF, 0x66], to: root + "/latin1.txt")
        _ = try runProcess(distrain, ["tokenizer", "train", corpus, "--vocab-size", "300", "--out", root + "/tok.json"], timeout: 60)
        let cases: [([String], String)] = [
            (["tokenizer", "train", corpus, "--vocab-size", "100", "--out", root + "/x.json"], "--vocab-size must be in 257...1048576"),
            (["tokenizer", "train", root + "/latin1.txt", "--out", root + "/y.json"], "latin1.txt: not UTF-8 at byte 1"),
            (["tokenize", "--tokenizer", root + "/bert.json", corpus, "--out", root + "/t1"], "not a BPE tokenizer "
                + "(model type 'WordPiece')"),
            (["tokenize", "--tokenizer", root + "/tok.json", corpus, "--out", root + "/taken"], "holds files distrain "
                + "did not write (notes.txt)"),
            (["tokenize", "--tokenizer", root + "/tok.json", root + "/nothing", "--out", root + "/t2"], "cannot read " + root + "/nothing"),
            (["train", root + "/tokens-missing", "--context", "8"], "unknown dataset"),
        ]
        for (arguments, fragment) in cases {
            let outcome = try runProcess(distrain, arguments, timeout: 60)
            XCTAssertNotEqual(outcome.exitCode, 0, arguments.joined(separator: " "))
            XCTAssertTrue(outcome.standardError.contains(fragment), "\(arguments): \(outcome.standardError)")
            // A usage error (64) adds ArgumentParser's usage lines after the one-line reason.
            XCTAssertTrue(outcome.exitCode == 64 || outcome.standardError.split(separator: "\n").count == 1, outcome.standardError)
        }
        XCTAssertEqual(try String(contentsOfFile: root + "/taken/notes.txt", encoding: .utf8), "mine")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root + "/taken"), ["notes.txt"])
    }
}
