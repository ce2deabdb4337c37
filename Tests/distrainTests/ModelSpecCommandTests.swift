import XCTest
import _TestSupport

/// `--model FILE`: train a spec, evaluate and export its checkpoint with no model flag, summary, errors.
final class ModelSpecCommandTests: XCTestCase {
    private var root = ""
    private let distrain = builtProductsDirectory + "/distrain"
    override func setUp() {
        root = makeTemporaryDirectory("spec-cli")
        writeSyntheticIDXDataset(directory: root, trainCount: 200, testCount: 50)
    }
    override func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    private func write(_ text: String, _ name: String) -> String {
        let path = "\(root)/\(name)"
        try! Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    func testASpecTrainsAndItsCheckpointEvaluatesAndExportsWithoutFlags() throws {
        let spec = write("""
        Conv2d(1, 4, 3, padding=1, bias=False)
        BatchNorm2d(4)
        ReLU()
        AvgPool2d(4)
        Flatten()
        hidden = Linear(196, 16)
        GELU()
        Dropout(0.1)
        Linear(16, 10)
        """, "small.spec")
        let train = try runProcess(distrain, ["fashion-mnist", "--data-dir", root, "--model", spec, "--epochs", "2", "--threads", "1",
                                              "--no-progress", "--checkpoint-dir", root + "/ck"], timeout: 300)
        XCTAssertEqual(train.exitCode, 0, train.standardError)
        XCTAssertTrue(train.standardOutput.contains("hidden  Linear(196, 16)") || train.standardOutput.contains("Linear(196, 16)"), "the header's table")
        let evaluate = try runProcess(distrain, ["evaluate", "--checkpoint", root + "/ck", "fashion-mnist", "--data-dir", root, "--json"], timeout: 120)
        XCTAssertEqual(evaluate.exitCode, 0, evaluate.standardError)
        let accuracy = (try JSONSerialization.jsonObject(with: Data(evaluate.standardOutput.utf8)) as! [String: Any])["accuracy"] as! Double
        let metrics = try String(contentsOfFile: root + "/ck/metrics.jsonl", encoding: .utf8)
        XCTAssertTrue(metrics.contains("\"test_accuracy\":\(accuracy)") || metrics.contains(String(accuracy)), "evaluate rebuilt the same model")
        let export = try runProcess(distrain, ["export", "--pytorch", root + "/ck"], timeout: 60)
        XCTAssertEqual(export.exitCode, 0, export.standardError)
        for line in ["(\"0\", nn.Conv2d(1, 4, 3, padding=1, bias=False)),", "(\"1\", nn.BatchNorm2d(4)),", "(\"hidden\", nn.Linear(196, 16)),",
                     "(\"6\", nn.GELU()),", "(\"7\", nn.Dropout(p=0.1)),", "(\"8\", nn.Linear(16, 10)),"] {
            XCTAssertTrue(export.standardOutput.contains(line), "\(line) in \(export.standardOutput)")
        }
        // The resumed run rebuilds the model from its own checkpoint and goes on.
        let resumed = try runProcess(distrain, ["fashion-mnist", "--data-dir", root, "--model", spec, "--epochs", "3", "--threads", "1",
                                                "--no-progress", "--checkpoint-dir", root + "/ck", "--resume", "auto"], timeout: 300)
        XCTAssertEqual(resumed.exitCode, 0, resumed.standardError)
        XCTAssertTrue(resumed.standardOutput.contains("epoch 3/3"), resumed.standardOutput)
    }

    func testResumingAfterACommentEditWorksAndAfterAModuleEditNamesTheLine() throws {
        let spec = write("Flatten()\nLinear(784, 32)\nReLU()\nLinear(32, 10)\n", "m.spec")
        let flags = ["--data-dir", root, "--threads", "1", "--no-progress", "--model", spec, "--checkpoint-dir", root + "/ck"]
        let first = try runProcess(distrain, ["fashion-mnist", "--epochs", "1"] + flags, timeout: 120)
        XCTAssertEqual(first.exitCode, 0, first.standardError)
        _ = write("# a hidden layer of 32\nFlatten()\n\nLinear(784, 32)   # wide enough\r\nReLU()\nLinear(32, 10)\n", "m.spec")
        let commented = try runProcess(distrain, ["fashion-mnist", "--epochs", "2", "--resume", "auto"] + flags, timeout: 120)
        XCTAssertEqual(commented.exitCode, 0, "comments and blank lines do not change the model: \(commented.standardError)")
        _ = write("Flatten()\nLinear(784, 64)\nReLU()\nLinear(64, 10)\n", "m.spec")
        let edited = try runProcess(distrain, ["fashion-mnist", "--epochs", "3", "--resume", "auto"] + flags, timeout: 120)
        XCTAssertNotEqual(edited.exitCode, 0)
        XCTAssertTrue(edited.standardError.contains("module line 2 'Linear(784, 32)'")
                      && edited.standardError.contains("module line 2 'Linear(784, 64)'"), edited.standardError)
    }

    func testSummaryAndSpecErrors() throws {
        let summary = try runProcess(distrain, ["summary", "--model", "lenet", "--input", "3x32x32"], timeout: 60)
        XCTAssertEqual(summary.exitCode, 0, summary.standardError)
        XCTAssertTrue(summary.standardOutput.contains("62006 parameters"), summary.standardOutput)
        let wrong = write("Flatten()\nLinear(100, 10)\n", "wrong.spec")
        for arguments in [["summary", "--model", wrong], ["fashion-mnist", "--data-dir", root, "--model", wrong, "--epochs", "1"]] {
            let outcome = try runProcess(distrain, arguments, timeout: 120)
            XCTAssertEqual(outcome.exitCode, 64, "\(arguments)")
            XCTAssertTrue(outcome.standardError.contains("wrong.spec line 2: Linear(100, 10): in_features 100 does not match the 784 features coming in"), outcome.standardError)
        }
        let unknown = try runProcess(distrain, ["fashion-mnist", "--model", root + "/missing.spec"], timeout: 60)
        XCTAssertEqual(unknown.exitCode, 64)
        XCTAssertTrue(unknown.standardError.contains("is neither a preset (mlp, lenet, cnn, cnn-bn, mlp-large, gpt-mini, gpt-char, gpt2, gpt2-medium) nor a readable model spec file"), unknown.standardError)
        let syntax = write("Conv2d(1, 8, 3, dilation=2)\n", "syntax.spec")
        let parsed = try runProcess(distrain, ["fashion-mnist", "--model", syntax], timeout: 60)
        XCTAssertEqual(parsed.exitCode, 64)
        XCTAssertTrue(parsed.standardError.contains("syntax.spec line 1:") && parsed.standardError.contains("unknown argument 'dilation'"), parsed.standardError)
    }
}
