import XCTest
import _TestSupport

/// A CSV table trained, evaluated without --label, predicted on rows whose columns come in another order.
final class CSVCommandTests: XCTestCase {
    func testTrainEvaluateAndPredictRows() throws {
        let root = makeTemporaryDirectory("csv-cli")
        defer { try? FileManager.default.removeItem(atPath: root) }
        try writeTwoSizesTable(root + "/t.csv", heading: "width,\"height, cm\",kind")
        let distrain = builtProductsDirectory + "/distrain"
        let train = try runProcess(distrain, ["train", root + "/t.csv", "--label", "kind", "--epochs", "15", "--batch-size", "8", "--threads", "1",
                                              "--no-progress", "--checkpoint-dir", root + "/ck"], timeout: 120)
        XCTAssertEqual(train.exitCode, 0, train.standardError)
        XCTAssertTrue(train.standardOutput.contains("test accuracy 100.00%"), train.standardOutput)
        let evaluate = try runProcess(distrain, ["evaluate", "--checkpoint", root + "/ck", root + "/t.csv"], timeout: 60)
        XCTAssertEqual(evaluate.exitCode, 0, evaluate.standardError)
        try Data("kind,\"height, cm\",width\n?,11,2\n?,42,25\n".utf8).write(to: URL(fileURLWithPath: root + "/new.csv"))
        let predict = try runProcess(distrain, ["predict", "--checkpoint", root + "/ck", root + "/new.csv"], timeout: 60)
        XCTAssertEqual(predict.exitCode, 0, predict.standardError)
        XCTAssertTrue(predict.standardOutput.contains("new.csv:2  small") && predict.standardOutput.contains("new.csv:3  large"), predict.standardOutput)
        try Data("width\n3\n".utf8).write(to: URL(fileURLWithPath: root + "/short.csv"))
        let missing = try runProcess(distrain, ["predict", "--checkpoint", root + "/ck", root + "/short.csv"], timeout: 60)
        XCTAssertTrue(missing.standardError.contains("has no column 'height, cm', a feature of the model"), missing.standardError)
        // A table's rows have nothing to mirror: --tta flip is a usage error when training and when evaluating.
        let flipped = try runProcess(distrain, ["evaluate", "--checkpoint", root + "/ck", root + "/t.csv", "--tta", "flip"], timeout: 60)
        XCTAssertEqual(flipped.exitCode, 64, flipped.standardError)
        XCTAssertTrue(flipped.standardError.contains("--tta flip mirrors images"), flipped.standardError)
        let trainFlipped = try runProcess(distrain, ["train", root + "/t.csv", "--label", "kind", "--epochs", "1", "--threads", "1", "--tta", "flip"], timeout: 60)
        XCTAssertEqual(trainFlipped.exitCode, 64, trainFlipped.standardError)
        XCTAssertTrue(trainFlipped.standardError.contains("--tta flip mirrors images"), trainFlipped.standardError)
    }

    /// A sweep over a CSV file: a recipe in its training command applies (its model overridden beside it),
    /// and the winning command it prints runs at the shell (`distrain train FILE …`).
    func testASweepOverACSVFileTakesARecipeAndPrintsARunnableCommand() throws {
        let root = makeTemporaryDirectory("csv-sweep")
        defer { try? FileManager.default.removeItem(atPath: root) }
        try writeTwoSizesTable(root + "/t.csv", heading: "width,height,kind")
        let command = ["--", root + "/t.csv", "--label", "kind", "--recipe", "fast", "--model", "mlp", "--epochs", "2", "--threads", "1", "--lr", "1e-3,3e-3"]
        // The recipe's test-time flips have nothing to mirror in a table's rows: refused, naming the fix.
        let refused = try runProcess(builtProductsDirectory + "/distrain", ["sweep", "--out", root + "/refused"] + command, timeout: 120)
        XCTAssertEqual(refused.exitCode, 64, refused.standardError)
        XCTAssertTrue(refused.standardError.contains("pass --tta none"), refused.standardError)
        let sweep = try runProcess(builtProductsDirectory + "/distrain", ["sweep", "--out", root + "/sweep"] + command + ["--tta", "none"], timeout: 120)
        XCTAssertEqual(sweep.exitCode, 0, sweep.standardError)
        XCTAssertTrue(sweep.standardOutput.contains("best: distrain train \(root)/t.csv --label kind --recipe fast"), sweep.standardOutput)
        let start = try XCTUnwrap(try readMetrics(root + "/sweep/trial-001/metrics.jsonl").first)
        XCTAssertEqual(start["optimizer"] as? String, "adamw", "the recipe's")
        XCTAssertEqual(start["model"] as? String, "mlp", "--model beside the recipe wins")
        XCTAssertEqual(start["world_size"] as? Int, 2, "the recipe's two local ranks")
    }
}

/// `--task regression` from the command line: RMSE/MAE/R², evaluate and predict numbers.
final class CSVRegressionCommandTests: XCTestCase {
    func testRegressionTrainEvaluatePredict() throws {
        let root = makeTemporaryDirectory("csv-regression")
        defer { try? FileManager.default.removeItem(atPath: root) }
        var text = "a,b,target\n"
        for i in 0..<200 {
            let a = Double(i % 17) / 4, b = Double(i % 11) / 3
            let target: Double = 2 * a - b + 5
            text += "\(a),\(b),\(target)\n"
        }
        try Data(text.utf8).write(to: URL(fileURLWithPath: root + "/t.csv"))
        let distrain = builtProductsDirectory + "/distrain"
        let train = try runProcess(distrain, ["train", root + "/t.csv", "--label", "target", "--task", "regression", "--epochs", "40", "--batch-size", "16",
                                              "--lr", "3e-3", "--threads", "1", "--no-progress", "--checkpoint-dir", root + "/ck", "--metrics", root + "/m.jsonl"], timeout: 120)
        XCTAssertEqual(train.exitCode, 0, train.standardError)
        XCTAssertTrue(train.standardOutput.contains("test RMSE"), train.standardOutput)
        XCTAssertFalse(train.standardOutput.contains(" acc "), "no accuracies for a regression")
        let evaluate = try runProcess(distrain, ["evaluate", "--checkpoint", root + "/ck", root + "/t.csv", "--json"], timeout: 60)
        XCTAssertEqual(evaluate.exitCode, 0, evaluate.standardError)
        let object = try JSONSerialization.jsonObject(with: Data(evaluate.standardOutput.utf8)) as! [String: Any]
        let rmse = object["rmse"] as! Double, loss = object["test_loss"] as! Double
        XCTAssertEqual(rmse * rmse, loss, accuracy: 1e-9 * max(1, loss))
        XCTAssertGreaterThan(object["r2"] as! Double, 0.9)
        try Data("b,a\n1,2\n".utf8).write(to: URL(fileURLWithPath: root + "/new.csv"))
        let predict = try runProcess(distrain, ["predict", "--checkpoint", root + "/ck", root + "/new.csv"], timeout: 60)
        XCTAssertEqual(predict.exitCode, 0, predict.standardError)
        let value = Double(predict.standardOutput.split(separator: " ").last!.trimmingCharacters(in: .whitespacesAndNewlines))!
        XCTAssertEqual(value, 2 * 2 - 1 + 5, accuracy: 1.5, "the fitted plane at (a 2, b 1)")
        let end = try String(contentsOfFile: root + "/m.jsonl", encoding: .utf8).split(separator: "\n").last!
        XCTAssertTrue(end.contains("\"rmse\"") && end.contains("\"r2\""), String(end))
    }
}

/// `--format` reads a path whose name does not say what it is; without it the error lists the choices.
final class SourceFormatTests: XCTestCase {
    func testFormatForcesTheReader() throws {
        let root = makeTemporaryDirectory("format")
        defer { try? FileManager.default.removeItem(atPath: root) }
        var text = "x,kind\n"
        for i in 0..<40 { text += "\(i % 2 == 0 ? i : -i),\(i % 2 == 0 ? "even" : "odd")\n" }
        try Data(text.utf8).write(to: URL(fileURLWithPath: root + "/table.txt"))
        let distrain = builtProductsDirectory + "/distrain"
        let forced = try runProcess(distrain, ["train", root + "/table.txt", "--format", "csv", "--label", "kind", "--epochs", "1", "--threads", "1", "--no-progress"], timeout: 60)
        XCTAssertEqual(forced.exitCode, 0, forced.standardError)
        let unknown = try runProcess(distrain, ["train", root + "/table.txt", "--epochs", "1"], timeout: 60)
        XCTAssertEqual(unknown.exitCode, 64)
        XCTAssertTrue(unknown.standardError.contains("unknown dataset") && unknown.standardError.contains(".npz file"), unknown.standardError)
    }
}

/// 120 rows of two well-separated classes, small and large, under `heading`.
private func writeTwoSizesTable(_ path: String, heading: String) throws {
    var text = heading + "\n"
    for i in 0..<120 { text += i % 2 == 0 ? "\(1 + i % 7),\(10 + i % 5),small\n" : "\(20 + i % 7),\(40 + i % 5),large\n" }
    try Data(text.utf8).write(to: URL(fileURLWithPath: path))
}
